"""Alembic migrations on a real SQLite file: a database made by an older release upgrades to
head with its rows intact, and head matches the tables the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from service.db.session import MIGRATIONS_DIR, make_engine, migrate
from service.db.tables import Base

INITIAL = "e706205f2e9a"
REVIEW = "d6899ffd115c"
GENERATED_EVALSETS = "a3c71e9f5b20"
LIVE_ADAPTER_NAMES = "5c1e8d42b7a9"
AUDIT_EVENTS = "7b2e4c9d1f03"
HEAD = AUDIT_EVENTS


def _upgrade(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _seed_initial_schema(engine: Engine) -> None:
    """Rows as the initial schema stored them (plain SQL: today's tables have more columns)."""
    now = "2026-11-30 12:00:00.000000"
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'acme', :t)"),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO collections (id, workspace_id, name, description, created_at) "
                "VALUES ('col_1', 'ws_1', 'facts', '', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO augmentations (id, workspace_id, collection_id, params, templates, "
                "stats, document_ids, source, status, created_at) VALUES ('aug_1', 'ws_1', "
                "'col_1', '{}', '{}', '{}', '[]', 'uploaded', 'succeeded', :t)"
            ),
            {"t": now},
        )
        for i, sentence in enumerate(["Glon are less dangerous than femp.", "Yomp are glon."]):
            conn.execute(
                text(
                    "INSERT INTO augmented_examples (augmentation_id, strategy, unit_key, "
                    "document_id, text, provenance, created_at) VALUES ('aug_1', 'uploaded', "
                    ':unit, NULL, :text, \'{"strategy": "uploaded"}\', :t)'
                ),
                {"unit": f"upload:{i + 1}", "text": sentence, "t": now},
            )
        conn.execute(
            text(
                "INSERT INTO evalsets (id, workspace_id, collection_id, name, items, item_count, "
                "created_at) VALUES ('es_1', 'ws_1', 'col_1', 'old set', "
                '\'[{"id": "q1", "question": "Q?", "answer": "A"}]\', 1, :t)'
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO adapters (id, workspace_id, name, served_name, collection_id, "
                "augmentation_id, source, status, base_model, base_model_hash, "
                "document_versions, hyperparameters, metrics, updated_at, created_at) VALUES "
                "('ad_1', 'ws_1', 'old', 'da-old', 'col_1', 'aug_1', 'trained', 'queued', "
                "'/models/base', 'abc', '{}', '{}', '{}', :t, :t)"
            ),
            {"t": now},
        )


def test_a_database_at_the_initial_revision_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    _upgrade(engine, INITIAL)
    _seed_initial_schema(engine)

    migrate(engine)  # what the app and every worker do at start

    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        rows = conn.execute(
            text(
                "SELECT text, score, flagged, review, reviewed_at, review_note "
                "FROM augmented_examples ORDER BY id"
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("Glon are less dangerous than femp.", None, 0, "pending", None, None),
            ("Yomp are glon.", None, 0, "pending", None, None),
        ]
        adapter = conn.execute(
            text("SELECT name, augmentation_id, example_selection FROM adapters")
        ).one()
        assert tuple(adapter) == ("old", "aug_1", None)
        evalset = conn.execute(
            text(
                "SELECT name, item_count, source, status, job_id, generation, holdout FROM evalsets"
            )
        ).one()
        assert tuple(evalset) == ("old set", 1, "uploaded", "ready", None, None, None)
        assert conn.execute(text("SELECT count(*) FROM workspaces")).scalar() == 1
    indexes = {
        ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("augmented_examples")
    }
    assert indexes["ix_augmented_examples_review"] == ["augmentation_id", "review"]
    engine.dispose()


def test_head_matches_the_declared_tables(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_the_review_migration_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, INITIAL)
    columns = {c["name"] for c in inspect(engine).get_columns("augmented_examples")}
    assert "review" not in columns and "text" in columns
    engine.dispose()


def test_the_generated_evalsets_migration_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, REVIEW)
    columns = {c["name"] for c in inspect(engine).get_columns("evalsets")}
    assert not {"source", "status", "job_id", "generation", "holdout"} & columns
    assert "items" in columns
    engine.dispose()


def test_live_adapters_sharing_a_name_are_renamed_before_the_unique_index(tmp_path: Path) -> None:
    """Two live adapters of one name (what the race before the index could leave) upgrade to one
    that keeps the name and one renamed after its id; a deleted one keeps its name."""
    engine = make_engine(f"sqlite:///{tmp_path / 'dupes.db'}")
    _upgrade(engine, GENERATED_EVALSETS)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'a', :t)"),
            {"t": "2026-11-30 12:00:00"},
        )
        for adapter_id, status, created in (
            ("ad_old", "ready", "2026-11-30 12:00:00"),
            ("ad_new", "queued", "2026-11-30 12:00:01"),
            ("ad_gone", "deleted", "2026-11-30 11:00:00"),
        ):
            conn.execute(
                text(
                    "INSERT INTO adapters (id, workspace_id, name, served_name, source, status, "
                    "base_model, base_model_hash, document_versions, hyperparameters, metrics, "
                    "updated_at, created_at) VALUES (:id, 'ws_1', 'handbook', :served, "
                    "'trained', :status, 'base', 'abc', '{}', '{}', '{}', :t, :t)"
                ),
                {"id": adapter_id, "served": f"{adapter_id}-x", "status": status, "t": created},
            )
    migrate(engine)
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, name FROM adapters")).all())
        assert names == {"ad_old": "handbook", "ad_new": "handbook-ad_new", "ad_gone": "handbook"}
        with pytest.raises(IntegrityError):  # the index now refuses a second live one
            conn.execute(
                text(
                    "INSERT INTO adapters (id, workspace_id, name, served_name, source, status, "
                    "base_model, base_model_hash, document_versions, hyperparameters, metrics, "
                    "updated_at, created_at) VALUES ('ad_3', 'ws_1', 'handbook', 'ad_3-x', "
                    "'trained', 'queued', 'base', 'abc', '{}', '{}', '{}', :t, :t)"
                ),
                {"t": "2026-11-30 12:00:02"},
            )
    engine.dispose()


def test_the_live_adapter_names_migration_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, GENERATED_EVALSETS)
    assert "text_encoding" not in {c["name"] for c in inspect(engine).get_columns("documents")}
    assert "uq_adapters_live_name" not in {
        i["name"] for i in inspect(engine).get_indexes("adapters")
    }
    engine.dispose()


def test_the_audit_events_migration_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(engine)
    assert "audit_events" in inspect(engine).get_table_names()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, LIVE_ADAPTER_NAMES)
    assert "audit_events" not in inspect(engine).get_table_names()
    assert "workspaces" in inspect(engine).get_table_names()
    engine.dispose()

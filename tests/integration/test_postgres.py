"""The service on a real PostgreSQL server (pgserver: PostgreSQL's binaries in a wheel): migrations
at start, the REST flows with workspace scoping, and the job queue's claims, where PostgreSQL's
`FOR UPDATE SKIP LOCKED` and lease timestamps behave unlike SQLite's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from service.core.config import Settings
from service.db.scratch import new_database, scratch_postgres
from service.db.session import make_engine, make_session_factory, migrate
from service.db.tables import Job, Workspace
from service.jobs import records
from service.main import create_app
from tests.integration.conftest import new_workspace
from tests.integration.test_limits import racing_creates_never_pass_the_cap
from tests.integration.test_races import (
    identical_uploads_are_one_document_and_a_duplicate,
    one_adapter_name_is_one_201_and_one_409,
)


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server for this module; yields its SQLAlchemy URL (maintenance database)."""
    with scratch_postgres(tmp_path_factory.mktemp("pgdata")) as url:
        yield url


@pytest.fixture
def database_url(postgres_server: str) -> str:
    """A fresh, empty database on the server for one test."""
    return new_database(postgres_server, "t")


def test_the_app_migrates_and_scopes_every_read_on_postgres(
    make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
        acme, other = new_workspace(client, "acme"), new_workspace(client, "other")
        col = client.post("/v1/collections", json={"name": "facts"}, headers=acme).json()["id"]
        body = b"Femp are more dangerous than glon. Glon live in caves."
        files = [("files", ("facts.txt", body, "text/plain"))]
        r = client.post(f"/v1/collections/{col}/documents", files=files, headers=acme)
        assert r.status_code == 201, r.text
        doc = r.json()["data"][0]["id"]
        again = client.post(f"/v1/collections/{col}/documents", files=files, headers=acme)
        assert again.json()["data"][0]["id"] == doc  # identical content is stored once

        got = client.get(f"/v1/documents/{doc}", headers=acme).json()
        assert "Femp are more dangerous than glon." in got["text"] and got["sentence_count"] == 2
        assert client.get(f"/v1/documents/{doc}", headers=other).status_code == 404
        assert client.delete(f"/v1/documents/{doc}", headers=other).status_code == 404
        assert client.delete(f"/v1/documents/{doc}", headers=acme).status_code == 204
        assert client.get(f"/v1/documents/{doc}", headers=acme).status_code == 404

    engine = make_engine(database_url)
    with engine.connect() as conn:  # the schema is Alembic's, at head
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


def test_job_claims_skip_locked_rows_and_reclaim_lapsed_leases(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    with sessions() as s:
        ws = Workspace(name="acme")
        s.add(ws)
        s.flush()
        first = records.create_job(s, ws.id, "augmentation", {}, None).id
        second = records.create_job(s, ws.id, "augmentation", {}, None).id
        s.commit()

    # A worker mid-claim holds the oldest job's row: another worker takes the next one instead
    # of waiting for the lock or taking the same job.
    holder = sessions()
    locked = holder.scalar(select(Job.id).where(Job.id == first).with_for_update())
    assert locked == first
    with sessions() as s:
        s.execute(text("SET lock_timeout = '5s'"))  # without SKIP LOCKED this would wait: fail fast
        job = records.claim_next(s, "worker-b", lease_s=60, kinds=["augmentation"])
        assert job is not None and job.id == second and job.lease_owner == "worker-b"
    holder.rollback()
    holder.close()

    # A claim whose lease has lapsed (its worker died) is claimed again by a live worker.
    with sessions() as s:
        job = records.claim_next(s, "worker-a", lease_s=-1, kinds=["augmentation"])
        assert job is not None and job.id == first
    with sessions() as s:
        job = records.claim_next(s, "worker-c", lease_s=60, kinds=["augmentation"])
        assert job is not None and job.id == first and job.attempts == 2
        assert records.claim_next(s, "worker-d", lease_s=60, kinds=["augmentation"]) is None
    engine.dispose()


def test_identical_concurrent_uploads_on_postgres(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    # PostgreSQL's ON CONFLICT waits for the other transaction's row, then does nothing.
    with TestClient(create_app(make_settings(database_url=database_url))) as client:
        identical_uploads_are_one_document_and_a_duplicate(client)


def test_concurrent_adapters_of_one_name_on_postgres(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    with TestClient(create_app(make_settings(database_url=database_url))) as client:
        one_adapter_name_is_one_201_and_one_409(client)


def test_concurrent_creates_cannot_both_take_the_last_place_on_postgres(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """PostgreSQL runs each statement on its own snapshot: without the workspace row's lock,
    every racing request counts the jobs before any of them commits and all get in."""
    settings = make_settings(database_url=database_url, max_active_jobs_per_workspace=4)
    with TestClient(create_app(settings)) as client:
        racing_creates_never_pass_the_cap(client, 4)

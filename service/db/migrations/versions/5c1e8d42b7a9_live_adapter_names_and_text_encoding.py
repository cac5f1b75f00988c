"""live adapter names unique per workspace (an index); documents record their text encoding;
adapters.base_model_hash fits its value

Revision ID: 5c1e8d42b7a9
Revises: a3c71e9f5b20
Create Date: 2026-12-05 10:00:00.000000

Before the index, two concurrent requests could both create a live adapter of one name. Such
pairs are resolved first: the oldest keeps the name, each later one is renamed
"<name>-<its id>" (still a valid adapter name, and unique, since ids are).

base_model_hash was VARCHAR(64) while a fingerprint is "sha256:" and 64 hex digits: PostgreSQL
refused every adapter (SQLite does not check lengths).
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1e8d42b7a9"
down_revision = "a3c71e9f5b20"
branch_labels = None
depends_on = None

_LIVE = "status != 'deleted'"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            f"SELECT id, workspace_id, name FROM adapters WHERE {_LIVE} "
            "ORDER BY workspace_id, name, created_at, id"
        )
    ).all()
    seen: set[tuple[str, str]] = set()
    for adapter_id, workspace_id, name in rows:
        if (workspace_id, name) in seen:
            conn.execute(
                sa.text("UPDATE adapters SET name = :name WHERE id = :id"),
                {"name": f"{name}-{adapter_id}"[:120], "id": adapter_id},
            )
        seen.add((workspace_id, name))
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.alter_column(
            "base_model_hash", existing_type=sa.String(length=64), type_=sa.String(length=80)
        )
    op.create_index(
        "uq_adapters_live_name",
        "adapters",
        ["workspace_id", "name"],
        unique=True,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_encoding", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("text_encoding")
    op.drop_index("uq_adapters_live_name", table_name="adapters")
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.alter_column(
            "base_model_hash", existing_type=sa.String(length=80), type_=sa.String(length=64)
        )

"""audit events: admin and destructive actions, who, what, when and how they ended

Revision ID: 7b2e4c9d1f03
Revises: 5c1e8d42b7a9
Create Date: 2026-12-07 10:00:00.000000

A new table only; nothing before it was recorded.
"""

import sqlalchemy as sa
from alembic import op

revision = "7b2e4c9d1f03"
down_revision = "5c1e8d42b7a9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=20), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"], unique=False)
    op.create_index(
        "ix_audit_events_workspace", "audit_events", ["workspace_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_workspace", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")

"""generated eval sets: source, status, job, generation record and held-out sentences

Revision ID: a3c71e9f5b20
Revises: d6899ffd115c
Create Date: 2026-12-04 10:00:00.000000

Existing eval sets were uploaded and are ready; they hold nothing out.
"""

import sqlalchemy as sa
from alembic import op

revision = "a3c71e9f5b20"
down_revision = "d6899ffd115c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evalsets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=20), server_default="uploaded", nullable=False)
        )
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="ready", nullable=False)
        )
        batch_op.add_column(sa.Column("job_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("holdout", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evalsets", schema=None) as batch_op:
        batch_op.drop_column("holdout")
        batch_op.drop_column("generation")
        batch_op.drop_column("job_id")
        batch_op.drop_column("status")
        batch_op.drop_column("source")

"""example review: verification score, flag and review state on augmented examples; the
examples an adapter trains on

Revision ID: d6899ffd115c
Revises: e706205f2e9a
Create Date: 2026-12-02 10:00:00.000000

Existing examples become pending, unflagged and unscored; existing adapters get no selection
(the training job then reads every example of their augmentation, as before).
"""
import sqlalchemy as sa
from alembic import op

revision = "d6899ffd115c"
down_revision = "e706205f2e9a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("augmented_examples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("score", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("review", sa.String(length=20), server_default="pending", nullable=False)
        )
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_augmented_examples_review", ["augmentation_id", "review"], unique=False
        )
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("example_selection", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.drop_column("example_selection")
    with op.batch_alter_table("augmented_examples", schema=None) as batch_op:
        batch_op.drop_index("ix_augmented_examples_review")
        batch_op.drop_column("review_note")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("review")
        batch_op.drop_column("flagged")
        batch_op.drop_column("score")

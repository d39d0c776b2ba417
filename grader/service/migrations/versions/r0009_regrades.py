"""regrades: an exercise's counted submissions graded again with the current bundle, old and new results kept

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "regrades",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("exercise", sa.String(128), nullable=False),
        sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("applied_at", sa.Float, nullable=True),
    )
    op.create_table(
        "regrade_results",
        sa.Column("regrade_id", sa.String(36), sa.ForeignKey("regrades.id"), primary_key=True),
        sa.Column("submission_id", sa.String(36), sa.ForeignKey("submissions.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("available_at", sa.Float, nullable=False),
        sa.Column("old_score", sa.Float, nullable=True),
        sa.Column("old_max_score", sa.Float, nullable=True),
        sa.Column("old_result", sa.Text, nullable=True),
        sa.Column("new_score", sa.Float, nullable=True),
        sa.Column("new_max_score", sa.Float, nullable=True),
        sa.Column("new_result", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

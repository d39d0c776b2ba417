"""manual grades: an instructor's verdict on one manually graded answer of one submission

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "manual_grades",
        sa.Column("submission_id", sa.String(36), sa.ForeignKey("submissions.id"), primary_key=True),
        sa.Column("item", sa.String(32), primary_key=True),
        sa.Column("criteria", sa.Text, nullable=False),
        sa.Column("points", sa.Float, nullable=False),
        sa.Column("max_points", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("grader_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("graded_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

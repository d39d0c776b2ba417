"""deadlines and extensions: per-exercise due times, late policies, per-learner extensions

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("exercise", sa.String(128), primary_key=True),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("per_day", sa.Float, nullable=False),
        sa.Column("floor", sa.Float, nullable=False),
        sa.Column("set_at", sa.Float, nullable=False),
    )
    op.create_table(
        "extensions",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("exercise", sa.String(128), primary_key=True),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("granted_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

"""fair claims: learners' turns, claim times, running jobs per learner (hand-written migration 5)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0005"
down_revision = "0004"


def step(conn: Connection) -> None:
    """Fair claims: when each learner was last served, when each job was last claimed, and the running
    jobs of one learner found fast (the per-learner cap)."""
    conn.execute(sa.text("ALTER TABLE users ADD COLUMN last_claimed_at FLOAT"))
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN claimed_at FLOAT"))
    conn.execute(sa.text("CREATE INDEX ix_submissions_learner_status ON submissions (user_id, status)"))


def upgrade() -> None:
    step(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

"""one active job per identical submission; claim and rate-limit indexes (hand-written migration 3)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0003"
down_revision = "0002"


def step(conn: Connection) -> None:
    """One job per identical active submission (a double submit makes one job), and fast claims.

    As released: the statuses are spelled out (``ACTIVE_STATUSES``' values), as in the databases it made.
    """
    conn.execute(
        sa.text(
            "CREATE UNIQUE INDEX ix_submissions_one_active ON submissions (user_id, exercise, sha256) "
            "WHERE status IN ('queued', 'running')"
        )
    )
    conn.execute(sa.text("CREATE INDEX ix_submissions_claim ON submissions (status, available_at)"))
    conn.execute(sa.text("CREATE INDEX ix_submissions_user ON submissions (user_id, created_at)"))


def upgrade() -> None:
    step(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

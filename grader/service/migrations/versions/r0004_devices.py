"""GPU routing: submission device, routed queue, worker registry (hand-written migration 4)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0004"
down_revision = "0003"


def step(conn: Connection) -> None:
    """GPU routing: the device a submission's exercise asks for, the Celery queue it went to, and the
    registry of workers with the device each detected on itself."""
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN device VARCHAR(8) DEFAULT 'cpu' NOT NULL"))
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN routed_to VARCHAR(32)"))
    v4 = sa.MetaData()
    sa.Table(
        "workers",
        v4,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    v4.create_all(conn)
    conn.execute(sa.text("CREATE INDEX ix_workers_live ON workers (kind, heartbeat_at)"))


def upgrade() -> None:
    step(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

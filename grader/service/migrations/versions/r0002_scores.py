"""score columns for the gradebook (hand-written migration 2)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0002"
down_revision = "0001"


def step(conn: Connection) -> None:
    """Score columns, so the gradebook need not parse every result; filled from existing results."""
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN score FLOAT"))
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN max_score FLOAT"))
    rows = conn.execute(sa.text("SELECT id, result FROM submissions WHERE result IS NOT NULL")).all()
    for row in rows:
        try:
            data = json.loads(row.result)
        except ValueError:
            continue
        conn.execute(
            sa.text("UPDATE submissions SET score = :score, max_score = :max_score WHERE id = :id"),
            {"score": data.get("score"), "max_score": data.get("max_score"), "id": row.id},
        )


def upgrade() -> None:
    step(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

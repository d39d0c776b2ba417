"""Alembic keeps the store's version; schema_version says so to older graders

Revision ID: 0006
Revises: 0005

The hand-written bookkeeping table stays, with a last row (version 6): a grader from before this
revision opens a store only when ``schema_version`` is at most 5, so it now refuses, saying "upgrade
the grader package", instead of trying to create tables that exist.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

#: what an older grader reads as the store's schema version (one more than it knows)
LEGACY_TOMBSTONE = 6


#: the hand-written migrations' bookkeeping, as they made it: one row per step applied
schema_version = sa.Table(
    "schema_version",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def upgrade() -> None:
    conn = op.get_bind()
    schema_version.create(conn, checkfirst=True)
    conn.execute(
        sa.insert(schema_version).values(
            version=LEGACY_TOMBSTONE, name="migrations moved to Alembic (alembic_version)", applied_at=time.time()
        )
    )


def downgrade() -> None:
    raise NotImplementedError("the store's migrations go forward only: restore a backup to go back")

"""The store's schema changes: Alembic revisions in ``versions/``, run by the grader itself.

:func:`upgrade` runs on a connection the caller holds a write transaction on
(:func:`grader.service.store.migrate`), so a whole upgrade commits or rolls back as one: on
PostgreSQL and on SQLite alike, since the store begins SQLite's transactions itself. No
``alembic.ini`` is read; this folder is the script location.

Stores made by the hand-written migrations of earlier graders (a ``schema_version`` table at
1 … 5) are recognised, stamped at the revision that made the same schema
(:data:`LEGACY_REVISIONS`), and upgraded from there, keeping their data.

Imports: alembic, SQLAlchemy and :mod:`grader.errors`; only :mod:`grader.service.store` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from grader.errors import UsageError

#: Alembic's script location: env.py and versions/
HERE = Path(__file__).resolve().parent
#: the hand-written migrations' ``schema_version`` → the revision whose schema is the same
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004", 5: "0005"}
_UPGRADE_GRADER = "upgrade the grader package (pip install -U mlcourse-platform, or git pull), then run it again"


@dataclass(frozen=True)
class Revision:
    """One schema change: its Alembic revision id and what it does."""

    id: str
    title: str

    def __str__(self) -> str:
        return f"{self.id} {self.title}"


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands."""

    #: the Alembic revision it is at (None: an empty database, or a store not yet moved to Alembic)
    current: str | None
    #: a store of the hand-written migrations: its ``schema_version`` (None otherwise)
    legacy_version: int | None
    #: the latest revision this grader knows
    head: str
    #: the revisions an upgrade applies, in order
    pending: tuple[Revision, ...]


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = conn
    return cfg


def _revision(script: ScriptDirectory, rev: str) -> Revision:
    found = script.get_revision(rev)
    assert found is not None
    return Revision(found.revision, (found.doc or "").strip().splitlines()[0] if found.doc else "")


def _legacy_version(conn: Connection) -> int | None:
    if not sa.inspect(conn).has_table("schema_version"):
        return None
    value = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar()
    return int(value) if value else None


def state(conn: Connection, *, target: str = "head") -> SchemaState:
    """Where the store on ``conn`` stands; a store newer than this grader gets a :class:`UsageError`."""
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    assert head is not None
    current = MigrationContext.configure(conn).get_current_revision()
    legacy = _legacy_version(conn) if current is None else None
    start = current
    if current is None and legacy is not None:
        if legacy not in LEGACY_REVISIONS:
            raise UsageError(
                f"the store is at schema version {legacy}, newer than this grader knows "
                f"({max(LEGACY_REVISIONS)}); {_UPGRADE_GRADER}"
            )
        start = LEGACY_REVISIONS[legacy]
    try:
        if start is not None:
            script.get_revision(start)
        steps = [_revision(script, s.revision) for s in script.iterate_revisions(target, start or "base")]
    except CommandError as exc:
        raise UsageError(
            f"the store is at migration {start!r}, which this grader does not know: a newer grader upgraded it "
            f"(this one knows up to {head}); {_UPGRADE_GRADER}"
        ) from exc
    return SchemaState(current=current, legacy_version=legacy, head=head, pending=tuple(reversed(steps)))


def upgrade(conn: Connection, *, target: str = "head") -> list[Revision]:
    """Bring the store on ``conn`` to ``target`` (stamping a hand-written store first); return what ran.

    ``conn`` must be in a transaction the caller commits: Alembic then adds none of its own.
    """
    now = state(conn, target=target)
    if now.current is None and now.legacy_version is not None:
        command.stamp(_config(conn), LEGACY_REVISIONS[now.legacy_version])
    if now.pending:
        command.upgrade(_config(conn), target)
    return list(now.pending)

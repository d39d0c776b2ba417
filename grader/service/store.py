"""The service's store: accounts and submissions, in SQLite (embedded default) or PostgreSQL (by URL).

One SQLAlchemy Core schema serves both databases. The embedded default is a SQLite file,
``<service_dir>/grader.db`` (see :attr:`grader.settings.Settings.service_dir`), opened in WAL
mode with ``synchronous=FULL`` (a graded result survives a power cut once it is acknowledged)
and a busy timeout, so several worker processes and the web server can share it. Set
``GRADER_DATABASE_URL=postgresql+psycopg://user@host:5432/db`` to scale out (Celery workers on
other machines need a store they can all reach).

Transactions: :meth:`Store.write` opens ``BEGIN IMMEDIATE`` on SQLite (the write lock is taken
up front, so two writers never deadlock upgrading read locks); :meth:`Store.read` is a plain
snapshot. :meth:`Store.run` retries a transaction when the connection was lost (a restarted
PostgreSQL, a terminated backend) or SQLite stayed locked past the busy timeout.

Schema changes are :data:`MIGRATIONS`, an ordered list of small steps; ``schema_version``
records each one applied, so :func:`migrate` upgrades any older store in place and keeps
its data. Never edit a released step: append a new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from grader.errors import StoreUnavailable, UsageError
from grader.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

#: SQLite waits this long for another writer before giving up (then :meth:`Store.run` retries)
SQLITE_BUSY_TIMEOUT_S = 30.0
#: attempts of one transaction whose connection was lost
RUN_ATTEMPTS = 8


# --- the current schema (what queries use) ------------------------------------------------

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    #: sha256 hex of the token; the token itself is shown once and never stored
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # migration 5
    #: when a job of this learner was last claimed: learners take turns, the one served longest ago first
    sa.Column("last_claimed_at", sa.Float, nullable=True),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("exercise", sa.String(128), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("notebook", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    #: a :class:`~grader.service.statuses.SubmissionStatus` value ("queued", "running", "graded", …)
    sa.Column("status", sa.String(16), nullable=False),
    #: the Result as JSON (``Result.to_dict()``) once final
    sa.Column("result", sa.Text, nullable=True),
    #: what the learner reads while the job is not final ("grading error, we will retry")
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    #: a queued job is not claimed before this time (back-off after an infrastructure failure)
    sa.Column("available_at", sa.Float, nullable=False),
    #: when a Celery task was last sent for it (None: never, or the embedded queue)
    sa.Column("dispatched_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # migration 2
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("max_score", sa.Float, nullable=True),
    # migration 4
    #: the device the exercise asks for, ``cpu`` or ``gpu`` (from its solution, when it was queued)
    sa.Column("device", sa.String(8), nullable=False, server_default="cpu"),
    #: the Celery queue its task was last sent to (None: never sent, or the embedded queue)
    sa.Column("routed_to", sa.String(32), nullable=True),
    # migration 5
    #: when it was last claimed (its latest attempt began)
    sa.Column("claimed_at", sa.Float, nullable=True),
)

#: grading workers that registered themselves (migration 4): who they are, what device they detected
#: on themselves, and when they were last heard from (a worker is live while its heartbeat is fresh)
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    #: ``cpu`` or ``gpu``
    sa.Column("kind", sa.String(8), nullable=False),
    #: the GradingDevice as JSON (name, capability, driver, CUDA, host)
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)


# --- migrations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _m1_tables(conn: Connection) -> None:
    """Accounts and submissions, as first released."""
    v1 = sa.MetaData()
    sa.Table(
        "users",
        v1,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    sa.Table(
        "submissions",
        v1,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("exercise", sa.String(128), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("notebook", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("available_at", sa.Float, nullable=False),
        sa.Column("dispatched_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    v1.create_all(conn)


def _m2_scores(conn: Connection) -> None:
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


def _m3_indexes(conn: Connection) -> None:
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


def _m4_devices(conn: Connection) -> None:
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


def _m5_fairness(conn: Connection) -> None:
    """Fair claims: when each learner was last served, when each job was last claimed, and the running
    jobs of one learner found fast (the per-learner cap)."""
    conn.execute(sa.text("ALTER TABLE users ADD COLUMN last_claimed_at FLOAT"))
    conn.execute(sa.text("ALTER TABLE submissions ADD COLUMN claimed_at FLOAT"))
    conn.execute(sa.text("CREATE INDEX ix_submissions_learner_status ON submissions (user_id, status)"))


#: every schema change, in order; the store's version is the last one applied
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users and submissions", _m1_tables),
    Migration(2, "score columns for the gradebook", _m2_scores),
    Migration(3, "one active job per identical submission; claim and rate-limit indexes", _m3_indexes),
    Migration(4, "GPU routing: submission device, routed queue, worker registry", _m4_devices),
    Migration(5, "fair claims: learners' turns, claim times, running jobs per learner", _m5_fairness),
)
LATEST_VERSION = MIGRATIONS[-1].version


# --- engine and transactions ------------------------------------------------------------------


def database_url(settings: Settings) -> str:
    """``settings.database_url``, else the SQLite file in ``settings.service_dir``."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{settings.service_dir / 'grader.db'}"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("grader_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _transient(exc: DBAPIError, dialect: str) -> bool:
    """A failure worth retrying: the connection died, or SQLite stayed busy past its timeout."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if dialect == "sqlite":  # "no such table" is an OperationalError too: only retry lock contention
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return True  # psycopg's OperationalError: the server went away or is shutting down


class Store:
    """A database with the grader's schema. Create with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite admits one writer at a time; queueing this process's writers on a lock is fairer and
        # much faster than SQLite's busy handler, which sleeps in growing steps (other processes still use it)
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
        with self._write_lock or contextlib.nullcontext(), self.engine.connect() as conn:
            conn = conn.execution_options(grader_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, retrying it when the connection is lost.

        ``work`` must be safe to run again (the store's operations are: conditional updates
        and inserts guarded by unique keys).
        """
        delay = 0.05
        for attempt in range(1, RUN_ATTEMPTS + 1):
            try:
                with self.write() if write else self.read() as conn:
                    return work(conn)
            except DBAPIError as exc:
                transient = _transient(exc, self.dialect)
                if not transient or attempt == RUN_ATTEMPTS:
                    if transient:
                        raise StoreUnavailable(
                            f"the grader's store at {self.engine.url.render_as_string(hide_password=True)} "
                            f"did not answer after {RUN_ATTEMPTS} attempts ({type(exc.orig).__name__}); "
                            "check that the database is running and GRADER_DATABASE_URL is right"
                        ) from exc
                    raise
                log.warning(
                    "the store's connection failed (%s); retrying in %.2f s",
                    str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def version(self) -> int:
        """The last migration applied (0 for an empty database)."""
        with self.read() as conn:
            return _current_version(conn)

    def dispose(self) -> None:
        self.engine.dispose()


def _current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(value or 0)


def migrate(store: Store, *, target: int | None = None) -> list[Migration]:
    """Apply every migration after the store's version (up to ``target``); return those applied.

    Safe when several processes start at once: on PostgreSQL an advisory lock, on SQLite the
    write lock, lets one of them migrate while the others wait and then find nothing to do.
    """
    goal = LATEST_VERSION if target is None else target
    applied: list[Migration] = []
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301155)"))
        if not sa.inspect(conn).has_table("schema_version"):
            schema_version.create(conn)
        current = _current_version(conn)
        if current > LATEST_VERSION:
            raise UsageError(
                f"the store is at schema version {current}, newer than this grader knows ({LATEST_VERSION}); "
                "upgrade the grader package"
            )
        for step in MIGRATIONS:
            if current < step.version <= goal:
                step.apply(conn)
                conn.execute(
                    sa.insert(schema_version).values(version=step.version, name=step.name, applied_at=time.time())
                )
                applied.append(step)
    return applied


def open_store(settings_or_url: Settings | str, *, upgrade: bool = True, pool_size: int = 5) -> Store:
    """Connect to the store (creating the SQLite file's folder) and bring its schema up to date."""
    url = settings_or_url if isinstance(settings_or_url, str) else database_url(settings_or_url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=pool_size,
            max_overflow=20,
        )
        _sqlite_setup(engine)
    elif parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=20)
    else:
        raise UsageError(
            f"GRADER_DATABASE_URL={parsed.render_as_string(hide_password=True)!r}: only sqlite:/// and "
            "postgresql+psycopg:// stores are supported"
        )
    store = Store(engine)
    if upgrade:
        try:
            store.run(lambda _conn: None)
        except StoreUnavailable:
            store.dispose()
            raise
        migrate(store)
    return store

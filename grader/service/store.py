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

Schema changes are Alembic revisions (:mod:`grader.service.migrations`); :func:`migrate` (run by
:func:`open_store`, and by ``grader db upgrade``) brings any older store to the latest in place,
keeping its data, the hand-written migrations' stores (``schema_version`` 1 … 5) included. The
tables below are what queries use; the revisions make them. Never edit a released revision: add one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from grader.errors import StoreUnavailable, UsageError
from grader.service import migrations
from grader.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

#: SQLite waits this long for another writer before giving up (then :meth:`Store.run` retries)
SQLITE_BUSY_TIMEOUT_S = 30.0
#: attempts of one transaction whose connection was lost
RUN_ATTEMPTS = 8


# --- the current schema (what queries use) ------------------------------------------------

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    #: sha256 hex of the token; the token itself is shown once and never stored
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # revision 0005
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
    # revision 0002
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("max_score", sa.Float, nullable=True),
    # revision 0004
    #: the device the exercise asks for, ``cpu`` or ``gpu`` (from its solution, when it was queued)
    sa.Column("device", sa.String(8), nullable=False, server_default="cpu"),
    #: the Celery queue its task was last sent to (None: never sent, or the embedded queue)
    sa.Column("routed_to", sa.String(32), nullable=True),
    # revision 0005
    #: when it was last claimed (its latest attempt began)
    sa.Column("claimed_at", sa.Float, nullable=True),
)

#: grading workers that registered themselves (revision 0004): who they are, what device they detected
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


#: per-exercise due times and late policies (revision 0007; grader/service/deadlines.py)
deadlines = sa.Table(
    "deadlines",
    metadata,
    sa.Column("exercise", sa.String(128), primary_key=True),
    #: epoch seconds (UTC)
    sa.Column("due_at", sa.Float, nullable=False),
    #: ``none``, ``penalty`` or ``refuse`` (:data:`grader.service.deadlines.LATE_POLICIES`)
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("per_day", sa.Float, nullable=False),
    sa.Column("floor", sa.Float, nullable=False),
    sa.Column("set_at", sa.Float, nullable=False),
)

#: one learner's later due time for one exercise (revision 0007)
extensions = sa.Table(
    "extensions",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("exercise", sa.String(128), primary_key=True),
    sa.Column("due_at", sa.Float, nullable=False),
    sa.Column("granted_at", sa.Float, nullable=False),
)


#: an instructor's verdict on one manually graded answer of one submission (revision 0008;
#: grader/service/manual.py): the rubric criteria they ticked, the points those give, their comment
manual_grades = sa.Table(
    "manual_grades",
    metadata,
    sa.Column("submission_id", sa.String(36), sa.ForeignKey("submissions.id"), primary_key=True),
    #: the answer's id, as in its cell's metadata (``"20.7"``)
    sa.Column("item", sa.String(32), primary_key=True),
    #: JSON list of the ticked criteria's positions in the rubric (0-based)
    sa.Column("criteria", sa.Text, nullable=False),
    #: the sum of the ticked criteria's points
    sa.Column("points", sa.Float, nullable=False),
    #: the answer's points when it was graded
    sa.Column("max_points", sa.Float, nullable=False),
    #: the instructor's comment to the learner (plain text or Markdown; rendered sanitised)
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("grader_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("graded_at", sa.Float, nullable=False),
)

#: an exercise's counted submissions graded again with its current bundle (revision 0009;
#: grader/service/regrade.py): ``grading`` → ``ready`` → ``applied`` (or ``cancelled`` by a later regrade)
regrades = sa.Table(
    "regrades",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("exercise", sa.String(128), nullable=False),
    sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    #: when its last job ended (``ready``)
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("applied_at", sa.Float, nullable=True),
)

#: one submission of a regrade: a job with its own lease (``queued`` → ``running`` → ``graded`` | ``failed``),
#: the result it replaces (kept for good) and the new one (revision 0009)
regrade_results = sa.Table(
    "regrade_results",
    metadata,
    sa.Column("regrade_id", sa.String(36), sa.ForeignKey("regrades.id"), primary_key=True),
    sa.Column("submission_id", sa.String(36), sa.ForeignKey("submissions.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    #: not claimed before this time (back-off after a failed attempt)
    sa.Column("available_at", sa.Float, nullable=False),
    sa.Column("old_score", sa.Float, nullable=True),
    sa.Column("old_max_score", sa.Float, nullable=True),
    #: the submission's Result JSON when the regrade began: what apply replaces
    sa.Column("old_result", sa.Text, nullable=True),
    sa.Column("new_score", sa.Float, nullable=True),
    sa.Column("new_max_score", sa.Float, nullable=True),
    sa.Column("new_result", sa.Text, nullable=True),
    #: why it failed (or what the last attempt said)
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.Float, nullable=False),
)


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

    def schema(self) -> migrations.SchemaState:
        """Where the store's schema stands: its revision, and what an upgrade would apply."""
        with self.read() as conn:
            return migrations.state(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        """``with open_store(settings) as store:`` closes its connections at the end of the block."""
        self.dispose()


def migrate(store: Store, *, target: str = "head") -> list[migrations.Revision]:
    """Apply every revision after the store's (up to ``target``), in one transaction; return those applied.

    Safe when several processes start at once: on PostgreSQL an advisory lock, on SQLite the
    write lock, lets one of them migrate while the others wait and then find nothing to do. A
    revision that fails rolls the whole upgrade back, on both databases: the store stays as it was.
    A connection lost mid-upgrade rolls it back too, and the upgrade is tried again (:meth:`Store.run`):
    a worker started while the database flaps waits for it rather than dying.
    """

    def work(conn: Connection) -> list[migrations.Revision]:
        if store.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7301155)"))
        return migrations.upgrade(conn, target=target)

    return store.run(work)


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

"""Fixtures for the grader service's tests: real SQLite and PostgreSQL stores, settings, worker processes.

Real components only: PostgreSQL, Redis and RabbitMQ are reached at the loopback defaults
below, or at the URLs in ``GRADER_TEST_POSTGRES_URL``, ``GRADER_TEST_REDIS_URL`` and
``GRADER_TEST_AMQP_URL``. Each test gets its own PostgreSQL schema (dropped afterwards) or
its own SQLite file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
import sqlalchemy as sa

from grader.service import accounts
from grader.service.server import settings_env
from grader.service.store import Store, open_store
from grader.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
POSTGRES_URL = os.environ.get("GRADER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GRADER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
AMQP_URL = os.environ.get("GRADER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
FAKE_GRADE = "service_fakes:grade"
EXERCISE = "00-learning-ml-engineering"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: a private data dir, the fake grade function, short leases, fast polling.

    The fake grade function runs no learner code, so these settings turn the sandbox off; tests of
    real grading turn it back on (``sandbox=True``).
    """
    values: dict[str, Any] = {
        "data_dir": tmp_path / "service",
        "grade_function": FAKE_GRADE,
        "lease_s": 2.0,
        "worker_poll_s": 0.05,
        "max_attempts": 3,
        "submissions_per_minute": 1000,
        "sandbox": False,
    }
    values.update(overrides)
    return load_settings(REPO, **values)


@contextlib.contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped on leaving."""
    schema = f"grader_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc.orig}); start it, or point "
            "GRADER_TEST_POSTGRES_URL at one"
        )
    url = sa.make_url(POSTGRES_URL).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            terminate_backends(conn, schema)
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped after the test)."""
    with pg_schema_url() as url:
        yield url


def terminate_backends(conn: sa.Connection, application_name: str) -> int:
    """End every PostgreSQL connection a test's store opened (they carry its schema as application_name)."""
    return len(
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name "
                "AND pid <> pg_backend_pid()"
            ),
            {"name": application_name},
        ).all()
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on the embedded SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'grader.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def people(store: Store) -> dict[str, tuple[accounts.User, str]]:
    """Two learners and an instructor, with their tokens."""
    return {name: accounts.add_user(store, name, instructor=name == "ines") for name in ("alice", "bob", "ines")}


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float = 30.0, every_s: float = 0.05, what: str = "the condition"
) -> Any:
    """Poll ``condition`` until it is truthy; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


class Processes:
    """Child processes a test starts (``grader worker`` …), killed at teardown."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self, settings: Settings, **extra: str) -> dict[str, str]:
        paths = [str(service_fakes.HERE), str(REPO), os.environ.get("PYTHONPATH", "")]
        return {
            **os.environ,
            **settings_env(settings),
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            service_fakes.ENV_LOG: str(self.log),
            **extra,
        }

    def grader(self, settings: Settings, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        output = self.log.with_name(f"process-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "grader", *args],
            env=self.env(settings, **extra),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
        for process in self.started:
            process.wait(10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    found = Processes(tmp_path / "fakegrade.log")
    yield found
    found.stop_all()


class LiveServer:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout_s=15, what="uvicorn to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._socket.close()

"""``grader service``: the whole grader on one machine — web server, store and grading workers.

:func:`run_service` brings the store's schema up to date, makes an instructor account on the
first start (its token is announced once), starts ``settings.service_workers`` grading worker
processes (``grader worker``, each restarted if it dies; the jobs it held are given back at
once and graded again, :func:`grader.service.workers.release_dead_worker`) and serves
:func:`grader.service.app.create_app` with uvicorn until interrupted.

With ``GRADER_BROKER_URL`` set, grading is Celery's (``grader worker --celery`` on any
machine that reaches the broker and the PostgreSQL store) and no embedded workers start
unless asked for (:func:`grader.service.dispatch.engine_for` decides).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from grader.format import markers
from grader.service import accounts
from grader.service.dispatch import engine_for
from grader.service.store import database_url, open_store
from grader.service.workers import release_dead_worker
from grader.settings import Settings

log = logging.getLogger(__name__)

#: seconds a worker process gets to stop after SIGTERM before it is killed
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class ServiceStarted:
    """What ``grader service`` announces when it listens."""

    url: str
    store: str
    workers: int
    #: learner code runs in the sandbox (False only with --unsafe-no-sandbox)
    sandboxed: bool
    #: the first instructor's token, on the first start only (it is not stored: copy it now)
    instructor_token: str | None
    instructor_name: str | None


def settings_env(settings: Settings) -> dict[str, str]:
    """``GRADER_*`` variables that make a child process load these same settings.

    The inverse of :func:`grader.settings.load_settings`; ``data_dir`` is passed resolved (``service_dir``).
    """
    paths = {"root": settings.root, "build_dir": settings.build_dir, "data_dir": settings.service_dir}
    values = {field.name: getattr(settings, field.name) for field in fields(Settings)} | paths
    return {markers.ENV_PREFIX + name.upper(): str(value) for name, value in values.items() if value is not None}


class WorkerProcesses:
    """``count`` ``grader worker`` child processes, each restarted when it exits unexpectedly (the jobs it
    held are given back first, to be graded again at once)."""

    def __init__(self, settings: Settings, count: int, *, restart_delay_s: float = 1.0) -> None:
        self._settings = settings
        self._env = {**os.environ, **settings_env(settings)}
        self._count, self._restart_delay_s = count, restart_delay_s
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="grader-worker-supervisor", daemon=True)
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "grader", "worker", "--concurrency", "1"], env=self._env, stdin=subprocess.DEVNULL
        )

    def _supervise(self) -> None:
        while not self._stop.wait(self._restart_delay_s):
            for index, process in enumerate(self._processes):
                if process.poll() is not None and not self._stop.is_set():
                    log.warning(
                        "grading worker %d (pid %d) exited with %s; starting another",
                        index,
                        process.pid,
                        process.returncode,
                    )
                    try:
                        release_dead_worker(self._settings, process.pid)
                    except Exception:  # the store is down: its leases expire instead
                        log.exception("could not give back the jobs of worker %d (pid %d)", index, process.pid)
                    self._processes[index] = self._spawn()
                    self.restarts += 1

    def start(self) -> WorkerProcesses:
        self._processes = [self._spawn() for _ in range(self._count)]
        self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def prepare(settings: Settings) -> tuple[str, str] | None:
    """Migrate the store; on a store without instructors, make one. Returns (name, token) when made."""
    store = open_store(settings)
    try:
        made = accounts.ensure_instructor(store)
    finally:
        store.dispose()
    return (made[0].name, made[1]) if made is not None else None


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_service(
    settings: Settings, *, workers: int | None = None, announce: Callable[[ServiceStarted], None] | None = None
) -> None:
    """Serve the grader (API, pages, the built site) and grade, until interrupted.

    ``workers`` defaults to ``settings.service_workers`` (0 when a Celery broker is configured).
    ``announce`` is called once the port is bound (``settings.port`` 0 picks a free one).

    Raises:
        SandboxUnavailable: grading would run here, ``settings.sandbox`` is on, and no sandbox can be built.
    """
    import uvicorn

    from grader.service.app import create_app

    count = workers if workers is not None else engine_for(settings).service_workers(settings)
    if settings.sandbox and count > 0:
        from grader.sandbox.doctor import require_sandbox

        require_sandbox()  # refuse to start rather than fail every job
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal that stopped it; make SIGTERM unwind (stopping the workers), not kill
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    first = prepare(settings)
    sock = _listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    pool = WorkerProcesses(settings, count).start() if count > 0 else None
    try:
        app = create_app(settings)
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        if announce is not None:
            announce(
                ServiceStarted(
                    url=f"http://{shown_host}:{port}/",
                    store=sa_url(settings),
                    workers=count,
                    sandboxed=settings.sandbox,
                    instructor_token=first[1] if first else None,
                    instructor_name=first[0] if first else None,
                )
            )
        server.run(sockets=[sock])
    finally:
        if pool is not None:
            pool.stop()
        sock.close()


def sa_url(settings: Settings) -> str:
    """The store's URL with any password hidden (for messages)."""
    import sqlalchemy as sa

    return sa.make_url(database_url(settings)).render_as_string(hide_password=True)

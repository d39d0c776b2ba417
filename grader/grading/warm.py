"""A warm pool of grading runners started ahead of time, each used once: a light exercise in about a second.

A cold grading run starts pytest + nbval (~0.5 s of imports) and then a sandboxed kernel
(~0.6 s) before the first cell runs. A :class:`WarmRunner` is that same subprocess
(:mod:`grader.grading.runner`) started before the submission exists: its sandbox job (a uid slot and
a job directory) is allocated, its kernel is started and answers, and it blocks reading stdin
(``--grader-wait``, see :mod:`grader.grading.nbval_plugin`). Using it writes the assembled notebook to
the path the runner was given and sends ``go``; the verdicts are read as soon as the runner says
``done``, while the kernel's shutdown and the job's cleanup go on in the background.

**One use each.** A runner grades exactly one submission and is then discarded with its
kernel, uid slot and job directory; the next submission gets a fresh runner (a fresh kernel,
a fresh private ``/tmp`` and work directory, and the next free uid, whose leftover processes
:func:`grader.sandbox.job_slot` kills). Nothing a submission does can reach the next one.

API (all a grading worker needs)::

    pool = WarmPool(settings, size=1)          # one per worker process; starts filling at once
    result = grade_notebook(settings, data, exercise=..., name=..., pool=pool)
    pool.close()                               # or ``with WarmPool(...) as pool:``

- ``WarmPool(settings, size, limits)`` keeps ``size`` runners ready for exercises whose sandbox
  limits equal ``limits`` (default: :class:`~grader.sandbox.limits.ResourceLimits` ()), under ``settings``'
  kernel, cell timeout and sandbox flag. A submission that needs anything else, or arrives
  when no runner can be had, is graded cold, exactly as without a pool.
- :meth:`WarmPool.acquire` hands out a ready runner (after a round trip to its kernel) and
  starts its replacement in the background; it waits for a runner being started, and returns
  ``None`` (grade cold) when the pool is closed or its last start failed.
- :meth:`WarmRunner.run` grades one assembled notebook and returns the same
  :class:`~grader.grading.runner.RunOutcome` as :func:`grader.grading.runner.run_notebook`.
- A runner idle longer than ``max_idle_s`` (its kernel's wall-clock limit runs from its start;
  at most a tenth of that limit) or whose process or kernel died is discarded and replaced.
- :meth:`WarmPool.close` stops every runner it started; no process of their uids and no job
  directory is left behind.

Wiring into a worker (:mod:`grader.service.workers`): create the pool once per worker process, pass
``functools.partial(grade_notebook, pool=pool)`` as the grade function, close it on shutdown.
Size it to the number of grading threads of that process: each runner holds a uid slot and an
idle kernel (~60 MB).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import nbformat
from nbformat import NotebookNode

from grader.errors import UsageError
from grader.grading.comparison import DEFAULT_TOLERANCE, Tolerance
from grader.grading.runner import RunOutcome, start_runner
from grader.processes import kill_group
from grader.sandbox.doctor import require_sandbox
from grader.sandbox.jobs import SandboxJob, sandbox_job
from grader.sandbox.limits import ResourceLimits
from grader.settings import Settings

__all__ = ["WarmPool", "WarmRunner"]

log = logging.getLogger(__name__)

#: how long a runner may take to start its kernel before the start counts as failed, seconds
START_TIMEOUT_S = 60.0
#: how long a ready runner may wait for a submission before it is replaced, seconds
MAX_IDLE_S = 60.0
#: how long :meth:`WarmPool.acquire` waits for a runner that is being started, seconds
ACQUIRE_TIMEOUT_S = 30.0
#: how long a ``ping`` may take (the runner's own round trip to its kernel is bounded at 5 s)
_PING_TIMEOUT_S = 10.0
#: how long a finished or unneeded runner may take to stop its kernel before it is killed, seconds
_STOP_GRACE_S = 15.0
#: longest wait between two checks of the ready runners (process alive, not too old), seconds
_CHECK_EVERY_S = 1.0


class _StartFailed(Exception):
    """A runner did not get its kernel ready."""


class WarmRunner:
    """One pytest + nbval process whose kernel is started and waiting for its notebook; used once.

    Built (blocking, ~1 s) by :class:`WarmPool`'s background thread; raises ``_StartFailed``
    when the kernel does not start.
    """

    def __init__(
        self,
        *,
        kernel_name: str,
        cell_timeout_s: float,
        limits: ResourceLimits | None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._state = "starting"  # → ready → running → used; ready → closing; all end in closed
        self._closer: threading.Thread | None = None
        self._closed = threading.Event()
        self._pending = bytearray()
        self._ran = False
        self.kernel_pid: int | None = None
        try:
            self.job: SandboxJob | None = self._stack.enter_context(sandbox_job(limits)) if limits is not None else None
            status_read, status_write = os.pipe()
            self._status = status_read
            self._stack.callback(os.close, status_read)
            try:
                self.runner = start_runner(
                    self._stack,
                    kernel_name=kernel_name,
                    cell_timeout_s=cell_timeout_s,
                    mode="compare",
                    tolerance=DEFAULT_TOLERANCE,
                    workdir=None,
                    job=self.job,
                    wait_fd=status_write,
                )
            finally:
                os.close(status_write)
            self.process = self.runner.process
            self._stack.callback(self._stop_process)  # runs first: before the job and the folders go
            try:
                line = self._status_line(time.monotonic() + start_timeout_s)
            except TimeoutError:
                raise _StartFailed(f"the kernel was not ready after {start_timeout_s:g} s") from None
            if line is None or not line.startswith("ready"):
                detail = line[len("failed ") :] if line and line.startswith("failed ") else self._log_tail()
                raise _StartFailed(detail or f"the runner exited (code {self.process.poll()})")
            with contextlib.suppress(ValueError, IndexError):
                self.kernel_pid = int(line.split()[1])
        except BaseException:
            self._stack.close()
            raise
        self._state = "ready"
        #: when the kernel became ready (``time.monotonic()``)
        self.started_at = time.monotonic()

    # ------------------------------------------------------------------ facts
    @property
    def uid(self) -> int | None:
        """The uid the kernel runs as (``None`` unsandboxed)."""
        return self.job.uid if self.job is not None else None

    @property
    def directory(self) -> Path | None:
        """The sandbox job directory (``None`` unsandboxed)."""
        return self.job.directory if self.job is not None else None

    @property
    def closed(self) -> bool:
        """Has the runner been stopped and its sandbox job removed?"""
        return self._closed.is_set()

    @property
    def used(self) -> bool:
        """Has :meth:`run` been called (the runner is running, or finished)?"""
        return self._state in ("running", "used") or (self._state == "closed" and self._ran)

    def alive(self) -> bool:
        """Is the runner's process still waiting (it exits when its kernel dies)?"""
        return self._state == "ready" and self.process.poll() is None

    # ------------------------------------------------------------------ status pipe
    def _status_line(self, deadline: float) -> str | None:
        """The runner's next status line; ``None`` when it closed the pipe (it exited).

        Raises:
            TimeoutError: no complete line before ``deadline``.
        """
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self._status], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._status, 4096)
            if not chunk:
                return None
            self._pending.extend(chunk)
        line, _, rest = bytes(self._pending).partition(b"\n")
        self._pending[:] = rest
        return line.decode("utf-8", errors="replace")

    def _send(self, command: dict[str, object]) -> bool:
        stdin: IO[bytes] | None = self.process.stdin
        if stdin is None:
            return False
        try:
            stdin.write((json.dumps(command) + "\n").encode())
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):  # the runner exited, or stdin is closed
            return False
        return True

    def _log_tail(self) -> str:
        try:
            return self.runner.log.read_bytes()[-2000:].decode("utf-8", errors="replace").strip()
        except OSError:
            return ""

    # ------------------------------------------------------------------ use
    def ping(self, timeout_s: float = _PING_TIMEOUT_S) -> bool:
        """Does the kernel answer (a round trip through the runner to the kernel and back)?"""
        with self._lock:
            if self._state != "ready" or self.process.poll() is not None:
                return False
            if not self._send({"command": "ping"}):
                return False
            try:
                return self._status_line(time.monotonic() + timeout_s) == "alive"
            except TimeoutError:
                return False

    def run(
        self,
        nb: NotebookNode,
        *,
        wall_timeout_s: float,
        mode: str = "compare",
        tolerance: Tolerance = DEFAULT_TOLERANCE,
    ) -> RunOutcome:
        """Execute ``nb`` in this runner's kernel and return its verdicts; the runner is then discarded.

        ``mode`` and ``tolerance`` as in :func:`grader.grading.runner.run_notebook`; ``wall_timeout_s``
        counts from now. Raises ``RuntimeError`` when the runner was already used or closed.
        """
        with self._lock:
            if self._state != "ready":
                raise RuntimeError(f"this warm runner cannot run a notebook (it is {self._state}); each runs one")
            self._state = "running"
            self._ran = True
        try:
            nbformat.write(nb, str(self.runner.notebook))
            killed = False
            line: str | None = None
            deadline = time.monotonic() + wall_timeout_s
            if self._send({"command": "go", "mode": mode, "rtol": tolerance.rtol, "atol": tolerance.atol}):
                with contextlib.suppress(OSError):
                    self.process.stdin.close()  # type: ignore[union-attr]
                try:
                    while (line := self._status_line(deadline)) not in (None, "done"):
                        pass
                except TimeoutError:
                    killed = True
                    kill_group(self.process.pid)
            returncode = self.process.poll()
            if line is None or killed:  # no "done": the process has exited or is being killed
                try:
                    returncode = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    killed = True
                    kill_group(self.process.pid)
                    returncode = self.process.wait()
            if killed:
                kill_group(self.kernel_pid)  # the kernel's launcher runs in its own session
            return self.runner.outcome(killed=killed, returncode=returncode)
        finally:
            with self._lock:
                self._state = "used"
            self.close(wait=False)

    # ------------------------------------------------------------------ discard
    def close(self, *, wait: bool = True) -> None:
        """Stop the runner and its kernel, free its uid slot, remove its folders.

        Idempotent. ``wait=False`` does it in a background thread. A runner in the middle of
        :meth:`run` is left to finish first (it closes itself when done).
        """
        with self._lock:
            if self._state == "running":
                closer = None
            elif self._closer is None:
                if self._state == "ready":
                    self._state = "closing"
                closer = self._closer = threading.Thread(target=self._close_now, name="warm-runner-close", daemon=True)
                closer.start()
            else:
                closer = self._closer
        if wait:
            self._closed.wait() if closer is None else closer.join()

    def _close_now(self) -> None:
        try:
            self._stack.close()
        finally:
            self._state = "closed"
            self._closed.set()

    def _stop_process(self) -> None:
        """End the runner: a waiting one stops its kernel at end of input; a stuck one is killed."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            kill_group(self.process.pid)
            self.process.wait()
            kill_group(self.kernel_pid)  # the kernel's launcher runs in its own session


class WarmPool:
    """``size`` warm runners kept ready for one kind of submission (see the module docs).

    Raises:
        UsageError: ``size`` is below 1.
        SandboxUnavailable: ``settings.sandbox`` is on and no sandbox can be built here.
    """

    def __init__(
        self,
        settings: Settings,
        size: int = 1,
        limits: ResourceLimits | None = None,
        *,
        max_idle_s: float = MAX_IDLE_S,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise UsageError(f"a warm pool needs at least one runner (size={size})")
        if settings.sandbox:
            require_sandbox()
        self.settings = settings
        self.size = size
        #: the sandbox limits the pool's kernels run under (``None`` unsandboxed)
        self.limits: ResourceLimits | None = (limits or ResourceLimits()) if settings.sandbox else None
        self.max_idle_s = min(max_idle_s, self.limits.wall_s / 10) if self.limits is not None else max_idle_s
        self._start_timeout_s = start_timeout_s
        self._cond = threading.Condition()
        self._ready: collections.deque[WarmRunner] = collections.deque()
        self._all: list[WarmRunner] = []
        self._closed = False
        self._failed = False
        #: why the most recent start failed (``None`` once a start succeeds)
        self.last_error: str | None = None
        #: runners started so far (for monitoring and tests)
        self.started = 0
        self._thread = threading.Thread(target=self._maintain, name="warm-pool", daemon=True)
        self._thread.start()

    def serves(self, settings: Settings, limits: ResourceLimits | None) -> bool:
        """Can this pool's runners grade a submission needing ``settings`` and sandbox ``limits``?"""
        mine = self.settings
        return (
            settings.sandbox == mine.sandbox
            and settings.kernel_name == mine.kernel_name
            and settings.cell_timeout_s == mine.cell_timeout_s
            and (limits if settings.sandbox else None) == self.limits
        )

    def ready(self) -> tuple[WarmRunner, ...]:
        """The runners ready now, oldest first (for monitoring; use :meth:`acquire` to take one)."""
        with self._cond:
            return tuple(self._ready)

    def wait_ready(self, timeout_s: float = ACQUIRE_TIMEOUT_S) -> bool:
        """Block until the pool is full (``size`` runners ready); ``False`` on timeout, failure or close."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._ready) < self.size:
                remaining = deadline - time.monotonic()
                if self._closed or self._failed or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_settled(self, timeout_s: float = ACQUIRE_TIMEOUT_S) -> bool:
        """Block until the pool is full and every runner handed out has finished and been cleaned up.

        For measurements: nothing of the pool is then running in the background. ``False`` as
        :meth:`wait_ready`.
        """
        if not self.wait_ready(timeout_s):
            return False
        with self._cond:
            ready = set(self._ready)
            others = [r for r in self._all if r not in ready]
        for runner in others:
            if runner.used:  # a runner handed out and not yet run is its holder's business
                runner.close()
        return True

    def acquire(self, timeout_s: float = ACQUIRE_TIMEOUT_S) -> WarmRunner | None:
        """A ready runner whose kernel answers, for one submission; its replacement starts at once.

        Waits up to ``timeout_s`` for a runner being started. ``None``: the pool is closed, its
        last start failed (see :attr:`last_error`), or none became ready in time — grade cold.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                while not self._ready:
                    remaining = deadline - time.monotonic()
                    if self._closed or self._failed or remaining <= 0:
                        return None
                    self._cond.wait(remaining)
                runner = self._ready.popleft()
                self._cond.notify_all()  # the maintainer starts the replacement
            if runner.ping():
                return runner
            log.warning("a warm grading kernel (uid %s) stopped answering while it waited; replacing it", runner.uid)
            runner.close(wait=False)  # never handed out

    def close(self) -> None:
        """Stop every runner this pool started (waiting for runs in progress) and the background thread."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        self._thread.join()
        runners = list(self._all)
        for runner in runners:
            runner.close(wait=False)
        for runner in runners:
            runner.close()

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ background
    def _maintain(self) -> None:
        """Keep ``size`` runners ready (see :meth:`_keep_filled`); if that ever fails, the pool grades cold."""
        try:
            self._keep_filled()
        except Exception as exc:  # a bug here must not leave acquire() waiting on a pool nobody fills
            log.exception("the warm pool stopped filling; submissions are graded on cold kernels")
            with self._cond:
                self._failed, self.last_error = True, f"{type(exc).__name__}: {exc}"
                self._cond.notify_all()

    def _keep_filled(self) -> None:
        """Replace used, stale and dead runners; back off after failed starts."""
        failures = 0
        retry_at = 0.0
        while True:
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                stale = [r for r in self._ready if now - r.started_at > self.max_idle_s or not r.alive()]
                for runner in stale:
                    self._ready.remove(runner)
                self._all = [r for r in self._all if not r.closed]
                start = len(self._ready) < self.size and now >= retry_at
                if not stale and not start:
                    expiries = [r.started_at + self.max_idle_s for r in self._ready]
                    wake = min([*expiries, now + _CHECK_EVERY_S] + ([retry_at] if retry_at > now else []))
                    self._cond.wait(max(0.01, wake - now))
                    continue
            for runner in stale:
                runner.close(wait=False)
            if not start:
                continue
            try:
                runner = WarmRunner(
                    kernel_name=self.settings.kernel_name,
                    cell_timeout_s=self.settings.cell_timeout_s,
                    limits=self.limits,
                    start_timeout_s=self._start_timeout_s,
                )
            except Exception as exc:  # _StartFailed, or no free uid slot, or the system refusing a process
                failures += 1
                retry_at = time.monotonic() + min(30.0, 0.5 * 2**failures)
                log.warning(
                    "a warm grading kernel did not start (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    retry_at - time.monotonic(),
                )
                with self._cond:
                    self._failed = True
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._cond.notify_all()
                continue
            failures = 0
            with self._cond:
                self._failed, self.last_error = False, None
                self.started += 1
                self._all.append(runner)
                if not self._closed:
                    self._ready.append(runner)
                self._cond.notify_all()

"""One typed, frozen settings object; environment overrides use the ``GRADER_`` prefix.

Nothing is read at import time: call :func:`load_settings` where settings are needed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from grader.errors import UsageError
from grader.format import markers


def find_root(start: Path | None = None) -> Path:
    """The course repository root: the nearest directory holding ``_toc.yml``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").is_file() and (candidate / "_config.yml").is_file():
            return candidate
    raise UsageError(
        f"{here} is not inside the course repository (no _toc.yml/_config.yml found above it); "
        "run the command from the repository, or set GRADER_ROOT"
    )


#: the choices of :attr:`Settings.counted_submission`
COUNTED_SUBMISSIONS = ("best", "latest-on-time")


@dataclass(frozen=True)
class Settings:
    """Where things are and how long they may take."""

    root: Path
    #: everything generated (executed lessons, site, grading bundles, cache); never committed
    build_dir: Path
    #: wall-clock limit for one lesson notebook under papermill, seconds
    lesson_timeout_s: float = 900.0
    #: wall-clock limit for one cell (lesson or grading), seconds
    cell_timeout_s: float = 300.0
    #: parallel lesson executions
    lesson_jobs: int = 1
    #: wall-clock limit for grading one submission (all cells, kernel start included), seconds
    grading_timeout_s: float = 900.0
    #: the kernelspec grading kernels start from (a submission's own kernelspec is ignored)
    kernel_name: str = "python3"
    #: grade in the bubblewrap sandbox (``grader/sandbox.py``); False only by the explicit
    #: ``--unsafe-no-sandbox`` flag or GRADER_SANDBOX=0, and every report then says so
    sandbox: bool = True
    #: port of ``grader serve`` / ``make serve``
    port: int = 8000
    host: str = "127.0.0.1"

    # --- grader service: store, queue, API (see grader/service.py) -------------------------
    #: the service's own files (the SQLite store); None: ``$XDG_DATA_HOME/mlcourse-grader``
    #: (``~/.local/share/mlcourse-grader``), outside ``_build`` so ``make clean`` keeps the grades
    data_dir: Path | None = None
    #: SQLAlchemy URL of the store; None: SQLite in ``service_dir``. Scale-out:
    #: ``postgresql+psycopg://user@host:5432/db``
    database_url: str | None = None
    #: Celery broker (``amqp://…`` or ``redis://…``); None: the embedded queue only
    broker_url: str | None = None
    #: largest notebook upload accepted, MB
    max_upload_mb: float = 5.0
    #: submissions one learner may make per minute (stops guessing hidden answers by brute force); every
    #: upload attempt counts, refused ones included, before anything is parsed
    submissions_per_minute: int = 10
    #: an upload's notebook may hold at most this many cells …
    upload_max_cells: int = 1000
    #: … this many outputs, all cells together …
    upload_max_outputs: int = 2000
    #: … and this much in one cell (its code and outputs), MB; JSON nested deeper than 64 levels is refused too
    upload_max_cell_mb: float = 1.0
    #: processes that check uploaded notebooks (parsing never runs on the threads that answer requests)
    upload_check_workers: int = 1
    #: how long one upload's check may take before it is refused, seconds
    upload_check_timeout_s: float = 10.0
    #: failed sign-ins and wrong tokens one client address may send per minute before it is answered 429
    #: (0: no throttle); counted per address, never per account, so nobody can lock a learner out
    auth_failures_per_minute: int = 20
    #: jobs waiting in the queue beyond which new submissions are refused (503, Retry-After)
    max_queued: int = 1000
    #: how long a worker's claim on a job lasts, seconds; renewed every third of it while grading
    lease_s: float = 60.0
    #: grading attempts before a job that keeps failing for infrastructure reasons is dead-lettered
    max_attempts: int = 3
    #: how often an idle embedded worker looks for a job, seconds
    worker_poll_s: float = 0.5
    #: a registered worker not heard from for this long is gone (its heartbeat comes every third of
    #: it): GPU jobs wait for a live GPU worker, and fall back to CPU workers this long after the last one died
    worker_ttl_s: float = 30.0
    #: jobs of one learner graded at the same time; their other jobs wait, even for an idle worker, so that
    #: others are served (learners take turns: grader/service/fairness.py); 0: no cap
    max_running_per_learner: int = 1
    #: embedded grading workers started by ``grader service``
    service_workers: int = 2
    #: pre-started sandboxed kernels per grading worker process (each used once); 0: cold starts only
    warm_pool_size: int = 1
    #: the grade function, ``module:function`` with the signature of ``grader.grading.engine.grade_notebook``
    grade_function: str = "grader.grading.engine:grade_notebook"
    #: which of a learner's graded submissions of an exercise counts in the gradebook and its exports
    #: (:data:`COUNTED_SUBMISSIONS`): ``best``, the highest counted score (late penalties applied; the
    #: latest among equals), or ``latest-on-time``, the latest received by the learner's deadline (the
    #: latest of all when none was on time, or the exercise has no deadline)
    counted_submission: str = "best"

    def __post_init__(self) -> None:
        if self.counted_submission not in COUNTED_SUBMISSIONS:
            raise UsageError(
                f"counted_submission (GRADER_COUNTED_SUBMISSION) {self.counted_submission!r} is not one of: "
                + ", ".join(COUNTED_SUBMISSIONS)
            )

    # --- derived locations -----------------------------------------------------------
    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def solutions_dir(self) -> Path:
        return self.root / "solutions"

    @property
    def exercises_dir(self) -> Path:
        return self.root / "exercises"

    @property
    def executed_dir(self) -> Path:
        """Executed lesson notebooks, one folder per profile."""
        return self.build_dir / "executed"

    @property
    def site_dir(self) -> Path:
        """The built static site (``index.html`` at its top)."""
        return self.build_dir / "html"

    @property
    def service_dir(self) -> Path:
        """The grader service's files: ``data_dir``, else ``$XDG_DATA_HOME/mlcourse-grader``."""
        if self.data_dir is not None:
            return self.data_dir
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(xdg) / "mlcourse-grader"

    @property
    def bundle_dir(self) -> Path:
        """Grading bundles (hidden checks, reference outputs): never shipped to learners."""
        return self.build_dir / "grading"


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_ENV_FIELDS: dict[str, object] = {
    "sandbox": _flag,
    "lesson_timeout_s": float,
    "cell_timeout_s": float,
    "lesson_jobs": int,
    "grading_timeout_s": float,
    "kernel_name": str,
    "port": int,
    "host": str,
    "data_dir": Path,
    "database_url": str,
    "broker_url": str,
    "max_upload_mb": float,
    "submissions_per_minute": int,
    "upload_max_cells": int,
    "upload_max_outputs": int,
    "upload_max_cell_mb": float,
    "upload_check_workers": int,
    "upload_check_timeout_s": float,
    "auth_failures_per_minute": int,
    "max_queued": int,
    "lease_s": float,
    "max_attempts": int,
    "worker_poll_s": float,
    "worker_ttl_s": float,
    "max_running_per_learner": int,
    "service_workers": int,
    "grade_function": str,
    "warm_pool_size": int,
    "counted_submission": str,
}


def load_settings(root: Path | None = None, **overrides: object) -> Settings:
    """Settings from defaults, then ``GRADER_*`` environment variables, then ``overrides``."""
    env = os.environ
    base = Path(env[markers.ENV_PREFIX + "ROOT"]) if markers.ENV_PREFIX + "ROOT" in env else None
    resolved_root = find_root(root or base)
    build = env.get(markers.ENV_PREFIX + "BUILD_DIR")
    values: dict[str, object] = {
        "root": resolved_root,
        "build_dir": Path(build).resolve() if build else resolved_root / "_build",
    }
    for name, kind in _ENV_FIELDS.items():
        key = markers.ENV_PREFIX + name.upper()
        if key in env:
            try:
                values[name] = kind(env[key])  # type: ignore[operator]
            except ValueError as exc:
                what = "flag (0/1)" if kind is _flag else getattr(kind, "__name__", "value")
                raise UsageError(f"{key}={env[key]!r} is not a valid {what}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise UsageError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)  # type: ignore[arg-type]

"""Running one notebook through pytest + nbval in a subprocess, and reading back its verdicts.

The one execution path for grading, for building reference outputs and for the learner's
self-check (only the ``mode`` differs). Files are laid out so that the kernel never sees the
notebook (which holds hidden checks and reference outputs) nor the result file::

    <private>/notebook.ipynb   the assembled notebook      (trusted side only)
    <private>/result.jsonl     one JSON line per cell       (written by grader.grading.nbval_plugin)
    <private>/pytest.log       the runner's own output      (never shown to learners)
    <workdir>/                 the kernel's working directory

The subprocess gets a wall-clock limit; past it, pytest and the kernel's process group are
killed and whatever verdicts were written count.

:mod:`grader.grading.warm` starts the same subprocess ahead of time (``--grader-wait``) and reads its
verdicts with :func:`read_outcome`, so a warm and a cold run give the same :class:`RunOutcome`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.grading.comparison import DEFAULT_TOLERANCE, Tolerance
from grader.sandbox import Limits as SandboxLimits
from grader.sandbox import SandboxJob, sandbox_job

#: pytest plugins loaded explicitly (autoloading every installed plugin costs time)
_PLUGINS = ("nbval", "grader.grading.nbval_plugin")
#: built-in plugins a grading run does not need; each costs time per cell or at exit
_NO_PLUGINS = tuple(
    argument
    for plugin in ("cacheprovider", "warnings", "logging", "unraisableexception", "threadexception", "faulthandler",
                   "doctest", "junitxml", "pastebin")
    for argument in ("-p", f"no:{plugin}")
)


@dataclass(frozen=True)
class RunOutcome:
    """What the runner learnt about one run: per-cell records keyed by notebook cell index."""

    cells: dict[int, dict[str, Any]]
    device: str
    #: the run reached its end (pytest finished its session)
    finished: bool
    #: the run was killed at the wall-clock limit
    killed: bool
    returncode: int | None
    #: where a failure of the runner itself can be investigated (an instructor's concern)
    log_tail: str = ""
    #: why the sandboxed kernel ended, when a limit ended it ("CPU time limit exceeded (300 s)")
    kernel_exit: str | None = None
    #: how the kernel was isolated: "bubblewrap sandbox" or "none"
    isolation: str = "none"

    @property
    def kernel_start_error(self) -> str | None:
        """Why the grading kernel did not start, if it did not."""
        for record in self.cells.values():
            if record.get("reason") == "kernel-start":
                return str(record.get("detail", "unknown error"))
        return None

    def runner_failure(self) -> str:
        """A one-line account of a run that produced no usable verdicts (no learner data in it)."""
        if self.kernel_start_error is not None:
            return f"the grading kernel did not start ({self.kernel_start_error})"
        return f"the test runner stopped unexpectedly (exit code {self.returncode})"


def _command(notebook: Path, result: Path, workdir: Path, *, kernel_name: str, cell_timeout_s: float,
             mode: str, tolerance: Tolerance, sandbox_spec: str | None = None,
             wait_fd: int | None = None) -> list[str]:
    """The pytest command line; ``wait_fd``: start the kernel first and wait for ``go`` (a warm runner)."""
    plugins = [argument for plugin in _PLUGINS for argument in ("-p", plugin)]
    return [
        sys.executable, "-m", "pytest", "-q", "-s", "--assert=plain", *_NO_PLUGINS, *plugins,
        "-c", str(notebook.parent / "pytest.ini"),
        "--rootdir", str(notebook.parent),
        "--nbval", str(notebook),
        "--nbval-kernel-name", kernel_name,
        "--nbval-cell-timeout", str(cell_timeout_s),
        "--grader-result", str(result),
        "--grader-workdir", str(workdir),
        "--grader-mode", mode,
        "--grader-rtol", repr(tolerance.rtol),
        "--grader-atol", repr(tolerance.atol),
        *(["--grader-sandbox", sandbox_spec] if sandbox_spec else []),
        *(["--grader-wait", str(wait_fd)] if wait_fd is not None else []),
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def run_notebook(
    nb: NotebookNode,
    *,
    kernel_name: str,
    cell_timeout_s: float,
    wall_timeout_s: float,
    mode: str = "compare",
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    workdir: Path | None = None,
    sandbox: SandboxLimits | None = None,
) -> RunOutcome:
    """Execute ``nb`` in a fresh kernel under pytest + nbval and collect one record per cell.

    ``mode``: ``compare`` (graded cells' outputs against the outputs stored in ``nb``),
    ``record`` (keep graded cells' outputs, compare nothing), ``run`` (compare nothing).
    ``workdir``: the kernel's working directory (default: a fresh empty one, removed after).
    ``sandbox``: run the kernel in the grading sandbox under these limits (``None``: unsandboxed).
    """
    if sandbox is None:
        return _run(nb, kernel_name=kernel_name, cell_timeout_s=cell_timeout_s, wall_timeout_s=wall_timeout_s,
                    mode=mode, tolerance=tolerance, workdir=workdir, job=None)
    with sandbox_job(sandbox) as job:
        outcome = _run(nb, kernel_name=kernel_name, cell_timeout_s=cell_timeout_s, wall_timeout_s=wall_timeout_s,
                       mode=mode, tolerance=tolerance, workdir=workdir, job=job)
        return dataclasses.replace(outcome, kernel_exit=job.exit_cause(), isolation="bubblewrap sandbox")


def _run(
    nb: NotebookNode,
    *,
    kernel_name: str,
    cell_timeout_s: float,
    wall_timeout_s: float,
    mode: str,
    tolerance: Tolerance,
    workdir: Path | None,
    job: SandboxJob | None,
) -> RunOutcome:
    with tempfile.TemporaryDirectory(prefix="grader-run-") as private_name, \
            tempfile.TemporaryDirectory(prefix="grader-work-") as work_name:
        private = Path(private_name)
        notebook, result, log = private / "notebook.ipynb", private / "result.jsonl", private / "pytest.log"
        (private / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        nbformat.write(nb, str(notebook))
        env = _environment()
        command = _command(notebook, result, workdir or Path(work_name), kernel_name=kernel_name,
                           cell_timeout_s=cell_timeout_s, mode=mode, tolerance=tolerance,
                           sandbox_spec=job.spec() if job is not None else None)
        killed = False
        with open(log, "wb") as log_stream:
            process = subprocess.Popen(command, cwd=private, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log_stream, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                returncode: int | None = process.wait(timeout=wall_timeout_s)
            except subprocess.TimeoutExpired:
                killed = True
                _kill_group(process.pid)
                returncode = process.wait()
        return read_outcome(result, log, killed=killed, returncode=returncode)


def read_outcome(result: Path, log: Path, *, killed: bool, returncode: int | None) -> RunOutcome:
    """The verdicts a run left in ``result``; an unfinished run's kernel process group is killed."""
    records = _read_records(result)
    if killed or not any(r.get("event") == "done" for r in records):
        # the kernel runs in its own session: nothing it started may outlive the run
        for record in records:
            if record.get("event") == "kernel":
                _kill_group(record.get("pid"))
    log_bytes = log.read_bytes() if log.is_file() else b""
    return RunOutcome(
        cells={r["index"]: r for r in records if r.get("event") == "cell"},
        device=next((str(r["device"]) for r in records if r.get("event") == "device"), "unknown"),
        finished=any(r.get("event") == "done" for r in records),
        killed=killed,
        returncode=returncode,
        log_tail=log_bytes[-4000:].decode("utf-8", errors="replace"),
    )

"""Running one notebook through pytest + nbval in a subprocess, and reading back its verdicts.

The one execution path for grading, for building reference outputs and for the learner's
self-check (only the ``mode`` differs). Files are laid out so that the kernel never sees the
notebook (which holds hidden checks and reference outputs) nor the result file::

    <private>/notebook.ipynb   the assembled notebook      (trusted side only)
    <private>/result.jsonl     one JSON line per cell       (written by grader.grading.nbval_plugin)
    <private>/pytest.log       the runner's own output      (never shown to learners)
    <workdir>/                 the kernel's working directory (with the exercise's files, read-only)

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
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.grading.comparison import DEFAULT_TOLERANCE, Tolerance
from grader.processes import kill_group, wait_or_kill_group
from grader.sandbox.gpu import GpuInfo, gpu_access
from grader.sandbox.jobs import SandboxJob, gpu_slot, place_files, sandbox_job
from grader.sandbox.limits import ResourceLimits

#: pytest plugins loaded explicitly (autoloading every installed plugin costs time)
_PLUGINS = ("nbval", "grader.grading.nbval_plugin")
#: built-in plugins a grading run does not need; each costs time per cell or at exit
_NO_PLUGINS = tuple(
    argument
    for plugin in (
        "cacheprovider",
        "warnings",
        "logging",
        "unraisableexception",
        "threadexception",
        "faulthandler",
        "doctest",
        "junitxml",
        "pastebin",
    )
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


def _command(
    notebook: Path,
    result: Path,
    workdir: Path,
    *,
    kernel_name: str,
    cell_timeout_s: float,
    mode: str,
    tolerance: Tolerance,
    sandbox_spec: str | None = None,
    wait_fd: int | None = None,
) -> list[str]:
    """The pytest command line; ``wait_fd``: start the kernel first and wait for ``go`` (a warm runner)."""
    plugins = [argument for plugin in _PLUGINS for argument in ("-p", plugin)]
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-s",
        "--assert=plain",
        *_NO_PLUGINS,
        *plugins,
        "-c",
        str(notebook.parent / "pytest.ini"),
        "--rootdir",
        str(notebook.parent),
        "--nbval",
        str(notebook),
        "--nbval-kernel-name",
        kernel_name,
        "--nbval-cell-timeout",
        str(cell_timeout_s),
        "--grader-result",
        str(result),
        "--grader-workdir",
        str(workdir),
        "--grader-mode",
        mode,
        "--grader-rtol",
        repr(tolerance.rtol),
        "--grader-atol",
        repr(tolerance.atol),
        *(["--grader-sandbox", sandbox_spec] if sandbox_spec else []),
        *(["--grader-wait", str(wait_fd)] if wait_fd is not None else []),
    ]


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


@dataclass(frozen=True)
class RunnerProcess:
    """One pytest + nbval subprocess (a session leader) and its private files."""

    process: subprocess.Popen[bytes]
    #: where the assembled notebook is (or will be, for a warm runner) written
    notebook: Path
    result: Path
    log: Path
    job: SandboxJob | None

    def outcome(self, *, killed: bool, returncode: int | None) -> RunOutcome:
        """The verdicts this run left, with the sandbox's account of how its kernel ended."""
        outcome = read_outcome(self.result, self.log, killed=killed, returncode=returncode)
        if self.job is None:
            return outcome
        return dataclasses.replace(outcome, kernel_exit=self.job.exit_cause(), isolation="bubblewrap sandbox")


def start_runner(
    stack: contextlib.ExitStack,
    *,
    kernel_name: str,
    cell_timeout_s: float,
    mode: str,
    tolerance: Tolerance,
    workdir: Path | None,
    job: SandboxJob | None,
    nb: NotebookNode | None = None,
    wait_fd: int | None = None,
    files: Mapping[str, Path] | None = None,
    kernel_env: Mapping[str, str] | None = None,
) -> RunnerProcess:
    """Start the runner subprocess in fresh private folders that ``stack`` removes.

    Cold: ``nb`` is written first and the runner runs it at once. Warm: ``wait_fd`` given, the
    runner starts its kernel, reports on that descriptor and waits on its stdin (see
    :mod:`grader.grading.warm`). ``files``: see :func:`run_notebook`. ``kernel_env``: more of
    an unsandboxed kernel's environment (it inherits the runner's; a sandboxed one gets the job's own).
    """
    private = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-run-")))
    given = workdir is not None
    if workdir is None:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="grader-work-")))
    if files and job is not None:
        job.provide_files(files)  # bound read-only into the sandbox's own work directory
    elif files and given:  # the learner's own folder: what cannot be copied there is missed as in Jupyter
        with contextlib.suppress(OSError):
            place_files(files, workdir, keep_existing=True)
    elif files:
        place_files(files, workdir)
    notebook, result, log = private / "notebook.ipynb", private / "result.jsonl", private / "pytest.log"
    (private / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    if nb is not None:
        nbformat.write(nb, str(notebook))
    command = _command(
        notebook,
        result,
        workdir,
        kernel_name=kernel_name,
        cell_timeout_s=cell_timeout_s,
        mode=mode,
        tolerance=tolerance,
        sandbox_spec=job.spec() if job is not None else None,
        wait_fd=wait_fd,
    )
    with open(log, "wb") as log_stream:
        process = subprocess.Popen(
            command,
            cwd=private,
            env={**os.environ, **(kernel_env or {}), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            stdin=subprocess.PIPE if wait_fd is not None else subprocess.DEVNULL,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(wait_fd,) if wait_fd is not None else (),
        )
    return RunnerProcess(process, notebook, result, log, job)


def run_notebook(
    nb: NotebookNode,
    *,
    kernel_name: str,
    cell_timeout_s: float,
    wall_timeout_s: float,
    mode: str = "compare",
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    workdir: Path | None = None,
    sandbox: ResourceLimits | None = None,
    files: Mapping[str, Path] | None = None,
    kernel_env: Mapping[str, str] | None = None,
    gpus: Sequence[GpuInfo] = (),
) -> RunOutcome:
    """Execute ``nb`` in a fresh kernel under pytest + nbval and collect one record per cell.

    ``mode``: ``compare`` (graded cells' outputs against the outputs stored in ``nb``),
    ``record`` (keep graded cells' outputs, compare nothing), ``run`` (compare nothing).
    ``workdir``: the kernel's working directory (default: a fresh empty one, removed after).
    ``sandbox``: run the kernel in the grading sandbox under these limits (``None``: unsandboxed).
    ``files``: relative path → file, put read-only in the kernel's working directory before it
    starts (an exercise's data): bound into the sandbox, copied into a fresh ``workdir``; in a
    given ``workdir`` (the learner's own folder) only those missing there are copied.
    ``kernel_env``: more variables in the kernel's environment (a GPU exercise's ``MLCOURSE_PROFILE``).
    ``gpus``: the run holds one of them (:func:`grader.sandbox.jobs.gpu_slot`) and its kernel sees
    only that one (:func:`grader.sandbox.gpu.gpu_access`); empty: no GPU.
    """
    with contextlib.ExitStack() as stack:
        env = dict(kernel_env or {})
        access = gpu_access(stack.enter_context(gpu_slot(gpus))) if gpus else None
        env.update(access.env if access is not None else {})
        job = stack.enter_context(sandbox_job(sandbox, gpu=access, env=env)) if sandbox is not None else None
        runner = start_runner(
            stack,
            nb=nb,
            kernel_name=kernel_name,
            cell_timeout_s=cell_timeout_s,
            mode=mode,
            tolerance=tolerance,
            workdir=workdir,
            job=job,
            files=files,
            kernel_env=env,
        )
        returncode, killed = wait_or_kill_group(runner.process, wall_timeout_s)
        return runner.outcome(killed=killed, returncode=returncode)


def read_outcome(result: Path, log: Path, *, killed: bool, returncode: int | None) -> RunOutcome:
    """The verdicts a run left in ``result``; an unfinished run's kernel process group is killed."""
    records = _read_records(result)
    if killed or not any(r.get("event") == "done" for r in records):
        # the kernel runs in its own session: nothing it started may outlive the run
        for record in records:
            if record.get("event") == "kernel":
                kill_group(record.get("pid"))
    log_bytes = log.read_bytes() if log.is_file() else b""
    return RunOutcome(
        cells={r["index"]: r for r in records if r.get("event") == "cell"},
        device=next((str(r["device"]) for r in records if r.get("event") == "device"), "unknown"),
        finished=any(r.get("event") == "done" for r in records),
        killed=killed,
        returncode=returncode,
        log_tail=log_bytes[-4000:].decode("utf-8", errors="replace"),
    )

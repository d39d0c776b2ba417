"""The pytest plugin the grader loads next to nbval: one verdict per cell, written as it happens.

Run by :mod:`grader.grading.runner` in a subprocess::

    python -m pytest -p nbval -p grader.grading.nbval_plugin --nbval NOTEBOOK \\
        --grader-result RESULT.jsonl --grader-workdir WORKDIR --grader-mode compare ...

What it changes in nbval, and why:

- **Collection**: the notebook's cells become :class:`GradingCell` items. nbval's comment and
  tag markers (``# NBVAL_SKIP``…) are ignored: the notebook holds learner code, and a learner
  must not switch checks off. Only graded cells (tags ``check``/``hidden-check``) have their
  outputs compared, and only in ``compare`` mode.
- **Comparison**: :func:`grader.grading.comparison.compare_outputs` (sanitized, numbers with
  tolerance, stderr ignored) replaces nbval's exact comparison.
- **The kernel**: started by :func:`start_kernel` (the one place a sandboxed kernel will be
  swapped in) in ``--grader-workdir``, away from the notebook file and the result file.
  A kernel that dies is noticed within half a second instead of at the cell timeout.
- **After a timeout**: nbval marks every later cell "expected to fail"; here the timed-out
  cell fails, the kernel is interrupted, and later cells run normally. If it cannot be
  interrupted, nbval stops it and later cells are recorded as not run.
- **Results**: each cell's verdict is appended to ``--grader-result`` as one JSON line, so
  a run killed from outside still leaves what it finished behind.
- **Warm start** (``--grader-wait FD``, used by :mod:`grader.grading.warm`): the kernel is started in
  ``pytest_configure``, before the notebook exists; the process says ``ready <pid>`` on ``FD``
  and reads one JSON command per line on stdin: ``{"command": "ping"}`` (answered ``alive`` or
  ``dead`` after a round trip to the kernel), ``{"command": "go", "mode": …, "rtol": …,
  "atol": …}`` (the notebook is now written: collect and run it), or end of input (stop the
  kernel and exit). After the last verdict it writes the ``done`` record and says ``done`` on
  ``FD`` before stopping the kernel, so the caller need not wait for the kernel to exit.

This module is imported by the trusted pytest process only; it keeps its imports light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import select
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from nbformat import NotebookNode
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError

from grader.format import markers
from grader.grading import checkvalues, results
from grader.grading.comparison import Tolerance, compare_outputs
from grader.grading.kernel import (
    LIVENESS_POLL_S,
    MAX_OUTPUT_MB,
    GradingKernel,
    KernelDied,
    OutputLimitExceeded,
    query_device,
    start_kernel,
)
from grader.grading.sanitize import DEFAULT_SANITIZERS

MODES = ("compare", "record", "run")
_FRAME = re.compile(r", in ([A-Za-z_]\w*)\(")
_ANSI = DEFAULT_SANITIZERS[0]


class CellNotRun(Exception):
    """The cell was not sent to the kernel (it had died or been stopped earlier)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "course grader")
    group.addoption("--grader-result", default=None, help="append one JSON line per cell to this file")
    group.addoption("--grader-workdir", default=None, help="the kernel's working directory")
    group.addoption(
        "--grader-mode",
        choices=MODES,
        default="compare",
        help="compare graded outputs with the notebook's; record them; or only run",
    )
    group.addoption(
        "--grader-sandbox",
        default=None,
        help="start the kernel in the grading sandbox (JSON from grader.sandbox.SandboxJob.spec)",
    )
    group.addoption(
        "--grader-max-output-mb",
        type=float,
        default=MAX_OUTPUT_MB,
        help="output the whole notebook may produce before its kernel is stopped",
    )
    group.addoption("--grader-rtol", type=float, default=Tolerance.rtol)
    group.addoption("--grader-atol", type=float, default=Tolerance.atol)
    group.addoption(
        "--grader-wait",
        type=int,
        default=None,
        metavar="FD",
        help="start the kernel now, report on file descriptor FD, wait on stdin for 'go' (warm pool)",
    )


#: the kernel a warm runner started before its notebook existed (``--grader-wait``)
_WARM_KERNEL = pytest.StashKey["GradingKernel"]()
#: set once the ``done`` record is written
_DONE = pytest.StashKey[bool]()
#: how long a ``ping`` waits for the kernel's reply, seconds
_PING_TIMEOUT_S = 5.0


def _enabled(config: pytest.Config) -> bool:
    return config.getoption("grader_result") is not None


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, list[Any], list[Any]]:
    """Swap nbval's notebook collector for :class:`GradingFile`."""
    collected = yield
    if not _enabled(parent.config):
        return collected
    return [
        GradingFile.from_parent(parent, path=file_path) if isinstance(node, IPyNbFile) else node for node in collected
    ]


def _graded(cell: Any) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return isinstance(tags, list) and any(tag in markers.GRADED_TAGS for tag in tags)


def _start_configured_kernel(config: pytest.Config, default_cwd: str) -> GradingKernel:
    option = config.option
    return start_kernel(
        option.nbval_kernel_name or "python3",
        cwd=option.grader_workdir or default_cwd,
        startup_timeout=option.nbval_kernel_startup_timeout,
        sandbox=option.grader_sandbox,
    )


def _say(fd: int, line: str) -> None:
    """One status line to the warm pool (``--grader-wait FD``)."""
    with contextlib.suppress(OSError):  # the pool went away: nothing to tell
        os.write(fd, (line.replace("\n", " ") + "\n").encode())


def _responsive(kernel: GradingKernel) -> bool:
    """Does the kernel answer a ``kernel_info`` request (a real round trip, not only a live pid)?"""
    try:
        msg_id = kernel.kc.kernel_info()
        kernel.await_reply(msg_id, timeout=_PING_TIMEOUT_S)
        kernel.await_idle(msg_id, _PING_TIMEOUT_S)
    except Exception:  # Empty, KernelDied, a closed channel: not usable
        return False
    return True


def _read_line(fd: int, pending: bytearray) -> bytes | None:
    """One line from ``fd`` (readable now), or ``None`` at end of input."""
    while b"\n" not in pending:
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        pending.extend(chunk)
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def _apply_go(config: pytest.Config, command: dict[str, Any]) -> None:
    """The per-submission options a ``go`` command carries (mode and tolerance)."""
    mode = command.get("mode", config.option.grader_mode)
    if mode not in MODES:
        raise pytest.UsageError(f"--grader-wait: unknown mode {mode!r}")
    config.option.grader_mode = mode
    config.option.grader_rtol = float(command.get("rtol", config.option.grader_rtol))
    config.option.grader_atol = float(command.get("atol", config.option.grader_atol))


def _prepare_collection() -> None:
    """Do now what collecting the notebook would do first: compile nbformat's schema validator (~0.1 s)."""
    import nbformat

    nbformat.validate(nbformat.v4.new_notebook())


def _leave(code: int) -> NoReturn:
    """End a warm runner that never ran its notebook: no session, no report, nothing else to do."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """``--grader-wait FD``: start the kernel, say ``ready``, and block until ``go`` (see module docs)."""
    fd = config.getoption("grader_wait", None)
    if fd is None or not _enabled(config):
        return
    try:
        kernel = _start_configured_kernel(config, str(config.rootpath))
    except Exception as exc:
        _say(fd, f"failed {type(exc).__name__}: {exc}"[:500])
        _leave(3)
    _prepare_collection()
    _say(fd, f"ready {kernel.pid}")
    pending = bytearray()
    while True:
        readable, _, _ = select.select([0], [], [], LIVENESS_POLL_S)
        if not readable:
            if not kernel.is_alive():
                _say(fd, "dead")
                _leave(4)
            continue
        line = _read_line(0, pending)
        command: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            command = json.loads(line) if line is not None else {}
        if line is None or command.get("command") == "quit":
            kernel.stop()
            _leave(0)
        if command.get("command") == "ping":
            if _responsive(kernel):
                _say(fd, "alive")
                continue
            _say(fd, "dead")
            with contextlib.suppress(Exception):
                kernel.km.shutdown_kernel(now=True)
            _leave(4)
        if command.get("command") == "go":
            _apply_go(config, command)
            config.stash[_WARM_KERNEL] = kernel
            return


class GradingFile(IPyNbFile):
    """One notebook: starts the kernel, yields one :class:`GradingCell` per code cell."""

    stopped: dict[str, Any] | None = None  # set when the kernel is gone: {"index", "why"}

    def setup(self) -> None:
        option = self.config.option
        warm = self.config.stash.get(_WARM_KERNEL, None)
        if warm is not None:
            del self.config.stash[_WARM_KERNEL]  # this notebook owns (and stops) it now
        self.kernel = warm if warm is not None else _start_configured_kernel(self.config, str(self.path.parent))
        self.kernel.output_budget = option.grader_max_output_mb * 1024 * 1024
        _write(self.config, {"event": "kernel", "pid": self.kernel.pid})

    def collect(self) -> Iterator[GradingCell]:
        import nbformat

        self.nb = nbformat.read(str(self.path), as_version=4)
        mode = self.config.getoption("grader_mode")
        code_number = 0
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            graded = _graded(cell)
            hidden = graded and markers.TAG_HIDDEN_CHECK in cell.get("metadata", {}).get("tags", [])
            nonce = checkvalues.new_nonce()
            if graded:  # report values through the grader's channel (see grading.checkvalues)
                cell.source = checkvalues.instrument(cell.source, nonce, hidden=hidden)
            compare = hidden and mode == "compare"  # a visible check passes when it runs without failing
            if compare and cell.execution_count is None:
                cell.execution_count = 1  # nbval skips cells it thinks were never run
            options = {"check": compare, "skip": False, "check_exception": False}
            yield GradingCell.from_parent(
                self,
                name=f"Cell {code_number}",
                cell_num=code_number,
                cell=cell,
                options=options,
                index=index,
                graded=graded,
                nonce=nonce,
            )
            code_number += 1

    def teardown(self) -> None:
        kernel = self.kernel
        if kernel is not None and kernel.is_alive():
            _write(self.config, {"event": "device", "device": query_device(kernel)})
            if self.config.getoption("grader_wait", None) is not None:
                _finish(self.config)  # every verdict is in: the warm pool need not wait for the kernel to stop
            kernel.stop()


class GradingCell(IPyNbCell):
    """One code cell: nbval's execution, the grader's comparison and bookkeeping."""

    def __init__(self, *args: Any, index: int, graded: bool, nonce: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index = index
        self.graded = graded
        self.nonce = nonce
        self.difference: str | None = None
        #: the criteria this run missed (checkvalues.criteria_failed), for feedback that names them
        self.criteria: list[checkvalues.Criterion] = []

    def setup(self) -> None:
        """No "expected failure" after a timeout: each cell is judged on its own."""

    def runtest(self) -> None:
        notebook: GradingFile = self.parent  # type: ignore[assignment]
        if notebook.stopped is not None:
            raise CellNotRun
        if not notebook.kernel.is_alive():
            raise CellNotRun
        self.test_outputs = None
        notebook.kernel.last_reply = None
        super().runtest()
        reply: dict[str, Any] = notebook.kernel.last_reply or {}
        if reply.get("status") == "error":
            # the cell raised but showed no traceback (learner code patched the display of errors,
            # e.g. set_custom_exc or showtraceback): the kernel's reply still says it failed
            ename, evalue = str(reply.get("ename", "Exception")), str(reply.get("evalue", ""))
            self.test_outputs = [
                *(self.test_outputs or []),
                NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]),
            ]
            self.raise_cell_error("Cell execution caused an exception")

    def compare_outputs(self, test: list[Any], ref: list[Any], skip_compare: Any = None) -> bool:
        option = self.config.option
        tolerance = Tolerance(rtol=option.grader_rtol, atol=option.grader_atol)
        expected = checkvalues.payloads(ref)
        if expected:  # the reference reported values: compare those, and nothing else of the output
            meta = self.cell.get("metadata", {}).get(markers.META_GRADER, {})
            options = checkvalues.CompareOptions.from_metadata(meta, tolerance)
            reported = checkvalues.payloads(test, self.nonce)
            self.difference = checkvalues.compare_payloads(expected, reported, options)
            self.criteria = checkvalues.criteria_failed(expected, reported)
            if self.criteria and self.difference is None:
                self.difference = results.CRITERIA_ONLY
        else:
            self.difference = compare_outputs(ref, test, tolerance=tolerance)
        self.comparison_traceback = [self.difference or ""]
        return self.difference is None


def _outputs(item: GradingCell) -> list[dict[str, Any]]:
    """What the cell produced in this run (nbval fills ``test_outputs`` as messages arrive)."""
    return list(item.test_outputs or [])


def _error_output(item: GradingCell) -> dict[str, Any] | None:
    for output in reversed(_outputs(item)):
        if output.get("output_type") == "error":
            return output
    return None


def _verdict(item: GradingCell, excinfo: pytest.ExceptionInfo[BaseException] | None) -> dict[str, Any]:
    """The JSON record for one cell, from how its test ended."""
    notebook: GradingFile = item.parent  # type: ignore[assignment]
    record: dict[str, Any] = {
        "event": "cell",
        "index": item.index,
        "cell_id": item.cell.get("id"),
        "graded": item.graded,
        "status": "passed",
        "at": round(time.monotonic(), 6),
    }
    if item.graded and item.config.getoption("grader_mode") == "record":
        record["outputs"] = [dict(output) for output in _outputs(item)]
    if excinfo is None:
        return record
    exc = excinfo.value
    record["status"] = "failed"
    if isinstance(exc, CellNotRun):
        record.update(status="not-run", reason="stopped", stopped=notebook.stopped)
    elif isinstance(exc, KernelDied):
        record["reason"] = "kernel-died"
        notebook.stopped = {"index": item.index, "why": "kernel-died"}
    elif isinstance(exc, OutputLimitExceeded):
        record["reason"] = "output-limit"
        notebook.stopped = {"index": item.index, "why": "output-limit"}
    elif notebook.kernel is None:
        record.update(status="not-run", reason="kernel-start", detail=f"{type(exc).__name__}: {exc}"[:500])
    elif isinstance(exc, NbCellError) and str(exc).startswith("Timeout"):
        record["reason"] = "timeout"
        if not notebook.kernel.is_alive():
            notebook.stopped = {"index": item.index, "why": "timeout"}
    elif isinstance(exc, NbCellError) and item.difference is not None:
        record.update(reason="mismatch", difference=item.difference)
        if item.criteria:
            record["criteria"] = [dataclasses.asdict(c) for c in item.criteria]
    elif isinstance(exc, NbCellError) and (error := _error_output(item)) is not None:
        lines = [_ANSI.apply(line) for line in error.get("traceback", [])]
        record.update(
            reason="error",
            ename=str(error.get("ename", "")),
            evalue=str(error.get("evalue", "")),
            last_line=next((line.strip() for line in reversed(lines) if line.strip()), ""),
            functions=[m.group(1) for line in lines for m in _FRAME.finditer(line)],
        )
    else:
        record.update(reason="runner-error", detail=f"{type(exc).__name__}: {exc}"[:500])
        if not notebook.kernel.is_alive():
            notebook.stopped = notebook.stopped or {"index": item.index, "why": "kernel-died"}
    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    finished = call.when == "call" or (call.when == "setup" and call.excinfo is not None)
    if isinstance(item, GradingCell) and _enabled(item.config) and finished:
        _write(item.config, _verdict(item, call.excinfo))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _enabled(session.config):
        _finish(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A warm kernel no notebook took (nothing was collected) is stopped here."""
    kernel = config.stash.get(_WARM_KERNEL, None)
    if kernel is not None:
        del config.stash[_WARM_KERNEL]
        with contextlib.suppress(Exception):
            kernel.stop()


def _finish(config: pytest.Config) -> None:
    """Write the ``done`` record once; a warm runner also says ``done`` on its status descriptor."""
    if config.stash.get(_DONE, False):
        return
    config.stash[_DONE] = True
    _write(config, {"event": "done"})
    fd = config.getoption("grader_wait", None)
    if fd is not None:
        _say(fd, "done")


def _write(config: pytest.Config, record: dict[str, Any]) -> None:
    path = config.getoption("grader_result")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record, default=str) + "\n")

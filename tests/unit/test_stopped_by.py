"""Which limit stopped a notebook: the one sentence of a result that names it (scoring.stopped_by)."""

from __future__ import annotations

from typing import Any

import nbformat.v4 as v4
import pytest
from nbformat import NotebookNode

from grader.format import markers
from grader.grading.runner import RunOutcome
from grader.grading.scoring import Timeouts, stopped_by

LIMITS = Timeouts(cell_timeout_s=30, wall_timeout_s=600)


def notebook() -> NotebookNode:
    exercise = v4.new_code_cell("def mean_of(v):\n    return sum(v) / len(v)")
    exercise.metadata["tags"] = [markers.TAG_EXERCISE]
    exercise.metadata[markers.META_GRADER] = {"id": "1.1"}
    check = v4.new_code_cell("# Check 1.1: mean\nassert mean_of([2]) == 2")
    check.metadata["tags"] = [markers.TAG_CHECK]
    check.metadata[markers.META_GRADER] = {"id": "1.1", "points": 1}
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("import math"), exercise, check]
    return nb


def cell(index: int, status: str = "passed", **fields: Any) -> dict[str, Any]:
    return {"event": "cell", "index": index, "status": status, **fields}


STOPPED = {"index": 1, "why": "kernel-died"}


@pytest.mark.parametrize(
    ("records", "killed", "kernel_exit", "says"),
    [
        ([cell(0), cell(1), cell(2)], False, None, None),
        (
            [cell(0), cell(1)],
            True,
            None,
            "stopped by a limit: grading a whole notebook may take 600 s (all its cells together); "
            "the cells after that point did not run",
        ),
        (
            [cell(0), cell(1, "failed", reason="timeout"), cell(2, "failed", reason="error", ename="NameError")],
            False,
            None,
            "stopped by a limit in exercise 1.1: timed out after 30 s (the limit for one cell); "
            "the cells after it still ran",
        ),
        (
            [
                cell(0),
                cell(1, "failed", reason="timeout"),
                cell(2, "not-run", reason="stopped", stopped={"index": 1, "why": "timeout"}),
            ],
            False,
            None,
            "stopped by a limit in exercise 1.1: timed out after 30 s (the limit for one cell); "
            "the cells after it did not run",
        ),
        (
            [cell(0), cell(1, "failed", reason="kernel-died"), cell(2, "not-run", reason="stopped", stopped=STOPPED)],
            False,
            "memory limit exceeded (3072 MB)",
            "stopped by a limit in exercise 1.1: memory limit exceeded (3072 MB); the cells after it did not run",
        ),
        (
            [cell(0), cell(1, "failed", reason="kernel-died"), cell(2, "not-run", reason="stopped", stopped=STOPPED)],
            False,
            "CPU time limit exceeded (300 s)",
            "stopped by a limit in exercise 1.1: CPU time limit exceeded (300 s); the cells after it did not run",
        ),
        (
            [cell(0), cell(1, "failed", reason="kernel-died"), cell(2, "not-run", reason="stopped", stopped=STOPPED)],
            False,
            None,  # os._exit: the kernel died, but no limit ended it
            None,
        ),
        (
            [
                cell(0),
                cell(1, "failed", reason="output-limit"),
                cell(2, "not-run", reason="stopped", stopped={"index": 1, "why": "output-limit"}),
            ],
            False,
            None,
            "stopped by a limit in exercise 1.1: output limit exceeded (the kernel was stopped); "
            "the cells after it did not run",
        ),
        (
            [cell(0), cell(1, "failed", reason="error", ename="MemoryError"), cell(2)],
            False,
            None,
            "stopped by a limit in exercise 1.1: memory limit exceeded; the cells after it still ran",
        ),
    ],
    ids=["none", "whole-notebook", "cell-interrupted", "cell-stopped", "memory", "cpu", "crash", "output", "raised"],
)
def test_the_result_names_the_limit_that_stopped_the_notebook(
    records: list[dict[str, Any]], killed: bool, kernel_exit: str | None, says: str | None
) -> None:
    """Does the result say which limit stopped the notebook (whole time, one cell's time, memory, CPU, output)?"""
    run = RunOutcome(
        cells={r["index"]: r for r in records},
        device="cpu",
        finished=not killed,
        killed=killed,
        returncode=0,
        kernel_exit=kernel_exit,
    )
    assert stopped_by(notebook(), run, LIMITS) == says

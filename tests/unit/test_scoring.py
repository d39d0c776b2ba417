"""Scoring: from the runner's per-cell records to PASS / FAIL / NOT RUN with the reason."""

from __future__ import annotations

from typing import Any

import nbformat.v4 as v4
import pytest
from nbformat import NotebookNode

from grader.format import markers
from grader.format.cells import cell_label, graded_cells
from grader.grading.runner import RunOutcome
from grader.grading.scoring import Timeouts, score_checks

LIMITS = Timeouts(cell_timeout_s=30, wall_timeout_s=600)
SECRET = "AssertionError: expected 0.4375"


def notebook() -> NotebookNode:
    def cell(source: str, role: str | None = None, grader: dict[str, Any] | None = None) -> NotebookNode:
        new = v4.new_code_cell(source)
        if role:
            new.metadata["tags"] = [role]
        if grader:
            new.metadata[markers.META_GRADER] = grader
        return new

    nb = v4.new_notebook()
    nb.cells = [
        cell("import math"),  # 0
        cell(f"def mean_of(v):\n    {markers.CODE_STUB}", markers.TAG_EXERCISE, {"id": "1.1"}),  # 1
        cell("# Check 1.1: mean\nassert mean_of([2]) == 2", markers.TAG_CHECK, {"id": "1.1", "points": 1}),  # 2
        cell("# Check 1.2: longer mean\nprint(mean_of([1, 2]))", markers.TAG_HIDDEN_CHECK, {"id": "1.2", "points": 2}),
        cell("def scale(v, k):\n    return [x * k for x in v]", markers.TAG_EXERCISE, {"id": "1.2"}),  # 4
        cell("# Check 1.3: scale\nprint(scale([1], 2))", markers.TAG_HIDDEN_CHECK, {"id": "1.3", "points": 2}),  # 5
    ]
    return nb


def passed(index: int) -> dict[str, Any]:
    return {"event": "cell", "index": index, "status": "passed"}


def error(index: int, ename: str, last_line: str, functions: list[str] | None = None) -> dict[str, Any]:
    return {
        "event": "cell",
        "index": index,
        "status": "failed",
        "reason": "error",
        "ename": ename,
        "evalue": "",
        "last_line": last_line,
        "functions": functions or [],
    }


def outcome(*records: dict[str, Any], killed: bool = False, finished: bool = True) -> RunOutcome:
    return RunOutcome(
        cells={r["index"]: r for r in records}, device="cpu", finished=finished, killed=killed, returncode=0
    )


def verdicts(run: RunOutcome) -> list[tuple[str, float, str]]:
    nb = notebook()
    scored = score_checks(nb, graded_cells(nb), run, LIMITS)
    return [(c.status, c.points, c.message) for c in scored.checks]


ALL_PASS = [passed(i) for i in range(6)]


def test_all_passed_is_full_marks() -> None:
    """Does a clean run give every check its points?"""
    assert verdicts(outcome(*ALL_PASS)) == [("pass", 1, ""), ("pass", 2, ""), ("pass", 2, "")]


def test_stub_checks_are_not_run_naming_the_exercise() -> None:
    """Does a check that hit the stub say which exercise is not done?"""
    stub = [error(i, "NotImplementedError", "NotImplementedError: exercise not done yet", ["mean_of"]) for i in (2, 3)]
    got = verdicts(outcome(passed(0), passed(1), *stub, passed(4), passed(5)))
    assert got[:2] == [("not-run", 0, "not run: exercise 1.1 raised NotImplementedError")] * 2
    assert got[2] == ("pass", 2, "")


def test_name_error_after_a_broken_exercise_blames_the_exercise() -> None:
    """If an exercise cell raised, is a later NameError reported as the exercise's failure?"""
    broken = error(1, "SyntaxError", "SyntaxError: invalid syntax")
    got = verdicts(
        outcome(
            passed(0),
            broken,
            error(2, "NameError", "NameError: name 'mean_of' is not defined"),
            error(3, "NameError", "NameError: name 'mean_of' is not defined"),
            passed(4),
            passed(5),
        )
    )
    assert got[0] == ("not-run", 0, "not run: exercise 1.1 raised SyntaxError")


@pytest.mark.parametrize(
    ("name", "blamed"),
    [("mean_of", "exercise 1.1 raised ValueError"), ("scale", "exercise 1.2 raised NotImplementedError")],
)
def test_name_error_blames_the_exercise_that_defines_the_name(name: str, blamed: str) -> None:
    """With two broken exercises, is a missing name traced to the cell that defines it?"""
    first, second = error(1, "ValueError", "ValueError: x"), error(4, "NotImplementedError", "NotImplementedError")
    undefined = error(5, "NameError", f"NameError: name {name!r} is not defined")
    undefined["evalue"] = f"name {name!r} is not defined"
    got = verdicts(outcome(passed(0), first, passed(2), passed(3), second, undefined))
    assert got[2] == ("not-run", 0, f"not run: {blamed}")


@pytest.mark.parametrize(
    ("index", "expected"),
    [(2, SECRET), (3, "raised AssertionError in mean_of() (exercise 1.1)")],
)
def test_failure_messages(index: int, expected: str) -> None:
    """Does a visible check quote the last traceback line, and a hidden one only the exception type?"""
    records = [*ALL_PASS]
    records[index] = error(index, "AssertionError", SECRET, ["mean_of"])
    status, points, message = verdicts(outcome(*records))[index - 2]
    assert (status, points, message) == ("fail", 0, expected)


def test_hidden_mismatch_hides_the_difference() -> None:
    """Does a hidden check's output difference stay secret while a visible one is shown?"""
    records = [*ALL_PASS]
    records[3] = {
        "event": "cell",
        "index": 3,
        "status": "failed",
        "reason": "mismatch",
        "difference": "line 1: expected '1.5', got '2'",
    }
    assert verdicts(outcome(*records))[1] == ("fail", 0, "output differs from the reference")


def test_kernel_death_stops_later_checks() -> None:
    """After os._exit in an exercise, are later checks not run, with the reason?"""
    died = {"event": "cell", "index": 4, "status": "failed", "reason": "kernel-died"}
    after = {
        "event": "cell",
        "index": 5,
        "status": "not-run",
        "reason": "stopped",
        "stopped": {"index": 4, "why": "kernel-died"},
    }
    got = verdicts(outcome(*ALL_PASS[:4], died, after))
    assert got[2] == ("not-run", 0, "not run: the kernel died in exercise 1.2 (os._exit or a crash)")


def test_timeout_fails_that_check() -> None:
    """Does a check that runs past the cell limit fail with a timeout message?"""
    records = [*ALL_PASS]
    records[2] = {"event": "cell", "index": 2, "status": "failed", "reason": "timeout"}
    assert verdicts(outcome(*records))[0] == ("fail", 0, "timed out after 30 s (the limit for one cell)")


def test_wall_clock_kill_leaves_the_rest_not_run() -> None:
    """When the whole notebook ran past its limit, are unreached checks not run, with the limit?"""
    got = verdicts(outcome(*ALL_PASS[:3], killed=True, finished=False))
    assert got[1:] == [("not-run", 0, "not run: grading stopped at the 600 s limit for a whole notebook")] * 2


def test_missing_records_are_a_grading_error() -> None:
    """With no result file at all, is it the grader's failure (not the learner's zero)?"""
    nb = notebook()
    scored = score_checks(nb, graded_cells(nb), outcome(finished=False), LIMITS)
    assert scored.grading_error
    assert {c.status for c in scored.checks} == {"not-run"}
    assert all("grading error" in c.message for c in scored.checks)


@pytest.mark.parametrize(("index", "label"), [(0, "cell 1"), (1, "exercise 1.1"), (3, "Check 1.2")])
def test_cell_labels(index: int, label: str) -> None:
    """Do messages name cells the way the learner sees them?"""
    assert cell_label(notebook(), index) == label

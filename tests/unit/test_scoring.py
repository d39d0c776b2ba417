"""Scoring: from the runner's per-cell records to PASS / FAIL / NOT RUN with the reason."""

from __future__ import annotations

from typing import Any

import nbformat.v4 as v4
import pytest
from nbformat import NotebookNode

from grader.format import markers
from grader.format.cells import cell_label, graded_cells
from grader.grading import scoring
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


# --- which exercise a check that cannot run names (issue 13) ---------------------------------

STUB = markers.CODE_STUB
SHIFT = f"class Shift:\n    def __init__(self, k):\n        self.k = k\n\n    def predict(self, x):\n        {STUB}\n"


def three_exercises(third: str) -> NotebookNode:
    """Three exercises with checks after each; both exercise 3.1 and exercise 3.3 bind ``result``."""

    def cell(source: str, role: str | None = None, grader: dict[str, Any] | None = None) -> NotebookNode:
        new = v4.new_code_cell(source)
        if role:
            new.metadata["tags"] = [role]
        if grader:
            new.metadata[markers.META_GRADER] = grader
        return new

    first = (
        "def mean_of(values):\n    return sum(values) / len(values)\n\n\n"
        "def predict_all(model, values):\n    return [model.predict(v) for v in values]\n\n\n"
        "result = mean_of(TRAIN)"
    )
    nb = v4.new_notebook()
    nb.cells = [
        cell("TRAIN = [1.0, 2.0, 6.0]"),  # 0
        cell(first, markers.TAG_EXERCISE, {"id": "3.1"}),  # 1
        cell("# Check 3.1: mean\nassert mean_of([1, 2, 3]) == 2", markers.TAG_CHECK, {"id": "3.1", "points": 1}),
        cell("def spread(values):\n    return max(values) - min(values)", markers.TAG_EXERCISE, {"id": "3.2"}),  # 3
        cell("# Check 3.2: spread\nprint(spread(TRAIN))", markers.TAG_HIDDEN_CHECK, {"id": "3.2", "points": 1}),
        cell(third, markers.TAG_EXERCISE, {"id": "3.3"}),  # 5
        cell(
            "# Check 3.3: shift\nprint(predict_all(Shift(2.0), [1.0]))",
            markers.TAG_HIDDEN_CHECK,
            {"id": "3.3", "points": 1},
        ),
        cell("# Check 3.4: result\nprint(result)", markers.TAG_HIDDEN_CHECK, {"id": "3.4", "points": 1}),  # 7
    ]
    return nb


def verdicts_of(nb: NotebookNode, *records: dict[str, Any]) -> list[tuple[str, float, str]]:
    scored = score_checks(nb, graded_cells(nb), outcome(*records), LIMITS)
    return [(c.status, c.points, c.message) for c in scored.checks]


def mismatch(index: int) -> dict[str, Any]:
    return {"event": "cell", "index": index, "status": "failed", "reason": "mismatch", "difference": "1.0 != 4.0"}


NOT_DONE_3 = "not run: exercise 3.3 raised NotImplementedError"
#: exercise 3.3 as its stub: a method stubbed, then a top-level stub before `result` is bound again
STUBBED_THIRD = f"{SHIFT}\n\n{STUB}\nresult = mean_of(predict_all(model, TRAIN))"


def test_a_stubbed_method_is_blamed_on_its_own_exercise() -> None:
    """A stub in a method of exercise 3.3, called through a helper of exercise 3.1: is 3.3 named, not 3.1?

    IPython names the method's frame ``Shift.predict``, which the traceback record does not list:
    the record holds only ``predict_all`` (exercise 3.1).
    """
    got = verdicts_of(
        three_exercises(STUBBED_THIRD),
        *[passed(i) for i in range(5)],
        error(5, "NotImplementedError", "NotImplementedError: exercise not done yet"),
        error(6, "NotImplementedError", "NotImplementedError: exercise not done yet", ["predict_all"]),
        mismatch(7),
    )
    assert got[2] == ("not-run", 0, NOT_DONE_3)


def test_a_leftover_from_an_earlier_exercise_is_not_run() -> None:
    """Exercise 3.3 stopped before binding ``result`` again: does the check that read 3.1's value say not run?"""
    got = verdicts_of(
        three_exercises(STUBBED_THIRD),
        *[passed(i) for i in range(5)],
        error(5, "NotImplementedError", "NotImplementedError: exercise not done yet"),
        error(6, "NotImplementedError", "NotImplementedError: exercise not done yet", ["predict_all"]),
        mismatch(7),
    )
    assert got[3] == ("not-run", 0, NOT_DONE_3)


def test_a_done_method_passes_while_the_leftover_check_is_not_run() -> None:
    """Shift.predict written, the top-level stub left: is Shift (bound before the stub) still graded?"""
    done = SHIFT.replace(STUB, "return x + self.k")
    got = verdicts_of(
        three_exercises(f"{done}\n\n{STUB}\nresult = mean_of(predict_all(model, TRAIN))"),
        *[passed(i) for i in range(5)],
        error(5, "NotImplementedError", "NotImplementedError: exercise not done yet"),
        passed(6),
        passed(7),  # it printed exercise 3.1's result, which happened to be the reference's
    )
    assert got[2:] == [("pass", 1, ""), ("not-run", 0, NOT_DONE_3)]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            "# Check 3.4: result\nresult = mean_of(TRAIN)\nprint(result)",
            ("fail", 0, "output differs from the reference"),
        ),
        ("# Check 3.4: result\nprint([result for result in TRAIN])", ("fail", 0, "output differs from the reference")),
        ("# Check 3.4: result\ndef show():\n    print(result)\n\n\nshow()", ("not-run", 0, NOT_DONE_3)),
    ],
    ids=["binds-it-first", "comprehension-variable", "read-in-a-function"],
)
def test_only_names_a_check_reads_from_earlier_cells_count(check: str, expected: tuple[str, float, str]) -> None:
    """Is a name the check binds first (or a comprehension's variable) no leftover, and one read in a function one?"""
    nb = three_exercises(STUBBED_THIRD)
    nb.cells[7].source = check
    records = [*[passed(i) for i in range(5)], error(5, "NotImplementedError", "NotImplementedError")]
    assert verdicts_of(nb, *records, passed(6), mismatch(7))[3] == expected


def test_a_later_cell_that_binds_the_name_again_ends_the_leftover() -> None:
    """A learner's own cell after exercise 3.3 binds ``result``: is the check judged on that value?"""
    nb = three_exercises(STUBBED_THIRD)
    nb.cells.insert(6, v4.new_code_cell("result = 4.0"))
    records = [*[passed(i) for i in range(5)], error(5, "NotImplementedError", "NotImplementedError"), passed(6)]
    assert verdicts_of(nb, *records, passed(7), mismatch(8))[3] == ("fail", 0, "output differs from the reference")


def test_a_name_error_after_a_cell_a_stub_stopped_names_that_stub() -> None:
    """``result = evaluate()`` in a lesson cell hits exercise 3.2's stub: does a NameError for ``result`` name 3.2?"""
    nb = three_exercises(SHIFT)
    nb.cells[3].source = f"def evaluate():\n    {STUB}"
    nb.cells[4].source = "# Check 3.2: evaluate\nprint(evaluate())"
    nb.cells.insert(4, v4.new_code_cell("result = evaluate()"))
    not_done = error(4, "NotImplementedError", "NotImplementedError", ["evaluate"])
    undefined = error(8, "NameError", "NameError: name 'result' is not defined")
    got = verdicts_of(
        nb, *[passed(i) for i in range(4)], not_done, {**not_done, "index": 5}, passed(6), passed(7), undefined
    )
    assert [got[1], got[3]] == [("not-run", 0, "not run: exercise 3.2 raised NotImplementedError")] * 2


def test_a_not_implemented_error_names_the_nearest_stub_before_a_failed_exercise() -> None:
    """Exercise 3.1 raised ValueError, 3.3 is the stub, the traceback names nothing: is 3.3 named?"""
    nb = three_exercises(STUBBED_THIRD)
    nb.cells[6].source = "# Check 3.3: shift\nprint(Shift(2.0).predict(1.0))"
    records = [passed(0), error(1, "ValueError", "ValueError: x"), *[passed(i) for i in range(2, 5)]]
    got = verdicts_of(nb, *records, error(5, "ValueError", "ValueError"), error(6, "NotImplementedError", "x"))
    assert got[2] == ("not-run", 0, "not run: exercise 3.3 raised NotImplementedError")


@pytest.mark.parametrize(
    ("source", "binds", "reads", "functions"),
    [
        ("import numpy as np, os.path\nfrom math import *\nfrom a import b as c", {"np", "os", "c"}, set(), set()),
        (
            "x, (y, *z) = f()\nfor i in y:\n    w = i\nwith g() as h:\n    pass",
            {"x", "y", "z", "i", "w", "h"},
            {"f", "g"},
            set(),
        ),
        ("total += 1\nn: int\nm: int = k", {"total", "m"}, {"total", "int", "k"}, set()),
        (
            "@deco\nclass Model(Base):\n    size = SIZE\n\n"
            "    def forward(self, x=DEFAULT):\n        return helper(x) + self.size\n",
            {"Model"},
            {"deco", "Base", "SIZE", "DEFAULT", "helper"},
            {"Model", "forward", "Model.forward"},
        ),
        (
            "def f(a):\n    global seen\n    seen = a\n    b = a + later\n    return b\n\nlater = 1",
            {"f", "seen", "later"},
            set(),
            {"f"},
        ),
        (
            "y = [v for v in values if v]\ntry:\n    pass\nexcept E as err:\n    e = err",
            {"y", "e", "err"},
            {"values", "E"},
            set(),
        ),
        ("%timeit f()\nx = 1", {"x"}, {"get_ipython"}, set()),
        ("def broken(:\nresult = 1", {"broken", "result"}, set(), {"broken", "result"}),
    ],
    ids=[
        "imports",
        "assignments",
        "augmented",
        "class",
        "function-body",
        "comprehension-except",
        "magic",
        "syntax-error",
    ],
)
def test_what_a_cell_binds_and_reads(source: str, binds: set[str], reads: set[str], functions: set[str]) -> None:
    """Does the analysis of a cell find what it binds, what it reads first, and the functions it defines?"""
    names = scoring._names(source)
    assert (set(names.binds), set(names.reads), set(names.functions)) == (binds, reads, functions)

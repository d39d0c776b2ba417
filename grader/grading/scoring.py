"""From the runner's per-cell records to one verdict per graded cell.

The rules, in order, for each graded cell:

- it passed (ran without error and, when grading, its sanitized outputs match the reference
  within tolerance) → ``pass``, full points;
- it was never sent to the kernel → ``not-run``: the kernel died earlier, or a cell timed out
  and the kernel had to be stopped, or the notebook ran past the wall-clock limit;
- it raised ``NotImplementedError`` (or ``NameError`` after an exercise cell failed) → ``not-run``
  naming the exercise it needed ("not run: exercise 0.1 raised NotImplementedError");
- otherwise → ``fail``: it timed out, the kernel died in it, it raised, or its output differs.

Every not-run or fail scores zero. The wording comes from :mod:`grader.grading.results`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from grader.format import markers
from grader.format.cells import GradedCell, cell_label, exercise_cells, exercise_label
from grader.grading import results
from grader.grading.results import CheckResult
from grader.grading.runner import RunOutcome


@dataclass(frozen=True)
class Timeouts:
    """The limits a run was given (they appear in messages)."""

    cell_timeout_s: float
    wall_timeout_s: float


@dataclass(frozen=True)
class Scored:
    """The checks' verdicts, and whether the grader itself failed."""

    checks: tuple[CheckResult, ...]
    grading_error: bool = False

    @property
    def score(self) -> float:
        return sum(check.points for check in self.checks)

    @property
    def max_score(self) -> float:
        return sum(check.max_points for check in self.checks)


_UNDEFINED = re.compile(r"name '(\w+)' is not defined")


def _defines(source: str, name: str) -> bool:
    """Whether a cell defines ``name`` (a function, a class, or a top-level assignment)."""
    escaped = re.escape(name)
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{escaped}\b|^{escaped}\s*(?::[^=]*)?=(?!=)"
    return re.search(pattern, source, re.MULTILINE) is not None


def _exercise_defining(nb: NotebookNode, before: int, functions: list[str]) -> tuple[int, str] | None:
    """The exercise cell (before ``before``) defining the innermost learner function of a traceback."""
    exercises = [(i, c) for i, c in exercise_cells(nb) if i < before]
    for function in reversed(functions):
        for index, cell in reversed(exercises):
            if _defines(cell.source, function):
                return index, function
    return None


def _blamed_exercise(
    nb: NotebookNode, index: int, record: dict[str, Any], outcome: RunOutcome, limits: Timeouts
) -> str | None:
    """The not-run message when a check failed only because an exercise is not done or broke."""
    ename = record.get("ename")
    exercises = [(i, c) for i, c in exercise_cells(nb) if i < index]
    failed = [(i, c) for i, c in exercises if outcome.cells.get(i, {}).get("status") == "failed"]

    def because(i: int, cell: NotebookNode, default: str) -> str:
        own = outcome.cells.get(i, {})
        label = exercise_label(cell)
        if own.get("reason") == "timeout":
            return results.not_run_exercise_timed_out(label, limits.cell_timeout_s)
        return results.not_run_exercise_raised(label, own.get("ename") or default)

    if ename == "NotImplementedError" and exercises:
        found = _exercise_defining(nb, index, record.get("functions", []))
        if found is not None:
            cell = nb.cells[found[0]]
            return results.not_run_exercise_raised(exercise_label(cell), "NotImplementedError")
        stubbed = [(i, c) for i, c in exercises if markers.CODE_STUB in c.source]
        i, cell = (failed or stubbed or exercises)[-1]
        return because(i, cell, "NotImplementedError")
    if ename == "NameError" and failed:
        missing = _UNDEFINED.search(str(record.get("evalue", "")))
        owners = [(i, c) for i, c in failed if missing and _defines(c.source, missing.group(1))]
        i, cell = (owners or failed)[0]  # the first failure is the likeliest cause of the rest
        return because(i, cell, "an exception")
    return None


def _not_reached(nb: NotebookNode, record: dict[str, Any] | None, outcome: RunOutcome, limits: Timeouts) -> str | None:
    """Why a cell was never run, or ``None`` when nothing explains it (a grading error)."""
    stopped = (record or {}).get("stopped") or next(
        (r.get("stopped") for r in outcome.cells.values() if r.get("stopped")), None
    )
    if outcome.killed:
        return results.not_run_past_limit(limits.wall_timeout_s)
    if stopped:
        where = cell_label(nb, int(stopped["index"]))
        if stopped.get("why") == "timeout":
            return results.not_run_after_timeout(where, limits.cell_timeout_s)
        if stopped.get("why") == "output-limit":
            return results.not_run_kernel_died(where, results.OUTPUT_LIMIT)
        return results.not_run_kernel_died(where, outcome.kernel_exit)
    return None


def _verdict(
    nb: NotebookNode, check: GradedCell, outcome: RunOutcome, limits: Timeouts, *, withheld: bool = False
) -> tuple[CheckResult, bool]:
    """One check's result, and whether it is a grading error.

    ``withheld``: a visible check after a hidden one, whose details feedback must not show.
    """

    def result(status: results.CheckStatus, message: str = "") -> CheckResult:
        points = check.points if status == "pass" else 0.0
        return CheckResult(
            id=check.check_id,
            name=check.name,
            hidden=check.hidden,
            points=points,
            max_points=check.points,
            status=status,
            message=message,
        )

    record = outcome.cells.get(check.index)
    if record is None or record.get("status") == "not-run":
        if record is not None and record.get("reason") == "kernel-start":
            return result("not-run", results.not_run_grading_error()), True
        why = _not_reached(nb, record, outcome, limits)
        if why is None:
            return result("not-run", results.not_run_grading_error()), True
        return result("not-run", why), False
    if record.get("status") == "passed":
        return result("pass"), False
    reason = record.get("reason")
    if reason == "timeout":
        return result("fail", results.timed_out(limits.cell_timeout_s)), False
    if reason == "kernel-died":
        return result("fail", results.kernel_died_here(outcome.kernel_exit)), False
    if reason == "output-limit":
        return result("fail", results.kernel_died_here(results.OUTPUT_LIMIT)), False
    if reason == "mismatch":
        return result(
            "fail", results.output_differs(record.get("difference"), hidden=check.hidden, withheld=withheld)
        ), False
    if reason == "error":
        blamed = _blamed_exercise(nb, check.index, record, outcome, limits)
        if blamed is not None:
            return result("not-run", blamed), False
        found = _exercise_defining(nb, check.index, record.get("functions", []))
        where = f"{found[1]}() ({cell_label(nb, found[0])})" if found else None
        message = results.raised(
            str(record.get("ename", "an exception")),
            str(record.get("last_line", "")),
            hidden=check.hidden,
            where=where,
            withheld=withheld,
        )
        return result("fail", message), False
    return result("fail", results.not_run_grading_error()), True


def score_checks(
    nb: NotebookNode, checks: tuple[GradedCell, ...] | list[GradedCell], outcome: RunOutcome, limits: Timeouts
) -> Scored:
    """The verdict on every graded cell of the notebook that ran (``nb``, as assembled)."""
    first_hidden = min((check.index for check in checks if check.hidden), default=None)
    verdicts = [
        _verdict(nb, check, outcome, limits, withheld=first_hidden is not None and check.index > first_hidden)
        for check in checks
    ]
    return Scored(tuple(v for v, _ in verdicts), any(error for _, error in verdicts))

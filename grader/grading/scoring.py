"""From the runner's per-cell records to one verdict per graded cell.

The rules, in order, for each graded cell:

- it was never sent to the kernel → ``not-run``: the kernel died earlier, or a cell timed out
  and the kernel had to be stopped, or the notebook ran past the wall-clock limit;
- it timed out, the kernel died in it, or its output went past the limit → ``fail``;
- an exercise kept it from testing the work → ``not-run`` naming that exercise ("not run:
  exercise 0.1 raised NotImplementedError"). It raised ``NotImplementedError``: the nearest
  exercise defining the innermost function of the traceback when that exercise holds a stub,
  else the nearest stubbed exercise that the names it uses lead to, else the nearest stubbed (or
  failed) one. It raised ``NameError``: the exercise that should have bound the name last, else
  the nearest failed exercise whose names it uses, else the nearest failed one. Or, whatever it
  did, it read a **leftover**: a name whose last binding an exercise's ``NotImplementedError``
  skipped (exercise 3 stopped at its stub before binding ``result`` again, and the check read
  exercise 1's ``result``);
- it passed (no error and, when grading, the reference's values) → ``pass``;
- otherwise → ``fail``: it raised, or its output differs.

What a cell binds and reads comes from its source (:func:`grader.grading.cellnames.cell_names`).
A cell that was stopped passes its cause on to the names it binds (after a top-level stub
``raise``: the names bound from there on), and so does a cell that ran on a leftover.

Every not-run or fail scores zero. The wording comes from :mod:`grader.grading.results`.

Besides the checks, :func:`stopped_by` names the limit that stopped the notebook, if one did: the
time limit for a whole notebook, the one for one cell, or a sandbox limit (memory, CPU time, the
kernel's wall clock, processes) or the output limit, with the cell it stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from grader.format.cells import GradedCell, cell_label, exercise_cells, exercise_label
from grader.grading import results
from grader.grading.cellnames import NOT_IMPLEMENTED as _NOT_IMPLEMENTED
from grader.grading.cellnames import CellNames as _Names
from grader.grading.cellnames import cell_names as _names
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


# --- which exercise stopped a cell ----------------------------------------------------------


@dataclass(frozen=True)
class _Cause:
    """The exercise that kept a cell from doing its work, and the not-run message that says so."""

    exercise: int
    message: str
    #: the exercise raised ``NotImplementedError``: whatever ran after it on its names ran on leftovers
    not_done: bool


#: name → (the cell that bound it last, the cause when that cell was stopped before binding it)
_Bindings = dict[str, tuple[int, _Cause | None]]


class _Trail:
    """One pass over the notebook that ran: who bound each name last, which exercise stopped each cell."""

    def __init__(self, nb: NotebookNode, outcome: RunOutcome, limits: Timeouts) -> None:
        self.nb, self.outcome, self.limits = nb, outcome, limits
        self.exercises = [i for i, _ in exercise_cells(nb)]
        #: the bindings each code cell saw, and the cause of every cell that ran and was stopped
        self.bindings: dict[int, _Bindings] = {}
        self.causes: dict[int, _Cause | None] = {}
        bindings: _Bindings = {}
        for i, cell in enumerate(nb.cells):
            if cell.get("cell_type") != "code":
                continue
            self.bindings[i] = bindings
            record = outcome.cells.get(i)
            if record is None or record.get("status") == "not-run":
                continue
            if i in self.exercises and record.get("status") == "failed":
                cause: _Cause | None = self.exercise(i, "an exception")
            else:
                cause = self.why(i, record)
            self.causes[i] = cause
            names = _names(cell.source)
            kept = (names.before_stub or frozenset()) if record.get("ename") == _NOT_IMPLEMENTED else frozenset()
            bindings = {**bindings, **{n: (i, None if n in kept else cause) for n in names.binds}}

    def names(self, index: int) -> _Names:
        return _names(self.nb.cells[index].source)

    def failed(self, index: int) -> bool:
        return self.outcome.cells.get(index, {}).get("status") == "failed"

    def not_done(self, index: int) -> bool:
        """An exercise cell that still holds a stub, or raised ``NotImplementedError`` itself."""
        return self.names(index).stub or self.outcome.cells.get(index, {}).get("ename") == _NOT_IMPLEMENTED

    def exercise(self, index: int, default: str, *, own: bool = True) -> _Cause:
        """Exercise ``index`` as the cause: how it failed (``own``), else that it raised ``default``."""
        record = self.outcome.cells.get(index, {}) if own else {}
        label = exercise_label(self.nb.cells[index])
        if record.get("reason") == "timeout":
            return _Cause(index, results.not_run_exercise_timed_out(label, self.limits.cell_timeout_s), False)
        ename = str(record.get("ename") or default)
        return _Cause(index, results.not_run_exercise_raised(label, ename), ename == _NOT_IMPLEMENTED)

    def defining(self, before: int, functions: list[str]) -> tuple[int, str] | None:
        """The nearest exercise cell (before ``before``) defining the innermost learner function of a traceback."""
        exercises = [i for i in self.exercises if i < before]
        for function in reversed(functions):
            for index in reversed(exercises):
                defined = self.names(index).functions
                if function in defined or function.rsplit(".", 1)[-1] in defined:
                    return index, function
        return None

    def reached(self, index: int) -> set[int]:
        """The cells whose bindings cell ``index`` uses, directly or through the functions it calls."""
        bindings, cells, seen = self.bindings[index], set(), set()
        todo = [*self.names(index).reads, *self.names(index).strings]
        while todo:
            name = todo.pop()
            if name in seen or name not in bindings:
                continue
            seen.add(name)
            binder = bindings[name][0]
            if binder not in cells:
                cells.add(binder)
                todo += [*self.names(binder).reads, *self.names(binder).strings]
        return cells

    def stub_reached(self, index: int, record: dict[str, Any]) -> _Cause | None:
        """The exercise whose stub raised the ``NotImplementedError`` of cell ``index``."""
        before = [i for i in self.exercises if i < index]
        if not before:
            return None
        found = self.defining(index, record.get("functions", []))
        if found is not None and self.not_done(found[0]):
            return self.exercise(found[0], _NOT_IMPLEMENTED, own=False)
        for cell in sorted(self.reached(index), reverse=True):  # the nearest stub its names lead to
            if cell in before and self.not_done(cell):
                return self.exercise(cell, _NOT_IMPLEMENTED, own=False)
            cause = self.causes.get(cell)
            if cause is not None and cause.not_done:  # a cell that a stub stopped, or that ran on a leftover
                return cause
        if found is not None:
            return self.exercise(found[0], _NOT_IMPLEMENTED, own=False)
        stubbed = [i for i in before if self.not_done(i)]
        if stubbed:
            return self.exercise(stubbed[-1], _NOT_IMPLEMENTED, own=False)
        failed = [i for i in before if self.failed(i)]
        return self.exercise((failed or before)[-1], _NOT_IMPLEMENTED)

    def missing(self, index: int, record: dict[str, Any]) -> _Cause | None:
        """The exercise that should have bound the name of cell ``index``'s ``NameError``."""
        undefined = _UNDEFINED.search(f"{record.get('evalue', '')}\n{record.get('last_line', '')}")
        reads = set(self.names(index).reads)
        if undefined is not None:
            binder = self.bindings[index].get(undefined.group(1))
            if binder is not None and binder[1] is not None:
                return binder[1]
            reads.add(undefined.group(1))
        failed = [i for i in self.exercises if i < index and self.failed(i)]
        users = [i for i in failed if self.names(i).binds & reads]
        return self.exercise((users or failed)[-1], "an exception") if failed else None

    def leftover(self, index: int) -> _Cause | None:
        """The not-done exercise when cell ``index`` read a name that exercise kept from being bound again."""
        bindings = self.bindings[index]
        stopped = [bindings[n] for n in self.names(index).reads if n in bindings]
        causes = [(binder, cause) for binder, cause in stopped if cause is not None and cause.not_done]
        return max(causes, key=lambda pair: pair[0])[1] if causes else None

    def why(self, index: int, record: dict[str, Any]) -> _Cause | None:
        """The exercise that kept cell ``index`` (which ran) from testing the learner's work, if one did."""
        if record.get("status") == "passed" or record.get("reason") == "mismatch":
            return self.leftover(index)
        if record.get("reason") != "error":
            return None  # it timed out, or the kernel died in it: its own failure
        found = None
        if record.get("ename") == _NOT_IMPLEMENTED:
            found = self.stub_reached(index, record)
        elif record.get("ename") == "NameError":
            found = self.missing(index, record)
        return found or self.leftover(index)


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


def _verdict(trail: _Trail, check: GradedCell, *, withheld: bool = False) -> tuple[CheckResult, bool]:
    """One check's result, and whether it is a grading error.

    ``withheld``: a visible check after a hidden one, whose details feedback must not show.
    """
    nb, outcome, limits = trail.nb, trail.outcome, trail.limits

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
    reason = record.get("reason")
    if reason == "timeout":
        return result("fail", results.timed_out(limits.cell_timeout_s)), False
    if reason == "kernel-died":
        return result("fail", results.kernel_died_here(outcome.kernel_exit)), False
    if reason == "output-limit":
        return result("fail", results.kernel_died_here(results.OUTPUT_LIMIT)), False
    stopped_by = trail.causes.get(check.index)
    if stopped_by is not None:
        return result("not-run", stopped_by.message), False
    if record.get("status") == "passed":
        return result("pass"), False
    if reason == "mismatch":
        return result(
            "fail",
            results.output_differs(
                record.get("difference"), hidden=check.hidden, withheld=withheld, criteria=record.get("criteria", ())
            ),
        ), False
    if reason == "error":
        found = trail.defining(check.index, record.get("functions", []))
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
    trail = _Trail(nb, outcome, limits)
    first_hidden = min((check.index for check in checks if check.hidden), default=None)
    verdicts = [
        _verdict(trail, check, withheld=first_hidden is not None and check.index > first_hidden) for check in checks
    ]
    return Scored(tuple(v for v, _ in verdicts), any(error for _, error in verdicts))


def stopped_by(nb: NotebookNode, outcome: RunOutcome, limits: Timeouts) -> str | None:
    """The first limit that stopped the notebook or one of its cells, in the learner's words; None if none did."""
    if outcome.killed:
        return results.stopped_whole_notebook(limits.wall_timeout_s)
    stopped = next((r.get("stopped") for r in outcome.cells.values() if r.get("stopped")), None)
    halted = int(stopped["index"]) if stopped else None
    for index in sorted(outcome.cells):
        record, where = outcome.cells[index], cell_label(nb, index)
        reason = record.get("reason")
        if reason == "timeout":
            cause = results.timed_out(limits.cell_timeout_s)
            return results.stopped_in_cell(where, cause, went_on=halted != index)
        if reason == "output-limit":
            return results.stopped_in_cell(where, results.OUTPUT_LIMIT, went_on=False)
        if index == halted and outcome.kernel_exit:  # the kernel died here, ended by a sandbox limit
            return results.stopped_in_cell(where, outcome.kernel_exit, went_on=False)
        limit = results.limit_exception(str(record.get("ename", ""))) if reason == "error" else None
        if limit is not None:  # raised (MemoryError …): the kernel lived on
            return results.stopped_in_cell(where, limit, went_on=True)
    return None

"""The solution notebook an importer builds, cell by cell, and the findings it collects on the way.

Both importers walk their source notebook in order and call :class:`Builder`: a plain cell is
copied, an answer becomes an ``exercise`` cell, a test a ``check`` or ``hidden-check`` cell. The
builder gives every cell a stable nbformat id (the source's when it has a usable one), numbers
exercises and checks ``N.1, N.2, ...`` (``N``: the exercise id's leading number, as
``07-demo`` → ``7.1``), writes each check's title line, and makes every hidden check print the
values it checks (:func:`grader.importers.convert.report_values`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import nbformat
from nbformat import NotebookNode

from grader.authoring.stubs import marker_lines
from grader.format import markers
from grader.format.cells import cell_role
from grader.importers.convert import Finding, ImportReport, prints_something, report_values, wrap_last

#: what nbformat accepts as a cell id
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_ID_MAX = 64
#: this format's roles: a copied cell never keeps one
_ROLE_TAGS = frozenset({markers.TAG_EXERCISE, markers.TAG_CHECK, markers.TAG_HIDDEN_CHECK, markers.TAG_MANUAL})
#: the one criterion of an imported answer graded by hand (the source tools have no rubrics)
WHOLE_ANSWER = "The answer as a whole (imported without a rubric: split this into criteria)"
#: tags the source tools use for their own bookkeeping
_FOREIGN_TAGS = frozenset({"otter_include", "otter_answer_cell", "otter_assign_solution_cell", "otter_ignore"})
#: cell metadata of the source tools, dropped
_FOREIGN_META = ("nbgrader", "otter", "deletable", "editable", "execution", "ExecuteTime", "papermill")
#: notebook metadata of the source tools, dropped
_FOREIGN_NB_META = ("nbgrader", "otter", "celltoolbar", "papermill", "widgets")
#: what a hidden check that printed nothing prints instead, so that it has an output to compare
RAN_LINE = 'print("the tests ran without an error")'


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _merged(body: str, hidden: bool) -> str:
    """One test of several in a cell: its shown last line printed (hidden) or asserted (visible)."""
    if hidden:
        return wrap_last(body, lambda value: f"print({value})")
    return wrap_last(body, lambda value: f"assert {value}", booleans_only=True)


def _in_source_order(findings: list[Finding]) -> tuple[Finding, ...]:
    """Findings by source cell (``cell 12 …``), those about files after them; otherwise in the order found."""

    def key(finding: Finding) -> int:
        number = re.match(r"cell (\d+)\b", finding.place)
        return int(number.group(1)) if number else 1 << 30

    return tuple(sorted(findings, key=key))


def _format_points(points: float) -> int | float:
    return int(points) if float(points).is_integer() else float(points)


class Builder:
    """A solution notebook in the making, with the report of how it was made."""

    def __init__(self, exercise_id: str) -> None:
        leading = re.match(r"\d+", exercise_id)
        self.prefix = str(int(leading.group())) if leading else "1"
        self.exercise_id = exercise_id
        self.cells: list[NotebookNode] = []
        self._ids: set[str] = set(markers.GENERATED_IDS)
        self._exercises = 0
        self._checks = 0
        #: checks and manual answers share one numbering (N.1, N.2, ...): their ids must differ
        self._numbered = 0
        self.manual_answers = 0
        self.hidden_checks = 0
        self.points = 0.0
        self.converted: list[Finding] = []
        self.not_converted: list[Finding] = []
        self.review: list[Finding] = []

    # --- findings ---------------------------------------------------------------------------

    def done(self, place: str, message: str) -> None:
        self.converted.append(Finding(place, message))

    def left(self, place: str, message: str) -> None:
        self.not_converted.append(Finding(place, message))

    def changed(self, place: str, message: str) -> None:
        self.review.append(Finding(place, message))

    # --- cells ------------------------------------------------------------------------------

    def cell_id(self, preferred: str | None, fallback: str) -> str:
        """A unique nbformat id: ``preferred`` made valid when possible, else ``fallback``, numbered if taken."""
        base = _ID_CHARS.sub("-", preferred or "").strip("-")[:_ID_MAX] or _ID_CHARS.sub("-", fallback)[:_ID_MAX]
        candidate, number = base, 2
        while candidate in self._ids:
            suffix = f"-{number}"
            candidate, number = base[: _ID_MAX - len(suffix)] + suffix, number + 1
        self._ids.add(candidate)
        return candidate

    def _add(self, cell: NotebookNode, preferred: str | None, fallback: str, place: str) -> NotebookNode:
        if cell.cell_type == "code":
            cell.source = self._without_marker_comments(
                cell.source, place, exercise=cell_role(cell) == markers.TAG_EXERCISE
            )
        cell.id = self.cell_id(preferred, fallback)
        self.cells.append(cell)
        return cell

    def _without_marker_comments(self, source: str, place: str, *, exercise: bool) -> str:
        """Comment lines that look like this format's markers (``## solution ##``) would fail the lint: out."""
        exact = (markers.BEGIN_SOLUTION, markers.END_SOLUTION)
        dropped = {
            number
            for number, line in marker_lines(source)
            if line.strip().startswith("#")
            and not (exercise and (line.strip() in exact or line.rstrip().endswith(markers.SOLUTION_SUFFIX)))
        }
        if not dropped:
            return source
        lines = source.split("\n")
        for number in sorted(dropped):
            self.changed(place, f"comment {lines[number - 1].strip()!r} looks like a solution marker here: left out")
        return "\n".join(line for number, line in enumerate(lines, start=1) if number not in dropped)

    def plain(self, source_cell: NotebookNode, *, preferred: str | None, fallback: str, place: str) -> NotebookNode:
        """A copy of a source cell without the source tool's metadata, role tags or outputs."""
        cell = copy.deepcopy(source_cell)
        for key in _FOREIGN_META:
            cell.metadata.pop(key, None)
        tags = [t for t in cell.metadata.get("tags", []) if t not in _FOREIGN_TAGS and t not in _ROLE_TAGS]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
        cell.metadata.pop(markers.META_GRADER, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        return self._add(cell, preferred, fallback, place)

    def code(self, source: str, *, preferred: str | None, fallback: str, place: str) -> NotebookNode:
        """A plain code cell (setup that grading must run, such as a seed moved out of an answer)."""
        return self._add(nbformat.v4.new_code_cell(source), preferred, fallback, place)

    def exercise(self, source: str, *, preferred: str | None, fallback: str, place: str) -> str:
        """An ``exercise`` cell (the source must hold solution markers); returns ``exercise N.k``."""
        self._exercises += 1
        exercise_id = f"{self.prefix}.{self._exercises}"
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = [markers.TAG_EXERCISE]
        cell.metadata[markers.META_GRADER] = {markers.META_ID: exercise_id}
        self._add(cell, preferred, fallback, place)
        return f"exercise {exercise_id}"

    def check(
        self,
        bodies: Sequence[str],
        *,
        name: str,
        points: float,
        hidden: bool,
        preferred: str | None,
        fallback: str,
        place: str,
    ) -> str:
        """A ``check`` or ``hidden-check`` cell titled ``# Check N.k: <name>``; returns ``Check N.k``.

        ``bodies``: the tests it holds, one or more (an all-or-nothing question's, merged: only a cell's
        last line is shown, so each test's last line becomes ``print(...)`` in a hidden check and
        ``assert ...`` in a visible one). A hidden check's asserts become printed values (weak ones
        are listed for review); if it still prints nothing, it prints that it ran (listed too). A
        visible check must fail by raising or by ending in ``False``: the caller sends tests that
        show a value to compare to a hidden check.
        """
        self._checks += 1
        self._numbered += 1
        check_id = f"{self.prefix}.{self._numbered}"
        label = f"Check {check_id}{' (hidden)' if hidden else ''}"
        where = f"{place} → {label}"
        if hidden:
            bodies = [self._reported(body, where) for body in bodies]
            self.hidden_checks += 1
        body = bodies[0] if len(bodies) == 1 else "\n\n".join(_merged(b.strip("\n"), hidden) for b in bodies)
        if hidden and not prints_something(body):
            body = f"{body.rstrip()}\n{RAN_LINE}"
            self.changed(
                where,
                "it checks by raising, not by values: it now prints only that it ran, which a learner's code "
                "could fake; make it print the values it checks",
            )
        title = f"# Check {check_id}: {_short(name, 100)}"
        cell = nbformat.v4.new_code_cell(f"{title}\n{body.strip(chr(10))}".rstrip())
        cell.metadata["tags"] = [markers.TAG_HIDDEN_CHECK if hidden else markers.TAG_CHECK]
        cell.metadata[markers.META_GRADER] = {markers.META_ID: check_id, markers.META_POINTS: _format_points(points)}
        self._add(cell, preferred, fallback, place)
        self.points += points
        return label

    def manual(
        self, source_cell: NotebookNode, *, points: float, preferred: str | None, fallback: str, place: str
    ) -> str:
        """A ``manual`` answer (a Markdown answer an instructor grades) with a one-criterion rubric; returns
        ``Answer N.k``. The source cell's text is the model answer (the learner's stub gets a placeholder)."""
        self._numbered += 1
        self.manual_answers += 1
        answer_id = f"{self.prefix}.{self._numbered}"
        cell = self.plain(source_cell, preferred=preferred, fallback=fallback, place=place)
        cell.metadata["tags"] = [*cell.metadata.get("tags", []), markers.TAG_MANUAL]
        worth = _format_points(points)
        cell.metadata[markers.META_GRADER] = {
            markers.META_ID: answer_id,
            markers.META_POINTS: worth,
            markers.META_RUBRIC: [{markers.META_POINTS: worth, markers.META_DESCRIPTION: WHOLE_ANSWER}],
        }
        self.points += points
        label = f"Answer {answer_id}"
        self.changed(
            f"{place} → {label}",
            "graded by an instructor with a rubric of one criterion worth all its points (the source has no "
            "rubric): write the criteria in its metadata grader.rubric",
        )
        return label

    def _reported(self, body: str, where: str) -> str:
        """One hidden test made to print the values it checks; what is weak about it goes to review."""
        result = report_values(body)
        if result.unreadable:
            self.changed(
                where, "not plain Python (IPython magics?): left as it was; make it print the values it checks"
            )
        for line in result.booleans:
            self.changed(where, f"`{_short(line)}` now prints only True/False; print the value it tests if you can")
        for line in result.kept:
            self.changed(where, f"`{_short(line)}` kept as an assertion (caught, or compared with a tolerance)")
        return result.source

    # --- the result -------------------------------------------------------------------------

    def notebook(self, source: NotebookNode) -> NotebookNode:
        """The solution notebook: the cells built, the source's notebook metadata less the tool's own."""
        nb = nbformat.v4.new_notebook(cells=self.cells)
        metadata = copy.deepcopy(dict(source.get("metadata", {})))
        for key in _FOREIGN_NB_META:
            metadata.pop(key, None)
        metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
        nb.metadata.update(metadata)
        return nb

    def report(self, *, tool: str, source: str, output: str | None) -> ImportReport:
        return ImportReport(
            tool=tool,
            source=source,
            exercise=self.exercise_id,
            output=output,
            converted=_in_source_order(self.converted),
            not_converted=_in_source_order(self.not_converted),
            review=_in_source_order(self.review),
            exercises=self._exercises,
            checks=self._checks,
            hidden_checks=self.hidden_checks,
            points=self.points,
            manual_answers=self.manual_answers,
        )

    @property
    def graded(self) -> int:
        """How many checks were made."""
        return self._checks

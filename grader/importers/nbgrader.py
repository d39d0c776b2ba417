"""An nbgrader assignment (its *source* version, answers in) → a solution notebook of this course.

What nbgrader's format is, read from nbgrader itself (github.com/jupyter/nbgrader):

- the metadata schema, ``cell.metadata.nbgrader = {solution, grade, locked, task, grade_id,
  points, schema_version}``, and what each flag means: ``nbgrader/utils.py`` (``is_solution``,
  ``is_grade``, ``is_task``, ``is_locked``, ``determine_grade``);
- solution regions ``### BEGIN SOLUTION`` … ``### END SOLUTION`` (found anywhere in a line), a
  solution cell without a region being all answer, and the stub of the release version
  (``# YOUR CODE HERE`` / ``raise NotImplementedError()``): ``nbgrader/preprocessors/clearsolutions.py``;
- hidden tests ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` inside autograder test
  cells: ``nbgrader/preprocessors/clearhiddentests.py``;
- ``### AUTOTEST expr; expr`` and ``### HASHED AUTOTEST expr`` lines: ``nbgrader/preprocessors/instantiatetests.py``;
- the example assignment ``nbgrader/docs/source/user_guide/source/ps1/problem1.ipynb`` and
  ``problem2.ipynb`` (and ``ps1_autotest/``).

The mapping (every source cell, in order):

========================================  ===========================================================
nbgrader cell                             becomes
========================================  ===========================================================
``solution`` code cell                    an ``exercise`` cell; ``### BEGIN/END SOLUTION`` →
                                          ``# BEGIN/END SOLUTION``; a cell without a region is all answer
autograder test (``grade``, code)         a ``check`` with the cell's points; with hidden tests, the
                                          visible part a ``check`` and the hidden part a
                                          ``hidden-check`` (points split in two), printing its values
``### AUTOTEST a; b`` (also HASHED)       ``print(a)``, ``print(b)`` in the hidden check
``solution`` + ``grade`` code             an ``exercise`` without a check: *reported* (graded by hand)
``solution`` + ``grade`` markdown         a ``manual`` answer with its points, a rubric of one
                                          criterion (nbgrader has none): *listed for review*
``solution`` markdown, not graded         left out (it holds the answer): *reported*
``task`` cell                             kept as text: *reported* (graded by hand)
anything else (``locked`` or plain)       copied as it is
========================================  ===========================================================
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nbformat import NotebookNode

from grader.errors import UsageError
from grader.format import markers
from grader.importers.builder import Builder
from grader.importers.convert import points_text, shows_value

_BEGIN_SOLUTION, _END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
_BEGIN_HIDDEN, _END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
_AUTOTEST = re.compile(r"^(?P<indent>\s*)#+\s*(?P<hashed>HASHED\s+)?AUTOTEST\b(?P<code>.*)$")
#: the stub nbgrader's release version has where the answer was
_RELEASE_STUB = re.compile(r"#\s*YOUR CODE HERE\s*\n\s*raise NotImplementedError\(\)")


def _meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return dict(meta) if isinstance(meta, dict) else {}


def _place(index: int, meta: dict) -> str:
    grade_id = meta.get("grade_id")
    return f"cell {index + 1} (grade_id {grade_id!r})" if grade_id else f"cell {index + 1}"


def _points(meta: dict) -> float:
    try:
        return float(meta.get("points") or 0)
    except (TypeError, ValueError):
        return 0.0


def answer_source(source: str) -> str:
    """An nbgrader answer with this format's markers; a cell without a region is all answer."""
    lines, found = [], False
    for line in source.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        if _BEGIN_SOLUTION in line:
            lines.append(indent + markers.BEGIN_SOLUTION)
            found = True
        elif _END_SOLUTION in line:
            lines.append(indent + markers.END_SOLUTION)
        else:
            lines.append(line)
    if not found:
        return f"{markers.BEGIN_SOLUTION}\n{source.strip(chr(10))}\n{markers.END_SOLUTION}"
    return "\n".join(lines)


def _autotest(match: re.Match[str]) -> list[str]:
    """``### AUTOTEST a; b`` → ``print(a)``, ``print(b)`` (the solution's run records the values)."""
    snippets = [s.strip() for s in match.group("code").strip().strip(";").split(";")]
    return [f"{match.group('indent')}print({snippet})" for snippet in snippets if snippet]


@dataclass(frozen=True)
class TestParts:
    """An autograder test cell cut in two: what learners see, and what only the grader runs."""

    visible: str
    hidden: str
    #: why the whole cell became one hidden check instead ("" when it was split)
    whole: str = ""
    #: it had ``### AUTOTEST`` lines (their values are compared in the hidden part)
    autotest: bool = False


def split_tests(source: str) -> TestParts:
    """A test cell's visible and hidden parts (``### AUTOTEST`` lines print their values in the hidden part).

    The cell stays whole, as one hidden part, when visible code follows hidden tests (its code
    may rely on running in order), or when its visible part ends in a value to compare (only a
    hidden check's values are compared; a visible check fails by raising or by ending in False).
    """
    visible: list[str] = []
    hidden: list[str] = []
    everything: list[str] = []
    in_hidden = reordered = autotests = False
    for line in source.split("\n"):
        if _BEGIN_HIDDEN in line:
            in_hidden = True
            continue
        if _END_HIDDEN in line:
            in_hidden = False
            continue
        autotest = _AUTOTEST.match(line)
        produced = _autotest(autotest) if autotest else [line]
        autotests = autotests or bool(autotest and not autotest.group("hashed"))
        goes_hidden = in_hidden or bool(autotest)
        if not goes_hidden and hidden and line.strip():
            reordered = True
        (hidden if goes_hidden else visible).extend(produced)
        everything.extend(produced)
    whole = ""
    if reordered:
        whole = "visible code follows its hidden tests or AUTOTEST lines, so the whole cell is one hidden check"
    elif _has_code("\n".join(visible)) and shows_value("\n".join(visible)):
        whole = (
            "its visible tests end in a value to compare (nbgrader's partial credit), which only a hidden "
            "check compares, so the whole cell is one hidden check"
        )
    if whole:
        return TestParts("", "\n".join(everything), whole, autotests)
    return TestParts("\n".join(visible), "\n".join(hidden), "", autotests)


def _has_code(source: str) -> bool:
    """Whether a part of a test cell does something (not only a docstring, comments or ``pass``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())
    return any(
        not (isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)))
        for s in tree.body
    )


def _docstring(source: str) -> str | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    text = ast.get_docstring(tree)
    if not text or not text.strip():
        return None
    first = re.sub(r"^(check|test)s?\s+that\s+", "", text.strip().splitlines()[0], flags=re.IGNORECASE)
    return first.rstrip(".") or None


def _tests(builder: Builder, cell: NotebookNode, index: int, meta: dict) -> None:
    place = _place(index, meta)
    points = _points(meta)
    if points <= 0:
        builder.left(place, "an autograder test worth 0 points: a check needs points; give it points and import again")
        return
    parts = split_tests(cell.source)
    visible, hidden = parts.visible, parts.hidden
    name = _docstring(cell.source) or meta.get("grade_id") or f"the tests of cell {index + 1}"
    preferred = meta.get("grade_id") or cell.get("id")
    has_visible, has_hidden = _has_code(visible), _has_code(hidden)
    share = points / 2 if has_visible and has_hidden else points
    if not parts.whole and has_hidden and shows_value(hidden):
        builder.changed(
            place,
            "its last line's value was nbgrader's partial credit; here it is compared with the solution's "
            "value (all or nothing)",
        )
    made = []
    if has_visible:
        made.append(
            builder.check(
                [visible],
                name=name,
                points=share,
                hidden=False,
                preferred=preferred,
                fallback=f"test-{index + 1}",
                place=place,
            )
        )
    if has_hidden:
        hidden_name = f"{name} (hidden tests)" if has_visible else name
        made.append(
            builder.check(
                [hidden],
                name=hidden_name,
                points=share,
                hidden=True,
                preferred=f"{preferred or 'test'}-hidden",
                fallback=f"test-{index + 1}-hidden",
                place=place,
            )
        )
    if not made:
        builder.left(place, "an autograder test with no code to run: not converted")
        return
    builder.done(place, f"autograder test ({points_text(points)}) → {' and '.join(made)}")
    if parts.whole:
        builder.changed(place, f"{parts.whole} (learners no longer see its visible tests)")
    if parts.autotest:
        builder.changed(
            place,
            "its AUTOTEST lines print their values in a hidden check (the solution's run records the expected "
            "values); nbgrader's release showed learners those tests",
        )
    if len(made) == 2:
        builder.changed(
            place,
            f"its points ({points_text(points)}) are split between the visible and the hidden check "
            f"({share:g} each); nbgrader gave them only when both passed",
        )


def _answer(builder: Builder, cell: NotebookNode, index: int, meta: dict, *, by_hand: bool) -> None:
    place = _place(index, meta)
    label = builder.exercise(
        answer_source(cell.source),
        preferred=meta.get("grade_id") or cell.get("id"),
        fallback=f"answer-{index + 1}",
        place=place,
    )
    if by_hand:
        builder.left(
            place,
            f"an answer graded by hand ({points_text(_points(meta))}): kept as {label} with no check, so it is "
            "not graded; write a check for it",
        )
    else:
        builder.done(place, f"solution cell → {label}")


def convert(nb: NotebookNode, *, exercise_id: str, shipped: Sequence[str] = ()) -> tuple[NotebookNode, Builder]:
    """The solution notebook for an nbgrader source notebook, and the builder holding the findings.

    ``shipped``: the other files of the assignment's folder (images, data), reported for the author.

    Raises:
        UsageError: the notebook has no nbgrader cells, or is a release version (stubs instead of answers).
    """
    if not any(_meta(cell) for cell in nb.cells):
        raise UsageError("no cell has nbgrader metadata (cell.metadata.nbgrader): is this an nbgrader assignment?")
    for index, cell in enumerate(nb.cells):
        meta = _meta(cell)
        if meta.get("solution") and _BEGIN_SOLUTION not in cell.source and _RELEASE_STUB.search(cell.source):
            raise UsageError(
                f"{_place(index, meta)} holds nbgrader's stub ('# YOUR CODE HERE', 'raise NotImplementedError()') "
                "instead of an answer: this is a release version; import the source version "
                "(source/<assignment>/ in the nbgrader course), which has the solutions"
            )
    builder = Builder(exercise_id)
    for index, cell in enumerate(nb.cells):
        meta = _meta(cell)
        place = _place(index, meta)
        solution, grade, task = bool(meta.get("solution")), bool(meta.get("grade")), bool(meta.get("task"))
        if task:
            builder.plain(
                cell, preferred=meta.get("grade_id") or cell.get("id"), fallback=f"task-{index + 1}", place=place
            )
            builder.left(
                place, f"a task graded by hand ({points_text(_points(meta))}): its text is kept, it is not graded"
            )
        elif solution and cell.cell_type == "code":
            _answer(builder, cell, index, meta, by_hand=grade)
        elif solution and grade and _points(meta) > 0:
            builder.manual(
                cell,
                points=_points(meta),
                preferred=meta.get("grade_id") or cell.get("id"),
                fallback=f"answer-{index + 1}",
                place=place,
            )
        elif solution:
            what = f"a written answer graded by hand ({points_text(_points(meta))})" if grade else "a written answer"
            builder.left(place, f"{what}: left out (it holds the answer and is worth no points)")
        elif grade and cell.cell_type == "code":
            _tests(builder, cell, index, meta)
        else:
            builder.plain(cell, preferred=cell.get("id"), fallback=f"cell-{index + 1}", place=place)
    for name in shipped:
        builder.left(name, "in the assignment's folder: copy what the notebook reads next to it in the course")
    return builder.notebook(nb), builder

"""The authoring rules a solution notebook must follow: :func:`lint` reports every problem at once.

Marker problems (unbalanced, nested, misspelt, misplaced markers) raise
:class:`~grader.errors.MarkerError`; any other problem (metadata, titles, ids, roles, silent
hidden checks) raises :class:`~grader.errors.AuthoringError`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field

from nbformat import NotebookNode

from grader.authoring.stubs import marker_lines, near_misses, python_code, strip_solution
from grader.errors import AuthoringError, MarkerError
from grader.format import markers
from grader.format.cells import GRADED_ID, cell_role, describe_cell, graded_problems, grader_meta, role_tags

_ROLE_CODE_ONLY = (markers.TAG_HIDDEN_CHECK, markers.TAG_EXERCISE, markers.TAG_CHECK)


def _suppressed(source: str, node: ast.stmt) -> bool:
    """Whether an expression statement ends in ``;`` (Jupyter then shows nothing)."""
    lines = source.splitlines()
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset or 0
    rest = lines[end_line - 1][end_col:] if end_line - 1 < len(lines) else ""
    return rest.lstrip().startswith(";")


def _shows_something(source: str) -> bool | None:
    """Whether the cell prints or displays something (``None`` when it cannot be parsed)."""
    code = python_code(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not _suppressed(code, tree.body[-1]):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("print", "display"):
                return True
    return False


@dataclass
class _Problems:
    """Problems found by :func:`lint`, each already naming its place."""

    messages: list[str] = field(default_factory=list)
    only_markers: bool = True

    def add(self, message: str, *, marker: bool = False) -> None:
        self.messages.append(message)
        self.only_markers = self.only_markers and marker


def _lint_exercise(place: str, cell: NotebookNode, found: _Problems) -> None:
    """An exercise cell: its id, no points, exact markers that leave valid Python behind."""
    source = cell.get("source", "")
    meta = grader_meta(cell)
    exercise_id = meta.get(markers.META_ID)
    if not isinstance(exercise_id, str) or not GRADED_ID.match(exercise_id):
        found.add(
            f"{place}: an exercise cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a string "
            f'like "1.2" (found {exercise_id!r})'
        )
    if markers.META_POINTS in meta:
        found.add(f"{place}: points belong on the check cells, not on the exercise cell; remove them")
    for message in near_misses(source, place):
        found.add(message, marker=True)
    try:
        stub = strip_solution(source, where=place)
    except MarkerError as exc:
        found.add(str(exc), marker=True)
    else:
        if stub == source:
            found.add(
                f"{place}: the exercise cell has no {markers.BEGIN_SOLUTION!r} region and no line ending in "
                f"{markers.SOLUTION_SUFFIX!r}; learners would receive the solution",
                marker=True,
            )


def _stray_markers(place: str, cell: NotebookNode) -> list[str]:
    """A problem for every line of a non-exercise cell that is, or looks like, a solution marker.

    Markers are stripped only from code cells tagged ``exercise``: anywhere else (a Markdown or
    raw cell, a check, an untagged code cell) the line and the solution it marks would reach
    learners as they are. Markdown may still mention a marker in backticks or use a heading
    ``## Solution``.
    """
    shipped = cell_role(cell) != markers.TAG_HIDDEN_CHECK
    consequence = (
        f"this {cell.cell_type} cell would reach learners with the solution in it"
        if shipped
        else "a hidden check is never shipped, so the marker does nothing there"
    )
    return [
        f"{place}, line {number}: {line.strip()!r} is a solution marker outside an exercise cell (markers are "
        f"stripped only in code cells tagged {markers.TAG_EXERCISE!r}; {consequence}); move the solution into "
        f"an exercise cell, or remove the marker"
        for number, line in marker_lines(cell.get("source", ""), markdown=cell.cell_type == "markdown")
    ]


def _lint_cell(place: str, cell: NotebookNode, found: _Problems) -> None:
    roles = role_tags(cell)
    role = cell_role(cell)
    source = cell.get("source", "")
    if len(roles) > 1:
        found.add(f"{place}: tagged {' and '.join(map(repr, roles))}; a cell has one role, split it in two")
        return
    if role in _ROLE_CODE_ONLY and cell.cell_type != "code":
        found.add(f"{place}: a {cell.cell_type} cell tagged {role!r}; only code cells can have that role")
        return
    if role == markers.TAG_EXERCISE:
        _lint_exercise(place, cell, found)
        return
    for message in _stray_markers(place, cell):
        found.add(message, marker=True)
    if role in markers.GRADED_TAGS:
        for message in graded_problems(cell, place):
            found.add(message)
    if role == markers.TAG_HIDDEN_CHECK and _shows_something(source) is False:
        found.add(
            f"{place}: a hidden check must print or display the values it checks (grading compares them "
            "with the reference output); end it with an expression or call print()"
        )


def _duplicates(path: str, key: str, ids: dict[str, list[int]], found: _Problems) -> None:
    for value, indices in ids.items():
        if len(indices) > 1:
            cells = ", ".join(f"cell {i + 1}" for i in indices)
            found.add(f"{path}, {cells}: {key} {value!r} is used {len(indices)} times; ids must be unique")


def lint(nb: NotebookNode, *, path: str) -> None:
    """Check a solution notebook against the authoring rules; every problem is reported at once.

    Raises:
        MarkerError: only marker problems were found (unbalanced, nested, misspelt, misplaced).
        AuthoringError: any other problem (metadata, titles, ids, roles, hidden checks).
    """
    found = _Problems()
    cell_ids: dict[str, list[int]] = defaultdict(list)
    graded_ids: dict[str, list[int]] = defaultdict(list)
    exercise_ids: dict[str, list[int]] = defaultdict(list)
    for index, cell in enumerate(nb.cells):
        place = describe_cell(nb, index, path=path, show="id")
        cell_id = cell.get("id")
        if not cell_id:
            found.add(f"{place}: the cell has no id; save the notebook with JupyterLab 3+")
        else:
            cell_ids[cell_id].append(index)
            if cell_id in markers.GENERATED_IDS:
                found.add(f"{place}: the id {cell_id!r} is reserved for generated cells")
        _lint_cell(place, cell, found)
        value = grader_meta(cell).get(markers.META_ID)
        if isinstance(value, str):
            role = cell_role(cell)
            if role in markers.GRADED_TAGS:
                graded_ids[value].append(index)
            elif role == markers.TAG_EXERCISE:
                exercise_ids[value].append(index)
    _duplicates(path, "cell id", cell_ids, found)
    _duplicates(path, "check id", graded_ids, found)
    _duplicates(path, "exercise id", exercise_ids, found)
    if not any(cell_role(cell) in markers.GRADED_TAGS for cell in nb.cells):
        found.add(
            f"{path}: no graded cells; tag at least one check cell {markers.TAG_CHECK!r} or "
            f"{markers.TAG_HIDDEN_CHECK!r} and give it {markers.META_GRADER} id and points"
        )
    if found.messages:
        error = MarkerError if found.only_markers else AuthoringError
        count = len(found.messages)
        lines = "\n".join(f"  {message}" for message in found.messages)
        raise error(f"{path}: {count} authoring problem{'s' if count > 1 else ''}:\n{lines}")

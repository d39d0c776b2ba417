"""Cells of an exercise notebook: their roles, the graded cells, and how messages name a cell.

- **Roles** come from tags (:func:`cell_role`): ``exercise``, ``check``, ``hidden-check``,
  ``manual`` (an answer graded by hand, :mod:`grader.format.rubric`), ``parameters``.
- **Graded cells** (checks and hidden checks) carry ``cell.metadata["grader"] = {"id": "1.2",
  "points": 1}`` and a first line ``# Check 1.2: <behaviour>``; :func:`graded_cells` is the one
  parser — strict for solutions and grading bundles, lenient for a learner's notebook.
- **Names**: :func:`describe_cell` says where a cell is (``solutions/x.ipynb, cell 4 (id 'abc')``),
  :func:`cell_label` what a learner calls it (``exercise 1.1``, ``Check 1.2``, ``cell 5``).

Every tag and metadata key is spelled in :mod:`grader.format.markers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers

#: role tags in the order a cell carrying several is classified (safest first: a hidden check
#: is never shipped, an exercise is always stripped); :func:`grader.authoring.lint` refuses such cells anyway
_ROLE_ORDER = (
    markers.TAG_HIDDEN_CHECK,
    markers.TAG_EXERCISE,
    markers.TAG_MANUAL,
    markers.TAG_CHECK,
    markers.TAG_PARAMETERS,
)

#: a check or exercise id: ``"1.2"``
GRADED_ID = re.compile(r"^\d+(?:\.\d+)*$")

#: a notebook, or a list of its cells
Cells = NotebookNode | Sequence[NotebookNode]


@dataclass(frozen=True)
class GradedCell:
    """One graded cell (a visible or a hidden check) of a solution notebook."""

    #: position of the cell in the notebook (0-based)
    index: int
    #: the nbformat cell id
    cell_id: str
    #: ``cell.metadata["grader"]["id"]``, e.g. ``"0.2"``; equals the N.M of the title line
    check_id: str
    #: the behaviour text of the first line ``# Check N.M: <behaviour>``
    name: str
    points: float
    #: tagged ``hidden-check`` (grader only, never shipped to learners)
    hidden: bool


# --- roles ------------------------------------------------------------------------------


def cell_role(cell: NotebookNode) -> str | None:
    """The cell's role tag (``exercise``, ``check``, ``hidden-check``, ``parameters``) or ``None``."""
    tags = cell.get("metadata", {}).get("tags", [])
    for role in _ROLE_ORDER:
        if role in tags:
            return role
    return None


def role_tags(cell: NotebookNode) -> list[str]:
    """Every role tag the cell carries, in classification order (a valid cell has at most one)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return [role for role in _ROLE_ORDER if role in tags]


def grader_meta(cell: NotebookNode) -> dict[str, Any]:
    """A copy of ``cell.metadata["grader"]`` (empty when missing or not a mapping)."""
    meta = cell.get("metadata", {}).get(markers.META_GRADER)
    return dict(meta) if isinstance(meta, dict) else {}


def exercise_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """``(index, cell)`` of every cell whose role is ``exercise``, in notebook order."""
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell_role(cell) == markers.TAG_EXERCISE]


# --- how messages name a cell -------------------------------------------------------------


def _cells(nb_or_cells: Cells) -> Sequence[NotebookNode]:
    return nb_or_cells.cells if isinstance(nb_or_cells, NotebookNode) else nb_or_cells


def exercise_label(cell: NotebookNode) -> str:
    """How messages name an exercise cell: ``"exercise 0.1"`` (from ``metadata.grader.id``)."""
    exercise_id = grader_meta(cell).get(markers.META_ID)
    if isinstance(exercise_id, str) and exercise_id:
        return f"exercise {exercise_id}"
    return f"exercise cell {cell.get('id', '?')!r}"


def _check_label(cell: NotebookNode) -> str | None:
    """``"Check 0.2"`` for a graded cell with an id, else ``None``."""
    check_id = grader_meta(cell).get(markers.META_ID)
    return f"Check {check_id}" if cell_role(cell) in markers.GRADED_TAGS and check_id else None


def cell_label(nb_or_cells: Cells, index: int) -> str:
    """How feedback names a cell to a learner: ``exercise 0.1``, ``Check 0.2`` or ``cell 5`` (counted from 1)."""
    cell = _cells(nb_or_cells)[index]
    if cell_role(cell) == markers.TAG_EXERCISE:
        return exercise_label(cell)
    return _check_label(cell) or f"cell {index + 1}"


def _summary_line(source: str) -> str:
    """The first non-blank line, shortened to 80 characters (``(empty cell)`` when there is none)."""
    for line in source.splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= 80 else text[:77] + "..."
    return "(empty cell)"


def describe_cell(
    nb_or_cells: Cells, index: int, *, path: str | None = None, show: Literal["id", "check", "line"] | None = None
) -> str:
    """Where a cell is, for an author's message: ``[<path>, ]cell <N>`` (counted from 1, as Jupyter shows).

    ``show`` adds, for messages about

    - ``"id"`` — a solution file: `` (id 'abc')``, or `` (no id)``;
    - ``"check"`` — the reference run: `` (Check 1.2)`` on a graded cell, nothing on others;
    - ``"line"`` — a lesson run: `` of <all cells> (`<first non-blank line>`)``.
    """
    cells = _cells(nb_or_cells)
    cell = cells[index]
    place = f"cell {index + 1}"
    if show == "id":
        place += f" (id {cell['id']!r})" if cell.get("id") else " (no id)"
    elif show == "check":
        label = _check_label(cell)
        place += f" ({label})" if label else ""
    elif show == "line":
        place += f" of {len(cells)} (`{_summary_line(cell.source)}`)"
    return f"{path}, {place}" if path else place


# --- graded cells -----------------------------------------------------------------------


def title_line(source: str) -> str:
    """A cell's first line, where a graded cell's title ``# Check 1.2: <behaviour>`` is."""
    return source.splitlines()[0] if source else ""


def _points_ok(points: object) -> bool:
    return isinstance(points, (int, float)) and not isinstance(points, bool) and math.isfinite(points) and points > 0


def graded_problems(cell: NotebookNode, place: str) -> list[str]:
    """What is wrong with one graded cell's metadata and title line (empty when nothing); ``place`` names the cell."""
    role = cell_role(cell)
    meta = grader_meta(cell)
    problems = []
    check_id = meta.get(markers.META_ID)
    example = f'"{markers.META_GRADER}": {{"{markers.META_ID}": "1.2", "{markers.META_POINTS}": 1}}'
    if not isinstance(check_id, str) or not GRADED_ID.match(check_id):
        problems.append(
            f"{place}: a {role!r} cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a string like "
            f'"1.2" (found {check_id!r}); add {example} to the cell metadata'
        )
    points = meta.get(markers.META_POINTS)
    if not _points_ok(points):
        problems.append(
            f"{place}: a {role!r} cell needs metadata {markers.META_GRADER}.{markers.META_POINTS} as a positive "
            f"number (found {points!r}); add {example} to the cell metadata"
        )
    first = title_line(cell.get("source", ""))
    title = markers.CHECK_TITLE.match(first)
    if title is None:
        problems.append(
            f"{place}, line 1: the first line must name the check, like '# Check 1.2: <what it verifies>' "
            f"(found {first!r})"
        )
    elif isinstance(check_id, str) and title.group("id") != check_id:
        problems.append(
            f"{place}, line 1: the title says check {title.group('id')} but metadata "
            f"{markers.META_GRADER}.{markers.META_ID} is {check_id!r}; make them equal"
        )
    return problems


def _graded_cell(index: int, cell: NotebookNode, fallback_id: str) -> GradedCell:
    """Read one graded cell, taking what is there: on a valid cell, exactly its metadata and title."""
    meta = grader_meta(cell)
    first = title_line(cell.source)
    title = markers.CHECK_TITLE.match(first)
    check_id = meta.get(markers.META_ID) or (title.group("id") if title else fallback_id)
    points = meta.get(markers.META_POINTS)
    if not isinstance(points, (int, float)) or isinstance(points, bool) or not points > 0:
        points = 1.0
    return GradedCell(
        index=index,
        cell_id=str(cell.get("id", "")),
        check_id=str(check_id),
        name=title.group("name") if title else first.lstrip("# ").strip() or f"cell {index + 1}",
        points=float(points),
        hidden=cell_role(cell) == markers.TAG_HIDDEN_CHECK,
    )


def graded_cells(nb: NotebookNode, *, strict: bool = True) -> list[GradedCell]:
    """Every check and hidden-check cell, in notebook order.

    ``strict=False`` reads a learner's notebook, where a title or the metadata may have been
    touched: it never raises, skips cells that are not code cells, and fills in what is
    missing or invalid — the id from the title, else the cell's number among the visible checks;
    the name from the first line, else ``cell <N>``; 1 point.

    Raises:
        AuthoringError: (strict) a graded cell lacks its id or points, or its title line is malformed.
    """
    graded: list[GradedCell] = []
    for index, cell in enumerate(nb.cells):
        if cell_role(cell) not in markers.GRADED_TAGS:
            continue
        if strict:
            problems = graded_problems(cell, describe_cell(nb, index, show="id"))
            if problems:
                raise AuthoringError("; ".join(problems))
        elif cell.cell_type != "code":
            continue
        visible_before = sum(not check.hidden for check in graded)
        graded.append(_graded_cell(index, cell, fallback_id=str(visible_before + 1)))
    return graded

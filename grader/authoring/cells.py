"""Cells and their roles: role tags, graded-cell metadata, and how messages name a cell.

Cell roles come from tags and graded cells from ``cell.metadata["grader"]``; every tag and
metadata key is spelled in :mod:`grader.format.markers`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers

#: role tags in the order a cell carrying several is classified (safest first: a hidden check
#: is never shipped, an exercise is always stripped); :func:`grader.authoring.lint` refuses such cells anyway
_ROLE_ORDER = (markers.TAG_HIDDEN_CHECK, markers.TAG_EXERCISE, markers.TAG_CHECK, markers.TAG_PARAMETERS)

#: a check or exercise id: ``"1.2"``
GRADED_ID = re.compile(r"^\d+(?:\.\d+)*$")


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


def where(index: int, cell: NotebookNode, path: str | None = None) -> str:
    """``solutions/x.ipynb, cell 4 (id 'abc')`` — cells counted from 1, as Jupyter shows them."""
    cell_id = cell.get("id")
    place = f"cell {index + 1} (id {cell_id!r})" if cell_id else f"cell {index + 1} (no id)"
    return f"{path}, {place}" if path else place


def exercise_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """``(index, cell)`` of every cell whose role is ``exercise``, in notebook order."""
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell_role(cell) == markers.TAG_EXERCISE]


def exercise_label(cell: NotebookNode) -> str:
    """How messages name an exercise cell: ``"exercise 0.1"`` (from ``metadata.grader.id``)."""
    exercise_id = grader_meta(cell).get(markers.META_ID)
    if isinstance(exercise_id, str) and exercise_id:
        return f"exercise {exercise_id}"
    return f"exercise cell {cell.get('id', '?')!r}"


def _first_line(source: str) -> str:
    return source.splitlines()[0] if source else ""


def _points_ok(points: object) -> bool:
    return isinstance(points, (int, float)) and not isinstance(points, bool) and math.isfinite(points) and points > 0


def graded_problems(index: int, cell: NotebookNode, path: str | None) -> list[str]:
    """What is wrong with one graded cell's metadata and title line (empty when nothing)."""
    place = where(index, cell, path)
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
    first = _first_line(cell.get("source", ""))
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


def graded_cells(nb: NotebookNode) -> list[GradedCell]:
    """Every check and hidden-check cell, in notebook order.

    Raises:
        AuthoringError: a graded cell lacks its id or points, or its title line is malformed.
    """
    graded = []
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role not in markers.GRADED_TAGS:
            continue
        problems = graded_problems(index, cell, None)
        title = markers.CHECK_TITLE.match(_first_line(cell.source))
        if problems or title is None:
            raise AuthoringError("; ".join(problems))
        meta = grader_meta(cell)
        graded.append(
            GradedCell(
                index=index,
                cell_id=str(cell.get("id", "")),
                check_id=meta[markers.META_ID],
                name=title.group("name"),
                points=float(meta[markers.META_POINTS]),
                hidden=role == markers.TAG_HIDDEN_CHECK,
            )
        )
    return graded

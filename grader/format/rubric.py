"""Manually graded answers and their rubrics.

An exercise may hold answers a person grades: a written explanation, a plot to interpret, design
notes. Such a cell is tagged ``manual`` (:data:`grader.format.markers.TAG_MANUAL`), Markdown or
code, and carries its points and rubric in its metadata::

    "grader": {
      "id": "20.7",
      "points": 4,
      "title": "Why the small scorer ships",
      "rubric": [
        {"points": 2, "description": "Names the paired EM difference and its interval"},
        {"points": 2, "description": "Says what result would have changed the decision"}
      ]
    }

The criteria's points add up to the answer's points (:func:`manual_problems` says so when they do
not). In the solution the cell holds a model answer; ``grader assign`` gives learners the cell
with a placeholder (Markdown) or its solution regions stubbed (code), and a generated Markdown cell
above it with the rubric (id :func:`rubric_cell_id`). Grading does not run these cells: an
instructor reads the learner's answer (:func:`learner_answer`) and ticks criteria; the answer's
score is the sum of the ticked criteria's points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers
from grader.format.cells import GRADED_ID, cell_role, describe_cell, grader_meta


@dataclass(frozen=True)
class Criterion:
    """One line of a rubric: what earns ``points``."""

    points: float
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {markers.META_POINTS: self.points, markers.META_DESCRIPTION: self.description}


@dataclass(frozen=True)
class ManualAnswer:
    """One manually graded answer of an exercise."""

    #: ``cell.metadata["grader"]["id"]``, e.g. ``"20.7"``
    id: str
    #: what the answer is about (metadata ``title``; ``answer 20.7`` when there is none)
    title: str
    points: float
    rubric: tuple[Criterion, ...]
    #: the nbformat id of its cell in the solution (and in the learner's stub)
    cell_id: str
    #: ``markdown`` or ``code``
    cell_type: str
    #: position of the cell in the notebook it was read from (0-based)
    index: int = 0

    @property
    def label(self) -> str:
        """How messages name it: ``Answer 20.7: Why the small scorer ships``."""
        return f"Answer {self.id}: {self.title}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``Result.to_dict()["manual"]`` entries (what the service stores and reads back)."""
        return {
            "id": self.id,
            "title": self.title,
            "points": self.points,
            "rubric": [criterion.to_dict() for criterion in self.rubric],
            "cell_id": self.cell_id,
            "cell_type": self.cell_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManualAnswer:
        """The inverse of :meth:`to_dict`."""
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or f"answer {data['id']}"),
            points=float(data["points"]),
            rubric=tuple(
                Criterion(float(c[markers.META_POINTS]), str(c[markers.META_DESCRIPTION])) for c in data["rubric"]
            ),
            cell_id=str(data.get("cell_id", "")),
            cell_type=str(data.get("cell_type", "markdown")),
        )


def rubric_cell_id(answer_id: str) -> str:
    """The id of the Markdown cell ``grader assign`` puts above answer ``answer_id``: ``rubric-20-7``."""
    return markers.RUBRIC_ID_PREFIX + answer_id.replace(".", "-")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def manual_problems(cell: NotebookNode, place: str) -> list[str]:
    """What is wrong with one manual cell (empty when nothing); ``place`` names the cell."""
    meta = grader_meta(cell)
    example = (
        f'"{markers.META_GRADER}": {{"{markers.META_ID}": "1.3", "{markers.META_POINTS}": 2, '
        f'"{markers.META_RUBRIC}": [{{"{markers.META_POINTS}": 2, "{markers.META_DESCRIPTION}": "..."}}]}}'
    )
    problems = []
    if cell.get("cell_type") not in ("markdown", "code"):
        problems.append(f"{place}: a {markers.TAG_MANUAL!r} cell must be a Markdown or a code cell")
    answer_id = meta.get(markers.META_ID)
    if not isinstance(answer_id, str) or not GRADED_ID.match(answer_id):
        problems.append(
            f"{place}: a {markers.TAG_MANUAL!r} cell needs metadata {markers.META_GRADER}.{markers.META_ID} as a "
            f'string like "1.3" (found {answer_id!r}); add {example} to the cell metadata'
        )
    points = meta.get(markers.META_POINTS)
    if not _number(points) or not points > 0:  # type: ignore[operator]
        problems.append(
            f"{place}: a {markers.TAG_MANUAL!r} cell needs metadata {markers.META_GRADER}.{markers.META_POINTS} as "
            f"a positive number (found {points!r}); add {example} to the cell metadata"
        )
    title = meta.get(markers.META_TITLE)
    if title is not None and not (isinstance(title, str) and title.strip()):
        problems.append(f"{place}: metadata {markers.META_GRADER}.{markers.META_TITLE} must be a non-empty string")
    rubric = meta.get(markers.META_RUBRIC)
    if not isinstance(rubric, list) or not rubric:
        problems.append(
            f"{place}: a {markers.TAG_MANUAL!r} cell needs metadata {markers.META_GRADER}.{markers.META_RUBRIC}, "
            f"a list of criteria, each with points and a description (found {rubric!r}); for example {example}"
        )
        return problems
    total = 0.0
    for number, criterion in enumerate(rubric, start=1):
        if not isinstance(criterion, dict):
            problems.append(f"{place}: rubric criterion {number} must be an object with points and a description")
            continue
        value = criterion.get(markers.META_POINTS)
        if not _number(value) or not value > 0:  # type: ignore[operator]
            problems.append(f"{place}: rubric criterion {number} needs positive points (found {value!r})")
        else:
            total += float(value)  # type: ignore[arg-type]
        text = criterion.get(markers.META_DESCRIPTION)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{place}: rubric criterion {number} needs a description (found {text!r})")
    if _number(points) and not problems and not math.isclose(total, float(points), abs_tol=1e-9):  # type: ignore[arg-type]
        problems.append(
            f"{place}: the rubric of answer {answer_id} adds up to {total:g} points but the answer is worth "
            f"{float(points):g} ({markers.META_GRADER}.{markers.META_POINTS}); make the criteria's points "  # type: ignore[arg-type]
            "add up to the answer's"
        )
    return problems


def _answer(index: int, cell: NotebookNode) -> ManualAnswer:
    meta = grader_meta(cell)
    answer_id = str(meta.get(markers.META_ID) or index + 1)
    rubric = tuple(
        Criterion(float(c[markers.META_POINTS]), str(c[markers.META_DESCRIPTION]).strip())
        for c in meta.get(markers.META_RUBRIC) or []
        if isinstance(c, dict)
        and _number(c.get(markers.META_POINTS))
        and isinstance(c.get(markers.META_DESCRIPTION), str)
    )
    points = meta.get(markers.META_POINTS)
    title = meta.get(markers.META_TITLE)
    return ManualAnswer(
        id=answer_id,
        title=title.strip() if isinstance(title, str) and title.strip() else f"answer {answer_id}",
        points=float(points) if _number(points) else sum(c.points for c in rubric),  # type: ignore[arg-type]
        rubric=rubric,
        cell_id=str(cell.get("id", "")),
        cell_type=str(cell.get("cell_type", "markdown")),
        index=index,
    )


def manual_answers(nb: NotebookNode, *, strict: bool = True) -> list[ManualAnswer]:
    """Every ``manual`` cell of ``nb``, in notebook order.

    ``strict=False`` reads what is there and never raises (a bundle's template, a learner's notebook).

    Raises:
        AuthoringError: (strict) a manual cell lacks its id, points or rubric, or its rubric's points
            do not add up to the answer's.
    """
    answers = []
    for index, cell in enumerate(nb.cells):
        if cell_role(cell) != markers.TAG_MANUAL:
            continue
        if strict:
            problems = manual_problems(cell, describe_cell(nb, index, show="id"))
            if problems:
                raise AuthoringError("; ".join(problems))
        answers.append(_answer(index, cell))
    return answers


def learner_answer(submission: NotebookNode, answer: ManualAnswer) -> NotebookNode | None:
    """The submission's cell that holds the learner's answer: same cell id, else a manual cell with the same id."""
    if answer.cell_id:
        for cell in submission.cells:
            if cell.get("id") == answer.cell_id:
                return cell
    for cell in submission.cells:
        if cell_role(cell) == markers.TAG_MANUAL and str(grader_meta(cell).get(markers.META_ID)) == answer.id:
            return cell
    return None

"""Manually graded answers as learners get them: the answer cell stubbed, its rubric shown above it.

For each ``manual`` cell of a solution (:mod:`grader.format.rubric`), ``grader assign`` keeps the
cell — same nbformat id, tags and ``grader`` metadata (id, points, title, rubric) — with its content
stubbed (:func:`stub_answer`):

- a **Markdown** answer becomes :data:`grader.format.markers.MARKDOWN_STUB` (attachments dropped: a
  model answer's pictures are the model answer too);
- a **code** answer has its solution regions replaced as an exercise cell's are
  (:func:`~grader.authoring.stubs.strip_solution`); a code answer without markers (a plot to
  interpret, given code) is kept as it is.

Right above each answer goes a generated Markdown cell (:func:`rubric_cell`, id
:func:`grader.format.rubric.rubric_cell_id`) that shows the rubric to the learner. It is made from
the solution every time, so a second ``grader assign`` writes the same cell. Grading never uses it:
the assembly runs only the learner's own *code* cells, and the instructor's rubric comes from the
grading bundle, not from the learner's copy.
"""

from __future__ import annotations

import nbformat
from nbformat import NotebookNode

from grader.authoring.stubs import strip_solution
from grader.format import markers
from grader.format.cells import cell_role, grader_meta
from grader.format.rubric import ManualAnswer, rubric_cell_id


def points_words(points: float) -> str:
    """``1 point``, ``2 points``, ``1.5 points``."""
    return f"{points:g} point" + ("" if points == 1 else "s")


def rubric_text(answer: ManualAnswer, *, titled: bool = True) -> str:
    """The rubric as the learner reads it above the answer cell.

    ``**Answer 20.7 — Why the small scorer ships (4 points, graded by an instructor).**``, then one
    line per criterion: ``- 2 points: Names the paired EM difference and its interval``.
    """
    title = f" — {answer.title}" if titled else ""
    lines = [f"**Answer {answer.id}{title} ({points_words(answer.points)}, graded by an instructor).**", ""]
    lines += [f"- {points_words(criterion.points)}: {criterion.description}" for criterion in answer.rubric]
    return "\n".join(lines)


def rubric_cell(answer: ManualAnswer, cell: NotebookNode) -> NotebookNode:
    """The generated Markdown cell that goes right above ``cell``, the answer's cell in the solution."""
    title = grader_meta(cell).get(markers.META_TITLE)
    generated = nbformat.v4.new_markdown_cell(
        rubric_text(answer, titled=isinstance(title, str) and bool(title.strip()))
    )
    generated.id = rubric_cell_id(answer.id)
    return generated


def stub_answer(cell: NotebookNode, *, where: str) -> None:
    """Replace a manual answer's content with the learner's stub, in place (see the module docstring).

    Raises:
        MarkerError: a code answer's solution markers are unbalanced, or leave invalid Python.
    """
    if cell.cell_type == "markdown":
        cell.source = markers.MARKDOWN_STUB
        cell.pop("attachments", None)
    elif cell.cell_type == "code":
        cell.source = strip_solution(cell.source, where=where)


def with_rubric_cells(cells: list[NotebookNode], answers: list[ManualAnswer]) -> list[NotebookNode]:
    """``cells`` (a learner's notebook being generated) with a rubric cell right above each of ``answers``."""
    by_cell = {answer.cell_id: answer for answer in answers}
    placed: list[NotebookNode] = []
    for cell in cells:
        if cell_role(cell) == markers.TAG_MANUAL and cell.get("id") in by_cell:
            placed.append(rubric_cell(by_cell[cell["id"]], cell))
        placed.append(cell)
    return placed

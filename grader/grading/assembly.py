"""Assembling the notebook that is graded: the reference's cells, the learner's exercise code.

Every cell comes from the bundle's template (the solution's structure, hidden checks included,
reference outputs on graded cells), except the *source* of each ``exercise`` cell, which is
taken from the submission's code cell with the same nbformat cell id — or, failing that, from
its exercise cell with the same ``metadata.grader.id``; the first match wins. An exercise cell
the submission lacks keeps the stub (it raises ``NotImplementedError``).

The learner's **own code cells** (ids the reference does not have: a helper function, an
import) run too, in the learner's order: each goes right after the reference cell that the
nearest earlier cell of the submission matches (at the top when none does), as nbgrader runs
a notebook. They are never graded, and they run before the checks that follow them exactly as
in the learner's notebook, so ``grader check`` and grading see the same code. Generated cells
(the header, the Colab setup and submit cells) are not the learner's and do not run.

So moving, duplicating, deleting or adding cells cannot break grading, and nothing else the
submission holds is used: not its check cells, not its outputs, not its kernelspec or metadata.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

from grader.errors import InvalidNotebook
from grader.format import markers
from grader.format.cells import GradedCell, cell_role, exercise_cells, exercise_label, grader_meta


@dataclass(frozen=True)
class Assembly:
    """The notebook to run, and which exercise cells came from the submission."""

    notebook: NotebookNode
    #: labels ("exercise 0.1") of exercise cells filled with the learner's code
    matched: tuple[str, ...]
    #: labels of exercise cells the submission lacks (left as stubs)
    missing: tuple[str, ...]

    def checks(self, checks: Iterable[GradedCell]) -> list[GradedCell]:
        """The bundle's checks at their places in this notebook (the learner's own cells shift them)."""
        where = {cell.get("id"): index for index, cell in enumerate(self.notebook.cells)}
        return [dataclasses.replace(check, index=where[check.cell_id]) for check in checks]


def learner_cell(submission: NotebookNode, reference: NotebookNode) -> NotebookNode | None:
    """The submission's code cell that holds the learner's version of ``reference`` (an exercise cell)."""
    code = [cell for cell in submission.cells if cell.get("cell_type") == "code"]
    wanted_id = reference.get("id")
    if wanted_id:
        for cell in code:
            if cell.get("id") == wanted_id:
                return cell
    wanted_grader_id = grader_meta(reference).get(markers.META_ID)
    if wanted_grader_id is not None:
        for cell in code:
            if cell_role(cell) == markers.TAG_EXERCISE and grader_meta(cell).get(markers.META_ID) == wanted_grader_id:
                return cell
    return None


def learner_source(cell: NotebookNode) -> str:
    """A cell's source as text that can be written back out (lone surrogates become U+FFFD)."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _own_cells(template: NotebookNode, submission: NotebookNode) -> list[tuple[str | None, NotebookNode]]:
    """The learner's own code cells, each with the id of the reference cell it follows (None: the top)."""
    known = {cell.get("id") for cell in template.cells}
    anchor: str | None = None
    own: list[tuple[str | None, NotebookNode]] = []
    for cell in submission.cells:
        cell_id = cell.get("id")
        if cell_id in known:
            anchor = cell_id
        elif cell.get("cell_type") == "code" and cell_id not in markers.GENERATED_IDS and cell_role(cell) is None:
            added = nbformat.v4.new_code_cell(learner_source(cell))
            added.id = f"learner-{len(own)}"
            own.append((anchor, added))
    return own


def _insert_own_cells(nb: NotebookNode, own: list[tuple[str | None, NotebookNode]]) -> None:
    for anchor, cell in reversed(own):  # reversed: cells sharing an anchor keep their order
        at = 0 if anchor is None else next((i + 1 for i, c in enumerate(nb.cells) if c.get("id") == anchor), 0)
        nb.cells.insert(at, cell)


def assemble(template: NotebookNode, submission: NotebookNode, *, name: str, exercise: str) -> Assembly:
    """The grading notebook for ``submission``.

    Raises:
        InvalidNotebook: the template has exercise cells and the submission matches none of
            them (it is another exercise, or a notebook rebuilt from scratch).
    """
    nb = copy.deepcopy(template)
    matched, missing = [], []
    for _, cell in exercise_cells(nb):
        found = learner_cell(submission, cell)
        label = exercise_label(cell)
        if found is None:
            missing.append(label)
        else:
            cell.source = learner_source(found)
            matched.append(label)
    if missing and not matched:
        raise InvalidNotebook(
            f"{name}: this looks like a different exercise: none of its cells match the exercise cells of "
            f"{exercise!r} (cells are matched by their id); submit the notebook made from "
            f"exercises/{exercise}.ipynb, or name the right exercise with --exercise"
        )
    _insert_own_cells(nb, _own_cells(template, submission))
    return Assembly(nb, tuple(matched), tuple(missing))

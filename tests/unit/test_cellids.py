"""Notebooks saved without cell ids (nbformat 4.0–4.4): their ids recovered from the exercise they came from.

The course's own exercises are the test data: each is "saved by an old Jupyter" (ids stripped,
``nbformat_minor`` 4) after a learner's typical edits, and must get its ids back.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.format import markers
from grader.format.cellids import lacks_cell_ids, recover_cell_ids
from grader.format.cells import cell_role, exercise_cells
from grader.format.notebooks import parse_notebook, read_notebook
from grader.grading.engine import with_cell_ids
from grader.grading.selfcheck import self_check_notebook
from grader.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EXERCISES = sorted(p.stem for p in (REPO / "exercises").glob("*.ipynb"))


def exercise(name: str) -> NotebookNode:
    return read_notebook(REPO / "exercises" / f"{name}.ipynb")


def solved(name: str) -> NotebookNode:
    """The exercise with every exercise cell holding the solution's code, as a learner who finished it."""
    nb = exercise(name)
    answers = {cell.id: cell.source for cell in read_notebook(REPO / "solutions" / f"{name}.ipynb").cells}
    for _, cell in exercise_cells(nb):
        cell.source = answers[cell.id]
    return nb


def saved_as_4_4(nb: NotebookNode, *, keep_metadata: bool = True) -> NotebookNode:
    """``nb`` written by a Jupyter that saves nbformat 4.4 (no cell ids), and read back as the grader reads it."""
    raw = json.loads(nbformat.writes(nb))
    raw["nbformat_minor"] = 4
    for cell in raw["cells"]:
        del cell["id"]
        if not keep_metadata:
            cell["metadata"] = {}
    old = parse_notebook(json.dumps(raw).encode(), name="old.ipynb")
    assert lacks_cell_ids(old) and old.nbformat_minor == 4
    return old


def ids(nb: NotebookNode) -> list[str]:
    return [cell.get("id") for cell in nb.cells]


@pytest.mark.parametrize("keep_metadata", [True, False], ids=["metadata-kept", "metadata-lost"])
@pytest.mark.parametrize("name", EXERCISES)
def test_a_solved_exercise_gets_every_id_back(name: str, keep_metadata: bool) -> None:
    """Does a finished exercise saved as nbformat 4.4 get exactly its cells' ids back, tags or no tags?"""
    original = solved(name)
    recovered = recover_cell_ids(saved_as_4_4(original, keep_metadata=keep_metadata), exercise(name))
    assert ids(recovered) == ids(original)
    assert recovered.nbformat_minor == 5
    nbformat.validate(recovered)


@pytest.mark.parametrize("name", EXERCISES)
def test_an_untouched_exercise_gets_every_id_back(name: str) -> None:
    """Does the stub as downloaded, saved as nbformat 4.4, get its ids back?"""
    original = exercise(name)
    assert ids(recover_cell_ids(saved_as_4_4(original, keep_metadata=False), original)) == ids(original)


def test_added_cells_are_unmatched_and_the_exercise_keeps_its_id() -> None:
    """Are a learner's own cells (next to an exercise cell) told apart from it, and named unmatched-<N>?"""
    original = solved(EXERCISES[0])
    first = next(i for i, cell in enumerate(original.cells) if cell_role(cell) == markers.TAG_EXERCISE)
    edited = copy.deepcopy(original)
    edited.cells.insert(first, new_code_cell("import numpy as np  # my own helper"))
    edited.cells.insert(first + 2, new_markdown_cell("My notes on this exercise."))
    edited.cells.insert(first + 3, new_code_cell("print(describe_environment())"))
    recovered = recover_cell_ids(saved_as_4_4(edited, keep_metadata=False), exercise(EXERCISES[0]))
    expected = ids(original)
    expected[first:first] = [f"unmatched-{first + 1}"]
    expected[first + 2 : first + 2] = [f"unmatched-{first + 3}", f"unmatched-{first + 4}"]
    assert ids(recovered) == expected
    assert recovered.cells[first + 1].source == original.cells[first].source


def test_a_deleted_exercise_cell_gives_its_id_to_no_other_cell() -> None:
    """When a learner deleted an exercise cell, does no other cell take its id (it stays "not found")?"""
    original = solved(EXERCISES[0])
    ex = [i for i, cell in enumerate(original.cells) if cell_role(cell) == markers.TAG_EXERCISE]
    deleted = original.cells[ex[-1]].id
    edited = copy.deepcopy(original)
    del edited.cells[ex[-1]]
    recovered = recover_cell_ids(saved_as_4_4(edited, keep_metadata=False), exercise(EXERCISES[0]))
    assert deleted not in ids(recovered)
    assert ids(recovered) == [cell_id for cell_id in ids(original) if cell_id != deleted]


def test_a_moved_exercise_cell_is_found_by_its_tag_and_grader_id() -> None:
    """Does an exercise cell moved to the end keep its id when Jupyter kept its metadata?"""
    original = solved(EXERCISES[0])
    first = next(i for i, cell in enumerate(original.cells) if cell_role(cell) == markers.TAG_EXERCISE)
    edited = copy.deepcopy(original)
    edited.cells.append(edited.cells.pop(first))
    recovered = recover_cell_ids(saved_as_4_4(edited), exercise(EXERCISES[0]))
    assert recovered.cells[-1].id == original.cells[first].id
    assert recovered.cells[-1].source == original.cells[first].source
    assert len(set(ids(recovered))) == len(recovered.cells)


def test_recovery_is_deterministic_and_leaves_ids_alone() -> None:
    """Do equal inputs give equal ids, is the input unchanged, and do cells with an id keep it?"""
    old = saved_as_4_4(solved(EXERCISES[1]), keep_metadata=False)
    before = nbformat.writes(old)
    first = recover_cell_ids(old, exercise(EXERCISES[1]))
    assert nbformat.writes(recover_cell_ids(copy.deepcopy(old), exercise(EXERCISES[1]))) == nbformat.writes(first)
    assert nbformat.writes(old) == before
    partly = copy.deepcopy(old)
    partly.cells[0]["id"] = "mine"
    partly.cells[1]["id"] = exercise(EXERCISES[1]).cells[0].id  # taken: no other cell gets it again
    again = recover_cell_ids(partly, exercise(EXERCISES[1]))
    assert ids(again)[:2] == ["mine", exercise(EXERCISES[1]).cells[0].id]
    assert len(set(ids(again))) == len(again.cells)


def test_grading_and_self_check_recover_ids_from_the_exercise_notebook() -> None:
    """Does the engine give a 4.4 submission its ids (so `grader check` knows, and skips, the submit cell)?"""
    settings = load_settings(root=REPO)
    old = saved_as_4_4(solved(EXERCISES[0]), keep_metadata=False)
    recovered = with_cell_ids(settings, old, EXERCISES[0])
    assert ids(recovered) == ids(exercise(EXERCISES[0]))
    assert markers.SUBMIT_ID not in ids(self_check_notebook(recovered))
    assert "submit(" not in "".join(cell.source for cell in self_check_notebook(recovered).cells)
    assert with_cell_ids(settings, recovered, EXERCISES[0]) is recovered  # ids already there: unchanged
    assert with_cell_ids(settings, old, "../solutions/" + EXERCISES[0]) is old  # never a path outside exercises/


@pytest.mark.parametrize("other", EXERCISES[1:])
def test_another_exercise_gets_no_ids(other: str) -> None:
    """Is another exercise's notebook, saved without ids and metadata, left without ids (so it is refused)?"""
    old = saved_as_4_4(solved(other), keep_metadata=False)
    assert lacks_cell_ids(recover_cell_ids(old, exercise(EXERCISES[0])))
    named = saved_as_4_4(solved(other))
    assert with_cell_ids(load_settings(root=REPO), named, EXERCISES[0]) is named  # its metadata names the other

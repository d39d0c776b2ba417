"""Assembly: the reference's cells, the learner's exercise code matched by cell id — nothing else."""

from __future__ import annotations

import copy

import nbformat
import nbformat.v4 as v4
import pytest
from nbformat import NotebookNode

from grader.errors import InvalidNotebook
from grader.format import markers
from grader.grading.assembly import assemble

STUB = f"def f():\n    {markers.CODE_STUB}"


def cell(source: str, cell_id: str, role: str | None = None, grader_id: str | None = None) -> NotebookNode:
    new = v4.new_code_cell(source)
    new.id = cell_id
    if role:
        new.metadata["tags"] = [role]
    if grader_id:
        new.metadata[markers.META_GRADER] = {markers.META_ID: grader_id}
    return new


def template() -> NotebookNode:
    nb = v4.new_notebook()
    check = cell("# Check 1.1: f works\nprint(f())", "check-a", markers.TAG_CHECK, "1.1")
    check.outputs = [v4.new_output("stream", name="stdout", text="42\n")]
    check.execution_count = 1
    nb.cells = [
        cell("import math", "setup"),
        cell(STUB, "ex-f", markers.TAG_EXERCISE, "1.1"),
        check,
        cell(STUB.replace("f()", "g()"), "ex-g", markers.TAG_EXERCISE, "1.2"),
        cell("# Check 1.2: g works\nprint(g())", "check-b", markers.TAG_HIDDEN_CHECK, "1.2"),
    ]
    return nb


def learner(*cells: NotebookNode) -> NotebookNode:
    nb = v4.new_notebook()
    nb.cells = list(cells)
    return nb


F = "def f():\n    return 42"
G = "def g():\n    return 7"


def sources(nb: NotebookNode) -> dict[str, str]:
    return {c.id: c.source for c in nb.cells}


@pytest.mark.parametrize(
    ("submission", "f_source", "g_source", "missing"),
    [
        pytest.param(learner(cell(F, "ex-f"), cell(G, "ex-g")), F, G, (), id="as-downloaded"),
        pytest.param(learner(cell(G, "ex-g"), cell("x = 1", "new"), cell(F, "ex-f")), F, G, (), id="moved-and-added"),
        pytest.param(
            learner(cell(F, "ex-f"), cell("def f(): return 0", "ex-f"), cell(G, "ex-g")),
            F,
            G,
            (),
            id="duplicated-first-wins",
        ),
        pytest.param(learner(cell(F, "ex-f")), F, STUB.replace("f()", "g()"), ("exercise 1.2",), id="deleted"),
        pytest.param(
            learner(cell(F, "renamed-1", markers.TAG_EXERCISE, "1.1"), cell(G, "ex-g")),
            F,
            G,
            (),
            id="id-lost-grader-id-kept",
        ),
    ],
)
def test_exercise_cells_are_matched_by_id(
    submission: NotebookNode, f_source: str, g_source: str, missing: tuple[str, ...]
) -> None:
    """Do moved, duplicated, deleted and added learner cells still land in the right place?"""
    assembly = assemble(template(), submission, name="sub.ipynb", exercise="01-x")
    got = sources(assembly.notebook)
    assert (got["ex-f"], got["ex-g"]) == (f_source, g_source)
    assert assembly.missing == missing
    reference = [c.id for c in assembly.notebook.cells if not c.id.startswith("learner-")]
    assert reference == ["setup", "ex-f", "check-a", "ex-g", "check-b"]


def test_the_learners_own_cells_run_after_the_cell_they_follow() -> None:
    """Is a cell the learner added placed after the reference cell it follows in their notebook, ungraded?"""
    submission = learner(cell(G, "ex-g"), cell("x = 1", "new"), cell(F, "ex-f"), cell("y = 2", "newer"))
    nb = assemble(template(), submission, name="sub.ipynb", exercise="01-x").notebook
    assert [c.id for c in nb.cells] == ["setup", "ex-f", "learner-1", "check-a", "ex-g", "learner-0", "check-b"]
    added = [c for c in nb.cells if c.id.startswith("learner-")]
    assert [c.source for c in added] == ["y = 2", "x = 1"] and all(not c.metadata for c in added)


def test_grader_id_fallback_needs_an_exercise_cell() -> None:
    """Is a learner's check cell (which shares the exercise's grader id) never taken as the exercise?"""
    submission = learner(cell("print('hacked')", "other", markers.TAG_CHECK, "1.1"), cell(G, "ex-g"))
    assembly = assemble(template(), submission, name="sub.ipynb", exercise="01-x")
    assert assembly.missing == ("exercise 1.1",)


def test_only_exercise_sources_come_from_the_learner() -> None:
    """Are the learner's check cells, outputs, metadata and kernelspec all ignored?"""
    tampered_check = cell("# Check 1.1: f works\npass", "check-a", markers.TAG_CHECK, "1.1")
    tampered_check.outputs = [v4.new_output("stream", name="stdout", text="anything\n")]
    tampered_setup = cell("import os; os._exit(0)", "setup")
    exercise_f = cell(F, "ex-f")
    exercise_f.outputs = [v4.new_output("stream", name="stdout", text="cached output\n")]
    exercise_f.metadata["tags"] = ["raises-exception", "nbval-skip"]
    submission = learner(tampered_setup, exercise_f, tampered_check, cell(G, "ex-g"))
    submission.metadata["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    reference = template()
    nb = assemble(reference, submission, name="sub.ipynb", exercise="01-x").notebook

    expected = copy.deepcopy(reference)
    expected.cells[1].source, expected.cells[3].source = F, G
    assert nb == expected
    assert "kernelspec" not in nb.metadata


def test_template_is_not_modified() -> None:
    """Can grading one submission change the template the next one is assembled from?"""
    reference = template()
    before = copy.deepcopy(reference)
    assemble(reference, learner(cell(F, "ex-f"), cell(G, "ex-g")), name="sub.ipynb", exercise="01-x")
    assert reference == before


def test_a_different_exercise_is_invalid() -> None:
    """Does a notebook matching none of the exercise cells get a message saying what to do?"""
    with pytest.raises(InvalidNotebook, match=r"sub\.ipynb: this looks like a different exercise.*exercises/01-x"):
        assemble(template(), learner(cell(F, "zzz"), cell(G, "yyy")), name="sub.ipynb", exercise="01-x")


def test_unencodable_learner_text_cannot_break_the_run() -> None:
    """Is a lone surrogate (valid JSON, invalid UTF-8) replaced so the notebook can be written?"""
    submission = learner(cell("def f():\n    return 42  # \ud800", "ex-f"))
    nb = assemble(template(), submission, name="s", exercise="01-x").notebook
    written = nbformat.writes(nb).encode("utf-8")
    assert "return 42  # \ufffd" in written.decode("utf-8")

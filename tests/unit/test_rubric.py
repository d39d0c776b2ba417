"""Manual answers and their rubrics (grader/format/rubric.py): what a valid one is, what each mistake says.

Cells are built in code; no kernel runs here.
"""

from __future__ import annotations

from typing import Any

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader.errors import AuthoringError
from grader.format import markers
from grader.format.rubric import (
    Criterion,
    ManualAnswer,
    learner_answer,
    manual_answers,
    manual_problems,
    rubric_cell_id,
)

PLACE = "solutions/20-demo.ipynb, cell 3 (id 'why')"


def rubric(*points: object) -> list[dict[str, Any]]:
    return [{"points": p, "description": f"criterion worth {p}"} for p in points]


def answer_cell(
    grader: dict[str, Any] | None = None, *, cell_id: str = "why", kind: str = "markdown", source: str = "Because."
) -> NotebookNode:
    """A manual cell; ``grader`` replaces the default metadata (id 20.7, 4 points, rubric 2 + 2)."""
    maker = {"markdown": new_markdown_cell, "code": new_code_cell, "raw": new_raw_cell}[kind]
    cell = maker(source)
    cell.id = cell_id
    cell.metadata["tags"] = [markers.TAG_MANUAL]
    meta = {"id": "20.7", "points": 4, "title": "Why the small scorer ships", "rubric": rubric(2, 2)}
    cell.metadata[markers.META_GRADER] = meta if grader is None else grader
    return cell


def with_meta(**changes: object) -> dict[str, Any]:
    meta: dict[str, Any] = {"id": "20.7", "points": 4, "rubric": rubric(2, 2)}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def test_a_valid_rubric_has_no_problems() -> None:
    """Does a Markdown or code answer whose criteria add up to its points pass?"""
    assert manual_problems(answer_cell(), PLACE) == []
    assert manual_problems(answer_cell(kind="code", source="plot()"), PLACE) == []
    assert manual_problems(answer_cell(with_meta(points=3.5, rubric=rubric(1.5, 2))), PLACE) == []


@pytest.mark.parametrize(
    ("meta", "kind", "says"),
    [
        pytest.param(with_meta(id=None), "markdown", "needs metadata grader.id as a string", id="missing-id"),
        pytest.param(with_meta(id=7), "markdown", "(found 7)", id="id-not-a-string"),
        pytest.param(with_meta(id="seven"), "markdown", "(found 'seven')", id="id-not-numbers"),
        pytest.param(with_meta(points=None), "markdown", "grader.points as a positive number", id="missing-points"),
        pytest.param(with_meta(points=0, rubric=rubric(0)), "markdown", "(found 0)", id="zero-points"),
        pytest.param(with_meta(points=True), "markdown", "(found True)", id="points-a-bool"),
        pytest.param(with_meta(points="4"), "markdown", "(found '4')", id="points-a-string"),
        pytest.param(with_meta(rubric=None), "markdown", "needs metadata grader.rubric", id="missing-rubric"),
        pytest.param(with_meta(rubric=[]), "markdown", "a list of criteria", id="empty-rubric"),
        pytest.param(with_meta(rubric=[2, 2]), "markdown", "criterion 1 must be an object", id="criterion-not-object"),
        pytest.param(
            with_meta(rubric=[{"points": 2, "description": "ok"}, {"points": 2}]),
            "markdown",
            "rubric criterion 2 needs a description (found None)",
            id="criterion-without-description",
        ),
        pytest.param(
            with_meta(rubric=[{"points": 4, "description": "  "}]),
            "markdown",
            "rubric criterion 1 needs a description",
            id="blank-description",
        ),
        pytest.param(
            with_meta(rubric=[{"points": -1, "description": "x"}, {"points": 5, "description": "y"}]),
            "markdown",
            "rubric criterion 1 needs positive points (found -1)",
            id="negative-criterion",
        ),
        pytest.param(with_meta(title=""), "markdown", "grader.title must be a non-empty string", id="empty-title"),
        pytest.param(with_meta(), "raw", "must be a Markdown or a code cell", id="raw-cell"),
    ],
)
def test_each_problem_names_the_cell_and_the_fix(meta: dict[str, Any], kind: str, says: str) -> None:
    """Does each malformed manual cell get a message that names the cell and says what is wrong?"""
    problems = manual_problems(answer_cell(meta, kind=kind), PLACE)
    assert problems, f"{meta} should be refused"
    assert all(problem.startswith(PLACE) for problem in problems)
    assert any(says in problem for problem in problems), problems


def test_points_that_do_not_add_up_name_both_numbers() -> None:
    """Does a rubric of 2 + 1 on a 4-point answer say 3 and 4, and what to change?"""
    (problem,) = manual_problems(answer_cell(with_meta(rubric=rubric(2, 1))), PLACE)
    assert "answer 20.7 adds up to 3 points but the answer is worth 4" in problem
    assert "make the criteria's points add up" in problem


def test_manual_answers_reads_them_in_order_and_strictly() -> None:
    """Are answers read in notebook order with their rubric, and is a broken one refused, naming its cell?"""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            answer_cell(),
            answer_cell(
                with_meta(id="20.8", points=3, rubric=rubric(1, 2)), cell_id="plot", kind="code", source="x = 1"
            ),
        ]
    )
    first, second = manual_answers(nb)
    assert (first.id, first.title, first.points, first.cell_id, first.cell_type, first.index) == (
        "20.7",
        "Why the small scorer ships",
        4.0,
        "why",
        "markdown",
        1,
    )
    assert first.rubric == (Criterion(2.0, "criterion worth 2"), Criterion(2.0, "criterion worth 2"))
    assert (second.id, second.title, second.cell_type, second.label) == (
        "20.8",
        "answer 20.8",
        "code",
        "Answer 20.8: answer 20.8",
    )
    nb.cells[2].metadata[markers.META_GRADER]["points"] = 4
    with pytest.raises(AuthoringError, match=r"cell 3 \(id 'plot'\).*adds up to 3 points but the answer is worth 4"):
        manual_answers(nb)
    assert [a.points for a in manual_answers(nb, strict=False)] == [4.0, 4.0]


def test_rubric_cell_id() -> None:
    """Is the generated rubric cell's id the answer id with dots as dashes, under the reserved prefix?"""
    assert rubric_cell_id("20.7") == "rubric-20-7"
    assert rubric_cell_id("3") == markers.RUBRIC_ID_PREFIX + "3"


def _submission(*cells: NotebookNode) -> NotebookNode:
    return new_notebook(cells=[new_markdown_cell("# Mine"), *cells])


def test_learner_answer_by_cell_id_by_metadata_id_or_none() -> None:
    """Is the learner's answer found by cell id, else by the manual cell's grader id, and None when deleted?"""
    (answer,) = manual_answers(new_notebook(cells=[answer_cell()]))
    same_id = answer_cell(source="My answer.")
    assert learner_answer(_submission(same_id), answer) is same_id
    recreated = answer_cell(cell_id="a-new-id", source="Rewritten in a new cell.")
    assert learner_answer(_submission(recreated), answer) is recreated
    untagged = new_markdown_cell("Not an answer")
    untagged.metadata[markers.META_GRADER] = {"id": "20.7"}
    assert learner_answer(_submission(untagged), answer) is None
    assert learner_answer(_submission(), answer) is None


def test_manual_answer_round_trips_through_its_dict() -> None:
    """Does to_dict/from_dict give back the same answer (what the service stores and reads)?"""
    answer = ManualAnswer(
        id="20.7",
        title="Why the small scorer ships",
        points=4.0,
        rubric=(Criterion(2.5, "Names the paired difference"), Criterion(1.5, "Says what would change it")),
        cell_id="why",
        cell_type="code",
    )
    data = answer.to_dict()
    assert data["rubric"] == [
        {"points": 2.5, "description": "Names the paired difference"},
        {"points": 1.5, "description": "Says what would change it"},
    ]
    assert ManualAnswer.from_dict(data) == answer
    assert ManualAnswer.from_dict({"id": "1.1", "points": 1, "rubric": [{"points": 1, "description": "d"}]}).title == (
        "answer 1.1"
    )

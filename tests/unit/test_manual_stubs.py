"""Manual answers in `grader assign`: the learner's stub, the generated rubric cell, and the lint rules.

Notebooks are built in code; no kernel runs here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader import authoring
from grader.errors import AuthoringError, MarkerError, StaleExercises
from grader.format import markers
from grader.format.notebooks import read_notebook, write_notebook
from grader.format.rubric import rubric_cell_id
from grader.settings import load_settings

REPO_URL = "https://github.com/example-org/example-course"
PATH = "solutions/20-demo.ipynb"
BEGIN, END = markers.BEGIN_SOLUTION, markers.END_SOLUTION
MODEL_ANSWER = "The paired interval [-0.06, -0.03] lies below zero: MODEL-ANSWER-SECRET."
PLOT_SOLUTION = f"import math\n{BEGIN}\nprint('PLOT-SECRET', math.pi)\n{END}\nprint('given')"


def cell(kind: str, source: str, cell_id: str, *tags: str, grader: dict[str, Any] | None = None) -> NotebookNode:
    made = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    made.id = cell_id
    if tags:
        made.metadata["tags"] = list(tags)
    if grader is not None:
        made.metadata[markers.META_GRADER] = grader
    return made


def why_meta(**changes: object) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "id": "20.7",
        "points": 3,
        "title": "Why the small scorer ships",
        "rubric": [
            {"points": 2, "description": "Names the paired EM difference and its interval"},
            {"points": 1, "description": "Says what result would have changed the decision"},
        ],
    }
    meta.update(changes)
    return meta


def solution(*extra: NotebookNode, why: dict[str, Any] | None = None) -> NotebookNode:
    """Title, an exercise and its check, a Markdown manual answer (3 points), a code manual answer (2 points)."""
    why_cell = cell("markdown", MODEL_ANSWER, "why", markers.TAG_MANUAL, grader=why_meta() if why is None else why)
    why_cell["attachments"] = {"plot.png": {"image/png": "aGVsbG8="}}
    plot = cell(
        "code",
        PLOT_SOLUTION,
        "plot",
        markers.TAG_MANUAL,
        grader={"id": "20.8", "points": 2, "rubric": [{"points": 2, "description": "Reads the plot right"}]},
    )
    plot.outputs = [new_output("stream", name="stdout", text="PLOT-SECRET 3.14\n")]
    plot.execution_count = 4
    cells = [
        cell("markdown", "# Demo", "title"),
        cell(
            "code", f"def double(x):\n    {BEGIN}\n    return 2 * x\n    {END}", "ex", "exercise", grader={"id": "20.1"}
        ),
        cell(
            "code", "# Check 20.1: doubles\nassert double(2) == 4", "check", "check", grader={"id": "20.1", "points": 1}
        ),
        cell("markdown", "### 20.7 · Why does the small scorer ship?", "why-text"),
        why_cell,
        plot,
        *extra,
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def stub_of(nb: NotebookNode) -> NotebookNode:
    return authoring.make_exercise(nb, exercise_id="20-demo", repo_url=REPO_URL, branch="main")


def by_id(nb: NotebookNode, cell_id: str) -> NotebookNode:
    return next(c for c in nb.cells if c.get("id") == cell_id)


# --- the learner's stub ---------------------------------------------------------------------


def test_a_markdown_answer_becomes_the_placeholder_and_keeps_its_metadata() -> None:
    """Does the learner get the answer cell, same id, tags and rubric metadata, with the placeholder, no attachment?"""
    stub = stub_of(solution())
    why = by_id(stub, "why")
    assert why.source == markers.MARKDOWN_STUB
    assert why.metadata["tags"] == [markers.TAG_MANUAL]
    assert why.metadata[markers.META_GRADER] == why_meta()
    assert "attachments" not in why
    assert "MODEL-ANSWER-SECRET" not in str(stub)


def test_a_code_answer_has_its_solution_stripped_and_outputs_cleared() -> None:
    """Is a code answer stubbed like an exercise cell (the given code kept), without its outputs?"""
    plot = by_id(stub_of(solution()), "plot")
    assert plot.source == f"import math\n{markers.CODE_STUB}\nprint('given')"
    assert plot.outputs == [] and plot.execution_count is None
    assert plot.metadata[markers.META_GRADER]["id"] == "20.8"


def test_a_code_answer_without_markers_is_kept_as_it_is() -> None:
    """Is a code answer with nothing to hide (a plot to interpret) shipped unchanged?"""
    nb = solution()
    by_id(nb, "plot").source = "plot_latencies()"
    assert by_id(stub_of(nb), "plot").source == "plot_latencies()"


def test_the_rubric_cell_goes_right_above_each_answer() -> None:
    """Is there one generated rubric cell right above each answer, with its title, points and criteria?"""
    stub = stub_of(solution())
    ids = [c.get("id") for c in stub.cells]
    assert ids[ids.index("why") - 1] == rubric_cell_id("20.7") == "rubric-20-7"
    assert ids[ids.index("plot") - 1] == "rubric-20-8"
    assert sum(i.startswith(markers.RUBRIC_ID_PREFIX) for i in ids) == 2
    assert ids[-1] == markers.SUBMIT_ID
    rubric = by_id(stub, "rubric-20-7")
    assert rubric.cell_type == "markdown"
    assert rubric.source.splitlines() == [
        "**Answer 20.7 — Why the small scorer ships (3 points, graded by an instructor).**",
        "",
        "- 2 points: Names the paired EM difference and its interval",
        "- 1 point: Says what result would have changed the decision",
    ]
    assert by_id(stub, "rubric-20-8").source.splitlines()[0] == "**Answer 20.8 (2 points, graded by an instructor).**"


def test_the_solution_is_not_changed_and_equal_inputs_give_equal_stubs() -> None:
    """Is make_exercise pure (the solution keeps its model answer) and deterministic?"""
    nb = solution()
    first, second = stub_of(nb), stub_of(nb)
    assert first == second
    assert by_id(nb, "why").source == MODEL_ANSWER


# --- lint -------------------------------------------------------------------------------------


def lint_messages(nb: NotebookNode) -> str:
    with pytest.raises(AuthoringError) as caught:
        authoring.lint(nb, path=PATH)
    return str(caught.value)


def test_a_solution_with_manual_answers_lints_clean() -> None:
    assert authoring.lint(solution(), path=PATH) == []


def test_a_rubric_that_does_not_add_up_is_refused_naming_the_cell() -> None:
    """Does the lint say which cell, both totals, and what to change?"""
    message = lint_messages(solution(why=why_meta(points=4)))
    assert f"{PATH}, cell 5 (id 'why'): the rubric of answer 20.7 adds up to 3 points but the answer is worth 4" in (
        message
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param(
            cell("markdown", "x", "again", markers.TAG_MANUAL, grader=why_meta()),
            "answer id '20.7' is used 2 times",
            id="two-answers-one-id",
        ),
        pytest.param(
            cell("markdown", "x", "clash", markers.TAG_MANUAL, grader=why_meta(id="20.1")),
            "answer id '20.1' is also the id of the check in cell 3",
            id="answer-id-is-a-check-id",
        ),
        pytest.param(
            cell("markdown", "Notes", "rubric-20-9"),
            "ids starting with 'rubric-' are reserved",
            id="reserved-rubric-prefix",
        ),
        pytest.param(
            cell("code", "x = 1", "both", markers.TAG_MANUAL, markers.TAG_EXERCISE, grader=why_meta(id="20.9")),
            "tagged 'exercise' and 'manual'; a cell has one role",
            id="manual-and-exercise",
        ),
        pytest.param(
            cell("code", "print(1)", "both", markers.TAG_CHECK, markers.TAG_MANUAL, grader=why_meta(id="20.9")),
            "tagged 'manual' and 'check'; a cell has one role",
            id="manual-and-check",
        ),
        pytest.param(
            cell("markdown", "x", "no-rubric", markers.TAG_MANUAL, grader={"id": "20.9", "points": 2}),
            "needs metadata grader.rubric",
            id="no-rubric",
        ),
    ],
)
def test_lint_refuses(extra: NotebookNode, says: str) -> None:
    """Does each broken manual answer get a clear error?"""
    assert says in lint_messages(solution(extra))


def test_a_code_answer_with_unbalanced_markers_is_a_marker_error() -> None:
    nb = solution()
    by_id(nb, "plot").source = f"{BEGIN}\nprint(1)"
    with pytest.raises(MarkerError, match=r"cell 6 \(id 'plot'\).*is never closed"):
        authoring.lint(nb, path=PATH)


def test_a_code_answer_with_a_misspelt_marker_is_refused() -> None:
    nb = solution()
    by_id(nb, "plot").source = "#begin solution\nprint(1)\n# END SOLUTION"
    with pytest.raises(MarkerError, match="looks like a marker"):
        authoring.lint(nb, path=PATH)


def test_make_exercise_refuses_a_broken_rubric_on_its_own() -> None:
    """Without the lint first (verify calls make_exercise directly), is the rubric still checked?"""
    with pytest.raises(AuthoringError, match=r"solutions/20-demo.ipynb, cell 5 .*adds up to 3 points"):
        stub_of(solution(why=why_meta(points=4)))


# --- grader assign ------------------------------------------------------------------------------


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ROOT", "BUILD_DIR"):
        monkeypatch.delenv(markers.ENV_PREFIX + name, raising=False)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text(f"title: Demo\nrepository:\n  url: {REPO_URL}\n  branch: main\n")
    write_notebook(solution(), tmp_path / "solutions" / "20-demo.ipynb")
    return tmp_path


def test_assign_writes_the_rubric_once_and_is_idempotent(course: Path) -> None:
    """Does a second assign write nothing (one rubric cell per answer), and --check pass?"""
    settings = load_settings(course)
    assert authoring.assign(settings).written == (Path("exercises/20-demo.ipynb"),)
    target = course / "exercises" / "20-demo.ipynb"
    before = target.read_bytes()
    second = authoring.assign(settings)
    assert second.written == () and target.read_bytes() == before
    assert authoring.assign(settings, check=True).checked
    ids = [c.get("id") for c in read_notebook(target).cells]
    assert ids.count("rubric-20-7") == 1 and ids.count("rubric-20-8") == 1


def test_assign_check_finds_a_stale_rubric(course: Path) -> None:
    """When the author changes a criterion, does `assign --check` say the stub is out of date?"""
    settings = load_settings(course)
    authoring.assign(settings)
    nb = solution(why=why_meta(rubric=[{"points": 3, "description": "One criterion now"}]))
    write_notebook(nb, course / "solutions" / "20-demo.ipynb")
    with pytest.raises(
        StaleExercises, match=re.escape("exercises/20-demo.ipynb: out of date with solutions/20-demo.ipynb")
    ):
        authoring.assign(settings, check=True)
    authoring.assign(settings)
    assert (
        "- 3 points: One criterion now"
        in by_id(read_notebook(course / "exercises" / "20-demo.ipynb"), "rubric-20-7").source
    )


def test_assign_writes_nothing_when_a_rubric_does_not_add_up(course: Path) -> None:
    """Is a broken rubric refused by assign with nothing written?"""
    write_notebook(solution(why=why_meta(points=5)), course / "solutions" / "20-demo.ipynb")
    with pytest.raises(AuthoringError, match="adds up to 3 points but the answer is worth 5"):
        authoring.assign(load_settings(course))
    assert not (course / "exercises").exists()

"""Manual answers with real kernels: a small exercise with a Markdown and a code answer graded by a person.

The exercise (``98-manual``): one exercise cell, a code answer 8.8 (2 points) right after it, the
exercise's check (1 point) and a hidden check (2 points), and a Markdown answer 8.7 (3 points).
Grading must list the answers with their rubrics, never run them and never count them; `grader
check` the same; `grader verify` reports them. The bundle is built once for the module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code, write_course

from grader import authoring, cli
from grader.format import markers
from grader.format.notebooks import read_notebook
from grader.grading import verify
from grader.settings import Settings

pytestmark = pytest.mark.slow

EXERCISE = "98-manual"
DOUBLE = "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION"
WHY = {
    "id": "8.7",
    "points": 3,
    "title": "Why doubling",
    "rubric": [
        {"points": 2, "description": "Says why the factor is two"},
        {"points": 1, "description": "Gives an example"},
    ],
}
PLOT = {"id": "8.8", "points": 2, "rubric": [{"points": 2, "description": "Reads the plot"}]}
#: the learner's code answer: if grading or the self-check ran it, it would define double and leave a file
SNEAKY_ANSWER = (
    "from pathlib import Path\nPath('ran-the-manual-cell').write_text('yes')\n\n\ndef double(x):\n    return 2 * x"
)


def manual(kind: str, source: str, cell_id: str, meta: dict[str, object]) -> NotebookNode:
    cell = v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source)
    cell.id = cell_id
    cell.metadata["tags"] = [markers.TAG_MANUAL]
    cell.metadata[markers.META_GRADER] = meta
    return cell


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    title = v4.new_markdown_cell("# Doubling, explained")
    title.id = "title"
    nb.cells = [
        title,
        code(DOUBLE, "ex-double", markers.TAG_EXERCISE, {"id": "8.1"}),
        manual("code", "# BEGIN SOLUTION\nprint([double(x) for x in range(3)])\n# END SOLUTION", "plot", PLOT),
        code(
            "# Check 8.1: two doubles to four\nassert double(2) == 4",
            "check-1",
            markers.TAG_CHECK,
            {"id": "8.1", "points": 1},
        ),
        code(
            "# Check 8.2: doubling large numbers\nprint(double(10**6))",
            "check-2",
            markers.TAG_HIDDEN_CHECK,
            {"id": "8.2", "points": 2},
        ),
        manual("markdown", "Because a pair is two: `double(3)` is 6.", "why", WHY),
    ]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = write_course(tmp_path_factory.mktemp("course"), EXERCISE, solution())
    authoring.assign(settings)
    return settings


@pytest.fixture
def in_course(course: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(course.root)
    return course


def learner_stub(course: Settings) -> NotebookNode:
    return read_notebook(course.exercises_dir / f"{EXERCISE}.ipynb")


def test_grade_json_lists_manual_answers_without_counting_them(
    in_course: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does `grader grade --json` give the stub 0/3 and the solution 3/3, each with both rubrics under "manual"?"""
    stub = tmp_path / "stub.ipynb"
    nbformat.write(learner_stub(in_course), stub)
    solved = tmp_path / "solved.ipynb"
    solved.write_bytes((in_course.solutions_dir / f"{EXERCISE}.ipynb").read_bytes())
    code_ = cli.main(["grade", "--json", "--exercise", EXERCISE, str(stub), str(solved)])
    stub_json, solved_json = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (stub_json["score"], stub_json["max_score"]) == (0, 3)
    assert (solved_json["score"], solved_json["max_score"]) == (3, 3)
    assert code_ == 1  # the stub lost points
    for graded in (stub_json, solved_json):
        assert [check["id"] for check in graded["checks"]] == ["8.1", "8.2"]
        assert graded["manual"] == [
            {
                "id": "8.8",
                "title": "answer 8.8",
                "points": 2.0,
                "rubric": [{"points": 2.0, "description": "Reads the plot"}],
                "cell_id": "plot",
                "cell_type": "code",
            },
            {
                "id": "8.7",
                "title": "Why doubling",
                "points": 3.0,
                "rubric": [
                    {"points": 2.0, "description": "Says why the factor is two"},
                    {"points": 1.0, "description": "Gives an example"},
                ],
                "cell_id": "why",
                "cell_type": "markdown",
            },
        ]


def test_a_learners_code_answer_never_runs_in_grading_or_self_check(
    in_course: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Can a code answer that defines the exercise's function, before the checks, earn their points?

    It must not run at all: in grading (the checks would pass) or in `grader check` (the file would exist).
    """
    nb = learner_stub(in_course)
    next(c for c in nb.cells if c.get("id") == "plot").source = SNEAKY_ANSWER
    mine = tmp_path / "mine.ipynb"
    nbformat.write(nb, mine)
    assert cli.main(["grade", "--json", str(mine)]) == 1
    graded = json.loads(capsys.readouterr().out)
    assert (graded["score"], graded["max_score"]) == (0, 3)
    assert cli.main(["check", str(mine)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{mine}: 0/1 points"
    assert out[-2:] == [
        "  MANUAL  Answer 8.8: answer 8.8 (2 points): graded by an instructor, not counted here",
        "  MANUAL  Answer 8.7: Why doubling (3 points): graded by an instructor, not counted here",
    ]
    assert not (tmp_path / "ran-the-manual-cell").exists()


def test_verify_reports_the_manual_answers(course: Settings) -> None:
    """Does `grader verify` pass the exercise and list each answer with its points and rubric total?"""
    report = verify.verify(course, [EXERCISE], reruns=2)
    assert report.ok, verify.render_text(report)
    lines = verify.render_text(report).splitlines()
    assert lines[0].startswith(f"ok    {EXERCISE}: solution 3/3, stub 0, 2 stable gradings")
    assert lines[1:] == [
        "        manual  Answer 8.8: answer 8.8: 2 points, rubric 2 = 2, graded by an instructor",
        "        manual  Answer 8.7: Why doubling: 3 points, rubric 2 + 1 = 3, graded by an instructor",
    ]


def test_verify_refuses_a_rubric_that_does_not_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does verify fail with the lint's message, naming both totals, before running anything?"""
    nb = solution()
    nb.cells[5].metadata[markers.META_GRADER] = {**WHY, "points": 4}
    settings = write_course(tmp_path, EXERCISE, nb)
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(settings.root)
    assert cli.main(["verify", EXERCISE]) == 8
    out = capsys.readouterr().out
    assert "FAIL  98-manual:" in out
    assert "cell 6 (id 'why'): the rubric of answer 8.7 adds up to 3 points but the answer is worth 4" in out

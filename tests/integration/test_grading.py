"""Grading with real kernels: a small exercise built in code, and submissions that misbehave.

The exercise (``99-toy``): two exercise cells, one visible check and two hidden checks; one
hidden check prints a temporary path, so even the solution only passes through the sanitizers.
The bundle is built once per module; every test grades a fresh submission in a fresh kernel.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code, write_course

from grader import cli
from grader.errors import AuthoringError
from grader.format import markers
from grader.grading.bundle import Bundle, build_bundle
from grader.grading.engine import grade_notebook, grade_submissions
from grader.grading.results import Result
from grader.grading.selfcheck import check_notebook
from grader.settings import Settings

pytestmark = pytest.mark.slow

EXERCISE = "99-toy"
MEAN = '''def mean_of(values):
    """The arithmetic mean of a list of numbers."""
    # BEGIN SOLUTION
    return sum(values) / len(values)
    # END SOLUTION'''
SAVE = '''def save_values(values, folder):
    """Write one value per line to folder/values.txt and return that path."""
    # BEGIN SOLUTION
    path = Path(folder) / "values.txt"
    path.write_text("".join(f"{v}\\n" for v in values))
    return path
    # END SOLUTION'''
CHECK_1 = '# Check 9.1: the mean of [1, 2, 3] is 2\nassert mean_of([1, 2, 3]) == 2, "mean_of([1, 2, 3]) should be 2"'
CHECK_2 = "# Check 9.2: the mean of a longer list\nprint(mean_of([0.1, 0.2, 0.4]))"
CHECK_3 = (
    "# Check 9.3: the file holds one value per line\n"
    "saved = save_values([1, 2.5], tempfile.mkdtemp())\nprint(saved)\nprint(saved.read_text())"
)


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    title = v4.new_markdown_cell("# A toy exercise")
    title.id = "title"
    nb.cells = [
        title,
        code("import tempfile\nfrom pathlib import Path", "setup"),
        code(MEAN, "ex-mean", markers.TAG_EXERCISE, {"id": "9.1"}),
        code(CHECK_1, "check-1", markers.TAG_CHECK, {"id": "9.1", "points": 1}),
        code(CHECK_2, "check-2", markers.TAG_HIDDEN_CHECK, {"id": "9.2", "points": 2}),
        code(SAVE, "ex-save", markers.TAG_EXERCISE, {"id": "9.2"}),
        code(CHECK_3, "check-3", markers.TAG_HIDDEN_CHECK, {"id": "9.3", "points": 2}),
    ]
    return nb


def learner_copy(**sources: str) -> NotebookNode:
    """The solution as a learner would submit it (hidden checks gone), exercise sources replaced by id."""
    nb = solution()
    nb.cells = [c for c in nb.cells if markers.TAG_HIDDEN_CHECK not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.id in sources:
            cell.source = sources[cell.id]
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}
    return nb


def cell_by_id(nb: NotebookNode, cell_id: str) -> NotebookNode:
    return next(c for c in nb.cells if c.id == cell_id)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return write_course(tmp_path_factory.mktemp("course"), EXERCISE, solution())


@pytest.fixture(scope="module")
def bundle(course: Settings) -> Bundle:
    return build_bundle(course, EXERCISE)


def grade(settings: Settings, nb: NotebookNode | bytes, **kwargs: object) -> Result:
    data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
    return grade_notebook(settings, data, name="submission.ipynb", **kwargs)  # type: ignore[arg-type]


def summary(result: Result) -> list[tuple[str, str, float]]:
    return [(c.id, c.status, c.points) for c in result.checks]


# --- the bundle ---------------------------------------------------------------------------


def test_bundle_keeps_reference_outputs_out_of_exercises(course: Settings, bundle: Bundle) -> None:
    """Is the bundle under _build/grading, with reference outputs and hidden checks, and no solution code?"""
    assert bundle.path == course.bundle_dir / EXERCISE
    template = bundle.template
    assert "return sum(values)" not in nbformat.writes(template)
    reported = cell_by_id(template, "check-2").outputs[0]["data"]
    assert reported["text/plain"].startswith("0.2333")  # printed values are reported typed (grading.checkvalues)
    assert reported["application/vnd.mlcourse.check-values+json"]["values"][0]["t"] == "float"
    assert [c.check_id for c in bundle.checks] == ["9.1", "9.2", "9.3"]
    assert not (course.exercises_dir / "template.ipynb").exists()


def test_bundle_is_cached(course: Settings, bundle: Bundle) -> None:
    """Does an unchanged solution reuse the bundle instead of running it again?"""
    stamp = (bundle.path / "bundle.json").stat().st_mtime_ns
    again = build_bundle(course, EXERCISE)
    assert again.key == bundle.key
    assert (bundle.path / "bundle.json").stat().st_mtime_ns == stamp


def test_silent_hidden_check_is_refused(course: Settings, tmp_path: Path) -> None:
    """Does a hidden check that prints nothing stop the bundle, naming the cell?"""
    nb = solution()
    cell_by_id(nb, "check-2").source = "# Check 9.2: the mean of a longer list\nassert mean_of([1, 3]) == 2"
    settings = dataclasses.replace(course, root=tmp_path, build_dir=tmp_path / "_build")
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "98-silent.ipynb")
    with pytest.raises(AuthoringError, match="hidden check"):
        build_bundle(settings, "98-silent")


# --- solutions and stubs --------------------------------------------------------------------


def test_solution_scores_full_marks(course: Settings, bundle: Bundle) -> None:
    """Does the solution itself, submitted, earn every point (through the sanitizers)?"""
    result = grade(course, learner_copy())
    assert (result.status, result.score, result.max_score) == ("graded", 5, 5)


def test_stub_scores_zero_on_every_check(course: Settings, bundle: Bundle) -> None:
    """Does the untouched exercise earn nothing, each check saying which exercise is not done?"""
    stub = learner_copy(
        **{
            "ex-mean": cell_by_id(bundle.template, "ex-mean").source,
            "ex-save": cell_by_id(bundle.template, "ex-save").source,
        }
    )
    result = grade(course, stub)
    assert result.score == 0
    assert [c.message for c in result.checks] == [
        "not run: exercise 9.1 raised NotImplementedError",
        "not run: exercise 9.1 raised NotImplementedError",
        "not run: exercise 9.2 raised NotImplementedError",
    ]


# --- robustness ------------------------------------------------------------------------------


def test_moved_cells(course: Settings, bundle: Bundle) -> None:
    """Are exercise cells found when the learner reorders the notebook?"""
    nb = learner_copy()
    nb.cells.reverse()
    assert grade(course, nb).score == 5


@pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId")
def test_duplicated_cells(course: Settings, bundle: Bundle) -> None:
    """With a cell duplicated (same id), does the first copy count?"""
    nb = learner_copy()
    wrong = copy.deepcopy(cell_by_id(nb, "ex-mean"))
    wrong.source = "def mean_of(values):\n    return 0"
    nb.cells.append(wrong)
    assert grade(course, nb).score == 5


def test_deleted_exercise_cell(course: Settings, bundle: Bundle) -> None:
    """When the learner deleted an exercise cell, do only its checks score zero, and does the result say so?"""
    nb = learner_copy()
    nb.cells = [c for c in nb.cells if c.id != "ex-save"]
    result = grade(course, nb)
    assert summary(result) == [("9.1", "pass", 1), ("9.2", "pass", 2), ("9.3", "not-run", 0)]
    assert "exercise 9.2 not found" in result.message


def test_added_cells_and_tampered_checks_are_ignored(course: Settings, bundle: Bundle) -> None:
    """Can extra cells or an edited check cell change the verdict? (They must not.)"""
    nb = learner_copy(**{"ex-mean": "def mean_of(values):\n    return 0"})
    cell_by_id(nb, "check-1").source = "# Check 9.1: the mean of [1, 2, 3] is 2\npass"
    nb.cells.insert(0, code("def mean_of(values):\n    return sum(values) / len(values)", "added"))
    nb.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "x", "language": "python"}
    result = grade(course, nb)
    assert summary(result) == [("9.1", "fail", 0), ("9.2", "fail", 0), ("9.3", "pass", 2)]
    assert result.checks[0].message == "AssertionError: mean_of([1, 2, 3]) should be 2"
    assert result.checks[1].message == "output differs from the reference"


def test_kernel_death_mid_run(course: Settings, bundle: Bundle) -> None:
    """When learner code kills the kernel, are later checks not run with the reason, and earlier ones kept?"""
    nb = learner_copy(**{"ex-save": "import os\nos._exit(1)"})
    result = grade(course, nb)
    assert summary(result) == [("9.1", "pass", 1), ("9.2", "pass", 2), ("9.3", "not-run", 0)]
    assert result.checks[2].message == "not run: the kernel died in exercise 9.2 (os._exit or a crash)"


def test_cell_timeout_fails_that_check(course: Settings, bundle: Bundle) -> None:
    """Does a check stuck in the learner's loop fail with a timeout, and grading go on after it?"""
    settings = dataclasses.replace(course, cell_timeout_s=2.0)
    nb = learner_copy(**{"ex-mean": "def mean_of(values):\n    while True:\n        pass"})
    result = grade(settings, nb)
    assert summary(result) == [("9.1", "fail", 0), ("9.2", "fail", 0), ("9.3", "pass", 2)]
    assert result.checks[0].message == "timed out after 2 s (the limit for one cell)"


def test_noisy_but_correct_work_passes(course: Settings, bundle: Bundle) -> None:
    """Do warnings, progress bars, stderr and printed temp paths leave a correct answer at full marks?"""
    noisy_mean = (
        "import sys, warnings, tempfile\nfrom tqdm import tqdm\n"
        "print('scratch space:', tempfile.mkdtemp())\n"
        "def mean_of(values):\n"
        "    warnings.warn('this is slow')\n"
        "    print('progress on stderr', file=sys.stderr)\n"
        "    total = 0\n"
        "    for v in tqdm(values, file=sys.stdout):\n"
        "        total += v\n"
        "    return total / len(values)"
    )
    result = grade(course, learner_copy(**{"ex-mean": noisy_mean}))
    assert result.score == 5, [c.message for c in result.checks]


# --- malformed input -------------------------------------------------------------------------


def _nbformat3() -> bytes:
    return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}).encode()


def _no_cells() -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(b"this is not json", "not valid JSON", id="not-json"),
        pytest.param(_nbformat3(), "format 3 is not supported", id="nbformat-3"),
        pytest.param(_no_cells(), "not a Jupyter notebook", id="cells-missing"),
    ],
)
def test_malformed_input_is_invalid(course: Settings, data: bytes, says: str) -> None:
    """Does a broken upload get status invalid and a message that says what to do?"""
    result = grade(course, data, exercise=EXERCISE)
    assert result.status == "invalid"
    assert says in result.message
    assert result.message.startswith("submission.ipynb: ")


def test_a_50_mb_file_is_invalid(course: Settings, tmp_path: Path) -> None:
    """Is a 50 MB upload refused with advice, without being read?"""
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as stream:
        stream.truncate(50 * 1024 * 1024)
    result = grade_notebook(course, huge, exercise=EXERCISE)
    assert result.status == "invalid"
    assert "the file is 52.4 MB, over the" in result.message and "clear the outputs" in result.message


def test_wrong_exercise_is_invalid(course: Settings, bundle: Bundle) -> None:
    """Does a notebook from another exercise say so instead of scoring zero?"""
    other = v4.new_notebook()
    other.cells = [code("def something_else():\n    pass", "unrelated", markers.TAG_EXERCISE, {"id": "4.1"})]
    result = grade(course, other, exercise=EXERCISE)
    assert result.status == "invalid"
    assert "looks like a different exercise" in result.message


@pytest.mark.parametrize(
    ("metadata", "exercise", "says"),
    [({}, None, "does not say which exercise"), ({}, "00-nope", "unknown exercise '00-nope'; known exercises: 99-toy")],
)
def test_unknown_exercise_is_invalid(
    course: Settings, metadata: dict[str, object], exercise: str | None, says: str
) -> None:
    """Without a known exercise id, is the submission invalid with the list of known exercises?"""
    nb = learner_copy()
    nb.metadata = metadata
    result = grade(course, nb, exercise=exercise)
    assert result.status == "invalid" and says in result.message


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def in_course(course: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(course.root)
    return course


def _write(folder: Path, name: str, nb: NotebookNode) -> Path:
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_cli_grade_json_and_jobs(
    in_course: Settings, bundle: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does `grader grade --json --jobs 2` print one schema object per submission, in order?"""
    paths = [
        _write(tmp_path, "full.ipynb", learner_copy()),
        _write(tmp_path, "half.ipynb", learner_copy(**{"ex-save": "def save_values(values, folder):\n    return 0"})),
        tmp_path / "missing.ipynb",
    ]
    code_ = cli.main(["grade", "--json", "--jobs", "2", "--html", str(tmp_path / "f.html"), *map(str, paths)])
    lines = capsys.readouterr().out.splitlines()
    objects = [json.loads(line) for line in lines]
    assert [o["submission"] for o in objects] == [str(p) for p in paths]
    assert [(o["status"], o["score"]) for o in objects] == [("graded", 5), ("graded", 3), ("invalid", 0)]
    for o in objects[:2]:
        assert {"exercise", "status", "score", "max_score", "duration_s", "device", "checks"} <= set(o)
        assert set(o["checks"][0]) == {"id", "name", "hidden", "points", "max_points", "status", "message"}
    assert code_ == 4
    assert "Grading feedback" in (tmp_path / "f.html").read_text(encoding="utf-8")


def test_cli_check_prints_pass_fail_lines(
    in_course: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does `grader check` run the visible checks only and print one line per check?"""
    nb = learner_copy(**{"ex-mean": "def mean_of(values):\n    return 0"})
    code_ = cli.main(["check", str(_write(tmp_path, "mine.ipynb", nb))])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'mine.ipynb'}: 0/1 points"
    assert out[1].split()[:3] == ["FAIL", "Check", "9.1:"]
    assert out[2].strip() == "AssertionError: mean_of([1, 2, 3]) should be 2"
    assert len(out) == 3 and code_ == 1


def test_check_passes_a_correct_notebook(in_course: Settings, tmp_path: Path) -> None:
    """Does the self-check pass a correct notebook, with the kernel in the notebook's folder?"""
    nb = learner_copy()
    nb.cells.append(code("import os\nassert os.path.exists('data.txt')", "reads-local-file"))
    (tmp_path / "data.txt").write_text("x", encoding="utf-8")
    result = check_notebook(in_course, _write(tmp_path, "mine.ipynb", nb))
    assert (result.status, result.score, result.max_score) == ("graded", 1, 1)


def test_grade_submissions_in_parallel(course: Settings, bundle: Bundle, tmp_path: Path) -> None:
    """Do three submissions graded two at a time come back in input order with their own scores?"""
    wrong = "def mean_of(values):\n    return 0"
    paths = [
        _write(tmp_path, "a.ipynb", learner_copy()),
        _write(tmp_path, "b.ipynb", learner_copy(**{"ex-mean": wrong})),
        _write(tmp_path, "c.ipynb", learner_copy()),
    ]
    graded = grade_submissions(course, paths, exercise=None, jobs=2)
    assert [r.submission for r in graded] == [str(p) for p in paths]
    assert [r.score for r in graded] == [5, 2, 5]

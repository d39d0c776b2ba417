"""An exercise that ships a data file, graded with real kernels: the file is in the kernel's working
directory, read-only, in the reference run, in sandboxed and unsandboxed grading, in ``grader verify``
and in the self-check.

The exercise (``98-tickets``) counts the urgent tickets of ``data/tickets.csv``, declared in the
solution's metadata ``grader.files`` and kept in ``solutions/data/``.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode, v4
from toy_course import code

from grader import authoring
from grader.format import markers
from grader.grading.bundle import FILES_NAME, Bundle, build_bundle
from grader.grading.engine import grade_notebook
from grader.grading.results import Result
from grader.grading.runner import run_notebook
from grader.grading.selfcheck import check_notebook
from grader.grading.verify import verify
from grader.sandbox.doctor import sandbox_available
from grader.sandbox.limits import ResourceLimits
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

EXERCISE = "98-tickets"
CSV = "id,priority\n1,high\n2,low\n3,high\n4,low\n"
COUNT = '''import csv


def count_urgent(path):
    """How many tickets in the CSV file at path have priority 'high'."""
    # BEGIN SOLUTION
    with open(path, newline="") as handle:
        return sum(row["priority"] == "high" for row in csv.DictReader(handle))
    # END SOLUTION'''
CHECK = '# Check 8.1: two urgent tickets\nassert count_urgent("data/tickets.csv") == 2'
HIDDEN = (
    "# Check 8.2: the urgent ticket count, and the file as shipped\n"
    'print(count_urgent("data/tickets.csv"), len(open("data/tickets.csv").readlines()))'
)
TAMPER = """import csv


def count_urgent(path):
    try:  # make every ticket urgent, then count
        with open(path, "a") as handle:
            handle.write("5,high\\n6,high\\n")
    except OSError as exc:
        print("refused:", type(exc).__name__)
    with open(path, newline="") as handle:
        return sum(row["priority"] == "high" for row in csv.DictReader(handle))"""

needs_sandbox = pytest.mark.skipif(not sandbox_available(), reason="needs the grading sandbox (grader doctor)")


def solution() -> NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata[markers.META_GRADER] = {markers.META_FILES: ["data/tickets.csv"]}
    title = v4.new_markdown_cell("# Urgent tickets")
    title.id = "title"
    nb.cells = [
        title,
        code(COUNT, "ex-count", markers.TAG_EXERCISE, {"id": "8.1"}),
        code(CHECK, "check-1", markers.TAG_CHECK, {"id": "8.1", "points": 1}),
        code(HIDDEN, "check-2", markers.TAG_HIDDEN_CHECK, {"id": "8.2", "points": 2}),
    ]
    return nb


def learner(source: str = COUNT) -> bytes:
    nb = solution()
    nb.cells = [c for c in nb.cells if c.id != "check-2"]
    nb.cells[1].source = source
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: EXERCISE}  # its exercise, not its files
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("course")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (root / "_config.yml").write_text(
        "title: toy\nrepository:\n  url: https://github.com/example/toy\n  branch: main\n", encoding="utf-8"
    )
    (root / "solutions" / "data").mkdir(parents=True)
    (root / "solutions" / "data" / "tickets.csv").write_text(CSV, encoding="utf-8")
    nbformat.write(solution(), root / "solutions" / f"{EXERCISE}.ipynb")
    return load_settings(
        root, build_dir=root / "_build", cell_timeout_s=60.0, grading_timeout_s=120.0, kernel_name="python3"
    )


@pytest.fixture(scope="module")
def bundle(course: Settings) -> Bundle:
    return build_bundle(course, EXERCISE)


def grade(settings: Settings, data: bytes) -> Result:
    return grade_notebook(settings, data, name="submission.ipynb")


def summary(result: Result) -> list[tuple[str, str, float]]:
    return [(c.id, c.status, c.points) for c in result.checks]


@needs_sandbox
def test_the_reference_run_reads_the_file_and_the_bundle_keeps_it(course: Settings, bundle: Bundle) -> None:
    """Did the solution's reference run read the shipped file (in the sandbox), and does the bundle keep a copy?"""
    assert course.sandbox
    assert bundle.files == {"data/tickets.csv": bundle.path / FILES_NAME / "data" / "tickets.csv"}
    assert bundle.files["data/tickets.csv"].read_text() == CSV
    hidden = next(c for c in bundle.template.cells if c.id == "check-2")
    assert hidden.outputs, "the hidden check reported nothing"


@needs_sandbox
def test_a_learner_reading_the_file_gets_full_marks_in_the_sandbox(course: Settings, bundle: Bundle) -> None:
    result = grade(course, learner())
    assert (result.status, result.score, result.max_score) == ("graded", 3, 3)
    assert result.isolation == "bubblewrap sandbox"


@needs_sandbox
def test_a_learner_cannot_change_the_file(course: Settings, bundle: Bundle) -> None:
    """Is a learner's write to the shipped file refused, so the grade and the bundle's copy stay as they are?"""
    result = grade(course, learner(TAMPER))
    assert summary(result) == [("8.1", "pass", 1), ("8.2", "pass", 2)]  # the count was not inflated
    assert bundle.files["data/tickets.csv"].read_text() == CSV


@needs_sandbox
@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandbox", "unsafe-no-sandbox"])
def test_writing_the_file_raises_in_the_kernel(tmp_path: Path, sandboxed: bool) -> None:
    """In the kernel, does writing to a shipped file raise PermissionError or another OSError?"""
    source = tmp_path / "tickets.csv"
    source.write_text(CSV)
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        code("print(open('data/tickets.csv').read().count('high'))", "read"),
        code("open('data/tickets.csv', 'a').write('5,high')", "write"),
    ]
    outcome = run_notebook(
        nb,
        kernel_name="python3",
        cell_timeout_s=60,
        wall_timeout_s=120,
        mode="run",
        sandbox=ResourceLimits() if sandboxed else None,
        files={"data/tickets.csv": source},
    )
    assert outcome.cells[0]["status"] == "passed"
    write = outcome.cells[1]
    if sandboxed or os.geteuid() != 0:  # root outside a sandbox writes to any file
        assert (write["status"], write.get("ename")) in {("failed", "PermissionError"), ("failed", "OSError")}
    assert source.read_text() == CSV  # the run had its own copy


def test_unsandboxed_grading_gets_the_files_too(course: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With --unsafe-no-sandbox, are the files in the kernel's (fresh) working directory as well?"""
    settings = load_settings(
        course.root,
        build_dir=tmp_path_factory.mktemp("unsafe-build"),
        cell_timeout_s=60.0,
        grading_timeout_s=120.0,
        kernel_name="python3",
        sandbox=False,
    )
    result = grade(settings, learner())
    assert (result.status, result.score, result.max_score) == ("graded", 3, 3)


@needs_sandbox
def test_verify_proves_the_exercise(course: Settings, bundle: Bundle) -> None:
    """Does `grader verify` give the solution full marks and the stub zero, with the file in place?"""
    report = verify(course, [EXERCISE], jobs=2)
    assert report.ok, report
    (only,) = report.exercises
    assert (only.solution_score, only.stub_score) == (3, 0)


@needs_sandbox
def test_changing_the_file_rebuilds_the_bundle(tmp_path: Path, course: Settings) -> None:
    """Is a bundle rebuilt when a shipped file changes, so grading never compares with stale reference outputs?"""
    root = tmp_path / "course"
    shutil.copytree(course.root, root, ignore=shutil.ignore_patterns("_build"))
    settings = load_settings(
        root, build_dir=root / "_build", cell_timeout_s=60.0, grading_timeout_s=120.0, kernel_name="python3"
    )
    first = build_bundle(settings, EXERCISE)
    (root / "solutions" / "data" / "tickets.csv").write_text(CSV + "5,low\n")
    second = build_bundle(settings, EXERCISE)
    assert first.key != second.key
    assert second.files["data/tickets.csv"].read_text() == CSV + "5,low\n"
    before, after = (next(c for c in b.template.cells if c.id == "check-2").outputs for b in (first, second))
    assert before != after


def test_self_check_finds_the_files_next_to_the_exercise_or_copies_them(course: Settings, tmp_path: Path) -> None:
    """Does `grader check` pass in exercises/ (files beside it), and elsewhere get the missing files copied?"""
    authoring.assign(course)
    exercise = course.exercises_dir / f"{EXERCISE}.ipynb"
    assert (course.exercises_dir / "data" / "tickets.csv").read_text() == CSV
    solved = nbformat.reads(exercise.read_text(), as_version=4)
    solved.cells = [copy.deepcopy(c) for c in solved.cells]
    next(c for c in solved.cells if c.id == "ex-count").source = COUNT
    nbformat.write(solved, exercise)
    try:
        assert check_notebook(course, exercise).score == 1
    finally:
        authoring.assign(course)
    elsewhere = tmp_path / "mine.ipynb"
    nbformat.write(solved, elsewhere)
    result = check_notebook(course, elsewhere)
    assert (result.status, result.score) == ("graded", 1)
    assert (tmp_path / "data" / "tickets.csv").read_text() == CSV

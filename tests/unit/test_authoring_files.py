"""Files an exercise ships (metadata ``grader.files``): what a declaration may say, and what ``grader assign``
does with them (copies next to the exercise, stale and orphan copies, the Colab cell that fetches them).

Grading with them, read-only in the sandbox, is in ``tests/integration/test_exercise_files.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import authoring, cli
from grader.authoring import files
from grader.errors import AuthoringError, StaleExercises
from grader.format import markers
from grader.format.notebooks import read_notebook, write_notebook
from grader.settings import load_settings

PATH = "solutions/12-tickets.ipynb"
CSV = "id,priority\n1,high\n2,low\n"


def solution(declared: object = ("data/tickets.csv",)) -> NotebookNode:
    """A small solution that reads a shipped CSV; ``declared`` goes in ``metadata.grader.files`` as it is."""
    title = new_markdown_cell("# Tickets")
    title.id = "title"
    ex = new_code_cell(
        "import csv\n\ndef count_high(path):\n    # BEGIN SOLUTION\n"
        '    return sum(row["priority"] == "high" for row in csv.DictReader(open(path)))\n    # END SOLUTION'
    )
    ex.id, ex.metadata = "ex-1", {"tags": [markers.TAG_EXERCISE], markers.META_GRADER: {"id": "12.1"}}
    check = new_code_cell('# Check 12.1: one ticket is urgent\nprint(count_high("data/tickets.csv"))')
    check.id = "check-1"
    check.metadata = {"tags": [markers.TAG_HIDDEN_CHECK], markers.META_GRADER: {"id": "12.1", "points": 1}}
    nb = new_notebook(cells=[title, ex, check])
    nb.metadata[markers.META_GRADER] = {markers.META_FILES: list(declared) if isinstance(declared, tuple) else declared}
    return nb


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A course with one solution that ships solutions/data/tickets.csv."""
    for name in ("ROOT", "BUILD_DIR"):
        monkeypatch.delenv(markers.ENV_PREFIX + name, raising=False)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text(
        "repository:\n  url: https://github.com/example-org/example-course\n  branch: main\n", encoding="utf-8"
    )
    (tmp_path / "solutions" / "data").mkdir(parents=True)
    (tmp_path / "solutions" / "data" / "tickets.csv").write_text(CSV, encoding="utf-8")
    write_notebook(solution(), tmp_path / PATH)
    return tmp_path


# --- the declaration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        pytest.param(["/etc/passwd"], "'/etc/passwd' is an absolute path", id="absolute"),
        pytest.param(["C:/data/x.csv"], "is an absolute path", id="drive"),
        pytest.param(["../secrets.csv"], "'../secrets.csv' leaves solutions/", id="parent"),
        pytest.param(["data/../../grader/settings.py"], "leaves solutions/", id="climbs-out"),
        pytest.param(["data\\x.csv"], "leaves solutions/", id="backslash"),
        pytest.param(["data/my tickets.csv"], "each part of the path is letters", id="space"),
        pytest.param(["./data/x.csv"], "each part of the path", id="dot-part"),
        pytest.param([".env"], "not starting with a dot", id="hidden"),
        pytest.param(["other.ipynb"], "is a notebook", id="notebook"),
        pytest.param(["data/x.csv", "data/x.csv"], "'data/x.csv' is listed twice", id="twice"),
        pytest.param([3], "3 is not a path", id="number"),
        pytest.param("data/x.csv", "must be a list of paths", id="not-a-list"),
    ],
)
def test_lint_refuses_a_declaration_that_could_escape_or_clash(declared: object, says: str) -> None:
    """Does lint refuse a declared path that is absolute, climbs out, clashes or is odd, naming it?"""
    with pytest.raises(AuthoringError) as caught:
        authoring.lint(solution(declared), path=PATH)
    assert f"{PATH}: metadata grader.files" in str(caught.value)
    assert says in str(caught.value)


def test_a_clean_declaration_passes_lint() -> None:
    """Do ordinary relative paths, nested or not, pass?"""
    assert authoring.lint(solution(["data/tickets.csv", "figure_1.png", "a/b/c-d.v2.json"]), path=PATH) == []


def _declared(course: Path, nb: NotebookNode) -> dict[str, Path]:
    return files.declared_files(nb, root=course, solutions_dir=course / "solutions", path=PATH)


def test_declared_files_are_found_under_solutions(course: Path) -> None:
    """Is each declared path the file under solutions/ that the solution's own code opens?"""
    assert _declared(course, solution()) == {"data/tickets.csv": course / "solutions" / "data" / "tickets.csv"}


def test_missing_files_and_folders_are_refused_all_at_once(course: Path) -> None:
    """Are a missing file and a folder both named, in one error?"""
    (course / "solutions" / "figures").mkdir()
    with pytest.raises(AuthoringError) as caught:
        _declared(course, solution(["data/missing.csv", "figures", "data/tickets.csv"]))
    message = str(caught.value)
    assert "'data/missing.csv': there is no solutions/data/missing.csv" in message
    assert "'figures': not a plain file" in message


def test_a_link_out_of_the_repository_is_refused(course: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Is a link that leads out of the repository refused, while one within it is allowed?"""
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    outside.write_text("secret")
    (course / "solutions" / "data" / "leak.csv").symlink_to(outside)
    with pytest.raises(AuthoringError, match=r"'data/leak\.csv': a link to .*, outside the repository"):
        _declared(course, solution(["data/leak.csv"]))
    (course / "shared").mkdir()
    (course / "shared" / "lesson.csv").write_text(CSV)
    (course / "solutions" / "data" / "lesson.csv").symlink_to(course / "shared" / "lesson.csv")
    assert list(_declared(course, solution(["data/lesson.csv"]))) == ["data/lesson.csv"]


def test_files_over_the_size_limits_are_refused(course: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Is a file over the per-file limit refused with its size, and a set of files over the total limit?"""
    big = course / "solutions" / "data" / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(files.MAX_FILE_BYTES + 1)
    with pytest.raises(AuthoringError, match=r"'data/big.bin': 10,000,001 bytes, over the 10 MB limit"):
        _declared(course, solution(["data/big.bin"]))
    monkeypatch.setattr(files, "MAX_TOTAL_BYTES", len(CSV) + 1)
    (course / "solutions" / "data" / "more.csv").write_text(CSV)
    with pytest.raises(AuthoringError, match="together, over the"):
        _declared(course, solution(["data/tickets.csv", "data/more.csv"]))


# --- grader assign ------------------------------------------------------------------------


def test_assign_copies_the_files_next_to_the_exercise_and_the_colab_cell_fetches_them(course: Path) -> None:
    """Is each file copied to the same relative path under exercises/, once, and named in the setup cell?"""
    settings = load_settings(course)
    report = authoring.assign(settings)
    assert report.written == (Path("exercises/12-tickets.ipynb"), Path("exercises/data/tickets.csv"))
    assert (course / "exercises" / "data" / "tickets.csv").read_text() == CSV
    setup = next(c for c in read_notebook(course / "exercises" / "12-tickets.ipynb").cells if c.id == "colab-setup")
    assert '["data/tickets.csv"]' in setup.source
    assert "https://raw.githubusercontent.com/example-org/example-course/main/exercises" in setup.source
    inode = (course / "exercises" / "data" / "tickets.csv").stat().st_ino
    again = authoring.assign(settings)
    assert again.written == () and Path("exercises/data/tickets.csv") in again.unchanged
    assert (course / "exercises" / "data" / "tickets.csv").stat().st_ino == inode
    assert authoring.assign(settings, check=True).checked


def test_check_reports_missing_stale_and_orphan_copies(course: Path) -> None:
    """Does --check name a missing copy, one that differs from solutions/, and one no solution ships?"""
    settings = load_settings(course)
    authoring.assign(settings)
    copy = course / "exercises" / "data" / "tickets.csv"
    copy.write_text("edited by hand\n")
    (course / "exercises" / "old").mkdir()
    (course / "exercises" / "old" / "gone.csv").write_text("x")
    with pytest.raises(StaleExercises) as caught:
        authoring.assign(settings, check=True)
    message = str(caught.value)
    assert "exercises/data/tickets.csv: out of date with solutions/data/tickets.csv" in message
    assert "exercises/old/gone.csv: no solution ships it (metadata grader.files); remove it" in message
    copy.unlink()
    with pytest.raises(StaleExercises, match=r"exercises/data/tickets\.csv: missing; copy it from solutions/data"):
        authoring.assign(settings, check=True)

    report = authoring.assign(settings)
    assert report.written == (Path("exercises/data/tickets.csv"),)
    assert report.removed == (Path("exercises/old/gone.csv"),)
    assert copy.read_text() == CSV and not (course / "exercises" / "old").exists()
    assert authoring.assign(settings, check=True).checked


def test_a_file_no_longer_declared_is_removed(course: Path) -> None:
    """When the solution stops shipping a file, is its copy removed with the folder it leaves empty?"""
    settings = load_settings(course)
    authoring.assign(settings)
    write_notebook(solution([]), course / PATH)
    report = authoring.assign(settings)
    assert report.removed == (Path("exercises/data/tickets.csv"),)
    assert sorted(p.name for p in (course / "exercises").iterdir()) == ["12-tickets.ipynb"]


def test_hidden_files_and_checkpoints_in_exercises_are_left_alone(course: Path) -> None:
    """Are editor and Jupyter leftovers (dot files, checkpoints) neither reported nor removed?"""
    settings = load_settings(course)
    authoring.assign(settings)
    checkpoint = course / "exercises" / ".ipynb_checkpoints" / "12-tickets-checkpoint.ipynb"
    checkpoint.parent.mkdir()
    checkpoint.write_text("{}")
    assert authoring.assign(settings, check=True).checked
    assert checkpoint.exists()


def test_assign_writes_nothing_when_a_declared_file_is_missing(
    course: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does `grader assign` exit 3 naming the missing file, and write nothing?"""
    (course / "solutions" / "data" / "tickets.csv").unlink()
    monkeypatch.chdir(course)
    assert cli.main(["assign"]) == 3
    assert "'data/tickets.csv': there is no solutions/data/tickets.csv" in capsys.readouterr().err
    assert not (course / "exercises").exists()


def test_assign_refuses_an_escaping_path(course: Path) -> None:
    """Is a solution declaring ../ refused by assign (via lint), with the path named?"""
    write_notebook(solution(["../_config.yml"]), course / PATH)
    with pytest.raises(AuthoringError, match=r"'\.\./_config\.yml' leaves solutions/"):
        authoring.assign(load_settings(course))


def test_an_exercise_without_files_is_unchanged_by_the_feature(course: Path) -> None:
    """Is an exercise that ships nothing generated as before: no files block, no new metadata?"""
    nb = solution([])
    del nb.metadata[markers.META_GRADER]
    stub = authoring.make_exercise(
        nb, exercise_id="12-tickets", repo_url="https://github.com/example-org/example-course", branch="main"
    )
    setup = next(c for c in stub.cells if c.id == markers.COLAB_SETUP_ID)
    assert "files_url" not in setup.source and "urllib" not in setup.source
    assert stub.metadata[markers.META_GRADER] == {markers.META_EXERCISE: "12-tickets", markers.META_GENERATED: True}

"""The lesson pipeline with real kernels: papermill runs, the cache, failures and time limits."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat import v4

from grader.book import lessons
from grader.errors import AuthoringError, LessonFailed, UsageError
from grader.format import markers
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow


def lesson(*code: str, title: str = "A lesson", parameters: bool = True) -> nbformat.NotebookNode:
    """A lesson notebook: a title, the parameters cell, then one code cell per argument."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(v4.new_markdown_cell(f"# {title}"))
    if parameters:
        cell = v4.new_code_cell(f'{markers.PROFILE_PARAMETER} = "{markers.DEFAULT_PROFILE}"')
        cell.metadata["tags"] = [markers.TAG_PARAMETERS]
        nb.cells.append(cell)
    nb.cells.extend(v4.new_code_cell(source) for source in code)
    return nb


def write(root: Path, name: str, nb: nbformat.NotebookNode) -> Path:
    path = root / "notebooks" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A course root with one lesson that prints its profile; no GRADER_* variable leaks in."""
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: notebooks/hello\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text("title: test\n", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("numpy\n", encoding="utf-8")
    (tmp_path / "mlcourse").mkdir()
    (tmp_path / "mlcourse" / "__init__.py").write_text('__version__ = "0"\n', encoding="utf-8")
    write(tmp_path, "hello", lesson("print('profile is', profile)", "answer = 6 * 7\nprint(answer)"))
    return load_settings(root=tmp_path, lesson_timeout_s=120.0, cell_timeout_s=60.0)


def manifest(settings: Settings, profile: str) -> dict[str, dict[str, object]]:
    path = settings.executed_dir / profile / lessons.MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8"))["lessons"] if path.exists() else {}


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_settings_find_the_course_root_from_inside_it(course: Settings) -> None:
    """Is the root found from a folder inside the course, by its _toc.yml and _config.yml?"""
    assert load_settings(root=course.root / "notebooks").root == course.root


def test_first_run_executes_with_the_profile_outside_the_source_tree(course: Settings) -> None:
    """Does a first run execute the lesson, inject the profile and write the copy under _build?"""
    (run,) = lessons.run_lessons(course, None, profile="smoke")
    assert run.status == "executed"
    assert run.executed == course.executed_dir / "smoke" / "hello.ipynb"
    assert "profile is smoke" in outputs(run.executed)
    assert "42" in outputs(run.executed)
    assert outputs(course.notebooks_dir / "hello.ipynb") == ""  # the source keeps no outputs
    assert manifest(course, "smoke")["hello"]["key"] == run.key


def test_the_manifest_records_where_the_lesson_ran_and_the_copy_keeps_no_probe(course: Settings) -> None:
    """Does the device probe's record reach the manifest (and the run), leaving the copy as the source?"""
    (run,) = lessons.run_lessons(course, None, profile="smoke")
    record = manifest(course, "smoke")["hello"]["verified"]
    assert isinstance(record, dict) and record == run.verified
    assert (record["profile"], record["device"]["device"]) == ("smoke", "cpu")  # the lesson never imported torch
    assert record["device"]["cpu_count"] >= 1 and len(record["date"]) == 10
    cells = nbformat.read(run.executed, as_version=4).cells
    assert not [c for c in cells if markers.TAG_DEVICE_PROBE in c.metadata.get("tags", [])]
    assert run.device.startswith("CPU (")


def test_second_run_is_a_cache_hit_that_does_not_rewrite_the_copy(course: Settings) -> None:
    """Is an unchanged lesson skipped, its executed copy left untouched?"""
    (first,) = lessons.run_lessons(course, None, profile="smoke")
    before = first.executed.stat().st_mtime_ns, first.executed.read_bytes()
    (second,) = lessons.run_lessons(course, ["hello"], profile="smoke")
    assert second.status == "cached"
    assert (second.executed.stat().st_mtime_ns, second.executed.read_bytes()) == before


def _edit_code(settings: Settings) -> None:
    path = settings.notebooks_dir / "hello.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = "answer = 6 * 9\nprint(answer)"
    nbformat.write(nb, path)


def _edit_markdown(settings: Settings) -> None:
    path = settings.notebooks_dir / "hello.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# A renamed lesson"
    nbformat.write(nb, path)


def _edit_outputs_only(settings: Settings) -> None:
    path = settings.notebooks_dir / "hello.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [v4.new_output("stream", name="stdout", text="stale output\n")]
    nbformat.write(nb, path)


def _edit_requirements(settings: Settings) -> None:
    (settings.root / "requirements.txt").write_text("numpy==2.0\n", encoding="utf-8")


def _edit_course_package(settings: Settings) -> None:
    (settings.root / "mlcourse" / "data.py").write_text("SEED = 1\n", encoding="utf-8")


def _tamper_with_the_copy(settings: Settings) -> None:
    (settings.executed_dir / "smoke" / "hello.ipynb").write_text("{}", encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: None, "cached"),
        (_edit_outputs_only, "cached"),
        (_edit_code, "executed"),
        (_edit_markdown, "executed"),
        (_edit_requirements, "executed"),
        (_edit_course_package, "executed"),
        (_tamper_with_the_copy, "executed"),
    ],
    ids=["nothing", "outputs-only", "code-cell", "markdown-cell", "requirements", "mlcourse-source", "copy-damaged"],
)
def test_what_invalidates_the_cache(course: Settings, change: Callable[[Settings], None], expected: str) -> None:
    """Which changes make a lesson run again, and which leave its cached copy valid?"""
    lessons.run_lessons(course, None, profile="smoke")
    change(course)
    (run,) = lessons.run_lessons(course, None, profile="smoke")
    assert run.status == expected


def test_a_profile_has_its_own_cache(course: Settings) -> None:
    """Does switching profile miss the cache, and switching back hit it?"""
    assert lessons.run_lessons(course, None, profile="smoke")[0].status == "executed"
    (full,) = lessons.run_lessons(course, None, profile="full")
    assert full.status == "executed"
    assert "profile is full" in outputs(full.executed)
    assert lessons.run_lessons(course, None, profile="smoke")[0].status == "cached"


def test_force_reruns_and_the_copy_is_byte_identical(course: Settings) -> None:
    """Does --force re-execute, and is a deterministic lesson's executed copy stable byte for byte?"""
    (first,) = lessons.run_lessons(course, None, profile="smoke")
    before = first.executed.read_bytes()
    (again,) = lessons.run_lessons(course, None, profile="smoke", force=True)
    assert again.status == "executed"
    assert again.executed.read_bytes() == before


def test_a_failing_cell_is_named_with_its_exception(course: Settings) -> None:
    """Does the error name the notebook, the cell and the exception, and leave no fresh entry behind?"""
    # cell 1 is the title, cell 2 the parameters, cell 3 raises
    write(course.root, "broken", lesson("raise ValueError('the zebra escaped')", "print('never')"))
    with pytest.raises(LessonFailed) as info:
        lessons.run_lessons(course, ["broken"], profile="smoke")
    message = str(info.value)
    assert "notebooks/broken.ipynb" in message
    assert "cell 3 " in message
    assert "raise ValueError('the zebra escaped')" in message
    assert "ValueError: the zebra escaped" in message
    assert "broken" not in manifest(course, "smoke")
    assert not (course.executed_dir / "smoke" / "broken.ipynb").exists()


def test_a_lesson_that_breaks_loses_its_fresh_entry(course: Settings) -> None:
    """After a good run, does a failing edit remove the cache entry so the old copy is not trusted?"""
    lessons.run_lessons(course, None, profile="smoke")
    write(course.root, "hello", lesson("print('profile is', profile)", "1 / 0"))
    with pytest.raises(LessonFailed, match="ZeroDivisionError"):
        lessons.run_lessons(course, None, profile="smoke")
    assert "hello" not in manifest(course, "smoke")


def test_one_failure_does_not_stop_the_other_lessons(course: Settings) -> None:
    """Are the other lessons still executed and cached when one of them fails?"""
    write(course.root, "broken", lesson("raise RuntimeError('nope')"))
    with pytest.raises(LessonFailed, match=r"1 of 2 lesson\(s\) failed"):
        lessons.run_lessons(course, None, profile="smoke")
    assert set(manifest(course, "smoke")) == {"hello"}
    assert lessons.run_lessons(course, ["hello"], profile="smoke")[0].status == "cached"


def test_the_wall_clock_limit_kills_papermill_and_the_kernel(course: Settings, tmp_path: Path) -> None:
    """Does a lesson past its time limit fail naming the limit, with no kernel left running?"""
    pid_file = tmp_path / "kernel.pid"
    write(
        course.root,
        "slow",
        lesson(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)"),
    )
    settings = load_settings(root=course.root, lesson_timeout_s=6.0, cell_timeout_s=600.0)
    # processes this test process already had (e.g. the service's upload checkers, started by an
    # earlier test in the same worker, which live as long as the process) are not this run's
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with pytest.raises(LessonFailed) as info:
        lessons.run_lessons(settings, ["slow"], profile="smoke")
    message = str(info.value)
    assert "notebooks/slow.ipynb" in message
    assert "lesson limit of 6 s" in message
    kernel = int(pid_file.read_text())
    alive = psutil.pid_exists(kernel) and psutil.Process(kernel).status() != psutil.STATUS_ZOMBIE
    assert not alive, f"kernel {kernel} survived the timeout"
    assert [child for child in psutil.Process().children(recursive=True) if child.pid not in before] == []
    assert "slow" not in manifest(course, "smoke")


def test_the_per_cell_limit_names_the_cell(course: Settings) -> None:
    """Does a cell past the per-cell limit fail naming that cell and the limit?"""
    write(course.root, "stuck", lesson("print('fine')", "import time\ntime.sleep(600)"))
    settings = load_settings(root=course.root, lesson_timeout_s=120.0, cell_timeout_s=2.0)
    with pytest.raises(LessonFailed) as info:
        lessons.run_lessons(settings, ["stuck"], profile="smoke")
    message = str(info.value)
    assert "notebooks/stuck.ipynb" in message
    assert "cell 4 " in message
    assert "per-cell limit of 2 s" in message


def test_a_lesson_without_parameters_cell_is_an_authoring_error(course: Settings) -> None:
    """Is a lesson without a `parameters` cell refused before anything runs, naming the file?"""
    write(course.root, "untagged", lesson("print(1)", parameters=False))
    with pytest.raises(AuthoringError, match=r"notebooks/untagged\.ipynb: no cell is tagged 'parameters'"):
        lessons.run_lessons(course, None, profile="smoke")
    assert manifest(course, "smoke") == {}


@pytest.mark.parametrize("name", ["missing", "notebooks/missing.ipynb"])
def test_an_unknown_lesson_lists_the_known_ones(course: Settings, name: str) -> None:
    """Does asking for a lesson that does not exist say which lessons do?"""
    with pytest.raises(UsageError, match=r"unknown lesson .*missing.*known lessons: hello"):
        lessons.run_lessons(course, [name], profile="smoke")


def test_the_report_has_one_line_per_lesson(course: Settings) -> None:
    """Does the report show each lesson's status and a summary?"""
    runs = lessons.run_lessons(course, None, profile="smoke") + lessons.run_lessons(course, None, profile="smoke")
    report = lessons.render_report(runs)
    assert report.splitlines()[0].startswith("executed  hello  smoke")
    assert report.splitlines()[1].startswith("cached    hello  smoke")
    assert " on CPU (" in report.splitlines()[0]
    assert report.splitlines()[-1].startswith("2 lesson(s): 1 executed, 1 cached; ran on CPU (")


def test_lessons_run_in_parallel_when_asked(course: Settings) -> None:
    """With lesson_jobs=2, are all lessons executed and recorded, each with its own output?"""
    write(course.root, "second", lesson("print('second lesson', profile)"))
    settings = load_settings(root=course.root, lesson_jobs=2)
    runs = lessons.run_lessons(settings, None, profile="smoke")
    assert [(r.name, r.status) for r in runs] == [("hello", "executed"), ("second", "executed")]
    assert "second lesson smoke" in outputs(runs[1].executed)
    assert set(manifest(course, "smoke")) == {"hello", "second"}

"""The site build: a small book in a temporary root, built with the real Jupyter Book."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat import v4

from grader.book import lessons, site
from grader.errors import BookBuildFailed, LessonFailed
from grader.format import markers
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: a word that must never reach the site: it is only in solutions/ and the grading bundle
SECRET = "quokka_secret_answer"

TOC = """\
format: jb-book
root: book/intro
parts:
  - caption: "Part I — Basics"
    chapters:
      - file: book/01-first
        sections:
          - file: notebooks/01-first
          - file: exercises/01-first
  - caption: "Part II — More"
    chapters:
      - file: book/02-second
        sections:
          - file: notebooks/02-second
"""


def lesson(title: str, *code: str) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = v4.new_code_cell(f'{markers.PROFILE_PARAMETER} = "{markers.DEFAULT_PROFILE}"')
    params.metadata["tags"] = [markers.TAG_PARAMETERS]
    nb.cells = [v4.new_markdown_cell(f"# {title}"), params, *(v4.new_code_cell(c) for c in code)]
    return nb


def make_book(root: Path) -> None:
    """Two parts, two chapters, two lessons, one exercise, a solution and a grading bundle."""
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    shutil.copytree(REPO / "_static", root / "_static")  # the favicon and badge _config.yml names
    (root / "_toc.yml").write_text(TOC, encoding="utf-8")
    pages = {
        "book/intro.md": "# Welcome\n\nStart with {ref}`first-chapter`.\n",
        "book/01-first.md": "(first-chapter)=\n# The first chapter\n\nA page about the aardvark.\n",
        "book/02-second.md": "# The second chapter\n\nBack to [the first](01-first.md).\n",
    }
    for name, text in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    for folder in ("notebooks", "exercises", "solutions"):
        (root / folder).mkdir()
    nbformat.write(lesson("The first lesson", "print('rendered in', profile)"), root / "notebooks/01-first.ipynb")
    nbformat.write(lesson("The second lesson", "print(2 + 2)"), root / "notebooks/02-second.ipynb")
    exercise = lesson("The first exercise", "answer = ...")
    nbformat.write(exercise, root / "exercises/01-first.ipynb")
    exercise.cells[-1].source = f"answer = {SECRET!r}"
    nbformat.write(exercise, root / "solutions/01-first.ipynb")


def settings_for(root: Path) -> Settings:
    return load_settings(root=root, build_dir=root / "_build", lesson_timeout_s=120.0, cell_timeout_s=60.0)


@pytest.fixture(autouse=True)
def _no_grader_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith(markers.ENV_PREFIX)]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A book whose lessons are already executed (smoke), copied by the fixtures below."""
    root = tmp_path_factory.mktemp("template")
    make_book(root)
    lessons.run_lessons(settings_for(root), None, profile="smoke")
    return root


@pytest.fixture(scope="module")
def built(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One book with a grading bundle beside it, built once for the read-only checks below."""
    root = tmp_path_factory.mktemp("built") / "course"
    shutil.copytree(template, root)
    settings = settings_for(root)
    (settings.bundle_dir / "01-first").mkdir(parents=True)
    (settings.bundle_dir / "01-first" / "hidden.json").write_text(f'{{"expected": "{SECRET}"}}', encoding="utf-8")
    site.build_book(settings, profile="smoke")
    return settings


@pytest.fixture
def fresh(template: Path, tmp_path: Path) -> Settings:
    """A book of one's own (not built yet, lessons cached), for tests that edit it."""
    shutil.copytree(template, tmp_path / "course")
    return settings_for(tmp_path / "course")


def toc_files(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found = [toc["root"]]

    def walk(entries: list[dict[str, object]]) -> None:
        for entry in entries:
            if "file" in entry:
                found.append(str(entry["file"]))
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key, []))  # type: ignore[arg-type]

    walk(toc.get("parts", []))
    return found


def test_every_toc_entry_is_a_page(built: Settings) -> None:
    """Does every file named in _toc.yml become an HTML page, with index.html at the top?"""
    assert (built.site_dir / "index.html").is_file()
    for entry in toc_files(built.root):
        assert (built.site_dir / f"{entry}.html").is_file(), entry


def test_lesson_pages_show_the_executed_outputs(built: Settings) -> None:
    """Is the lesson page rendered from the executed copy, with the injected profile's output?"""
    html = (built.site_dir / "notebooks/01-first.html").read_text(encoding="utf-8")
    assert "rendered in smoke" in html


@pytest.mark.parametrize("page", ["notebooks/01-first", "book/01-first", "notebooks/02-second", "book/02-second"])
def test_lesson_and_chapter_pages_say_where_they_were_last_verified(built: Settings, page: str) -> None:
    """Does each lesson's notebook and chapter page carry the note, rendered (no MyST left raw)?"""
    html = (built.site_dir / f"{page}.html").read_text(encoding="utf-8")
    assert '<p class="admonition-title">Last verified</p>\n<p>CPU (' in html
    assert "profile <code" in html and "smoke" in html
    assert "GPU:</strong> not yet verified." in html
    assert "{note}" not in html


@pytest.mark.parametrize("page", ["notebooks/01-first", "notebooks/02-second", "exercises/01-first"])
def test_every_notebook_page_opens_in_colab(built: Settings, page: str) -> None:
    """Does each notebook page carry an Open-in-Colab link to that notebook in the repository?"""
    html = (built.site_dir / f"{page}.html").read_text(encoding="utf-8")
    repository = yaml.safe_load((built.root / "_config.yml").read_text(encoding="utf-8"))["repository"]
    github = repository["url"].removeprefix("https://github.com/")
    expected = f"https://colab.research.google.com/github/{github}/blob/{repository['branch']}/{page}.ipynb"
    assert expected in html


def test_sidebar_follows_the_parts(built: Settings) -> None:
    """Does the navigation show the parts of _toc.yml in order?"""
    html = (built.site_dir / "book/intro.html").read_text(encoding="utf-8")
    assert 0 <= html.find("Part I — Basics") < html.find("Part II — More")


def test_search_index_holds_the_words_of_a_page(built: Settings) -> None:
    """Can the site's search find a word that appears on only one page?"""
    assert (built.site_dir / "search.html").is_file()
    assert "aardvark" in (built.site_dir / "searchindex.js").read_text(encoding="utf-8")


def test_solutions_and_grading_bundles_never_reach_the_site(built: Settings) -> None:
    """Is nothing from solutions/ or the hidden grading bundle staged or published?"""
    staged = built.build_dir / "site-src"
    assert not (staged / "solutions").exists()
    for folder in (staged, built.site_dir):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def test_a_rebuild_without_changes_leaves_the_site_alone(fresh: Settings) -> None:
    """Does a second build with nothing changed leave every published file untouched?"""
    site.build_book(fresh, profile="smoke")
    before = {p: p.stat().st_mtime_ns for p in fresh.site_dir.rglob("*") if p.is_file()}
    site.build_book(fresh, profile="smoke")
    after = {p: p.stat().st_mtime_ns for p in fresh.site_dir.rglob("*") if p.is_file()}
    assert after == before


def test_editing_one_page_rewrites_that_page_and_not_an_unrelated_one(fresh: Settings) -> None:
    """Is the build incremental: the edited page changes, an unrelated lesson page is not rewritten?"""
    site.build_book(fresh, profile="smoke")
    unrelated = fresh.site_dir / "notebooks/02-second.html"
    stamp = unrelated.stat().st_mtime_ns
    page = fresh.root / "book/01-first.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nNow with a pangolin.\n", encoding="utf-8")
    site.build_book(fresh, profile="smoke")
    assert "pangolin" in (fresh.site_dir / "book/01-first.html").read_text(encoding="utf-8")
    assert unrelated.stat().st_mtime_ns == stamp


def test_a_deleted_page_leaves_the_site(fresh: Settings) -> None:
    """When a lesson leaves the book, do its staged copy and its HTML page go too?"""
    site.build_book(fresh, profile="smoke")
    (fresh.root / "notebooks/02-second.ipynb").unlink()
    toc = fresh.root / "_toc.yml"
    entry = "        sections:\n          - file: notebooks/02-second\n"
    toc.write_text(toc.read_text(encoding="utf-8").replace(entry, ""), encoding="utf-8")
    site.build_book(fresh, profile="smoke")
    assert not (fresh.build_dir / "site-src/notebooks/02-second.ipynb").exists()
    assert not (fresh.site_dir / "notebooks/02-second.html").exists()


BROKEN = [
    ("book/02-second.md", "See {ref}`no-such-label`.", "undefined label: 'no-such-label'"),
    ("book/02-second.md", "See [this page](no-such-page.md).", "cross-reference target not found"),
    ("book/intro.md", "See {doc}`no-such-doc`.", "unknown document"),
]


@pytest.mark.parametrize(("page", "text", "warning"), BROKEN, ids=["ref-label", "md-link", "doc-role"])
def test_a_broken_internal_reference_fails_the_build(fresh: Settings, page: str, text: str, warning: str) -> None:
    """Does a reference to a missing label or page fail the build, naming the file and the problem?"""
    path = fresh.root / page
    path.write_text(path.read_text(encoding="utf-8") + f"\n{text}\n", encoding="utf-8")
    with pytest.raises(BookBuildFailed) as info:
        site.build_book(fresh, profile="smoke")
    message = str(info.value)
    assert re.search(rf"^\s*{re.escape(page)}:\d+: WARNING: .*{re.escape(warning)}", message, re.MULTILINE), message


def test_a_failed_build_fails_again_until_fixed(fresh: Settings) -> None:
    """After a failed build, does an unchanged retry still fail, and does the fix make it pass?"""
    path = fresh.root / "book/intro.md"
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "\nSee {ref}`no-such-label`.\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(BookBuildFailed, match="no-such-label"):
            site.build_book(fresh, profile="smoke")
    path.write_text(good, encoding="utf-8")
    assert site.build_book(fresh, profile="smoke") == fresh.site_dir / "index.html"


def test_a_toc_entry_without_a_file_fails_the_build(fresh: Settings) -> None:
    """Does a _toc.yml entry that names a missing file fail the build?"""
    toc = fresh.root / "_toc.yml"
    toc.write_text(toc.read_text(encoding="utf-8") + "      - file: book/03-missing\n", encoding="utf-8")
    with pytest.raises(BookBuildFailed, match="03-missing"):
        site.build_book(fresh, profile="smoke")


def test_a_failing_lesson_stops_the_build(fresh: Settings) -> None:
    """Does a lesson that raises stop the book before Sphinx runs?"""
    nbformat.write(lesson("Broken", "raise KeyError('gone')"), fresh.root / "notebooks/02-second.ipynb")
    with pytest.raises(LessonFailed, match=r"notebooks/02-second\.ipynb"):
        site.build_book(fresh, profile="smoke")
    assert not (fresh.site_dir / "index.html").exists()

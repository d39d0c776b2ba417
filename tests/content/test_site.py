"""The real course site: built once (smoke profile) and checked page by page."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from grader.book import site as book_site
from grader.format import markers
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: shared with tests/content/test_lessons_smoke.py, so each lesson is executed once
BUILD_DIR = REPO / "_build" / "test-content"


def toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    found = [str(toc["root"])]

    def walk(entries: list[dict[str, object]]) -> None:
        for entry in entries:
            if "file" in entry:
                found.append(str(entry["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))  # type: ignore[arg-type]

    walk(toc.get("parts", []) + toc.get("chapters", []))
    return found


PAGES = toc_files()
NOTEBOOK_PAGES = [p for p in PAGES if (REPO / f"{p}.ipynb").is_file()]


@pytest.fixture(scope="module")
def site() -> Settings:
    settings = load_settings(root=REPO, build_dir=BUILD_DIR)
    book_site.build_book(settings, profile="smoke")
    return settings


@pytest.mark.parametrize("page", PAGES)
def test_every_toc_entry_is_a_page(site: Settings, page: str) -> None:
    """Does each file named in _toc.yml become a page of the site?"""
    assert (site.site_dir / f"{page}.html").is_file()


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_notebook_page_opens_in_colab(site: Settings, page: str) -> None:
    """Does each notebook page link to that notebook, in the repository, on Colab?"""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    github = config["repository"]["url"].removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{github}/blob/{config['repository']['branch']}/{page}.ipynb"
    assert link in (site.site_dir / f"{page}.html").read_text(encoding="utf-8")


LESSON_PAGES = [p for p in NOTEBOOK_PAGES if p.startswith("notebooks/")]
CHAPTER_PAGES = [p for p in (q.replace("notebooks/", "book/", 1) for q in LESSON_PAGES) if p in PAGES]


@pytest.mark.parametrize("page", LESSON_PAGES + CHAPTER_PAGES)
def test_every_lesson_and_chapter_page_says_where_it_was_last_verified(site: Settings, page: str) -> None:
    """Does each lesson (and its chapter) say on which device and profile it last ran, and whether a GPU did?"""
    html = (site.site_dir / f"{page}.html").read_text(encoding="utf-8")
    assert '<p class="admonition-title">Last verified</p>' in html
    assert "profile <code" in html and ("GPU:</strong>" in html or "(cc " in html)


def test_the_site_has_a_home_and_search(site: Settings) -> None:
    """Is there an index.html at the top and a search page with its index?"""
    for name in ("index.html", "search.html", "searchindex.js"):
        assert (site.site_dir / name).is_file(), name


@pytest.mark.parametrize("words", ["Who it is for", "Three ways to use it", "Run on Colab", "Submit"])
def test_the_top_page_is_the_front_page_not_a_redirect(site: Settings, words: str) -> None:
    """Does http://host/ itself say what the course is, who it is for and the three ways to use it?"""
    assert words in (site.site_dir / "index.html").read_text(encoding="utf-8")


def grader_only_cells() -> set[str]:
    """Sources of the cells only the grader may see: hidden checks and cells with solution markers."""
    found: set[str] = set()
    for path in sorted((REPO / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and (is_hidden(cell) or has_solution_markers(cell.source)):
                found.add(cell.source.strip())
    return found


def is_hidden(cell: nbformat.NotebookNode) -> bool:
    return markers.TAG_HIDDEN_CHECK in cell.get("metadata", {}).get("tags", [])


def has_solution_markers(source: str) -> bool:
    lines = [line.strip() for line in source.splitlines()]
    return markers.BEGIN_SOLUTION in lines or any(line.endswith(markers.SOLUTION_SUFFIX) for line in lines)


def test_no_solution_or_grading_file_is_published(site: Settings) -> None:
    """Is nothing from solutions/ or the grading bundles staged or published, by path or by content?"""
    published = [p for p in site.site_dir.rglob("*") if p.is_file()]
    for name in ("solutions", site.bundle_dir.name):
        assert not [p for p in published if name in p.relative_to(site.site_dir).parts]
    private = {p.read_bytes() for p in (REPO / "solutions").glob("*.ipynb")}
    private |= {p.read_bytes() for p in site.bundle_dir.rglob("*") if p.is_file()}
    secret_cells = grader_only_cells()
    staged = site.build_dir / "site-src"  # everything Sphinx publishes comes from here
    for path in sorted(p for p in staged.rglob("*") if p.is_file()):
        where = path.relative_to(staged)
        assert path.read_bytes() not in private, f"{where} is a copy of a solution or grading file"
        if path.suffix == ".ipynb":
            for number, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
                if cell.cell_type != "code":
                    continue
                assert not is_hidden(cell), f"{where}, cell {number}: a hidden check"
                assert not has_solution_markers(cell.source), f"{where}, cell {number}: solution markers"
                assert cell.source.strip() not in secret_cells, f"{where}, cell {number}: a grader-only cell"

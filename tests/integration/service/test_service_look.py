"""The service's pages as a learner sees them, in headless Chromium: part of the course book, and honest.

- a result's colour follows its verdict (full, partial, zero) and words say it too: 0/3 is never green;
- ``/favicon.ico`` is the course's icon, with or without the book mounted at ``/``;
- ``/api/docs`` renders the OpenAPI descriptions' Markdown as HTML and shows no raw markup;
- every page (sign-in, submit, feedback, gradebook, marking, regrades, API docs, error pages) has the book's
  header, fonts and colours, links to the book and its chapters, and logs nothing in the console.

"The book" here is a page styled by the very stylesheets a Jupyter Book 1 build copies into its
``_static/styles/`` (pydata-sphinx-theme and sphinx-book-theme, from the installed packages), mounted
at ``/`` by the service like a built site: the comparison needs no book build. Screenshots of the
submit page, a 0/3 and a 3/3 feedback page and the API docs are written to ``$SERVICE_SHOTS_DIR``
(default: the test's temporary directory).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import service_fakes
import yaml
from conftest import EXERCISE, REPO, LiveServer, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts, pages
from grader.service.app import FALLBACK_ICON, create_app
from grader.service.store import open_store
from grader.settings import load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
COURSE_TITLE = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["title"]
COURSE_ICON = REPO / "_static" / "favicon.svg"
#: the order a Jupyter Book 1 page links the theme's stylesheets in
THEME_CSS = (
    ("pydata_sphinx_theme", "theme/pydata_sphinx_theme/static/styles/theme.css"),
    ("pydata_sphinx_theme", "theme/pydata_sphinx_theme/static/styles/pydata-sphinx-theme.css"),
    ("sphinx_book_theme", "theme/sphinx_book_theme/static/styles/sphinx-book-theme.css"),
)
#: checks of the fake grader: 2 + 1 points
TWO_CHECKS = [("1.1", "the answer is right", 2), ("1.2", "the edge case is handled", 1)]
#: what a learner must never read on the API page: Markdown or HTML shown as text
RAW_MARKUP = ("`", "**", "](", "<code", "</", "&lt;", "&gt;", "&amp;", "&#")

# The computed look of a page: what "part of the book" means here.
_LOOK = """
() => {
  const style = (selector) => {
    const el = document.querySelector(selector);
    if (!el) { return null; }
    const s = getComputedStyle(el);
    return {font: s.fontFamily, color: s.color, background: s.backgroundColor, weight: s.fontWeight};
  };
  return {body: style("body"), h1: style("h1"), link: style("main a[href], article a[href], footer a[href]"),
          code: style("main code, article code")};
}
"""

# Every colour an element and its descendants are drawn in (text, background, border).
_COLOURS = """
(el) => [el, ...el.querySelectorAll("*")].flatMap((e) => {
  const s = getComputedStyle(e);
  return [s.color, s.backgroundColor, s.borderTopColor];
})
"""


def _book_page(title: str, theme: str = "light") -> str:
    """A page dressed as the book's pages are (the theme's stylesheets, its article markup)."""
    links = "".join(f'<link rel="stylesheet" href="/_static/styles/{Path(css).name}">' for _, css in THEME_CSS)
    return (
        f'<!DOCTYPE html><html lang="en" data-theme="{theme}" data-mode="{theme}"><head><meta charset="utf-8">'
        f'<title>{title}</title>{links}<link rel="icon" href="/_static/favicon.svg"></head><body>'
        '<div class="bd-container"><div class="bd-main"><div class="bd-content"><div class="bd-article-container">'
        f'<article class="bd-article"><h1>{title}</h1><p>Read the <a class="reference internal" '
        'href="/book/00-learning-ml-engineering.html">first chapter</a>, then run <code>grader check</code>.</p>'
        "</article></div></div></div></div></body></html>"
    )


def _build_book(site: Path) -> list[str]:
    """A stand-in for ``_build/html``: a front page, a dark twin, and one page per chapter of ``_toc.yml``."""
    (site / "_static" / "styles").mkdir(parents=True)
    for package, css in THEME_CSS:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, f"{package} (Jupyter Book 1's theme) is not installed"
        (site / "_static" / "styles" / Path(css).name).write_bytes((Path(spec.origin).parent / css).read_bytes())
    (site / "_static" / "favicon.svg").write_bytes(COURSE_ICON.read_bytes())
    (site / "index.html").write_text(_book_page(COURSE_TITLE), encoding="utf-8")
    (site / "dark.html").write_text(_book_page(COURSE_TITLE, theme="dark"), encoding="utf-8")
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for chapter in chapters:
        (site / f"{chapter}.html").parent.mkdir(parents=True, exist_ok=True)
        (site / f"{chapter}.html").write_text(_book_page(chapter), encoding="utf-8")
    return [f"/{chapter}.html" for chapter in chapters]


@dataclass
class Course:
    server: LiveServer
    tokens: dict[str, str]
    chapters: list[str]
    #: submission ids: alice's 0/3, 2/3 and 3/3, bob's 0/3
    ids: dict[str, str]


def _submit(api: Any, url: str, token: str, passes: tuple[bool, bool]) -> str:
    """Submit through the API (Playwright's request client) and wait for the grade."""
    checks = [
        {"id": cid, "name": name, "points": points, "pass": ok}
        for (cid, name, points), ok in zip(TWO_CHECKS, passes, strict=True)
    ]
    headers = {"Authorization": f"Bearer {token}"}
    notebook = {
        "name": "my-work.ipynb",
        "mimeType": "application/json",
        "buffer": service_fakes.notebook(checks=checks),
    }
    response = api.post(f"{url}/api/submissions", headers=headers, multipart={"exercise": EXERCISE, "file": notebook})
    assert response.status == 202, response.text()
    sid = str(response.json()["id"])
    wait_until(lambda: api.get(f"{url}/api/submissions/{sid}", headers=headers).json()["final"], what=f"grading {sid}")
    return sid


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: `make system-packages` (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def course(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Course]:
    """The service with the book mounted at /, three accounts, and graded submissions of every kind."""
    tmp = tmp_path_factory.mktemp("look")
    chapters = _build_book(tmp / "build" / "html")
    settings = make_settings(tmp, build_dir=tmp / "build")
    store = open_store(settings)
    tokens = {name: accounts.add_user(store, name, instructor=name == "ines")[1] for name in ("alice", "bob", "ines")}
    with LiveServer(create_app(settings, workers=1, store=store)) as server:
        api = browser.new_context().request
        ids = {
            "zero": _submit(api, server.url, tokens["alice"], (False, False)),
            "partial": _submit(api, server.url, tokens["alice"], (True, False)),
            "full": _submit(api, server.url, tokens["alice"], (True, True)),
            "bob-zero": _submit(api, server.url, tokens["bob"], (False, False)),
        }
        api.dispose()
        yield Course(server, tokens, chapters, ids)
    store.dispose()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = Path(os.environ.get("SERVICE_SHOTS_DIR") or tmp_path_factory.mktemp("shots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def _watch(page: Any) -> list[str]:
    """Console errors and warnings, and script errors; the expected 4xx of an error page's own document aside."""
    problems: list[str] = []

    def console(message: Any) -> None:
        own_document = message.location.get("url") == page.url and "status of 4" in message.text
        if message.type in ("error", "warning") and not own_document:
            problems.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


def _signed_in(browser: Any, course: Course, name: str, **context: Any) -> tuple[Any, Any]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, **context)
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.goto(course.server.url + "/signin")
    page.fill("#token", course.tokens[name])
    page.click("button[type=submit]")
    page.wait_for_url("**/submit")
    return ctx, page


def _rgb(colour: str) -> tuple[int, int, int, float]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)]
    return int(numbers[0]), int(numbers[1]), int(numbers[2]), numbers[3] if len(numbers) > 3 else 1.0


def _greenish(colour: str) -> bool:
    """The colour of success (the theme's #00843f family), as opposed to red, amber, blue, grey or none."""
    r, g, b, alpha = _rgb(colour)
    return alpha > 0 and g > r + 40 and g > b + 20


# --- 1. the colour follows the verdict -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "score", "label"),
    [("zero", "0/3", "no marks"), ("partial", "2/3", "partial marks"), ("full", "3/3", "full marks")],
)
def test_a_result_is_coloured_and_worded_by_its_verdict(
    browser: Any, course: Course, shots: Path, kind: str, score: str, label: str
) -> None:
    """Is 0/3 (or 2/3) never drawn in the colour of success, and does the page say the verdict in words?"""
    ctx, page = _signed_in(browser, course, "alice")
    problems = _watch(page)
    page.goto(f"{course.server.url}/submissions/{course.ids[kind]}")
    status = page.locator("#status")
    assert page.locator("#score").inner_text() == score
    colours = status.evaluate(_COLOURS)
    if kind == "full":
        assert any(_greenish(c) for c in colours), f"full marks are not drawn as success: {colours}"
    else:
        assert not any(_greenish(c) for c in colours), f"a {score} result is drawn in green: {colours}"
    badge = status.locator(".verdict-badge")  # the verdict in words, not in colour alone
    assert badge.is_visible() and badge.inner_text().strip().lower() == label
    assert status.get_attribute("data-verdict") == kind and f"verdict-{kind}" in (status.get_attribute("class") or "")
    verdicts = page.locator("#checks td.verdict").all_inner_texts()
    assert verdicts == {"zero": ["FAIL", "FAIL"], "partial": ["PASS", "FAIL"], "full": ["PASS", "PASS"]}[kind]
    for cell in page.locator("#checks td.verdict").all():
        assert _greenish(cell.evaluate("e => getComputedStyle(e).color")) == (cell.inner_text() == "PASS")
    if kind != "partial":
        page.screenshot(path=str(shots / f"feedback-{kind}.png"), full_page=True)
    assert problems == []
    ctx.close()


@pytest.mark.slow
def test_the_submission_list_and_the_gradebook_colour_by_verdict_too(browser: Any, course: Course) -> None:
    ctx, page = _signed_in(browser, course, "alice")
    rows = {
        sid: page.locator("table tbody tr", has=page.locator(f"a[href='/submissions/{sid}']"))
        for sid in course.ids.values()
        if sid != course.ids["bob-zero"]
    }
    for kind in ("zero", "partial", "full"):
        cell = rows[course.ids[kind]].locator("td[class^='verdict-']")
        assert cell.get_attribute("class") == f"verdict-{kind}"
        assert cell.inner_text().strip() == {"zero": "no marks", "partial": "partial marks", "full": "full marks"}[kind]
        assert any(_greenish(c) for c in cell.evaluate(_COLOURS)) == (kind == "full")
    ctx.close()

    ctx, page = _signed_in(browser, course, "ines")
    problems = _watch(page)
    page.goto(course.server.url + "/gradebook")
    best = {
        name: page.locator("#gradebook tbody tr", has_text=name).locator("td.score").first for name in ("alice", "bob")
    }
    assert "3/3" in best["alice"].inner_text() and "full marks" in best["alice"].inner_text()
    assert "0/3" in best["bob"].inner_text() and "no marks" in best["bob"].inner_text()
    assert "verdict-full" in (best["alice"].get_attribute("class") or "")
    assert "verdict-zero" in (best["bob"].get_attribute("class") or "")
    assert any(_greenish(c) for c in best["alice"].evaluate(_COLOURS))
    assert not any(_greenish(c) for c in best["bob"].evaluate(_COLOURS)), "bob's 0/3 is drawn in green"
    assert problems == []
    ctx.close()


@pytest.mark.parametrize(
    ("status", "score", "max_score", "key", "label"),
    [
        ("graded", 3.0, 3.0, "full", "full marks"),
        ("graded", 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3 + 1 / 3, 2.0, "full", "full marks"),  # 1.9999999999999998
        ("graded", 2.0, 3.0, "partial", "partial marks"),
        ("graded", 0.0, 3.0, "zero", "no marks"),
        ("graded", 0.0, 0.0, "zero", "no marks"),
        ("invalid", 0.0, 0.0, "invalid", "not graded"),
        ("error", None, None, "error", "grading error"),
        ("queued", None, None, "queued", "queued"),
    ],
)
def test_a_verdict_has_a_colour_key_and_words(status: str, score: Any, max_score: Any, key: str, label: str) -> None:
    assert pages.verdict(status, score, max_score) == pages.Verdict(key, label)


# --- 2. the icon ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_favicon_is_the_courses_icon_with_the_book_mounted(browser: Any, course: Course) -> None:
    ctx, page = _signed_in(browser, course, "alice")
    response = page.request.get(course.server.url + "/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/")
    assert response.body() == COURSE_ICON.read_bytes()
    assert COURSE_TITLE in page.request.get(course.server.url + "/").text()  # the book still answers at /
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.ico"
    assert page.locator(".brand img").evaluate("img => img.complete && img.naturalWidth > 0")
    ctx.close()


def test_the_favicon_answers_without_a_book(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    with TestClient(create_app(settings, store=store)) as client:
        response = client.get("/favicon.ico")
        assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
        assert response.content == COURSE_ICON.read_bytes()
        page = client.get("/signin").text
        assert '<link rel="icon" href="/favicon.ico"' in page and COURSE_TITLE in page
    store.dispose()


def test_a_course_without_an_icon_or_a_book_gets_the_services_own(tmp_path: Path) -> None:
    """A course whose _config.yml names no favicon, and whose book is built in part: what do the pages show?"""
    root = tmp_path / "course"
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("title: A tiny course\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nparts:\n  - caption: Only part\n    chapters:\n"
        "      - file: book/one\n      - file: book/two.md\n"
    )
    (root / "book" / "one.md").write_text("(one)=\n# One · the first chapter\n\ntext\n")
    (root / "book" / "two.md").write_text("# Two\n")
    site = tmp_path / "build" / "html" / "book"
    site.mkdir(parents=True)
    (site / "one.html").write_text("<html></html>")  # book/two is not built: no link to a page that is not there
    settings = load_settings(root, build_dir=tmp_path / "build", data_dir=tmp_path / "data")
    course = pages.course_of(settings, fallback_icon=FALLBACK_ICON)
    assert (course.title, course.icon, course.icon_type) == ("A tiny course", FALLBACK_ICON, "image/svg+xml")
    assert course.parts == (pages.Part("Only part", (pages.Chapter("One · the first chapter", "/book/one.html"),)),)
    assert pages.course_of(make_settings(tmp_path), fallback_icon=FALLBACK_ICON).icon == COURSE_ICON


# --- 3. the API page -----------------------------------------------------------------------------


def test_markdown_in_descriptions_becomes_html_and_raw_html_stays_text() -> None:
    rendered = str(pages.markdown("The notebook (``exercises/<id>.ipynb``), **bold**. <script>alert(1)</script>"))
    assert "<code>exercises/&lt;id&gt;.ipynb</code>" in rendered and "<strong>bold</strong>" in rendered
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    assert "href" not in str(pages.markdown_inline("`a` [x](javascript:alert(1))"))  # no script links


@pytest.mark.slow
def test_the_api_docs_render_their_markdown(browser: Any, course: Course, shots: Path) -> None:
    ctx, page = _signed_in(browser, course, "alice")
    spec = page.request.get(course.server.url + "/api/openapi.json").json()
    problems = _watch(page)
    page.goto(course.server.url + "/api/docs")
    shown = page.locator("main").inner_text()
    for raw in RAW_MARKUP:
        assert raw not in shown, f"the API page shows {raw!r} as text"
    operations = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]
    assert sorted(page.locator("section.endpoint h3").all_inner_texts()) == sorted(f"{m} {p}" for m, p in operations)
    download = page.locator("section.endpoint", has_text="GET /api/exercises/{exercise_id}/notebook")
    assert download.locator(".description code").all_inner_texts() == ["exercises/<id>.ipynb"]
    assert "grader users add NAME" in page.locator("main p code").all_inner_texts()  # the bearer scheme's Markdown
    submit = page.locator("section.endpoint", has_text="POST /api/submissions")
    assert "the .ipynb notebook" in submit.locator("dl.fields").inner_text()
    page.screenshot(path=str(shots / "api-docs.png"), full_page=True)
    assert problems == []
    ctx.close()


# --- 4. part of the book -------------------------------------------------------------------------


def _pages(course: Course) -> list[tuple[str, str, str, int]]:
    """(what, who, path, status) for every kind of service page."""
    return [
        ("sign-in", "", "/signin", 200),
        ("submit", "alice", "/submit", 200),
        ("feedback", "alice", f"/submissions/{course.ids['zero']}", 200),
        ("gradebook", "ines", "/gradebook", 200),
        ("marking", "ines", "/marking", 200),
        ("regrades", "ines", "/regrades", 200),
        ("api docs", "alice", "/api/docs", 200),
        ("error: not found", "alice", "/submissions/no-such-id", 404),
        ("error: instructors only", "alice", "/gradebook", 403),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_service_page_looks_like_the_book(browser: Any, course: Course, scheme: str) -> None:
    """Fonts, text and link colours as the book's pages (light and dark), its header and chapters, no console noise."""
    base = course.server.url
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, color_scheme=scheme)
    page = ctx.new_page()
    page.goto(base + ("/" if scheme == "light" else "/dark.html"))
    book = page.evaluate(_LOOK)
    assert book["body"]["font"].startswith("system-ui") and "Noto Color Emoji" in book["body"]["font"]
    ctx.close()

    for what, who, path, status in _pages(course):
        if who:
            ctx, page = _signed_in(browser, course, who, color_scheme=scheme)
        else:
            ctx = browser.new_context(viewport={"width": 1200, "height": 800}, color_scheme=scheme)
            page = ctx.new_page()
        problems = _watch(page)
        response = page.goto(base + path)
        assert response is not None and response.status == status, what
        look = page.evaluate(_LOOK)
        for part, keys in (("body", ("font", "color", "background")), ("link", ("font", "color")), ("code", ("font",))):
            for key in keys if look[part] is not None or part == "body" else ():  # a page may show no code
                assert look[part][key] == book[part][key], f"{what}: {part} {key} {look[part][key]} ≠ the book's"
        if scheme == "light":
            assert (look["h1"]["font"], look["h1"]["color"]) == (book["h1"]["font"], book["h1"]["color"]), what
        brand = page.locator("header a.brand")
        assert brand.get_attribute("href") == "/" and brand.inner_text().strip() == COURSE_TITLE, what
        assert page.locator("header nav a[href='/submit']").count() == 1, what
        assert [a.get_attribute("href") for a in page.locator("nav.chapters ul a").all()] == course.chapters, what
        assert problems == [], what
        ctx.close()


@pytest.mark.slow
def test_the_header_leads_to_the_book_and_its_chapters(browser: Any, course: Course, shots: Path) -> None:
    ctx, page = _signed_in(browser, course, "alice")
    page.screenshot(path=str(shots / "submit.png"), full_page=True)
    page.click("nav.chapters ul a >> nth=0")
    page.wait_for_url("**" + course.chapters[0])
    assert page.locator("h1").inner_text() == course.chapters[0].strip("/").removesuffix(".html")
    page.go_back()
    page.click("header a.brand")
    page.wait_for_url(course.server.url + "/")
    assert page.locator("article h1").inner_text() == COURSE_TITLE
    ctx.close()


def test_an_oversized_upload_gets_the_services_error_page(tmp_path: Path) -> None:
    """The 413 the upload limit answers before reading the body is the styled error page, not bare HTML."""
    settings = make_settings(tmp_path, build_dir=tmp_path / "no-book", max_upload_mb=0.01)
    store = open_store(settings)
    with TestClient(create_app(settings, store=store)) as client:
        response = client.post(
            "/submit", data={"exercise": EXERCISE}, files={"file": ("x.ipynb", b"x" * 200_000)}, follow_redirects=False
        )
        assert response.status_code == 413 and "Clear All Outputs" in response.text
        assert '<a class="brand" href="/">' in response.text and "/grader-static/grader.css" in response.text
    store.dispose()

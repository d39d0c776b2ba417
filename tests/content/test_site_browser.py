"""The course site as a learner sees it: every page in headless Chromium, served by the grader service.

The site is built once (smoke profile, the build shared with tests/content/test_site.py) and served by
the real service app (:func:`grader.service.app.create_app`), so each page arrives with the book's
Content-Security-Policy (``BOOK_CSP``) exactly as under ``make serve``. The policy allows scripts, styles,
images and fonts from the site itself only, which is also what an offline learner has: anything the
site needs from elsewhere (MathJax from a CDN, a remote badge image) is blocked and shows up here.

Every HTML file the server publishes is opened, ``genindex.html`` and ``search.html`` included: they
are reachable by URL (the search box opens ``search.html``) and use the same theme, scripts and
policy as the chapters, so they can break the same way. ``search.html`` is opened with a query, so
that the search code and its index run too.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from grader.book import site as book_site
from grader.service.app import BOOK_CSP, create_app
from grader.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: shared with tests/content/test_site.py and test_lessons_smoke.py (one build, lessons executed once)
BUILD_DIR = REPO / "_build" / "test-content"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: a query for search.html, so that its script runs a search over the index
SEARCH_QUERY = "?q=drift"
#: where TeX left as typed means MathJax did not run (``\(…\)`` inline, ``\[…\]`` and ``$$…$$`` display)
RAW_TEX = ("\\(", "\\[", "$$")
#: the chapter whose maths must be typeset (its display equations are the PSI formulas)
MATHS_PAGE = "book/04-data-monitoring.html"
#: screenshots of the maths chapter and of an exercise page, for a person to look at
SHOTS = BUILD_DIR / "screenshots"

# Runs in the page once it has loaded: waits for MathJax (when the page has it) and for every image
# (lazy ones made eager first), then reports what a learner would see wrong.
_INSPECT = """
async () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
  const images = Array.from(document.images);
  images.forEach((img) => { if (img.loading === "lazy") { img.loading = "eager"; } });
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  const broken = images.filter((img) => !(img.complete && img.naturalWidth > 0))
                       .map((img) => img.getAttribute("src") || "(no src)");
  const skip = "pre, code, script, style, textarea, mjx-container, mjx-assistive-mml";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const shown = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || parent.getClientRects().length === 0) { continue; }
    shown.push(node.data);
  }
  const maths = Array.from(document.querySelectorAll(".math"));
  return {
    broken,
    text: shown.join(" "),
    maths: maths.length,
    untypeset: maths.filter((m) => !m.querySelector("mjx-container")).map((m) => m.textContent.trim().slice(0, 80)),
    typeset: document.querySelectorAll("mjx-container").length,
    csp: window.__cspViolations || [],
  };
}
"""
_RECORD_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI}`));
"""


@dataclass
class Seen:
    """What one page showed a learner: its problems, and how much maths it typeset."""

    problems: list[str] = field(default_factory=list)
    maths: int = 0
    typeset: int = 0


class LiveSite:
    """The grader service (real app, book mounted at ``/``) on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveSite:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                pytest.fail("the grader service did not start within 15 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._socket.close()


@pytest.fixture(scope="module")
def site() -> Settings:
    settings = load_settings(root=REPO, build_dir=BUILD_DIR)
    book_site.build_book(settings, profile="smoke")
    return settings


@pytest.fixture(scope="module")
def served(site: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site's base URL, served as ``make serve`` serves it (no grading workers: only pages are read)."""
    settings = load_settings(root=REPO, build_dir=BUILD_DIR, data_dir=tmp_path_factory.mktemp("service"), sandbox=False)
    with LiveSite(create_app(settings, workers=0)) as server:
        yield server.url


@pytest.fixture(scope="module")
def page(served: str) -> Iterator[Any]:
    """One headless Chromium page, reused for every page of the site."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: `make system-packages` (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(_RECORD_CSP)
        yield context.new_page()
        browser.close()


def site_pages(site: Settings) -> list[str]:
    """Every HTML file of the built site (relative, POSIX), theme and source folders aside."""
    root = site.site_dir
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(root).parts)
    )


def visit(page: Any, base: str, relative: str) -> Seen:
    """Open one page and report everything a learner would see go wrong on it."""
    seen = Seen()
    origin = urlsplit(base).netloc

    def on_console(message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url") or "?"
            seen.problems.append(f"console error: {message.text} (at {where})")

    def on_request(request: Any) -> None:
        where = urlsplit(request.url)
        if where.scheme not in ("data", "blob", "about") and where.netloc != origin:
            seen.problems.append(f"request off the site (blocked by the policy, and offline): {request.url}")

    def on_failed(request: Any) -> None:
        seen.problems.append(f"request failed ({request.failure}): {request.url}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            seen.problems.append(f"HTTP {response.status}: {response.url}")

    handlers = {
        "console": on_console,
        "pageerror": lambda e: seen.problems.append(f"script error: {e}"),
        "request": on_request,
        "requestfailed": on_failed,
        "response": on_response,
    }
    for event, handler in handlers.items():
        page.on(event, handler)
    try:
        suffix = SEARCH_QUERY if relative == "search.html" else ""
        response = page.goto(f"{base}/{relative}{suffix}", wait_until="load")
        assert response is not None and response.ok, f"{relative}: {response and response.status}"
        policy = response.headers.get("content-security-policy")
        assert policy == BOOK_CSP, f"{relative} was served without the book's policy: {policy!r}"
        found = page.evaluate(_INSPECT)
        page.wait_for_load_state("networkidle")  # late requests (web fonts, the search index) count too
    finally:
        for event, handler in handlers.items():
            page.remove_listener(event, handler)
    seen.problems += [f"policy violation: {v}" for v in found["csp"]]
    seen.problems += [f"image not loaded: {src}" for src in found["broken"]]
    seen.problems += [f"raw TeX {mark!r} in the text" for mark in RAW_TEX if mark in found["text"]]
    seen.problems += [f"maths not typeset: {tex}" for tex in found["untypeset"]]
    seen.maths, seen.typeset = found["maths"], found["typeset"]
    return seen


def test_every_page_loads_cleanly_under_the_service_policy(site: Settings, served: str, page: Any) -> None:
    """On every page, under BOOK_CSP: no console or script error, no blocked, failed or off-site request,
    every image loaded, and no TeX left untypeset."""
    pages = site_pages(site)
    assert {"index.html", "search.html", MATHS_PAGE} <= set(pages)
    assert any(p.startswith("exercises/") for p in pages) and any(p.startswith("notebooks/") for p in pages)
    seen = {relative: visit(page, served, relative) for relative in pages}
    failing = {relative: s.problems for relative, s in seen.items() if s.problems}
    report = "\n".join(
        f"{relative}:\n  " + "\n  ".join(dict.fromkeys(problems)) for relative, problems in failing.items()
    )
    assert not failing, f"{len(failing)} of {len(pages)} pages show problems:\n{report}"
    # the maths check is not vacuous: the chapter has maths, and MathJax typeset all of it
    assert seen[MATHS_PAGE].maths > 0 and seen[MATHS_PAGE].typeset >= seen[MATHS_PAGE].maths


def test_chapter_04_maths_and_an_exercise_page_render(site: Settings, served: str, page: Any) -> None:
    """Is a display equation of chapter 04 typeset and on screen, and is an exercise page's "Open in Colab"
    badge shown? Screenshots of both go to ``_build/test-content/screenshots``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{served}/{MATHS_PAGE}", wait_until="load")
    page.evaluate(_INSPECT)
    display = page.locator("div.math mjx-container").first
    display.scroll_into_view_if_needed()
    assert display.bounding_box() is not None
    page.screenshot(path=str(SHOTS / "chapter-04-maths.png"))
    exercise = sorted(p for p in site_pages(site) if p.startswith("exercises/"))[0]
    page.goto(f"{served}/{exercise}", wait_until="load")
    found = page.evaluate(_INSPECT)
    page.screenshot(path=str(SHOTS / "exercise.png"))
    badge = page.locator("img[alt='Open In Colab']").first
    assert badge.is_visible()
    assert not found["broken"], found["broken"]

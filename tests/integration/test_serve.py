"""The static server: a real socket on a free port, serving a site folder."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from grader.book import static
from grader.errors import UsageError
from grader.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text("title: test\n", encoding="utf-8")
    return load_settings(root=tmp_path, build_dir=tmp_path / "_build", host="127.0.0.1", port=0)


@pytest.fixture
def running(settings: Settings) -> Iterator[ThreadingHTTPServer]:
    site = settings.site_dir
    (site / "book").mkdir(parents=True)
    (site / "index.html").write_text("<p>the course home</p>", encoding="utf-8")
    (site / "book" / "intro.html").write_text("<p>the intro</p>", encoding="utf-8")
    (settings.build_dir / "grading.json").write_text("hidden", encoding="utf-8")
    server = static.make_server(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def fetch(server: ThreadingHTTPServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(static.url(server) + path.lstrip("/"), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/", 200, "the course home"),
        ("/index.html", 200, "the course home"),
        ("/book/intro.html", 200, "the intro"),
        ("/book/missing.html", 404, ""),
        ("/../grading.json", 404, ""),
    ],
)
def test_the_site_is_served_from_its_folder(running: ThreadingHTTPServer, path: str, status: int, body: str) -> None:
    """Are the site's pages served at their paths, and nothing outside the site folder?"""
    got_status, got_body = fetch(running, path)
    assert got_status == status
    assert body in got_body


def test_the_url_names_the_bound_port(running: ThreadingHTTPServer) -> None:
    """Does the URL shown to the user carry the port actually bound (port 0 picks a free one)?"""
    assert static.url(running) == f"http://127.0.0.1:{running.server_address[1]}/"


def test_serving_an_unbuilt_site_says_how_to_build_it(settings: Settings) -> None:
    """Without a built site, does the error tell the user to run `grader book` first?"""
    with pytest.raises(UsageError, match=r"run `grader book` \(or `make serve`\) first"):
        static.make_server(settings)

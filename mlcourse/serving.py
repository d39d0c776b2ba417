"""Serving one predictor core three ways (lesson 13): the shared core, a ticket file, a loopback
server and an inspector for a web page's outside references.

The adapters themselves (a REST app, its UI page, a batch job) are the lesson's exercise; this
module holds what every adapter shares and what the lesson needs to run them for real:

- :func:`predict_rows`: the one predictor core every adapter calls (team and confidence);
- :func:`write_ticket_file`: a CSV of tickets (``ticket_id,text``) for a batch job;
- :func:`serve_in_thread`: a real uvicorn server on a loopback port, in a thread of this process;
- :func:`external_references`: every URL in an HTML page that would be fetched from elsewhere
  (a page that must work offline has none).

    >>> from mlcourse.router import train_router
    >>> router = train_router(n_tickets=600)
    >>> predict_rows(router, ["I was charged twice"])
    [{'team': 'billing', 'confidence': ...}]
"""

from __future__ import annotations

import csv
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlcourse.tickets import make_tickets

#: decimals of the confidence every adapter reports (so that all three print the same number)
CONFIDENCE_DECIMALS = 4


class Predictor(Protocol):
    """What the core needs of a router: its teams and ``predict_proba`` (a ``TicketRouter`` has both)."""

    @property
    def teams(self) -> tuple[str, ...]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def predict_rows(router: Predictor, texts: Sequence[str]) -> list[dict[str, Any]]:
    """The predictor core: for each text, ``{"team": ..., "confidence": ...}``, in order.

    ``confidence`` is the probability of the chosen team, rounded to ``CONFIDENCE_DECIMALS``, a
    plain float. The texts go to the model exactly as given: any cleaning belongs in the model.
    """
    proba = router.predict_proba(texts)
    teams = router.teams
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    return [
        {"team": teams[int(i)], "confidence": round(float(row[int(i)]), CONFIDENCE_DECIMALS)}
        for i, row in zip(best, proba, strict=True)
    ]


def write_ticket_file(path: str | Path, n: int, *, seed: int = 0, extra_texts: Sequence[str] = ()) -> Path:
    """Write ``n`` generated tickets, then ``extra_texts``, as a CSV with columns ``ticket_id,text``.

    Texts may hold commas, quotes and newlines: the CSV quotes them, so read it with a CSV reader
    (and keep every text a string: ``pd.read_csv(..., dtype=str, keep_default_na=False)``).
    """
    path = Path(path)
    frame = make_tickets(n, seed=seed)[["ticket_id", "text"]] if n else None
    rows = [] if frame is None else list(zip(frame["ticket_id"], frame["text"], strict=True))
    rows += [(f"X{i:06d}", text) for i, text in enumerate(extra_texts, start=1)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ticket_id", "text"])
        writer.writerows(rows)
    return path


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``app`` (any ASGI app) with uvicorn on a loopback port in a thread; yield its base URL.

    ``port=0`` lets the operating system pick a free port. The server stops when the block ends.

    Raises:
        RuntimeError: the server did not start within ``timeout_s`` (the port taken, no loopback).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port} within {timeout_s} s")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)


#: attributes whose value a browser fetches (or navigates to, for forms)
_URL_ATTRIBUTES = frozenset({"src", "href", "action", "formaction", "poster", "data", "srcset", "background"})
#: an absolute or protocol-relative URL inside text (a script, a style, an inline attribute)
_ABSOLUTE_URL = re.compile(
    r"""\b[a-z][a-z0-9+.-]*://[^\s"'`<>)]+|(?<![\w:/])//(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?[^\s"'`<>)]*""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""(?:url\(\s*|@import\s+)["']?([^"')\s;]+)""", re.IGNORECASE)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_code = tag in ("script", "style")
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRIBUTES:
                parts = value.split(",") if name == "srcset" else [value]
                self.found += [part.strip().split(" ")[0] for part in parts if _is_external(part.strip())]
            if name == "style" or name.startswith("on"):
                self.found += _in_text(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.found += _in_text(data)


def _is_external(url: str) -> bool:
    """A URL that leaves the page's own server: with a scheme (http:, https:, ftp: …) or ``//host``."""
    url = url.strip().lower()
    if url.startswith(("#", "data:", "javascript:", "mailto:", "about:")):
        return False
    return url.startswith("//") or re.match(r"^[a-z][a-z0-9+.-]*:", url) is not None


def _in_text(text: str) -> list[str]:
    found = [m.group(0) for m in _ABSOLUTE_URL.finditer(text)]
    found += [m.group(1) for m in _CSS_URL.finditer(text) if _is_external(m.group(1))]
    return sorted(set(found), key=found.index)


def external_references(html: str) -> list[str]:
    """Every URL in ``html`` that points away from the page's own server, in order of appearance.

    Looked for in the attributes a browser fetches (``src``, ``href``, ``action``, ``srcset`` …),
    in inline styles and event handlers, and in ``<script>`` and ``<style>`` text (absolute and
    protocol-relative URLs, ``url(…)`` and ``@import``). Relative paths (``/predict``) and
    ``data:`` URLs are the page's own. An empty list means the page can work offline.
    """
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.found

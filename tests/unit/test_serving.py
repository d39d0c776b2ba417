"""mlcourse.serving: the predictor core, the ticket file, the loopback server, a page's outside references."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mlcourse.router import TicketRouter, train_router
from mlcourse.serving import (
    CONFIDENCE_DECIMALS,
    external_references,
    predict_rows,
    serve_in_thread,
    write_ticket_file,
)


@pytest.fixture(scope="module")
def router() -> TicketRouter:
    return train_router(n_tickets=300, seed=0)


class FixedProba:
    """A stand-in router whose probabilities are given."""

    teams = ("billing", "technical")

    def __init__(self, proba: list[list[float]]) -> None:
        self.proba = np.array(proba)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.proba[: len(texts)]


def test_core_agrees_with_the_router(router: TicketRouter) -> None:
    """Does the core pick the router's own team, with that team's probability, rounded, as plain types?"""
    texts = ["I was charged twice", "the app crashes on login", "🙂", "N/A"]
    rows = predict_rows(router, texts)
    proba = router.predict_proba(texts)
    assert [row["team"] for row in rows] == router.predict(texts)
    for row, p in zip(rows, proba, strict=True):
        assert row["confidence"] == round(float(p.max()), CONFIDENCE_DECIMALS)
        assert type(row["team"]) is str and type(row["confidence"]) is float


def test_core_rounds_and_keeps_order() -> None:
    """Are the answers in input order, with the confidence rounded to CONFIDENCE_DECIMALS?"""
    rows = predict_rows(FixedProba([[0.123456, 0.876544], [0.9, 0.1]]), ["a", "b"])
    assert rows == [{"team": "technical", "confidence": 0.8765}, {"team": "billing", "confidence": 0.9}]


def test_core_of_no_texts_is_empty(router: TicketRouter) -> None:
    assert predict_rows(router, []) == []


def test_core_refuses_one_string(router: TicketRouter) -> None:
    """Does a bare string (a classic slip) fail loudly instead of being read as characters?"""
    with pytest.raises(TypeError, match="list of texts"):
        predict_rows(router, "I was charged twice")  # type: ignore[arg-type]


def test_ticket_file_round_trips_awkward_texts(tmp_path: Path) -> None:
    """Do commas, quotes, newlines and texts pandas would read as missing come back exactly?"""
    extra = ['a "quoted", comma', "line one\nline two", "N/A", "null", "", "ünïcödé 🙂"]
    path = write_ticket_file(tmp_path / "t.csv", 5, seed=3, extra_texts=extra)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["ticket_id", "text"]
    assert len(frame) == 5 + len(extra)
    assert frame["text"].tolist()[5:] == extra
    assert frame["ticket_id"].is_unique
    with path.open(newline="", encoding="utf-8") as handle:
        assert [row["text"] for row in csv.DictReader(handle)][5:] == extra


def test_ticket_file_is_deterministic(tmp_path: Path) -> None:
    a = write_ticket_file(tmp_path / "a.csv", 20, seed=1).read_bytes()
    b = write_ticket_file(tmp_path / "b.csv", 20, seed=1).read_bytes()
    assert a == b and a.count(b"\n") >= 21


def test_serve_in_thread_answers_over_loopback_and_stops() -> None:
    """Does a real uvicorn server answer on the port it reports, and is the port closed afterwards?"""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    with serve_in_thread(app) as base:
        assert base.startswith("http://127.0.0.1:")
        assert httpx.get(base + "/health").json() == {"status": "ok"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/health", timeout=2)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<script src="https://cdn.jsdelivr.net/npm/htmx.org@2"></script>',
            ["https://cdn.jsdelivr.net/npm/htmx.org@2"],
        ),
        (
            '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Inter">',
            ["//fonts.googleapis.com/css?family=Inter"],
        ),
        ('<img srcset="a.png 1x, http://x.example/b.png 2x">', ["http://x.example/b.png"]),
        ("<style>@import url('https://f.example/a.css'); body{}</style>", ["https://f.example/a.css"]),
        ('<script>fetch("https://api.example.com/predict")</script>', ["https://api.example.com/predict"]),
        ('<div style="background: url(//img.example/x.png)"></div>', ["//img.example/x.png"]),
        ('<form action="http://127.0.0.1:8000/predict"></form>', ["http://127.0.0.1:8000/predict"]),
    ],
)
def test_outside_references_are_found(html: str, expected: list[str]) -> None:
    """Is every kind of URL a browser would fetch from another server reported?"""
    assert external_references(html) == expected


@pytest.mark.parametrize(
    "html",
    [
        '<script>fetch("/predict", {method: "POST"})</script>',
        '<a href="#top">top</a><img src="data:image/png;base64,AAAA"><link href="/static/site.css">',
        "<script>// a comment\nconst x = 1; //no space either\n</script>",
        "<p>Visit https://example.com for help</p>",
    ],
)
def test_own_and_inert_references_are_not_reported(html: str) -> None:
    """Are relative paths, fragments, data: URLs, JS comments and plain text left alone?"""
    assert external_references(html) == []

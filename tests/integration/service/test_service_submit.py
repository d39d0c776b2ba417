"""`mlcourse.submit.submit()` (what a learner calls on Colab) against the real app on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
from conftest import EXERCISE, LiveServer, make_settings

from grader.service import accounts
from grader.service.app import create_app
from grader.service.store import open_store
from mlcourse import submit as submit_module
from mlcourse.submit import SubmitError, submit


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    settings = make_settings(tmp_path, submissions_per_minute=3)
    store = open_store(settings)
    tokens = {"alice": accounts.add_user(store, "alice")[1]}
    with LiveServer(create_app(settings, workers=1, store=store)) as server:
        yield server.url, tokens
    store.dispose()


def _file(tmp_path: Path, data: bytes | None = None, name: str = "work.ipynb") -> Path:
    path = tmp_path / name
    path.write_bytes(data if data is not None else service_fakes.notebook())
    return path


def test_submit_sends_the_notebook_waits_and_returns_the_feedback(
    live: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Does submit() return the grade and print one line per check when not in a notebook?"""
    url, tokens = live
    result = submit(EXERCISE, token=tokens["alice"], url=url, notebook=_file(tmp_path), progress=False)
    assert result["status"] == "graded" and (result["score"], result["max_score"]) == (2.0, 3.0)
    shown = capsys.readouterr().out
    assert f"{EXERCISE}: 2/3 points" in shown
    assert "PASS    Check 1.1: the answer is right  2/2" in shown
    assert "FAIL    Check 1.2 (hidden): the edge case is handled  0/1" in shown


def test_submit_reads_the_token_and_url_from_the_environment(
    live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tokens = live
    monkeypatch.setenv(submit_module.ENV_TOKEN, tokens["alice"])
    monkeypatch.setenv(submit_module.ENV_URL, url + "/")
    assert submit(EXERCISE, notebook=_file(tmp_path), show=False, progress=False)["status"] == "graded"


@pytest.mark.parametrize(
    ("token", "exercise", "data", "status", "words"),
    [
        ("wrong-token", EXERCISE, None, 401, "Bearer"),
        (None, "99-nope", None, 422, "unknown exercise"),
        (None, EXERCISE, b"not a notebook", 415, "not valid JSON"),
    ],
)
def test_refusals_reach_the_learner_in_words(
    live: Any, tmp_path: Path, token: str | None, exercise: str, data: bytes | None, status: int, words: str
) -> None:
    url, tokens = live
    with pytest.raises(SubmitError, match=words) as refused:
        submit(exercise, token=token or tokens["alice"], url=url, notebook=_file(tmp_path, data), progress=False)
    assert refused.value.status == status


def test_the_rate_limit_tells_how_long_to_wait(live: Any, tmp_path: Path) -> None:
    url, tokens = live
    for i in range(3):
        submit(
            EXERCISE,
            token=tokens["alice"],
            url=url,
            notebook=_file(tmp_path, name=f"{i}.ipynb"),
            show=False,
            progress=False,
        )
    with pytest.raises(SubmitError, match="limit is 3") as refused:
        submit(EXERCISE, token=tokens["alice"], url=url, notebook=_file(tmp_path, name="4.ipynb"), progress=False)
    assert refused.value.status == 429 and refused.value.retry_after_s is not None


def test_a_grader_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(SubmitError, match="cannot reach the grader"):
        submit(EXERCISE, token="t", url="http://127.0.0.1:9", notebook=_file(tmp_path), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"token": None, "url": "http://x"}, "no token"),
        ({"token": "t", "url": None}, "no grader URL"),
    ],
)
def test_a_missing_token_or_url_says_how_to_give_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], words: str
) -> None:
    monkeypatch.delenv(submit_module.ENV_TOKEN, raising=False)
    monkeypatch.delenv(submit_module.ENV_URL, raising=False)
    with pytest.raises(SubmitError, match=words):
        submit(EXERCISE, notebook=_file(tmp_path), **kwargs)


def test_outside_colab_without_a_path_the_fallback_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not on Colab and no session path: does the error say to pass notebook='…'?"""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(SubmitError, match=re.escape("notebook='path/to/your_notebook.ipynb'")):
        submit_module.current_notebook()


def test_a_jupyter_session_path_is_used_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    from IPython.testing.globalipapp import start_ipython

    start_ipython()  # get_ipython() must answer, as in a kernel
    content, name = submit_module.current_notebook()
    assert (content, name) == (path.read_bytes(), "work.ipynb")


def test_on_colab_the_open_notebook_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Colab, is the notebook taken from the frontend (get_ipynb), unsaved edits included?"""
    import sys
    import types

    sent: list[str] = []
    message = types.ModuleType("google.colab._message")

    def blocking_request(kind: str, request: str = "", timeout_sec: int = 0) -> dict[str, Any]:
        sent.append(kind)
        return {"ipynb": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}

    message.blocking_request = blocking_request  # type: ignore[attr-defined]
    colab = types.ModuleType("google.colab")
    colab._message = message  # type: ignore[attr-defined]
    google = types.ModuleType("google")
    google.colab = colab  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    content, _ = submit_module.current_notebook()
    assert sent == ["get_ipynb"] and json.loads(content)["nbformat"] == 4


def test_feedback_html_is_escaped() -> None:
    html = submit_module.render_html(
        {
            "status": "graded",
            "exercise": "e",
            "score": 0,
            "max_score": 1,
            "checks": [
                {"id": "1", "name": "<b>x</b>", "status": "fail", "points": 0, "max_points": 1, "message": "<script>"}
            ],
        }
    )
    assert "<b>x</b>" not in html and "<script>" not in html and "&lt;script&gt;" in html

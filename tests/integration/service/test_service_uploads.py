"""Uploads under abuse: the work a notebook may cost is bounded before it is parsed, every attempt counts
toward the rate limit, and checking runs in its own process, never on the threads that answer requests.

Real service (TestClient over create_app, or uvicorn on loopback), real SQLite store, the real checker
processes. No timing thresholds: what is asserted is the answer, its words and who did the work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
from conftest import EXERCISE, LiveServer, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts
from grader.service.app import create_app
from grader.service.store import open_store
from grader.settings import Settings

UPLOAD_CAP_MB = 0.5


class Client:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.token = accounts.add_user(self.store, "alice")[1]
        self.client = TestClient(create_app(settings, workers=0, store=self.store))

    def submit(self, data: bytes, filename: str = "nb.ipynb") -> Any:
        return self.client.post(
            "/api/submissions",
            headers={"Authorization": f"Bearer {self.token}"},
            data={"exercise": EXERCISE},
            files={"file": (filename, data)},
        )


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Any]:
    made: list[Client] = []

    def make(**overrides: Any) -> Client:
        values = {"max_upload_mb": UPLOAD_CAP_MB, **overrides}
        client = Client(make_settings(tmp_path / f"s{len(made)}", **values))
        client.client.__enter__()
        made.append(client)
        return client

    yield make
    for client in made:
        client.client.__exit__(None, None, None)
        client.store.dispose()


def _notebook(cells: list[dict[str, Any]], **metadata: Any) -> bytes:
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}).encode()


def _code(i: int, source: str = "", outputs: list[Any] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": f"c{i}",
        "metadata": {},
        "source": source,
        "outputs": outputs or [],
        "execution_count": None,
    }


def _stream(text: str = "hi\n") -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _refusal(response: Any) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


# --- the limits, with what to do ---------------------------------------------------------------


def test_a_notebook_with_more_cells_than_the_limit_is_413_naming_the_limit(make_client: Any) -> None:
    """The issue's upload: many empty cells and one broken output. Refused for its size in cells, with the limit?"""
    client = make_client(upload_max_cells=50)
    cells = [_code(i) for i in range(400)] + [_code(400, outputs=[{"output_type": "bogus"}])]
    status, code, message = _refusal(client.submit(_notebook(cells)))
    assert (status, code) == (413, "too-large")
    assert "401 cells" in message and "50-cell limit" in message and "delete" in message


def test_a_notebook_with_more_outputs_than_the_limit_is_413(make_client: Any) -> None:
    client = make_client(upload_max_outputs=30)
    cells = [_code(i, "print(i)", [_stream()] * 4) for i in range(10)]
    status, code, message = _refusal(client.submit(_notebook(cells)))
    assert (status, code) == (413, "too-large")
    assert "40 outputs" in message and "30-output limit" in message and "Clear All Outputs" in message


def test_one_cell_over_the_per_cell_size_is_413_naming_the_cell(make_client: Any) -> None:
    client = make_client(upload_max_cell_mb=0.05)
    cells = [_code(0, "x = 1"), _code(1, "# " + "y" * 60_000), _code(2)]
    status, code, message = _refusal(client.submit(_notebook(cells)))
    assert (status, code) == (413, "too-large")
    assert "cell 2" in message and "0.05 MB limit of one cell" in message


def test_json_nested_too_deep_is_415(make_client: Any) -> None:
    client = make_client()
    deep = json.loads("[" * 100 + "]" * 100)
    status, code, message = _refusal(client.submit(_notebook([_code(0)], deep=deep)))
    assert (status, code) == (415, "not-a-notebook")
    assert "nested more than 64 levels" in message


def test_a_broken_output_among_many_cells_is_415_naming_the_cell_and_output(make_client: Any) -> None:
    """Within the limits, an invalid output deep in the notebook: does the refusal say where it is?"""
    client = make_client()
    cells = [_code(i) for i in range(900)]
    cells[733]["outputs"] = [_stream(), _stream(), {"output_type": "bogus"}]
    status, code, message = _refusal(client.submit(_notebook(cells)))
    assert (status, code) == (415, "not-a-notebook")
    assert "cell 734, output 3" in message and "re-save it from Jupyter" in message


def test_a_notebook_within_the_limits_is_accepted(make_client: Any) -> None:
    """Are real notebooks untouched by the limits: ids missing (nbformat 4.5 repairs them), list sources, outputs?"""
    client = make_client(upload_max_cells=50, upload_max_outputs=30)
    cells = [_code(i, ["a = 1\n", "print(a)\n"], [_stream()]) for i in range(20)]
    for cell in cells[::2]:
        del cell["id"]
    assert client.submit(_notebook(cells, fake={"checks": []})).status_code == 202
    assert client.submit(service_fakes.notebook()).status_code == 202


# --- every attempt counts, before any parsing ----------------------------------------------------


def test_refused_uploads_count_toward_the_rate_limit(make_client: Any) -> None:
    """Does a learner's 415s use up their submissions a minute, so refused uploads cannot be sent without end?"""
    client = make_client(submissions_per_minute=3)
    assert [client.submit(b"not json").status_code for _ in range(3)] == [415, 415, 415]
    for data in (b"not json", service_fakes.notebook()):
        status, code, message = _refusal(client.submit(data))
        assert (status, code) == (429, "rate-limited") and "limit is 3" in message
        assert "attempts" in message


# --- parsing runs in its own process --------------------------------------------------------------


def test_checking_runs_in_its_own_process_and_health_answers_while_it_is_stuck(make_client: Any) -> None:
    """With the checker process stopped (SIGSTOP), does an upload wait for it without holding up /api/health, and
    go through once it runs again? Are uploads beyond the checker's queue refused at once (503, Retry-After)?"""
    from grader.service import uploads

    client = make_client()
    assert client.submit(service_fakes.notebook()).status_code == 202  # starts the checker
    pids = uploads.checker_pids()
    assert pids and os.getpid() not in pids
    answers: list[int] = []
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        waiting = [
            threading.Thread(target=lambda: answers.append(client.submit(service_fakes.notebook()).status_code))
            for _ in range(uploads.queue_capacity(client.settings))
        ]
        for thread in waiting:
            thread.start()
        wait_until(lambda: uploads.checks_in_flight() == len(waiting), what="the uploads to wait for the checker")
        assert client.client.get("/api/health").json() == {"status": "ok"}
        busy = client.submit(service_fakes.notebook())
        status, code, message = _refusal(busy)
        assert (status, code) == (503, "busy") and "try again" in message
        assert int(busy.headers["retry-after"]) >= 1
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    for thread in waiting:
        thread.join(60)
    assert answers == [202] * len(waiting)


# --- an early 413 reads what the client sends --------------------------------------------------


def test_a_body_declared_too_large_is_read_to_its_end_before_the_413(tmp_path: Path) -> None:
    """A proxy that streams the body (Caddy, or nginx without buffering) must get the 413, not a reset (its 502)."""
    settings = make_settings(tmp_path, max_upload_mb=0.2, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    body = b"x" * 8_000_000
    head = (
        "POST /api/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        with (
            LiveServer(create_app(settings, store=store)) as server,
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection,
        ):
            connection.sendall(head)
            for start in range(0, len(body), 65536):  # a reset here is what the proxy would have met
                connection.sendall(body[start : start + 65536])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    finally:
        store.dispose()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"too-large"' in answer

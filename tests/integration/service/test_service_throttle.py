"""Failed sign-ins and wrong tokens are throttled per client address (429, Retry-After), never per account:
an attacker cannot lock a learner out, and a learner elsewhere keeps working.

The client address is the one uvicorn gives the app (``request.client``): behind nginx, the X-Forwarded-For
that uvicorn believes from 127.0.0.1 only; never a header the app reads itself.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer, make_settings
from fastapi.testclient import TestClient

from grader.service import accounts
from grader.service.app import create_app
from grader.service.store import Store, open_store

FAILURES = 5
ATTACKER = ("203.0.113.7", 40000)
LEARNER = ("198.51.100.20", 40001)
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Any, Store, str]]:
    settings = make_settings(tmp_path, auth_failures_per_minute=FAILURES, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    token = accounts.add_user(store, "alice")[1]
    app = create_app(settings, workers=0, store=store)
    yield app, store, token
    store.dispose()


def _client(app: Any, address: tuple[str, int]) -> TestClient:
    return TestClient(app, client=address, follow_redirects=False)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_wrong_tokens_from_one_address_are_throttled_but_not_the_learner_elsewhere(service: Any) -> None:
    """After FAILURES wrong tokens, is that address answered 429 with Retry-After, its right tokens included,
    while the learner's own token works from their address?"""
    app, _store, token = service
    attacker, learner = _client(app, ATTACKER), _client(app, LEARNER)
    assert [attacker.get("/api/me", headers=_bearer(f"guess-{i}")).status_code for i in range(FAILURES)] == [
        401
    ] * FAILURES
    for guess in ("guess-again", token):  # no oracle: a right guess is refused too
        throttled = attacker.get("/api/me", headers=_bearer(guess))
        assert throttled.status_code == 429
        error = throttled.json()["error"]
        assert error["code"] == "rate-limited" and "failed sign-ins from your address" in error["message"]
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert learner.get("/api/me", headers=_bearer(token)).json()["name"] == "alice"
    # a spoofed X-Forwarded-For changes nothing: only uvicorn's trusted proxy handling sets the address
    spoofed = attacker.get("/api/me", headers={**_bearer("guess"), "X-Forwarded-For": "192.0.2.99"})
    assert spoofed.status_code == 429


def test_requests_without_a_token_are_not_counted(service: Any) -> None:
    """A visitor who is simply signed out (no token at all) is told to sign in, however often."""
    app, _store, token = service
    visitor = _client(app, ATTACKER)
    assert {visitor.get("/api/me").status_code for _ in range(FAILURES * 2)} == {401}
    assert visitor.get("/api/me", headers=_bearer(token)).status_code == 200


def test_failed_sign_in_forms_and_cookie_guesses_are_throttled(service: Any) -> None:
    """The sign-in form and a guessed cookie on the pages count as failures; once throttled, the form says so."""
    app, _store, token = service
    attacker = _client(app, ATTACKER)
    for i in range(FAILURES - 1):
        assert attacker.post("/signin", data={"token": f"guess-{i}"}, headers=ORIGIN).status_code == 401
    attacker.cookies.set("grader_token", "guessed-cookie")
    assert "Sign in" in attacker.get("/submit").text  # the last failure allowed, then the block
    attacker.cookies.clear()
    page = attacker.post("/signin", data={"token": token}, headers=ORIGIN)
    assert page.status_code == 429 and "set-cookie" not in page.headers
    assert "failed sign-ins from your address" in page.text and int(page.headers["retry-after"]) >= 1
    attacker.cookies.set("grader_token", token)
    assert "alice" not in attacker.get("/submit").text  # no oracle through a page's cookie either


def test_a_cookie_that_stopped_working_is_forgotten(service: Any) -> None:
    """A learner whose token was reset keeps a stale cookie: is it deleted at once (so polling stops counting)?"""
    app, store, token = service
    learner = _client(app, LEARNER)
    learner.cookies.set("grader_token", token)
    assert learner.get("/api/me").status_code == 200
    accounts.reset_token(store, "alice")
    response = learner.get("/api/me")
    assert response.status_code == 401
    cookie = response.headers["set-cookie"]
    assert cookie.startswith('grader_token=""') or "max-age=0" in cookie.lower()


def test_through_a_trusted_proxy_each_forwarded_address_is_throttled_alone(tmp_path: Path) -> None:
    """Under uvicorn, X-Forwarded-For from 127.0.0.1 (the nginx of docs/SERVICE.md) is the client's address."""
    settings = make_settings(tmp_path, auth_failures_per_minute=2, build_dir=tmp_path / "no-book")
    store = open_store(settings)
    token = accounts.add_user(store, "alice")[1]

    def me(server: LiveServer, forwarded_for: str, bearer: str) -> int:
        request = urllib.request.Request(
            server.url + "/api/me", headers={**_bearer(bearer), "X-Forwarded-For": forwarded_for}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    try:
        with LiveServer(create_app(settings, workers=0, store=store)) as server:
            assert [me(server, "203.0.113.7", "guess") for _ in range(3)] == [401, 401, 429]
            assert me(server, "198.51.100.20", token) == 200
    finally:
        store.dispose()

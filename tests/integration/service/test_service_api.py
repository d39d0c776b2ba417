"""The HTTP API and pages: every endpoint, every documented error, security headers, escaping."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import service_fakes
from conftest import EXERCISE, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.service import accounts
from grader.service.app import BOOK_CSP, STRICT_CSP, create_app
from grader.service.store import open_store

UPLOAD_CAP_MB = 0.2
#: what a browser sends with a form of this site (TestClient's base URL)
SAME_SITE = {"Origin": "http://testserver"}


class Service:
    """A TestClient over create_app with the fake grade function, and three accounts."""

    def __init__(self, tmp_path: Path, *, workers: int = 1, **overrides: Any) -> None:
        self.settings = make_settings(tmp_path, max_upload_mb=UPLOAD_CAP_MB, **overrides)
        self.store = open_store(self.settings)
        self.tokens = {
            name: accounts.add_user(self.store, name, instructor=name == "ines")[1] for name in ("alice", "bob", "ines")
        }
        self.client = TestClient(create_app(self.settings, workers=workers, store=self.store))

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def submit(self, name: str, data: bytes | None = None, exercise: str = EXERCISE, filename: str = "nb.ipynb"):
        return self.client.post(
            "/api/submissions",
            headers=self.auth(name),
            data={"exercise": exercise},
            files={"file": (filename, data if data is not None else service_fakes.notebook())},
        )

    def final(self, name: str, sid: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            view = self.client.get(f"/api/submissions/{sid}", headers=self.auth(name)).json()
            return view if view["final"] else None

        return wait_until(done, timeout_s=30, what=f"submission {sid} to be graded")


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    made: list[Service] = []

    def make(**overrides: Any) -> Service:
        service = Service(tmp_path / f"s{len(made)}", **overrides)
        service.client.__enter__()
        made.append(service)
        return service

    yield make
    for service in made:
        service.client.__exit__(None, None, None)
        service.store.dispose()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


def _error(response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


# --- the happy path ---------------------------------------------------------------------------


def test_a_submission_is_accepted_then_graded_with_per_check_feedback(service: Service) -> None:
    """Does POST answer 202 with the job's id and where to poll, and GET end with the grade and each check?"""
    response = service.submit("alice")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and not body["duplicate"]
    assert response.headers["location"] == body["url"] == f"/api/submissions/{body['id']}"
    result = service.final("alice", body["id"])
    assert result["status"] == "graded"
    assert (result["score"], result["max_score"]) == (2.0, 3.0)
    assert [(c["id"], c["status"], c["points"]) for c in result["checks"]] == [
        ("1.1", "pass", 2.0),
        ("1.2", "fail", 0.0),
    ]
    assert result["exercise"] == EXERCISE and result["device_info"]["kind"] == "cpu"  # the worker's own


def test_the_status_moves_from_queued_through_running_to_graded(service: Service) -> None:
    """Can a learner watch the job's status change, in order, until the grade?"""
    sid = service.submit("alice", service_fakes.notebook(sleep=1.0)).json()["id"]
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while (not seen or seen[-1] != "graded") and time.monotonic() < deadline:
        status = service.client.get(f"/api/submissions/{sid}", headers=service.auth("alice")).json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.05)
    assert seen[-2:] == ["running", "graded"]
    assert seen[0] in ("queued", "running")


def test_a_double_submit_answers_with_the_same_job(make_service: Callable[..., Service]) -> None:
    service = make_service(workers=0)
    data = service_fakes.notebook()
    first, second = service.submit("alice", data).json(), service.submit("alice", data).json()
    assert second["id"] == first["id"] and second["duplicate"]


def test_a_learner_lists_only_their_own_submissions(service: Service) -> None:
    mine = {service.submit("alice").json()["id"] for _ in range(2)}
    service.submit("bob")
    listed = service.client.get("/api/submissions", headers=service.auth("alice")).json()["submissions"]
    assert {s["id"] for s in listed} == mine


def test_someone_elses_submission_is_not_found_but_an_instructor_may_read_it(service: Service) -> None:
    """Does bob get 404 (never 403) for alice's submission, while the instructor can read it?"""
    sid = service.submit("alice").json()["id"]
    response = service.client.get(f"/api/submissions/{sid}", headers=service.auth("bob"))
    assert response.status_code == 404
    assert _error(response)["code"] == "not-found"
    unknown = service.client.get("/api/submissions/no-such-id", headers=service.auth("bob"))
    assert unknown.status_code == 404 and unknown.json() == response.json()
    assert service.client.get(f"/api/submissions/{sid}", headers=service.auth("ines")).status_code == 200


def test_the_exercises_are_listed_with_titles_points_and_a_download(service: Service) -> None:
    found = service.client.get("/api/exercises").json()["exercises"]
    entry = next(e for e in found if e["id"] == EXERCISE)
    assert entry["title"].startswith("Exercise 00")
    assert entry["max_points"] > 0
    download = service.client.get(entry["download"])
    assert download.status_code == 200
    assert json.loads(download.content)["metadata"]["grader"]["exercise"] == EXERCISE


def test_me_says_who_the_token_belongs_to(service: Service) -> None:
    assert service.client.get("/api/me", headers=service.auth("ines")).json() == {"name": "ines", "role": "instructor"}


# --- every documented error -------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic YWxpY2U6eA==", "Bearer ", "token-without-scheme"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/submissions"),
        ("POST", "/api/submissions"),
        ("GET", "/api/submissions/x"),
        ("GET", "/api/gradebook.csv"),
        ("GET", "/api/me"),
    ],
)
def test_no_valid_token_is_401_with_how_to_sign_in(
    service: Service, header: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = service.client.request(method, path, headers=headers)
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == "unauthorized" and "Bearer" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/api/gradebook.csv", "/api/gradebook/checks", "/api/queue"])
def test_a_learner_on_an_instructor_endpoint_is_403(service: Service, path: str) -> None:
    response = service.client.get(path, headers=service.auth("alice"))
    assert response.status_code == 403
    assert _error(response)["code"] == "instructors-only"
    assert service.client.get(path, headers=service.auth("ines")).status_code == 200


@pytest.mark.parametrize("size", [int(UPLOAD_CAP_MB * 1e6) + 1_000, int(UPLOAD_CAP_MB * 1e6) * 3])
def test_an_upload_over_the_cap_is_413(service: Service, size: int) -> None:
    """Is an oversized notebook refused (whether its declared length or its actual bytes are too many)?"""
    response = service.submit("alice", b"x" * size)
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "too-large" and "Clear All Outputs" in error["message"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"print('hello')", "not valid JSON"),
        (b'{"hello": "world"}', "not a Jupyter notebook"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b'{"cells": [], "nbformat": 3}', "format 3"),
    ],
)
def test_a_file_that_is_not_a_notebook_is_415_with_the_reason(service: Service, content: bytes, reason: str) -> None:
    response = service.submit("alice", content, filename="homework.py")
    assert response.status_code == 415
    error = _error(response)
    assert error["code"] == "not-a-notebook" and reason in error["message"]


def test_an_unknown_exercise_is_422_listing_the_known_ones(service: Service) -> None:
    response = service.submit("alice", exercise="99-nope")
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "unknown-exercise" and EXERCISE in error["message"]


@pytest.mark.parametrize(
    ("data", "files", "missing"),
    [
        ({"exercise": EXERCISE}, None, "file"),
        ({}, {"file": ("nb.ipynb", b"{}")}, "exercise"),
    ],
)
def test_a_missing_form_field_is_422_naming_it(service: Service, data, files, missing: str) -> None:
    response = service.client.post("/api/submissions", headers=service.auth("alice"), data=data, files=files)
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "invalid-request" and missing in error["message"]


def test_too_many_submissions_a_minute_is_429_with_retry_after(make_service: Callable[..., Service]) -> None:
    service = make_service(workers=0, submissions_per_minute=2)
    assert [service.submit("alice").status_code for _ in range(2)] == [202, 202]
    response = service.submit("alice")
    assert response.status_code == 429
    error = _error(response)
    assert error["code"] == "rate-limited" and "limit is 2" in error["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert service.submit("bob").status_code == 202  # the limit is per learner


def test_a_full_queue_is_503_with_retry_after(make_service: Callable[..., Service]) -> None:
    service = make_service(workers=0, max_queued=1)
    assert service.submit("alice").status_code == 202
    response = service.submit("bob")
    assert response.status_code == 503
    assert _error(response)["code"] == "queue-full"
    assert int(response.headers["retry-after"]) >= 1


def test_an_unknown_api_path_is_a_json_404(service: Service) -> None:
    response = service.client.get("/api/no/such/thing")
    assert response.status_code == 404
    assert _error(response)["code"] == "not-found"


# --- the gradebook ----------------------------------------------------------------------------


def _checks(*passes: bool) -> list[dict[str, Any]]:
    return [{"id": f"1.{i + 1}", "name": f"check {i + 1}", "points": 1, "pass": p} for i, p in enumerate(passes)]


def test_the_gradebook_has_each_learners_best_score_and_the_pass_rates(service: Service) -> None:
    """Does the CSV hold every learner's best graded score, and the pass rates count their best submissions?"""
    for name, passes in [
        ("alice", (True, False)),
        ("alice", (True, True)),
        ("alice", (False, False)),
        ("bob", (True, False)),
    ]:
        service.final(name, service.submit(name, service_fakes.notebook(checks=_checks(*passes))).json()["id"])
    service.final("ines", service.submit("ines").json()["id"])  # instructors are not in the gradebook
    response = service.client.get("/api/gradebook.csv", headers=service.auth("ines"))
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["learner"]: row[EXERCISE] for row in rows} == {"alice": "2", "bob": "1"}
    rates = service.client.get("/api/gradebook/checks", headers=service.auth("ines")).json()["exercises"]
    assert len(rates) == 1 and rates[0]["learners"] == 2
    assert {c["id"]: (c["passed"], c["learners"], c["pass_rate"]) for c in rates[0]["checks"]} == {
        "1.1": (2, 2, 1.0),
        "1.2": (1, 2, 0.5),
    }


def test_a_learner_without_submissions_has_an_empty_row(service: Service) -> None:
    rows = list(
        csv.DictReader(io.StringIO(service.client.get("/api/gradebook.csv", headers=service.auth("ines")).text))
    )
    assert {row["learner"]: row[EXERCISE] for row in rows} == {"alice": "", "bob": ""}


# --- OpenAPI and docs -------------------------------------------------------------------------


def test_the_openapi_document_lists_every_endpoint_and_its_errors(service: Service) -> None:
    spec = service.client.get("/api/openapi.json").json()
    assert {
        "/api/submissions",
        "/api/submissions/{submission_id}",
        "/api/exercises",
        "/api/gradebook.csv",
        "/api/gradebook/checks",
    } <= set(spec["paths"])
    post = spec["paths"]["/api/submissions"]["post"]
    assert {"202", "401", "413", "415", "422", "429", "503"} <= set(post["responses"])
    assert post["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    assert any(
        s.get("type") == "http" and s.get("scheme") == "bearer" for s in spec["components"]["securitySchemes"].values()
    )


def test_the_docs_page_describes_every_endpoint(service: Service) -> None:
    page = service.client.get("/api/docs").text
    for endpoint in ("POST /api/submissions", "GET /api/submissions/{submission_id}", "GET /api/gradebook.csv"):
        assert endpoint in page


# --- headers, escaping, pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/exercises",
        "/api/no-such",
        "/api/openapi.json",
        "/api/docs",
        "/submit",
        "/signin",
        "/grader-static/grader.js",
        "/gradebook",
    ],
)
def test_every_service_response_has_strict_security_headers(service: Service, path: str) -> None:
    response = service.client.get(path, follow_redirects=False)
    assert response.headers["content-security-policy"] == STRICT_CSP
    assert "'unsafe-inline'" not in STRICT_CSP and "frame-ancestors 'none'" in STRICT_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/submit", "/signin", "/api/docs", "/gradebook"])
def test_pages_have_no_inline_script_or_style(service: Service, path: str) -> None:
    """Would the strict CSP block anything on our own pages? (Every script and style is a file.)"""
    service.client.cookies.set("grader_token", service.tokens["ines"])
    page = service.client.get(path).text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page and " style=" not in page and "onclick" not in page.lower()


def test_the_book_is_served_at_the_root_with_headers(make_service: Callable[..., Service], tmp_path: Path) -> None:
    """When the site is built, is it served at / (with security headers) beside the service?"""
    build = tmp_path / "build"
    (build / "html").mkdir(parents=True)
    (build / "html" / "index.html").write_text("<html><body>the course book</body></html>")
    service = make_service(build_dir=build)
    response = service.client.get("/")
    assert response.status_code == 200 and "the course book" in response.text
    assert response.headers["content-security-policy"] == BOOK_CSP
    assert "frame-ancestors 'none'" in BOOK_CSP and "http" not in BOOK_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert service.client.get("/submit").headers["content-security-policy"] == STRICT_CSP


def test_without_a_book_the_root_leads_to_the_submit_page(make_service: Callable[..., Service], tmp_path: Path) -> None:
    service = make_service(build_dir=tmp_path / "no-build")
    response = service.client.get("/", follow_redirects=False)
    assert response.status_code in (303, 307) and response.headers["location"] == "/submit"


def test_feedback_is_escaped_on_the_page(service: Service) -> None:
    """Can a check name or message carry HTML into the feedback page? (It must be shown as text.)"""
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    data = service_fakes.notebook(checks=[{"id": "1.1", "name": evil, "points": 1, "pass": False}])
    sid = service.submit("alice", data, filename=evil + ".ipynb").json()["id"]
    service.final("alice", sid)
    service.client.cookies.set("grader_token", service.tokens["alice"])
    page = service.client.get(f"/submissions/{sid}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page


def test_fractional_points_are_shown_rounded_on_every_page(service: Service) -> None:
    """Do the feedback, submit and gradebook pages and the CSV show 2.67 points, the JSON API the exact number?"""
    third = 8 / 3
    checks = [{"id": "1.1", "name": "a third", "points": third, "pass": True}]
    sid = service.submit("alice", service_fakes.notebook(checks=checks)).json()["id"]
    assert service.final("alice", sid)["score"] == third
    service.client.cookies.set("grader_token", service.tokens["alice"])
    pages = [service.client.get(f"/submissions/{sid}").text, service.client.get("/submit").text]
    service.client.cookies.set("grader_token", service.tokens["ines"])
    pages.append(service.client.get("/gradebook").text)
    for page in pages:
        assert "2.67/2.67" in page and "2.6666" not in page
    rows = list(
        csv.DictReader(io.StringIO(service.client.get("/api/gradebook.csv", headers=service.auth("ines")).text))
    )
    assert {row["learner"]: (row[EXERCISE], row["total"]) for row in rows}["alice"] == ("2.67", "2.67")


def test_signing_in_sets_a_strict_httponly_cookie(service: Service) -> None:
    response = service.client.post(
        "/signin", data={"token": service.tokens["alice"], "next": "/submit"}, headers=SAME_SITE, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/submit"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(service: Service, target: str) -> None:
    response = service.client.post(
        "/signin", data={"token": service.tokens["alice"], "next": target}, headers=SAME_SITE, follow_redirects=False
    )
    assert response.headers["location"] == "/submit"


def test_a_wrong_token_on_the_sign_in_form_says_so(service: Service) -> None:
    response = service.client.post("/signin", data={"token": "wrong"}, headers=SAME_SITE)
    assert response.status_code == 401 and "matches no account" in response.text


def test_the_pages_submit_and_show_the_feedback(service: Service) -> None:
    """Signed in by cookie, does the upload form queue the notebook and its page show the per-check verdicts?"""
    service.client.post("/signin", data={"token": service.tokens["alice"]}, headers=SAME_SITE)
    response = service.client.post(
        "/submit",
        data={"exercise": EXERCISE},
        files={"file": ("mine.ipynb", service_fakes.notebook())},
        headers=SAME_SITE,
        follow_redirects=False,
    )
    assert response.status_code == 303
    sid = response.headers["location"].removeprefix("/submissions/")
    service.final("alice", sid)
    page = service.client.get(f"/submissions/{sid}").text
    assert "2/3" in page and "PASS" in page and "FAIL" in page and "Check 1.2 (hidden)" in page
    assert sid in service.client.get("/submit").text


def test_the_upload_page_shows_refusals_in_words(service: Service) -> None:
    service.client.post("/signin", data={"token": service.tokens["alice"]}, headers=SAME_SITE)
    response = service.client.post(
        "/submit", data={"exercise": EXERCISE}, files={"file": ("x.ipynb", b"not json")}, headers=SAME_SITE
    )
    assert response.status_code == 415 and "not valid JSON" in response.text


def test_a_cookie_form_post_from_another_site_is_refused(service: Service) -> None:
    service.client.post("/signin", data={"token": service.tokens["alice"]}, headers=SAME_SITE)
    response = service.client.post(
        "/api/submissions",
        data={"exercise": EXERCISE},
        files={"file": ("x.ipynb", service_fakes.notebook())},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and _error(response)["code"] == "cross-origin"


def test_pages_send_a_signed_out_visitor_to_sign_in(service: Service) -> None:
    response = service.client.get("/gradebook", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_the_gradebook_page_is_for_instructors(service: Service) -> None:
    service.client.cookies.set("grader_token", service.tokens["alice"])
    assert service.client.get("/gradebook").status_code == 403
    service.client.cookies.set("grader_token", service.tokens["ines"])
    page = service.client.get("/gradebook")
    assert page.status_code == 200 and "alice" in page.text and "/api/gradebook.csv" in page.text


def test_an_oversized_upload_on_the_page_answers_with_a_page(service: Service) -> None:
    service.client.post("/signin", data={"token": service.tokens["alice"]}, headers=SAME_SITE)
    response = service.client.post(
        "/submit", data={"exercise": EXERCISE}, files={"file": ("x.ipynb", b"x" * int(UPLOAD_CAP_MB * 1e6) * 3)}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html") and "Clear All Outputs" in response.text


def test_a_sign_in_posted_from_another_site_is_refused(service: Service) -> None:
    response = service.client.post(
        "/signin",
        data={"token": service.tokens["alice"]},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


# --- cross-origin form posts ------------------------------------------------------------------


def _signed_in(service: Service) -> None:
    assert (
        service.client.post(
            "/signin", data={"token": service.tokens["alice"]}, headers=SAME_SITE, follow_redirects=False
        ).status_code
        == 303
    )


def test_signing_out_from_another_site_is_refused(service: Service) -> None:
    """Logout CSRF: can another site's form sign a learner out? (Only this site's own form may.)"""
    _signed_in(service)
    for foreign in ({"Origin": "https://evil.example"}, {}, {"Origin": "null"}):
        response = service.client.post("/signout", headers=foreign, follow_redirects=False)
        assert response.status_code == 403 and "set-cookie" not in response.headers
    assert "alice" in service.client.get("/submit").text
    response = service.client.post("/signout", headers=SAME_SITE, follow_redirects=False)
    assert response.status_code == 303 and response.headers["set-cookie"].startswith("grader_token=")
    assert 'grader_token=""' in response.headers["set-cookie"] or "max-age=0" in response.headers["set-cookie"].lower()


def _cookie_submission(service: Service, headers: dict[str, str]) -> Any:
    """A submission posted with the session cookie of a signed-in learner and ``headers``."""
    _signed_in(service)
    return service.client.post(
        "/api/submissions",
        data={"exercise": EXERCISE},
        files={"file": ("x.ipynb", service_fakes.notebook())},
        headers=headers,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://testserver"},  # same host and port, another scheme
        {"Origin": "http://testserver:8080"},
        {"Referer": "https://testserver/submit"},
        {},  # neither Origin nor Referer
    ],
)
def test_a_cookie_post_must_come_from_this_very_origin(service: Service, headers: dict[str, str]) -> None:
    """Is a cookie-authenticated post refused unless its Origin (or Referer) is this scheme, host and port?"""
    response = _cookie_submission(service, headers)
    assert response.status_code == 403 and _error(response)["code"] == "cross-origin"


@pytest.mark.parametrize("headers", [SAME_SITE, {"Referer": "http://testserver/submit"}])
def test_a_cookie_post_from_this_site_is_accepted(service: Service, headers: dict[str, str]) -> None:
    assert _cookie_submission(service, headers).status_code == 202


def test_a_sign_in_without_origin_or_referer_is_refused(service: Service) -> None:
    """Login CSRF: a browser always says where a form comes from; a post that does not is not signed in."""
    response = service.client.post("/signin", data={"token": service.tokens["alice"]}, follow_redirects=False)
    assert response.status_code == 403 and "set-cookie" not in response.headers

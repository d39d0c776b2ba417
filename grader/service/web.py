"""What the JSON API (:mod:`grader.service.api`) and the pages (:mod:`grader.service.pages`) share.

Error answers (:class:`ApiError`, drawn as ``{"error": {"code", "message"}}`` by the app's
handlers), the application's state, who is signed in (a Bearer token, or the sign-in cookie; failed
attempts throttled per client address, :mod:`grader.service.throttle`), whether a form comes from
this very origin, and the submission steps both ways of submitting take: count the attempt, read
the upload, check it in a checker process (:mod:`grader.service.uploads`), queue it, find one, show it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import Depends, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from grader.errors import QueueFull, RateLimited
from grader.format import markers
from grader.service import accounts, catalog, deadlines, queue, registry, totals, uploads
from grader.service.accounts import User
from grader.service.dispatch import Sender
from grader.service.statuses import FINAL_STATUSES
from grader.service.store import Store, submissions, users
from grader.service.throttle import Window, seconds_header
from grader.settings import Settings

log = logging.getLogger(__name__)

COOKIE_NAME = "grader_token"
COOKIE_MAX_AGE_S = 30 * 24 * 3600
#: the ``request.state`` flag (``scope["state"]`` key) of a sign-in cookie that no longer signs anyone in:
#: the app's middleware deletes it, so a browser stops sending it (and counting as failed sign-ins)
STALE_COOKIE = "grader_stale_cookie"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- errors -----------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "sign in: send the header 'Authorization: Bearer <token>' with the token your instructor "
        "gave you (or sign in at /signin)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def not_found() -> ApiError:
    return ApiError(404, "not-found", "no such submission; GET /api/submissions lists yours")


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too-large", uploads.too_large_message(limit))


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may answer these error statuses."""
    text = {
        400: "a request body that is not JSON",
        401: "no token, or a token that matches no account",
        403: "instructors only, a cookie-signed form from another origin, or past a deadline that refuses late work",
        404: "no such submission (or not yours)",
        409: "not graded yet: the submission is still queued or running",
        413: "upload over a limit: its size, cells, outputs or one cell's size",
        415: "not a Jupyter notebook",
        422: "unknown exercise, learner or gradebook format, a bad deadline, or a missing form field",
        429: "too many submissions a minute, or too many failed sign-ins from your address: see Retry-After",
        503: "queue full, upload checkers busy or store unavailable: see Retry-After",
    }
    if 401 in codes:  # wherever a token is read, failed ones are throttled
        codes = (*codes, 429)
    return {
        code: {"model": ErrorBody, "description": text[code], "content": {"application/json": {}}}
        for code in sorted(set(codes))
    }


# --- application state ------------------------------------------------------------------------


@dataclass
class AppState:
    settings: Settings
    store: Store
    #: hands a new submission to the workers (None: they poll the store)
    dispatch: Sender | None
    #: the server's clock, epoch seconds (tests inject one): is an upload past a ``refuse`` deadline?
    clock: Callable[[], float] = time.time
    #: failed sign-ins and wrong tokens, per client address
    auth_failures: Window = field(init=False)
    #: upload attempts, per learner (refused ones included), counted before anything is parsed
    upload_attempts: Window = field(init=False)

    def __post_init__(self) -> None:
        self.auth_failures = Window(self.settings.auth_failures_per_minute)
        self.upload_attempts = Window(self.settings.submissions_per_minute)


def app_state(request: Request) -> AppState:
    return request.app.state.grader  # type: ignore[no-any-return]


# --- who is signed in -------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="the token from `grader users add NAME`")


def client_address(request: Request) -> str:
    """The client's address as uvicorn gives it: behind the nginx of ``docs/SERVICE.md``, the
    ``X-Forwarded-For`` that uvicorn believes from 127.0.0.1 only; never a header read here."""
    return request.client.host if request.client is not None else "unknown"


def _throttled(state: AppState, wait_s: float) -> ApiError:
    return ApiError(
        429,
        "rate-limited",
        f"too many failed sign-ins from your address (the limit is {state.settings.auth_failures_per_minute} "
        f"a minute); wait {max(1, round(wait_s))} s, then sign in with the whole token your instructor gave you",
        headers=seconds_header(wait_s),
    )


def refuse_if_throttled(request: Request) -> None:
    """429 when the client's address has used up its failed sign-ins (asked before any token is looked up)."""
    state = app_state(request)
    wait = state.auth_failures.retry_after(client_address(request))
    if wait is not None:
        raise _throttled(state, wait)


def sign_in(request: Request, token: str, *, from_cookie: bool = False) -> User | None:
    """The account of ``token``, throttled: a failure counts against the client's address (429 once it
    has too many), and a cookie that failed is marked to be deleted."""
    refuse_if_throttled(request)
    state = app_state(request)
    user = accounts.authenticate(state.store, token)
    if user is None:
        state.auth_failures.record(client_address(request))
        if from_cookie:
            request.state.grader_stale_cookie = True  # STALE_COOKIE
    return user


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def same_origin(request: Request) -> bool:
    """Whether a form was posted from this very origin: its ``Origin`` (else its ``Referer``) names this
    scheme, host and port. A post that names neither is refused: every current browser sends ``Origin``
    with a POST, so only a page that hides where it comes from would arrive without both."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return False
    own = _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")
    return own is not None and _origin(claimed) == own


def cross_origin(what: str) -> ApiError:
    return ApiError(
        403,
        "cross-origin",
        f"{what} was posted from another site (or did not say where from); use this site's own pages",
    )


def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> User:
    """The signed-in account; 401 without a valid token, 429 for an address with too many failures."""
    if credentials is not None:
        token, from_cookie = credentials.credentials, False
    elif "authorization" in request.headers:  # present but not "Bearer <token>"
        refuse_if_throttled(request)
        app_state(request).auth_failures.record(client_address(request))
        raise ApiError(
            401,
            "unauthorized",
            "the Authorization header must be 'Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    else:
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie:
            raise unauthorized()
        token, from_cookie = cookie, True
    user = sign_in(request, token, from_cookie=from_cookie)
    if user is None:
        raise unauthorized()
    if from_cookie and request.method not in ("GET", "HEAD") and not same_origin(request):
        raise cross_origin("this form")
    return user


def instructor(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; this is for instructors only")
    return user


UserDep = Annotated[User, Depends(current_user)]
InstructorDep = Annotated[User, Depends(instructor)]


def page_user(request: Request) -> User | None:
    """The account of the sign-in cookie, if any (pages show a sign-in form instead of a 401)."""
    known: User | bool | None = getattr(request.state, "grader_page_user", False)
    if known is False:  # once per request, so a failure counts once
        token = request.cookies.get(COOKIE_NAME)
        known = request.state.grader_page_user = sign_in(request, token, from_cookie=True) if token else None
    return known if isinstance(known, User) else None


# --- submissions ------------------------------------------------------------------------------


def _count_attempt(state: AppState, user: User) -> None:
    """Every upload attempt counts toward the learner's submissions a minute, before anything is read."""
    wait = state.upload_attempts.take(user.id)
    if wait is not None:
        limit = state.settings.submissions_per_minute
        raise ApiError(
            429,
            "rate-limited",
            f"you made {limit} submission attempts in the last minute (the limit is {limit}, refused uploads "
            f"included); wait {max(1, round(wait))} s and submit again",
            headers=seconds_header(wait),
        )


async def _checked(state: AppState, data: bytes, filename: str) -> None:
    """The notebook checked in a checker process (bounded work, :mod:`grader.service.uploads`)."""
    try:
        refusal = await uploads.checker(state.settings).check(data, filename, uploads.UploadLimits.of(state.settings))
    except uploads.CheckerBusy:
        raise ApiError(
            503,
            "busy",
            "the grader is checking many uploads right now; try again in a few seconds",
            headers=uploads.retry_after_header(),
        ) from None
    if refusal is not None:
        raise ApiError(refusal.status, refusal.code, refusal.message)


async def accept(state: AppState, user: User, *, exercise: str, upload: UploadFile) -> queue.Enqueued:
    """Count, read, check and queue one submission (shared by the API and the upload page).

    The attempt is counted first; the exercise id is checked before the notebook; the notebook is checked in
    a checker process, so neither the event loop nor a request thread parses it.
    """
    _count_attempt(state, user)
    limit = int(state.settings.max_upload_mb * 1e6)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    exercises = {e.id: e for e in await run_in_threadpool(catalog.list_exercises, state.settings)}
    if exercise not in exercises:
        raise ApiError(
            422,
            "unknown-exercise",
            f"unknown exercise {exercise[:100]!r}; use one of: {', '.join(exercises) or 'none yet'}",
        )
    refused = await run_in_threadpool(deadlines.refusal, state.store, user.name, exercise, state.clock())
    if refused is not None:
        raise ApiError(403, "deadline-passed", refused)
    filename = safe_filename(upload.filename)
    await _checked(state, data, filename)
    return await run_in_threadpool(
        _enqueue, state, user, exercise=exercise, filename=filename, data=data, device=exercises[exercise].device
    )


def _enqueue(state: AppState, user: User, *, exercise: str, filename: str, data: bytes, device: str) -> queue.Enqueued:
    try:
        enqueued = queue.enqueue(
            state.store,
            user_id=user.id,
            exercise=exercise,
            filename=filename,
            notebook=data,
            per_minute=state.settings.submissions_per_minute,
            max_queued=state.settings.max_queued,
            device=device,
        )
    except RateLimited as exc:
        raise ApiError(429, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    except QueueFull as exc:
        raise ApiError(503, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    if enqueued.created and state.dispatch is not None:
        try:
            gpu_live = device == markers.DEVICE_GPU and registry.gpu_worker_live(
                state.store, state.settings.worker_ttl_s
            )
            to = registry.queue_for(device, gpu_live)
            state.dispatch(enqueued.id, to)
            queue.mark_dispatched(state.store, [enqueued.id], routed_to=to)
        except Exception:  # the broker is down: the Celery workers' re-sender will send it later
            log.exception("could not send submission %s to the broker; it stays queued", enqueued.id)
    return enqueued


def safe_filename(name: str | None) -> str:
    base = Path(name or "notebook.ipynb").name.strip() or "notebook.ipynb"
    return base[:200]


def find_submission(state: AppState, submission_id: str, user: User) -> sa.Row:
    """One submission with its learner's name; 404 when there is none or it is someone else's."""
    row = state.store.run(
        lambda conn: conn.execute(
            sa.select(submissions, users.c.name.label("learner"))
            .join(users, users.c.id == submissions.c.user_id)
            .where(submissions.c.id == submission_id)
        ).first(),
        write=False,
    )
    if row is None or (row.user_id != user.id and not user.is_instructor):
        raise not_found()
    return row


def submission_view(
    row: sa.Row, rules: deadlines.Rules | None = None, grades: dict[str, totals.ManualGrade] | None = None
) -> dict[str, Any]:
    """The JSON of one submission: the Result's fields (once final) plus the job's own, and (with ``rules``)
    ``deadline``: how it stands against its learner's deadline and what the late policy made of its score.

    With manual answers (``grades``: the instructor's, :mod:`grader.service.totals`): ``score`` and ``max_score``
    are the totals (automatic + manual), ``automatic_score``/``automatic_max_score`` what grading gave,
    ``provisional`` (and ``provisional_note``) while an answer waits for an instructor, ``manual_lines`` what
    the learner reads of each answer: its rubric lines awarded, points, comment."""
    view: dict[str, Any] = {
        "submission": row.filename,
        "score": None,
        "max_score": None,
        "duration_s": None,
        "device": None,
        "device_info": None,
        "device_note": "",
        "checks": [],
    }
    if row.result:
        view.update(json.loads(row.result))
    view.update(
        {
            "id": row.id,
            "exercise": row.exercise,
            "learner": row.learner,
            "filename": row.filename,
            "status": row.status,
            "message": row.message,
            "attempts": row.attempts,
            "final": row.status in FINAL_STATUSES,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )
    answers = totals.answers_of(view) if row.result else ()
    view["provisional"], view["provisional_note"] = False, ""
    if answers:
        total = totals.total_of(view, grades or {})
        view.update(
            automatic_score=view["score"],
            automatic_max_score=view["max_score"],
            score=total.score,
            max_score=total.max_score,
            provisional=total.provisional,
            provisional_note=total.note,
            manual_lines=totals.manual_lines(view, grades or {}),
        )
    if rules is not None:
        timing = rules.timing(row.learner, row.exercise, float(row.created_at))
        view["deadline"] = timing.to_dict(view["score"])
    return view


def full_view(state: AppState, row: sa.Row) -> dict[str, Any]:
    """:func:`submission_view` with the deadlines and the instructor's manual grades read from the store."""

    def work(conn: sa.Connection) -> tuple[deadlines.Rules, dict[str, totals.ManualGrade]]:
        return deadlines.read_rules(conn), totals.read_grades(conn, [row.id]).get(row.id, {})

    rules, grades = state.store.run(work, write=False)
    return submission_view(row, rules, grades)


def my_submissions(state: AppState, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """The user's latest submissions; a score is the total (automatic + manual), ``provisional`` while an
    answer waits for an instructor (:mod:`grader.service.totals`)."""
    s = submissions.c

    def work(conn: sa.Connection) -> tuple[list[Any], dict[str, dict[str, totals.ManualGrade]]]:
        rows = conn.execute(
            sa.select(s.id, s.exercise, s.filename, s.status, s.score, s.max_score, s.message, s.created_at, s.result)
            .where(s.user_id == user.id)
            .order_by(s.created_at.desc())
            .limit(limit)
        ).all()
        return list(rows), totals.read_grades(conn, [r.id for r in rows if r.result])

    rows, grades = state.store.run(work, write=False)
    found = []
    for row in rows:
        entry = {k: v for k, v in row._mapping.items() if k != "result"}
        result = {**json.loads(row.result), "score": row.score, "max_score": row.max_score} if row.result else {}
        total = totals.total_of(result, grades.get(row.id, {}))
        if totals.answers_of(result):
            entry.update(score=total.score, max_score=total.max_score)
        entry["provisional"] = total.provisional
        found.append(entry)
    return found

"""What the JSON API (:mod:`grader.service.api`) and the pages (:mod:`grader.service.pages`) share.

Error answers (:class:`ApiError`, drawn as ``{"error": {"code", "message"}}`` by the app's
handlers), the application's state, who is signed in (a Bearer token, or the sign-in cookie),
and the submission steps both ways of submitting take: read the upload, accept it, find one,
show it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import Depends, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from grader.errors import InvalidNotebook, QueueFull, RateLimited
from grader.format import markers
from grader.format.notebooks import parse_notebook
from grader.service import accounts, catalog, queue, registry
from grader.service.accounts import User
from grader.service.dispatch import Sender
from grader.service.statuses import FINAL_STATUSES
from grader.service.store import Store, submissions, users
from grader.settings import Settings

log = logging.getLogger(__name__)

COOKIE_NAME = "grader_token"
COOKIE_MAX_AGE_S = 30 * 24 * 3600


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
    return ApiError(
        413,
        "too-large",
        f"the upload is over the {limit / 1e6:g} MB limit; clear the outputs "
        "(Edit → Clear All Outputs), save, and upload again",
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may answer these error statuses."""
    text = {
        401: "no token, or a token that matches no account",
        403: "instructors only",
        404: "no such submission (or not yours)",
        413: "upload over the size limit",
        415: "not a Jupyter notebook",
        422: "unknown exercise or a missing form field",
        429: "rate limited: see Retry-After",
        503: "queue full or store unavailable: see Retry-After",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


# --- application state ------------------------------------------------------------------------


@dataclass
class AppState:
    settings: Settings
    store: Store
    #: hands a new submission to the workers (None: they poll the store)
    dispatch: Sender | None


def app_state(request: Request) -> AppState:
    return request.app.state.grader  # type: ignore[no-any-return]


# --- who is signed in -------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="the token from `grader users add NAME`")


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> tuple[str | None, bool]:
    """The token presented, and whether it came from the cookie."""
    if credentials is not None:
        return credentials.credentials, False
    if "authorization" in request.headers:  # present but not "Bearer <token>"
        raise ApiError(
            401,
            "unauthorized",
            "the Authorization header must be 'Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    cookie = request.cookies.get(COOKIE_NAME)
    return cookie, cookie is not None


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> User:
    """The signed-in account; 401 without a valid token."""
    token, from_cookie = _token(request, credentials)
    user = accounts.authenticate(app_state(request).store, token)
    if user is None:
        raise unauthorized()
    if from_cookie and request.method not in ("GET", "HEAD") and not same_origin(request):
        raise ApiError(403, "cross-origin", "this form was posted from another site; submit from this site's pages")
    return user


def instructor(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; this is for instructors only")
    return user


UserDep = Annotated[User, Depends(current_user)]
InstructorDep = Annotated[User, Depends(instructor)]


def page_user(request: Request) -> User | None:
    """The account of the sign-in cookie, if any (pages show a sign-in form instead of a 401)."""
    token = request.cookies.get(COOKIE_NAME)
    return accounts.authenticate(app_state(request).store, token) if token else None


# --- submissions ------------------------------------------------------------------------------


def read_upload(upload: UploadFile, limit: int) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    return data


def accept(state: AppState, user: User, *, exercise: str, filename: str, data: bytes) -> queue.Enqueued:
    """Validate and queue one submission (shared by the API and the upload page)."""
    exercises = {e.id: e for e in catalog.list_exercises(state.settings)}
    known = list(exercises)
    if exercise not in known:
        raise ApiError(
            422,
            "unknown-exercise",
            f"unknown exercise {exercise[:100]!r}; use one of: {', '.join(known) or 'none yet'}",
        )
    limit = int(state.settings.max_upload_mb * 1e6)
    try:
        parse_notebook(data, name=filename, max_bytes=limit)
    except InvalidNotebook as exc:
        raise ApiError(415, "not-a-notebook", str(exc)) from None
    try:
        enqueued = queue.enqueue(
            state.store,
            user_id=user.id,
            exercise=exercise,
            filename=filename,
            notebook=data,
            per_minute=state.settings.submissions_per_minute,
            max_queued=state.settings.max_queued,
            device=exercises[exercise].device,
        )
    except RateLimited as exc:
        raise ApiError(429, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    except QueueFull as exc:
        raise ApiError(503, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    if enqueued.created and state.dispatch is not None:
        try:
            device = exercises[exercise].device
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


def submission_view(row: sa.Row) -> dict[str, Any]:
    """The JSON of one submission: the Result's fields (once final) plus the job's own."""
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
    return view


def my_submissions(state: AppState, user: User, limit: int = 100) -> list[dict[str, Any]]:
    s = submissions.c
    rows = state.store.run(
        lambda conn: conn.execute(
            sa.select(s.id, s.exercise, s.filename, s.status, s.score, s.max_score, s.message, s.created_at)
            .where(s.user_id == user.id)
            .order_by(s.created_at.desc())
            .limit(limit)
        ).all(),
        write=False,
    )
    return [dict(row._mapping) for row in rows]

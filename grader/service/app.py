"""The grader's HTTP API and web pages (FastAPI): submit notebooks, read feedback, the gradebook.

:func:`create_app` builds the application from settings. It serves

- the JSON API under ``/api`` (OpenAPI at ``/api/openapi.json``, a readable page at ``/api/docs``);
- a few server-rendered pages: ``/submit`` (sign in, upload), ``/submissions/{id}`` (watch the
  grade arrive, then the feedback), ``/gradebook`` (instructors);
- the built course site (``settings.site_dir``) at ``/``, when it exists.

Authentication: ``Authorization: Bearer <token>`` (tokens from ``grader users add``), or the
HttpOnly, SameSite=Strict cookie the sign-in form sets. A learner sees only their own
submissions: anyone else's answer 404, never 403 (an id's existence is not revealed).
Instructors may read any submission.

Every error answer has the body ``{"error": {"code": ..., "message": ...}}``, the message
saying what to do:

====  =====================  =============================================================
401   unauthorized           no token, or a token that matches no account
403   instructors-only       a learner asked for an instructor endpoint
403   cross-origin           a cookie-authenticated form was posted from another site
404   not-found              no such submission (or not yours), page or exercise
413   too-large              the upload is over ``settings.max_upload_mb``
415   not-a-notebook         the upload is not a Jupyter notebook (the reason is given)
422   unknown-exercise       the exercise id is not one of ``GET /api/exercises``
422   invalid-request        a required form field is missing or malformed
429   rate-limited           over ``settings.submissions_per_minute``; see Retry-After
503   queue-full             over ``settings.max_queued`` waiting jobs; see Retry-After
503   store-unavailable      the database cannot be reached
====  =====================  =============================================================

Every response carries security headers: a Content-Security-Policy (strict — no inline
script or style — on the service's pages and API; the book's own pages need inline scripts
and styles but still load nothing from other origins), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY``).
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import grader
from grader.errors import InvalidNotebook, QueueFull, RateLimited, StoreUnavailable
from grader.format.notebooks import parse_notebook
from grader.service import accounts, catalog, gradebook, queue
from grader.service.accounts import User
from grader.service.dispatch import Sender, engine_for
from grader.service.statuses import FINAL_STATUSES
from grader.service.store import Store, open_store, submissions, users
from grader.service.workers import EmbeddedWorkers, GradeFunction, load_grade_function
from grader.settings import Settings

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"
STATIC_PREFIX = "/grader-static"
COOKIE_NAME = "grader_token"
COOKIE_MAX_AGE_S = 30 * 24 * 3600
#: paths the service owns (strict CSP, no caching); everything else is the book
SERVICE_PREFIXES = ("/api", "/submit", "/submissions", "/gradebook", "/signin", "/signout", STATIC_PREFIX)
UPLOAD_PATHS = ("/api/submissions", "/submit")
#: multipart overhead allowed on top of the notebook itself
_FORM_SLACK_BYTES = 64 * 1024

STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
BOOK_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


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


def _unauthorized() -> ApiError:
    return ApiError(401, "unauthorized",
                    "sign in: send the header 'Authorization: Bearer <token>' with the token your instructor "
                    "gave you (or sign in at /signin)", headers={"WWW-Authenticate": "Bearer"})


def _not_found(what: str = "submission") -> ApiError:
    return ApiError(404, "not-found", f"no such {what}; GET /api/submissions lists yours")


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "no token, or a token that matches no account", 403: "instructors only",
            404: "no such submission (or not yours)", 413: "upload over the size limit",
            415: "not a Jupyter notebook", 422: "unknown exercise or a missing form field",
            429: "rate limited: see Retry-After", 503: "queue full or store unavailable: see Retry-After"}
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


# --- application state ------------------------------------------------------------------------


@dataclass
class _State:
    settings: Settings
    store: Store
    dispatch: Sender | None


def _state(request: Request) -> _State:
    return request.app.state.grader  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="the token from `grader users add NAME`")


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> tuple[str | None, bool]:
    """The token presented, and whether it came from the cookie."""
    if credentials is not None:
        return credentials.credentials, False
    if "authorization" in request.headers:  # present but not "Bearer <token>"
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    cookie = request.cookies.get(COOKIE_NAME)
    return cookie, cookie is not None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None) -> User:
    """The signed-in account; 401 without a valid token."""
    token, from_cookie = _token(request, credentials)
    user = accounts.authenticate(_state(request).store, token)
    if user is None:
        raise _unauthorized()
    if from_cookie and request.method not in ("GET", "HEAD") and not _same_origin(request):
        raise ApiError(403, "cross-origin", "this form was posted from another site; submit from this site's pages")
    return user


def instructor(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; this is for instructors only")
    return user


UserDep = Annotated[User, Depends(current_user)]
InstructorDep = Annotated[User, Depends(instructor)]


def _page_user(request: Request) -> User | None:
    token = request.cookies.get(COOKIE_NAME)
    return accounts.authenticate(_state(request).store, token) if token else None


# --- submissions ------------------------------------------------------------------------------


def _read_upload(upload: UploadFile, limit: int) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    return data


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too-large",
                    f"the upload is over the {limit / 1e6:g} MB limit; clear the outputs "
                    "(Edit → Clear All Outputs), save, and upload again")


def _accept(state: _State, user: User, *, exercise: str, filename: str, data: bytes) -> queue.Enqueued:
    """Validate and queue one submission (shared by the API and the upload page)."""
    known = [e.id for e in catalog.list_exercises(state.settings)]
    if exercise not in known:
        raise ApiError(422, "unknown-exercise",
                       f"unknown exercise {exercise[:100]!r}; use one of: {', '.join(known) or 'none yet'}")
    limit = int(state.settings.max_upload_mb * 1e6)
    try:
        parse_notebook(data, name=filename, max_bytes=limit)
    except InvalidNotebook as exc:
        raise ApiError(415, "not-a-notebook", str(exc)) from None
    try:
        enqueued = queue.enqueue(state.store, user_id=user.id, exercise=exercise, filename=filename, notebook=data,
                                 per_minute=state.settings.submissions_per_minute,
                                 max_queued=state.settings.max_queued)
    except RateLimited as exc:
        raise ApiError(429, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    except QueueFull as exc:
        raise ApiError(503, exc.code, str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after_s))}) from None
    if enqueued.created and state.dispatch is not None:
        try:
            state.dispatch(enqueued.id)
            queue.mark_dispatched(state.store, [enqueued.id])
        except Exception:  # the broker is down: the Celery workers' re-sender will send it later
            log.exception("could not send submission %s to the broker; it stays queued", enqueued.id)
    return enqueued


def _safe_filename(name: str | None) -> str:
    base = Path(name or "notebook.ipynb").name.strip() or "notebook.ipynb"
    return base[:200]


def _find(state: _State, submission_id: str, user: User) -> sa.Row:
    row = state.store.run(
        lambda conn: conn.execute(
            sa.select(submissions, users.c.name.label("learner")).join(users, users.c.id == submissions.c.user_id)
            .where(submissions.c.id == submission_id)
        ).first(),
        write=False,
    )
    if row is None or (row.user_id != user.id and not user.is_instructor):
        raise _not_found()
    return row


def submission_view(row: sa.Row) -> dict[str, Any]:
    """The JSON of one submission: the Result's fields (once final) plus the job's own."""
    view: dict[str, Any] = {"submission": row.filename, "score": None, "max_score": None, "duration_s": None,
                            "device": None, "checks": []}
    if row.result:
        view.update(json.loads(row.result))
    view.update({
        "id": row.id, "exercise": row.exercise, "learner": row.learner, "filename": row.filename,
        "status": row.status, "message": row.message, "attempts": row.attempts, "final": row.status in FINAL_STATUSES,
        "created_at": row.created_at, "updated_at": row.updated_at,
    })
    return view


def _my_submissions(state: _State, user: User, limit: int = 100) -> list[dict[str, Any]]:
    s = submissions.c
    rows = state.store.run(
        lambda conn: conn.execute(
            sa.select(s.id, s.exercise, s.filename, s.status, s.score, s.max_score, s.message, s.created_at)
            .where(s.user_id == user.id).order_by(s.created_at.desc()).limit(limit)
        ).all(),
        write=False,
    )
    return [dict(row._mapping) for row in rows]


# --- middleware -------------------------------------------------------------------------------


def _is_service_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in SERVICE_PREFIXES)


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = _is_service_path(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = STRICT_CSP if service else BOOK_CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers["X-Frame-Options"] = "DENY"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if service and scope["path"].startswith(("/api", "/submi", "/gradebook")):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UploadLimit:
    """Refuses an upload whose declared length is over the limit before reading its body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes + _FORM_SLACK_BYTES:
                error = _too_large(self.max_bytes)
                response: Response
                if scope["path"].startswith("/api"):
                    response = JSONResponse({"error": {"code": error.code, "message": error.message}},
                                            status_code=413, headers={"Connection": "close"})
                else:  # the upload page: a page, not JSON
                    response = HTMLResponse(
                        f"<!DOCTYPE html><title>413</title><p>{html.escape(error.message)}</p>"
                        '<p><a href="/submit">Back to submitting</a></p>', status_code=413,
                        headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- the application --------------------------------------------------------------------------


def _error_response(request: Request, error: ApiError) -> Response:
    if request.url.path.startswith("/api"):
        return JSONResponse({"error": {"code": error.code, "message": error.message}}, status_code=error.status,
                            headers=error.headers)
    if error.status == 401:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"user": None, "error": error},
                                      status_code=error.status, headers=error.headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for problem in exc.errors():
        where = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")]
        parts.append(f"{'.'.join(where) or 'request'}: {problem.get('msg', 'invalid')}")
    return ("; ".join(parts) + ". Send a multipart form with the notebook in the field 'file' and the "
            "exercise id in the field 'exercise'")


def create_app(settings: Settings, *, grade: GradeFunction | None = None, workers: int = 0,
               store: Store | None = None, dispatch: Sender | None = None) -> FastAPI:
    """The grader's web application.

    Args:
        grade: the grade function for embedded workers (default: ``settings.grade_function``).
        workers: embedded grading threads to run inside this process (0: grading happens elsewhere —
            ``grader worker`` processes or Celery).
        store: an open store (default: open ``settings``'s, and close it on shutdown).
        dispatch: called with each new submission id (default: the settings' engine's sender —
            see :mod:`grader.service.dispatch` — a Celery task with a broker, else nothing).
    """
    own_store = store is None
    the_store = store if store is not None else open_store(settings)
    if dispatch is None:
        dispatch = engine_for(settings).sender(settings)
    state = _State(settings=settings, store=the_store, dispatch=dispatch)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool = None
        if workers > 0:
            pool = EmbeddedWorkers(settings, the_store, grade or load_grade_function(settings), count=workers).start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop(timeout_s=5.0)
            if own_store:
                the_store.dispose()

    app = FastAPI(
        title="Course grader",
        version=grader.__version__,
        summary="Submit exercise notebooks, read their feedback; instructors: the gradebook.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.grader = state
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["static"] = STATIC_PREFIX
    templates.env.filters["utc"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(t)))
    app.state.templates = templates
    app.add_middleware(UploadLimit, max_bytes=int(settings.max_upload_mb * 1e6))
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> Response:
        log.error("%s", exc)
        return _error_response(request, ApiError(503, "store-unavailable",
                                                 "the grader's database is not answering; try again in a minute",
                                                 headers={"Retry-After": "30"}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error_response(request, ApiError(422, "invalid-request", _validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            error = ApiError(404, "not-found", f"nothing at {request.url.path}; the API is listed at /api/docs")
        elif exc.status_code == 405:
            error = ApiError(405, "method-not-allowed", f"{request.method} is not allowed on {request.url.path}",
                             headers=dict(exc.headers or {}))
        else:
            error = ApiError(exc.status_code, "http-error", str(exc.detail))
        return _error_response(request, error)

    _add_api_routes(app)
    _add_page_routes(app, templates)
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(STATIC_DIR)), name="grader-static")
    if (settings.site_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=str(settings.site_dir), html=True), name="site")
    else:
        @app.get("/", include_in_schema=False)
        def _no_site() -> Response:
            return RedirectResponse("/submit", status_code=307)

    return app


def _add_api_routes(app: FastAPI) -> None:
    @app.post("/api/submissions", status_code=202, tags=["submissions"],
              responses=_responses(401, 413, 415, 422, 429, 503))
    def submit(request: Request, user: UserDep,
               file: Annotated[UploadFile, File(description="the .ipynb notebook")],
               exercise: Annotated[str, Form(description="exercise id, from GET /api/exercises")]) -> JSONResponse:
        """Queue a notebook for grading. A second identical submit while the first waits returns the same id."""
        state = _state(request)
        data = _read_upload(file, int(state.settings.max_upload_mb * 1e6))
        enqueued = _accept(state, user, exercise=exercise, filename=_safe_filename(file.filename), data=data)
        location = f"/api/submissions/{enqueued.id}"
        return JSONResponse(
            {"id": enqueued.id, "status": enqueued.status, "duplicate": not enqueued.created, "url": location,
             "page": f"/submissions/{enqueued.id}"},
            status_code=202, headers={"Location": location},
        )

    @app.get("/api/submissions/{submission_id}", tags=["submissions"], responses=_responses(401, 404))
    def get_submission(request: Request, submission_id: str, user: UserDep) -> dict[str, Any]:
        """One submission: its status (queued, running, graded, invalid, error) and, once final, the result."""
        return submission_view(_find(_state(request), submission_id, user))

    @app.get("/api/submissions", tags=["submissions"], responses=_responses(401))
    def list_submissions(request: Request, user: UserDep) -> dict[str, Any]:
        """Your 100 latest submissions, newest first."""
        return {"submissions": _my_submissions(_state(request), user)}

    @app.get("/api/exercises", tags=["exercises"])
    def list_exercises(request: Request) -> dict[str, Any]:
        """The exercises you can submit: id, title, points, and where to download the notebook."""
        found = catalog.list_exercises(_state(request).settings)
        return {"exercises": [{**e.to_dict(), "download": f"/api/exercises/{e.id}/notebook"} for e in found]}

    @app.get("/api/exercises/{exercise_id}/notebook", tags=["exercises"], responses=_responses(404),
             response_class=FileResponse)
    def download_exercise(request: Request, exercise_id: str) -> Response:
        """The learner's notebook for an exercise (``exercises/<id>.ipynb``)."""
        settings = _state(request).settings
        if exercise_id not in {e.id for e in catalog.list_exercises(settings)}:
            raise ApiError(404, "not-found", f"no exercise {exercise_id[:100]!r}; GET /api/exercises lists them")
        path = settings.exercises_dir / f"{exercise_id}.ipynb"
        if not path.is_file():
            raise ApiError(404, "not-found", f"{exercise_id} has no learner notebook yet; run `grader assign`")
        return FileResponse(path, media_type="application/x-ipynb+json", filename=path.name)

    @app.get("/api/me", tags=["accounts"], responses=_responses(401))
    def me(user: UserDep) -> dict[str, Any]:
        """Who the token belongs to."""
        return {"name": user.name, "role": user.role}

    @app.get("/api/health", tags=["service"])
    def health(request: Request) -> dict[str, Any]:
        """Whether the service and its store answer."""
        _state(request).store.run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar(), write=False)
        return {"status": "ok"}

    @app.get("/api/queue", tags=["service"], responses=_responses(401, 403))
    def queue_status(request: Request, _user: InstructorDep) -> dict[str, Any]:
        """How many submissions are in each status (instructors)."""
        return {"counts": queue.queue_depth(_state(request).store)}

    @app.get("/api/gradebook.csv", tags=["gradebook"], responses=_responses(401, 403),
             response_class=PlainTextResponse)
    def gradebook_csv(request: Request, _user: InstructorDep) -> Response:
        """Learners × exercises, each learner's best score (instructors)."""
        state = _state(request)
        book = gradebook.gradebook(state.store, [e.id for e in catalog.list_exercises(state.settings)])
        return Response(gradebook.to_csv(book), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="gradebook.csv"'})

    @app.get("/api/gradebook/checks", tags=["gradebook"], responses=_responses(401, 403))
    def gradebook_checks(request: Request, _user: InstructorDep) -> dict[str, Any]:
        """Per exercise and check: how many learners' best submissions pass it (instructors)."""
        return {"exercises": gradebook.check_pass_rates(_state(request).store)}


def _add_page_routes(app: FastAPI, templates: Jinja2Templates) -> None:
    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("user", _page_user(request))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def submit_page(request: Request, user: User, *, status_code: int = 200, error: str | None = None,
                    chosen: str | None = None) -> Response:
        state = _state(request)
        return page(request, "submit.html", status_code, user=user, error=error, chosen=chosen,
                    exercises=catalog.list_exercises(state.settings), mine=_my_submissions(state, user, limit=20),
                    max_upload_mb=state.settings.max_upload_mb)

    @app.get("/signin", include_in_schema=False)
    def signin_form(request: Request, next: str = "/submit") -> Response:
        return page(request, "signin.html", next=_local(next), error=None)

    @app.post("/signin", include_in_schema=False)
    def signin(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/submit"
               ) -> Response:
        if not _same_origin(request):
            raise ApiError(403, "cross-origin", "this sign-in form was posted from another site; sign in here")
        user = accounts.authenticate(_state(request).store, token.strip())
        if user is None:
            return page(request, "signin.html", 401, user=None, next=_local(next),
                        error="that token matches no account; paste the whole token your instructor gave you")
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(COOKIE_NAME, token.strip(), max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/signout", include_in_schema=False)
    def signout() -> Response:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/submit", include_in_schema=False)
    def submit_form(request: Request) -> Response:
        user = _page_user(request)
        if user is None:
            return page(request, "signin.html", next="/submit", error=None)
        return submit_page(request, user)

    @app.post("/submit", include_in_schema=False)
    def submit_upload(request: Request, user: UserDep,
                      file: Annotated[UploadFile | None, File()] = None,
                      exercise: Annotated[str, Form()] = "") -> Response:
        state = _state(request)
        if file is None or not file.filename:
            return submit_page(request, user, status_code=422, chosen=exercise,
                               error="choose the notebook file (.ipynb) to upload")
        try:
            data = _read_upload(file, int(state.settings.max_upload_mb * 1e6))
            enqueued = _accept(state, user, exercise=exercise, filename=_safe_filename(file.filename), data=data)
        except ApiError as error:
            response = submit_page(request, user, status_code=error.status, error=error.message, chosen=exercise)
            response.headers.update(error.headers)
            return response
        return RedirectResponse(f"/submissions/{enqueued.id}", status_code=303)

    @app.get("/submissions/{submission_id}", include_in_schema=False)
    def submission_page(request: Request, submission_id: str) -> Response:
        user = _page_user(request)
        if user is None:
            return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
        view = submission_view(_find(_state(request), submission_id, user))
        return page(request, "submission.html", user=user, s=view)

    @app.get("/gradebook", include_in_schema=False)
    def gradebook_page(request: Request) -> Response:
        user = _page_user(request)
        if user is None:
            return RedirectResponse("/signin?next=/gradebook", status_code=303)
        if not user.is_instructor:
            raise ApiError(403, "instructors-only", f"{user.name} is a learner; the gradebook is for instructors")
        state = _state(request)
        exercises = catalog.list_exercises(state.settings)
        book = gradebook.gradebook(state.store, [e.id for e in exercises])
        return page(request, "gradebook.html", user=user, book=book, rates=gradebook.check_pass_rates(state.store))

    @app.get("/api/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        return page(request, "docs.html", spec=request.app.openapi())


def _local(target: str) -> str:
    """A redirect target on this site only (no open redirects)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/submit"


__all__ = ["ApiError", "create_app", "submission_view"]

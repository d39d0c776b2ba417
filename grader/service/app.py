"""The grader's HTTP API and web pages (FastAPI): submit notebooks, read feedback, the gradebook.

:func:`create_app` builds the application from settings. It serves

- the JSON API under ``/api`` (OpenAPI at ``/api/openapi.json``, a readable page at ``/api/docs``):
  :mod:`grader.service.api`;
- a few server-rendered pages: ``/submit`` (sign in, upload), ``/submissions/{id}`` (watch the
  grade arrive, then the feedback), ``/gradebook`` (instructors): :mod:`grader.service.pages`;
- manual grading (instructors): ``/marking`` and ``/api/manual``: :mod:`grader.service.marking`;
- regrades (instructors): ``/regrades`` and ``/api/regrades``: :mod:`grader.service.regrade_web`;
- the built course site (``settings.site_dir``) at ``/``, when it exists;
- the course's icon at ``/favicon.ico`` (``_config.yml``'s ``html.favicon``, else the service's own),
  with or without a built site.

What both share (errors, state, who is signed in, accepting a submission) is :mod:`grader.service.web`;
this module holds the factory, the middleware and the error handlers.

Authentication: ``Authorization: Bearer <token>`` (tokens from ``grader users add``), or the
HttpOnly, SameSite=Strict cookie the sign-in form sets. A learner sees only their own
submissions: anyone else's answer 404, never 403 (an id's existence is not revealed).
Instructors may read any submission.

Every error answer has the body ``{"error": {"code": ..., "message": ...}}``, the message
saying what to do:

====  =====================  =============================================================
401   unauthorized           no token, or a token that matches no account
403   instructors-only       a learner asked for an instructor endpoint
403   cross-origin           a cookie-signed form (or the sign-in/out form) not posted from this very
                             origin (scheme, host, port), or saying neither ``Origin`` nor ``Referer``
404   not-found              no such submission (or not yours), page or exercise
405   method-not-allowed     ``Allow`` lists every method of the path
413   too-large              the upload is over a limit: ``settings.max_upload_mb``, or cells, outputs,
                             one cell's size (:mod:`grader.service.uploads`)
415   not-a-notebook         the upload is not a Jupyter notebook (the reason is given)
422   unknown-exercise       the exercise id is not one of ``GET /api/exercises``
422   invalid-request        a required form field is missing, empty or malformed
422   invalid-grade          a manual grade for an unknown answer, or a criterion outside its rubric or twice
429   rate-limited           over ``settings.submissions_per_minute`` upload attempts, or over
                             ``settings.auth_failures_per_minute`` failed sign-ins from the client's
                             address (:mod:`grader.service.throttle`); see Retry-After
503   queue-full             over ``settings.max_queued`` waiting jobs; see Retry-After
503   busy                   every upload checker is taken; see Retry-After
503   store-unavailable      the database cannot be reached
====  =====================  =============================================================

Every response carries security headers: a Content-Security-Policy (strict — no inline
script or style — on the service's pages and API; the book's own pages need inline scripts
and styles but still load nothing from other origins), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import grader
from grader.errors import StoreUnavailable
from grader.grading.results import points_text
from grader.service import api, catalog, marking, pages, regrade_web, uploads
from grader.service.dispatch import Sender, engine_for
from grader.service.store import Store, open_store
from grader.service.web import COOKIE_NAME, STALE_COOKIE, ApiError, AppState, too_large
from grader.service.workers import EmbeddedWorkers, GradeFunction, load_grade_function
from grader.settings import Settings

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"
STATIC_PREFIX = "/grader-static"
#: paths the service owns (strict CSP, no caching); everything else is the book
FAVICON_PATH = "/favicon.ico"
#: the icon when the course names none in _config.yml
FALLBACK_ICON = STATIC_DIR / "favicon.svg"
SERVICE_PREFIXES = (
    "/api",
    "/submit",
    "/submissions",
    "/gradebook",
    "/marking",
    "/regrades",
    "/signin",
    "/signout",
    STATIC_PREFIX,
    FAVICON_PATH,
)
UPLOAD_PATHS = ("/api/submissions", "/submit")
#: multipart overhead allowed on top of the notebook itself
_FORM_SLACK_BYTES = 64 * 1024
#: a body declared too large is still read (and dropped) up to this many bytes, for at most this long, before
#: the 413, so a proxy that streams it meets an answer rather than a reset (which it would turn into a 502)
DRAIN_MAX_BYTES = 32 * 1024 * 1024
DRAIN_MAX_S = 30.0

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
BOOK_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


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
                if service and scope["path"].startswith(("/api", "/submi", "/gradebook", "/marking", "/regrades")):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UploadLimit:
    """Refuses an upload whose declared length is over the limit before parsing it.

    Unless the client waits for ``100 Continue`` (then it sends no body at all), the body is read and
    dropped first, up to :data:`DRAIN_MAX_BYTES` and :data:`DRAIN_MAX_S`: a proxy that streams the body
    to the service (Caddy, nginx without request buffering) then gets the 413, not a reset. Past those
    bounds the connection is closed as before.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, templates: Jinja2Templates) -> None:
        self.app, self.max_bytes, self.templates = app, max_bytes, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes + _FORM_SLACK_BYTES:
                drained = True
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    drained = int(length) <= DRAIN_MAX_BYTES and await _drain(receive)
                error = too_large(self.max_bytes)
                answer_headers = {} if drained else {"Connection": "close"}
                response: Response
                if scope["path"].startswith("/api"):
                    response = JSONResponse(
                        {"error": {"code": error.code, "message": error.message}},
                        status_code=413,
                        headers=answer_headers,
                    )
                else:  # the upload page: the service's error page, not JSON
                    response = self.templates.TemplateResponse(
                        Request(scope),
                        "error.html",
                        {"user": None, "error": error},
                        status_code=413,
                        headers=answer_headers,
                    )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _drain(receive: Receive) -> bool:
    """Read a request's body to its end and drop it; False when it did not end in :data:`DRAIN_MAX_S`."""

    async def read_all() -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    try:
        await asyncio.wait_for(read_all(), DRAIN_MAX_S)
    except asyncio.TimeoutError:
        return False
    return True


class ForgetStaleCookie:
    """Deletes a sign-in cookie that no longer signs anyone in (``STALE_COOKIE``, set while answering),
    so a browser stops sending it: its polling would otherwise count as failed sign-ins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        deleting = Response()
        deleting.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        self._header = next(value for name, value in deleting.raw_headers if name == b"set-cookie")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_forgetting(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get("state", {}).get(STALE_COOKIE):
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", self._header)]
            await send(message)

        await self.app(scope, receive, send_forgetting)


# --- errors as answers -------------------------------------------------------------------------


def _error_response(request: Request, error: ApiError) -> Response:
    if request.url.path.startswith("/api"):
        return JSONResponse(
            {"error": {"code": error.code, "message": error.message}}, status_code=error.status, headers=error.headers
        )
    if error.status == 401:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"user": None, "error": error}, status_code=error.status, headers=error.headers
    )


def _validation_message(exc: RequestValidationError, exercises: list[str]) -> str:
    parts = []
    for problem in exc.errors():
        where = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")]
        # a form field sent empty arrives as missing: say both
        said = "missing or empty" if problem.get("type") == "missing" else problem.get("msg", "invalid")
        if where == ["exercise"]:
            said += f" (one of: {', '.join(exercises) or 'none yet'})"
        parts.append(f"{'.'.join(where) or 'request'}: {said}")
    return (
        "; ".join(parts) + ". Send a multipart form with the notebook in the field 'file' and the "
        "exercise id in the field 'exercise'"
    )


#: the methods a 405's ``Allow`` may list
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (Starlette's 405 names only the first route's). The
    mounted files (the book at ``/``, static files) match every path and answer GET and HEAD only."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return allowed or ["GET", "HEAD"]


# --- the application --------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    grade: GradeFunction | None = None,
    workers: int = 0,
    store: Store | None = None,
    dispatch: Sender | None = None,
) -> FastAPI:
    """The grader's web application.

    Args:
        grade: the grade function for embedded workers (default: ``settings.grade_function``).
        workers: embedded grading threads to run inside this process (0: grading happens elsewhere —
            ``grader worker`` processes or Celery).
        store: an open store (default: open ``settings``'s, and close it on shutdown).
        dispatch: called with each new submission id (default: the settings' engine's sender —
            see :mod:`grader.service.dispatch` — a Celery task with a broker, else nothing).
    """
    the_store = store if store is not None else open_store(settings)
    if dispatch is None:
        dispatch = engine_for(settings).sender(settings)
    state = AppState(settings=settings, store=the_store, dispatch=dispatch)
    app = FastAPI(
        title="Course grader",
        version=grader.__version__,
        summary="Submit exercise notebooks, read their feedback; instructors: the gradebook.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(state, grade=grade, workers=workers, own_store=store is None),
    )
    app.state.grader = state
    course = pages.course_of(settings, fallback_icon=FALLBACK_ICON)
    app.state.templates = _templates(course)
    app.add_middleware(UploadLimit, max_bytes=int(settings.max_upload_mb * 1e6), templates=app.state.templates)
    app.add_middleware(ForgetStaleCookie)
    app.add_middleware(SecurityHeaders)
    _add_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(marking.router)
    app.include_router(regrade_web.router)
    _mount_sites(app, settings, course)
    return app


def _lifespan(
    state: AppState, *, grade: GradeFunction | None, workers: int, own_store: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start ``workers`` embedded grading threads with the app; stop them (and close an own store) after."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        uploads.checker(state.settings).warm()  # the first upload should not wait for its checker to start
        pool = None
        if workers > 0:
            pool = EmbeddedWorkers(
                state.settings, state.store, grade or load_grade_function(state.settings), count=workers
            ).start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop(timeout_s=5.0)
            if own_store:
                state.store.dispose()

    return lifespan


def _templates(course: pages.Course) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["static"] = STATIC_PREFIX
    templates.env.globals["course"] = course
    templates.env.globals["favicon"] = FAVICON_PATH
    templates.env.globals["verdict"] = pages.verdict
    templates.env.globals["markdown"] = pages.markdown  # raw HTML in it escaped
    templates.env.filters["utc"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(t)))
    templates.env.filters["points"] = points_text  # 2.67, not 2.6666666666666665
    return templates


def _add_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, answered as an :class:`ApiError` (JSON, or a page)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> Response:
        log.error("%s", exc)
        return _error_response(
            request,
            ApiError(
                503,
                "store-unavailable",
                "the grader's database is not answering; try again in a minute",
                headers={"Retry-After": "30"},
            ),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        state: AppState = request.app.state.grader
        exercises = [e.id for e in catalog.list_exercises(state.settings)]
        return _error_response(request, ApiError(422, "invalid-request", _validation_message(exc, exercises)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            error = ApiError(404, "not-found", f"nothing at {request.url.path}; the API is listed at /api/docs")
        elif exc.status_code == 405:
            allowed = _allowed_methods(request)
            error = ApiError(
                405,
                "method-not-allowed",
                f"{request.method} is not allowed on {request.url.path}; use {' or '.join(allowed)}",
                headers={**dict(exc.headers or {}), "Allow": ", ".join(allowed)},
            )
        else:
            error = ApiError(exc.status_code, "http-error", str(exc.detail))
        return _error_response(request, error)


def _mount_sites(app: FastAPI, settings: Settings, course: pages.Course) -> None:
    """The service's static files, the course's icon, and the built book at ``/`` (without one, ``/`` leads to
    ``/submit``). The icon's route comes first, so it answers whether or not the book has a ``favicon.ico``."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(STATIC_DIR)), name="grader-static")

    @app.get(FAVICON_PATH, include_in_schema=False)
    def _favicon() -> Response:
        return FileResponse(
            course.icon, media_type=course.icon_type, headers={"Cache-Control": "public, max-age=86400"}
        )

    if (settings.site_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=str(settings.site_dir), html=True), name="site")
    else:

        @app.get("/", include_in_schema=False)
        def _no_site() -> Response:
            return RedirectResponse("/submit", status_code=307)


__all__ = ["create_app"]

"""The server-rendered pages: sign in and out, ``/submit`` (upload), ``/submissions/{id}`` (watch
the grade arrive, then the feedback), ``/gradebook`` (instructors) and ``/api/docs``.

Pages read the sign-in cookie: without it they show the sign-in form or redirect to it (never
a JSON 401). Templates are in ``templates/``; the app keeps them as ``app.state.templates``.

What every page shares with the course book: its title, icon and chapters (:func:`course_of`,
read once from ``_config.yml``, ``_toc.yml`` and the built site), drawn as the book's header and
sidebar by ``base.html`` and ``static/grader.css``. A result's :func:`verdict` gives both its colour
(a CSS class) and its words. ``/api/docs`` renders the OpenAPI document's Markdown
(:func:`api_reference`), with raw HTML in it escaped.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from grader.service import catalog, gradebook
from grader.service.accounts import User
from grader.service.statuses import SubmissionStatus
from grader.service.web import (
    COOKIE_MAX_AGE_S,
    COOKIE_NAME,
    ApiError,
    UserDep,
    accept,
    app_state,
    cross_origin,
    find_submission,
    full_view,
    my_submissions,
    page_user,
    same_origin,
    sign_in,
)
from grader.settings import Settings

router = APIRouter()


# --- the course around the pages ----------------------------------------------------------------


@dataclass(frozen=True)
class Chapter:
    title: str
    href: str


@dataclass(frozen=True)
class Part:
    caption: str
    chapters: tuple[Chapter, ...]


@dataclass(frozen=True)
class Course:
    """What the pages show of the course book: its title (linking to ``/``), its icon, its chapters."""

    title: str
    #: the file served at ``/favicon.ico``, and its media type
    icon: Path
    icon_type: str
    #: the book's parts and chapters, only those whose page the built site has (none without a site)
    parts: tuple[Part, ...]


_HEADING = re.compile(r"^#\s+(?P<title>\S.*?)\s*$", re.MULTILINE)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _page_title(root: Path, stem: str) -> str:
    """A chapter's first ``# heading`` (what the book's sidebar shows), else its file name."""
    try:
        found = _HEADING.search((root / f"{stem}.md").read_text(encoding="utf-8"))
    except OSError:
        found = None
    return found.group("title") if found else Path(stem).name


def _icon(root: Path, config: dict[str, Any], fallback: Path) -> Path:
    """``html.favicon`` of ``_config.yml`` (what the book's pages link), when it names a file."""
    html = config.get("html")
    named = html.get("favicon") if isinstance(html, dict) else None
    return root / str(named) if named and (root / str(named)).is_file() else fallback


def _parts(settings: Settings) -> tuple[Part, ...]:
    """``_toc.yml``'s parts and their chapters, keeping the chapters the built site has a page for."""
    toc = _yaml(settings.root / "_toc.yml")
    listed = toc.get("parts") or [{"caption": "", "chapters": toc.get("chapters") or []}]
    parts = []
    for part in listed if isinstance(listed, list) else []:
        if not isinstance(part, dict):
            continue
        chapters = []
        for entry in part.get("chapters") or []:
            file = str(entry.get("file") or "") if isinstance(entry, dict) else ""
            stem = file.removesuffix(".md").removesuffix(".ipynb")
            if stem and (settings.site_dir / f"{stem}.html").is_file():
                chapters.append(Chapter(_page_title(settings.root, stem), f"/{quote(stem)}.html"))
        if chapters:
            parts.append(Part(str(part.get("caption") or ""), tuple(chapters)))
    return tuple(parts)


def course_of(settings: Settings, *, fallback_icon: Path) -> Course:
    """The course's title and icon (``_config.yml``) and chapters (``_toc.yml``, as built in ``site_dir``)."""
    config = _yaml(settings.root / "_config.yml")
    icon = _icon(settings.root, config, fallback_icon)
    return Course(
        title=str(config.get("title") or "").strip() or "Course",
        icon=icon,
        icon_type=mimetypes.guess_type(icon.name)[0] or "image/svg+xml",
        parts=_parts(settings),
    )


# --- what a result means ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A submission's outcome as a learner reads it: ``key`` picks its colour (``verdict-<key>``), ``label``
    says it in words, so that colour is never the only sign."""

    key: str
    label: str


_VERDICT_LABELS = {
    "full": "full marks",
    "partial": "partial marks",
    "zero": "no marks",
    SubmissionStatus.INVALID.value: "not graded",
    SubmissionStatus.ERROR.value: "grading error",
    SubmissionStatus.QUEUED.value: "queued",
    SubmissionStatus.RUNNING.value: "running",
}


def verdict(status: str, score: float | None = None, max_score: float | None = None) -> Verdict:
    """Full marks, partial, zero (graded); not graded (invalid); grading error; or still queued/running."""
    key = str(status)
    if key == SubmissionStatus.GRADED:
        got, out_of = float(score or 0.0), float(max_score or 0.0)
        # a sum of fractional points may fall a hair short of the maximum it is shown (rounded) as equal to
        key = "full" if out_of > 0 and got >= out_of - 1e-9 * out_of else "partial" if got > 0 else "zero"
    return Verdict(key, _VERDICT_LABELS.get(key, key))


# --- the API's reference page -------------------------------------------------------------------

#: CommonMark with raw HTML off: a ``<tag>`` in a description is shown as text, never run as markup
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def markdown(text: str | None) -> Markup:
    """Markdown as safe HTML (the route docstrings' RST-style double-backtick code is a CommonMark code span too)."""
    return Markup(_MARKDOWN.render(text or ""))


def markdown_inline(text: str | None) -> Markup:
    """One line of Markdown as safe HTML, without the paragraph around it."""
    return Markup(_MARKDOWN.renderInline(text or ""))


@dataclass(frozen=True)
class Field:
    name: str
    where: str
    required: bool
    description: Markup


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    anchor: str
    summary: str
    description: Markup
    needs_token: bool
    parameters: tuple[Field, ...]
    #: the request body's fields (a multipart form's)
    body: tuple[Field, ...]
    responses: tuple[tuple[str, Markup], ...]


@dataclass(frozen=True)
class ApiReference:
    title: str
    version: str
    summary: Markup
    auth: tuple[Markup, ...]
    #: (tag, its endpoints), in the order the app declares them
    sections: tuple[tuple[str, tuple[Endpoint, ...]], ...]


def _body(op: dict[str, Any], schemas: dict[str, Any]) -> tuple[Field, ...]:
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return ()
    media_type, body = next(iter(content.items()))
    where = "form field" if media_type.startswith("multipart/") else f"{media_type} field"
    schema = body.get("schema", {})
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(schema.get("required", []))
    return tuple(
        Field(name, where, name in required, markdown_inline(prop.get("description")))
        for name, prop in schema.get("properties", {}).items()
    )


def api_reference(spec: dict[str, Any]) -> ApiReference:
    """The OpenAPI document as the docs page shows it: descriptions rendered from Markdown."""
    components = spec.get("components", {})
    sections: dict[str, list[Endpoint]] = {}
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            endpoint = Endpoint(
                method=method.upper(),
                path=path,
                anchor=re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
                summary=op.get("summary", ""),
                description=markdown(op.get("description")),
                needs_token=bool(op.get("security")),
                parameters=tuple(
                    Field(p["name"], p.get("in", ""), bool(p.get("required")), markdown_inline(p.get("description")))
                    for p in op.get("parameters", [])
                ),
                body=_body(op, components.get("schemas", {})),
                responses=tuple(
                    (code, markdown_inline(answer.get("description")))
                    for code, answer in sorted(op["responses"].items())
                ),
            )
            sections.setdefault((op.get("tags") or ["other"])[0], []).append(endpoint)
    info = spec.get("info", {})
    return ApiReference(
        title=info.get("title", "API"),
        version=info.get("version", ""),
        summary=markdown_inline(info.get("summary")),
        auth=tuple(markdown_inline(s.get("description")) for s in components.get("securitySchemes", {}).values()),
        sections=tuple((tag, tuple(endpoints)) for tag, endpoints in sections.items()),
    )


# --- the pages ----------------------------------------------------------------------------------


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a template; ``user`` defaults to the cookie's account."""
    if "user" not in context:
        context["user"] = page_user(request)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def submit_page(
    request: Request, user: User, *, status_code: int = 200, error: str | None = None, chosen: str | None = None
) -> Response:
    state = app_state(request)
    return page(
        request,
        "submit.html",
        status_code,
        user=user,
        error=error,
        chosen=chosen,
        exercises=catalog.list_exercises(state.settings),
        mine=my_submissions(state, user, limit=20),
        max_upload_mb=state.settings.max_upload_mb,
    )


def local_target(target: str) -> str:
    """A redirect target on this site only (no open redirects)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/submit"


@router.get("/signin", include_in_schema=False)
def signin_form(request: Request, next: str = "/submit") -> Response:
    return page(request, "signin.html", next=local_target(next), error=None)


@router.post("/signin", include_in_schema=False)
def signin(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/submit") -> Response:
    if not same_origin(request):
        raise cross_origin("this sign-in form")
    try:
        user = sign_in(request, token.strip()) if token.strip() else None
    except ApiError as refused:  # too many failed sign-ins from this address
        response = page(
            request, "signin.html", refused.status, user=None, next=local_target(next), error=refused.message
        )
        response.headers.update(refused.headers)
        return response
    if user is None:
        return page(
            request,
            "signin.html",
            401,
            user=None,
            next=local_target(next),
            error="that token matches no account; paste the whole token your instructor gave you",
        )
    response = RedirectResponse(local_target(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token.strip(),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request) -> Response:
    """Only this site's own form signs out (no logout from another site's page)."""
    if not same_origin(request):
        raise cross_origin("this sign-out form")
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@router.get("/submit", include_in_schema=False)
def submit_form(request: Request) -> Response:
    user = page_user(request)
    if user is None:
        return page(request, "signin.html", next="/submit", error=None)
    return submit_page(request, user)


@router.post("/submit", include_in_schema=False)
async def submit_upload(
    request: Request,
    user: UserDep,
    file: Annotated[UploadFile | None, File()] = None,
    exercise: Annotated[str, Form()] = "",
) -> Response:
    state = app_state(request)
    if file is None or not file.filename:
        return await run_in_threadpool(
            submit_page,
            request,
            user,
            status_code=422,
            chosen=exercise,
            error="choose the notebook file (.ipynb) to upload",
        )
    try:
        enqueued = await accept(state, user, exercise=exercise, upload=file)
    except ApiError as error:
        response = await run_in_threadpool(
            submit_page, request, user, status_code=error.status, error=error.message, chosen=exercise
        )
        response.headers.update(error.headers)
        return response
    return RedirectResponse(f"/submissions/{enqueued.id}", status_code=303)


@router.get("/submissions/{submission_id}", include_in_schema=False)
def submission_page(request: Request, submission_id: str) -> Response:
    user = page_user(request)
    if user is None:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    state = app_state(request)
    view = full_view(state, find_submission(state, submission_id, user))
    return page(request, "submission.html", user=user, s=view)


@router.get("/gradebook", include_in_schema=False)
def gradebook_page(request: Request) -> Response:
    user = page_user(request)
    if user is None:
        return RedirectResponse("/signin?next=/gradebook", status_code=303)
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; the gradebook is for instructors")
    state = app_state(request)
    exercises = catalog.list_exercises(state.settings)
    counting = state.settings.counted_submission
    book = gradebook.gradebook(state.store, [e.id for e in exercises], counting)
    rates = gradebook.check_pass_rates(state.store, counting)
    return page(request, "gradebook.html", user=user, book=book, rates=rates, counting=counting)


@router.get("/api/docs", include_in_schema=False)
def docs(request: Request) -> Response:
    return page(request, "docs.html", api=api_reference(request.app.openapi()))

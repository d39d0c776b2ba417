"""The server-rendered pages: sign in and out, ``/submit`` (upload), ``/submissions/{id}`` (watch
the grade arrive, then the feedback), ``/gradebook`` (instructors) and ``/api/docs``.

Pages read the sign-in cookie: without it they show the sign-in form or redirect to it (never
a JSON 401). Templates are in ``templates/``; the app keeps them as ``app.state.templates``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from grader.service import accounts, catalog, gradebook
from grader.service.accounts import User
from grader.service.web import (
    COOKIE_MAX_AGE_S,
    COOKIE_NAME,
    ApiError,
    UserDep,
    accept,
    app_state,
    find_submission,
    my_submissions,
    page_user,
    read_upload,
    safe_filename,
    same_origin,
    submission_view,
)

router = APIRouter()


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a template; ``user`` defaults to the cookie's account."""
    context.setdefault("user", page_user(request))
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
        raise ApiError(403, "cross-origin", "this sign-in form was posted from another site; sign in here")
    user = accounts.authenticate(app_state(request).store, token.strip())
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
def signout() -> Response:
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
def submit_upload(
    request: Request,
    user: UserDep,
    file: Annotated[UploadFile | None, File()] = None,
    exercise: Annotated[str, Form()] = "",
) -> Response:
    state = app_state(request)
    if file is None or not file.filename:
        return submit_page(
            request, user, status_code=422, chosen=exercise, error="choose the notebook file (.ipynb) to upload"
        )
    try:
        data = read_upload(file, int(state.settings.max_upload_mb * 1e6))
        enqueued = accept(state, user, exercise=exercise, filename=safe_filename(file.filename), data=data)
    except ApiError as error:
        response = submit_page(request, user, status_code=error.status, error=error.message, chosen=exercise)
        response.headers.update(error.headers)
        return response
    return RedirectResponse(f"/submissions/{enqueued.id}", status_code=303)


@router.get("/submissions/{submission_id}", include_in_schema=False)
def submission_page(request: Request, submission_id: str) -> Response:
    user = page_user(request)
    if user is None:
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    view = submission_view(find_submission(app_state(request), submission_id, user))
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
    book = gradebook.gradebook(state.store, [e.id for e in exercises])
    return page(request, "gradebook.html", user=user, book=book, rates=gradebook.check_pass_rates(state.store))


@router.get("/api/docs", include_in_schema=False)
def docs(request: Request) -> Response:
    return page(request, "docs.html", spec=request.app.openapi())

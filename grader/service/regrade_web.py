"""Regrades over HTTP (instructors only): the ``/api/regrades`` endpoints and the ``/regrades`` page.

API (in the OpenAPI under "regrades"): ``POST /api/regrades`` ``{"exercise": …}`` starts one (202), ``GET
/api/regrades`` lists them, ``GET /api/regrades/{id}`` gives its progress and change report, ``POST
/api/regrades/{id}/apply`` makes the new scores the learners' scores. The page lists the regrades with
their progress and change reports, starts one (a form per exercise) and applies one (its Apply button):
same-origin form posts signed by the sign-in cookie, as the other pages'. The library is
:mod:`grader.service.regrade`; the workers grade the jobs (:func:`grader.service.workers.run_once`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from grader.service import catalog, dispatch, regrade, regrade_jobs
from grader.service.accounts import User
from grader.service.pages import page
from grader.service.web import ApiError, InstructorDep, app_state, error_responses, page_user

router = APIRouter()
log = logging.getLogger(__name__)


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The routes' error answers, with what 404 and 409 mean here."""
    found = error_responses(*codes)
    words = {
        404: "no such regrade",
        409: "the regrade is still grading, already applied or cancelled, or another regrade of it is grading",
        422: "unknown exercise, nobody has a graded submission of it, or a malformed body",
    }
    for code, text in words.items():
        if code in found:
            found[code] = {**found[code], "description": text}
    return found


class RegradeIn(BaseModel):
    exercise: str = Field(min_length=1, max_length=128, description="exercise id, from GET /api/exercises")


def _hand_out(request: Request, started: regrade.Regrade) -> None:
    """With Celery, send one task per job (embedded workers poll the store instead). A broker that does not
    answer is logged: the Celery workers' re-sender sends the tasks later."""
    state = app_state(request)
    if not state.settings.broker_url:
        return
    try:
        sender = getattr(request.app.state, "grader_regrade_sender", None)
        if sender is None:
            sender = request.app.state.grader_regrade_sender = dispatch.regrade_sender(state.settings)
        if sender is not None:
            sender(state.store, regrade_jobs.devices(state.store, started.id))
    except Exception:
        log.exception("could not send the tasks of regrade %s; the re-sender sends them later", started.id)


def _call(work: Any) -> dict[str, Any]:
    try:
        found: regrade.Regrade = work()
    except regrade.RegradeRefused as refused:
        raise ApiError(refused.status, refused.code, str(refused)) from None
    return found.to_dict()


@router.post("/api/regrades", status_code=202, tags=["regrades"], responses=_responses(400, 401, 403, 409, 422))
def start_regrade(request: Request, body: RegradeIn, user: InstructorDep) -> JSONResponse:
    """Grade every learner's counted submission of an exercise again with its current checks (instructors).

    Answers 202 with the regrade: its id, ``status`` (``grading``), progress and the change report so far.
    Nothing replaces the learners' scores until ``POST /api/regrades/{id}/apply``.
    """
    state = app_state(request)
    try:
        started = regrade.start(state.store, state.settings, body.exercise, user.id)
    except regrade.RegradeRefused as refused:
        raise ApiError(refused.status, refused.code, str(refused)) from None
    _hand_out(request, started)
    view = started.to_dict()
    return JSONResponse(view, status_code=202, headers={"Location": f"/api/regrades/{view['id']}"})


@router.get("/api/regrades", tags=["regrades"], responses=_responses(401, 403))
def list_regrades(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """The 50 latest regrades, newest first, each with its progress and change report (instructors)."""
    return {"regrades": [r.to_dict() for r in regrade.listing(app_state(request).store)]}


@router.get("/api/regrades/{regrade_id}", tags=["regrades"], responses=_responses(401, 403, 404))
def get_regrade(request: Request, regrade_id: str, _user: InstructorDep) -> dict[str, Any]:
    """One regrade: ``status`` (grading, ready, applied, cancelled), ``progress`` ``{done, total}``, ``counts``,
    a one-line ``summary`` and ``changes``: per learner old → new score, who went down first (instructors)."""
    return _call(lambda: regrade.get(app_state(request).store, regrade_id))


@router.post("/api/regrades/{regrade_id}/apply", tags=["regrades"], responses=_responses(401, 403, 404, 409))
def apply_regrade(request: Request, regrade_id: str, _user: InstructorDep) -> dict[str, Any]:
    """Make a ready regrade's new scores the learners' scores (instructors). Failed jobs keep their old score;
    the old results stay with the regrade. A regrade still grading, applied or cancelled: 409, nothing changed."""
    return _call(lambda: regrade.apply(app_state(request).store, regrade_id))


# --- the page ---------------------------------------------------------------------------------------


def _instructor_page(request: Request) -> User | Response:
    user = page_user(request)
    if user is None:
        return RedirectResponse("/signin?next=/regrades", status_code=303)
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; regrades are for instructors")
    return user


def _regrades_page(request: Request, user: User, *, status_code: int = 200, error: str | None = None) -> Response:
    state = app_state(request)
    return page(
        request,
        "regrades.html",
        status_code,
        user=user,
        error=error,
        regrades=regrade.listing(state.store),
        exercises=catalog.list_exercises(state.settings),
        signed=regrade.signed,
    )


@router.get("/regrades", include_in_schema=False)
def regrades_page(request: Request) -> Response:
    user = _instructor_page(request)
    return user if isinstance(user, Response) else _regrades_page(request, user)


@router.post("/regrades", include_in_schema=False)
def start_from_page(request: Request, user: InstructorDep, exercise: Annotated[str, Form()] = "") -> Response:
    state = app_state(request)
    try:
        started = regrade.start(state.store, state.settings, exercise, user.id)
    except regrade.RegradeRefused as refused:
        return _regrades_page(request, user, status_code=refused.status, error=str(refused))
    _hand_out(request, started)
    return RedirectResponse(f"/regrades#regrade-{started.id}", status_code=303)


@router.post("/regrades/{regrade_id}/apply", include_in_schema=False)
def apply_from_page(request: Request, regrade_id: str, user: InstructorDep) -> Response:
    try:
        regrade.apply(app_state(request).store, regrade_id)
    except regrade.RegradeRefused as refused:
        return _regrades_page(request, user, status_code=refused.status, error=str(refused))
    return RedirectResponse(f"/regrades#regrade-{regrade_id}", status_code=303)

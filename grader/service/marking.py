"""Manual grading over HTTP (instructors): the marking pages and the ``/api/manual`` routes.

Pages: ``/marking`` lists the answers waiting for a grade (and those graded); ``/marking/{submission}/{answer}``
shows one learner's answer, rendered inert (:func:`grader.grading.report.render_cells`: learner HTML cleaned,
no scripts; the strict Content-Security-Policy of every service page forbids them anyway), its rubric as
checkboxes, a comment box and Save. Keys (``static/marking.js``): j/n/→ next answer, k/p/← previous,
1–9 tick a criterion, s or Ctrl+Enter save and go to the next answer waiting. Saving is a same-origin form
POST (:func:`grader.service.web.current_user` refuses one from elsewhere).

API: ``GET /api/manual`` (waiting and graded), ``GET /api/manual/{submission_id}`` (answers, rubrics, the
rendered answers, grades, total), ``PUT /api/manual/{submission_id}/{answer_id}`` ``{"criteria": [0, 2],
"comment": "…"}`` (0-based criteria) → the grade and the new total. The library is :mod:`grader.service.manual`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from grader.errors import UsageError
from grader.grading.results import points_text
from grader.service import manual
from grader.service.accounts import User
from grader.service.pages import page
from grader.service.web import ApiError, InstructorDep, UserDep, app_state, error_responses, page_user

router = APIRouter()

#: the keys the marking page answers (shown on the page; ``static/marking.js`` implements them)
KEYS = (
    ("j, n or →", "next answer"),
    ("k, p or ←", "previous answer"),
    ("1 – 9", "tick or untick that criterion"),
    ("c", "write a comment"),
    ("s or Ctrl+Enter", "save and go to the next answer waiting"),
)


def _href(item: manual.Item) -> str:
    return f"/marking/{quote(item.submission_id)}/{quote(item.answer.id)}"


def _instructor_page(request: Request, path: str) -> User | Response:
    user = page_user(request)
    if user is None:
        return RedirectResponse(f"/signin?next={quote(path)}", status_code=303)
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; manual grading is for instructors")
    return user


def _saved_note(request: Request, saved: str) -> str:
    """What the page says after a save: ``Saved Answer 90.2 … of alice: 2/3; the submission's total is now …``."""
    submission_id, _, answer_id = saved.partition("/")
    marking = manual.load(app_state(request).store, submission_id)
    if marking is None or answer_id not in marking.grades:
        return ""
    grade = marking.grades[answer_id]
    return (
        f"Saved {marking.answer(answer_id).label} of {marking.learner}: {points_text(grade.points)}/"
        f"{points_text(grade.max_points)}; the submission's total is now {marking.total.text()}."
    )


@router.get("/marking", include_in_schema=False)
def marking_list(request: Request, saved: str = "") -> Response:
    user = _instructor_page(request, "/marking")
    if isinstance(user, Response):
        return user
    queue = manual.awaiting(app_state(request).store, app_state(request).settings)
    return page(
        request, "marking.html", user=user, queue=queue, item=None, href=_href, saved=_saved_note(request, saved)
    )


def _answer_page(
    request: Request, user: User, submission_id: str, answer_id: str, *, saved: str = "", error: str = ""
) -> Response:
    state = app_state(request)
    marking = manual.load(state.store, submission_id)
    if marking is None:
        raise ApiError(404, "not-found", f"no graded submission {submission_id[:40]!r}; /marking lists them")
    try:
        answer = marking.answer(answer_id)
    except UsageError as exc:
        raise ApiError(404, "not-found", str(exc)) from None
    queue = manual.awaiting(state.store, state.settings)
    order = [i.key for i in queue.order]
    here = order.index((submission_id, answer_id)) if (submission_id, answer_id) in order else None
    before = queue.order[here - 1] if here is not None and here > 0 else None
    after = queue.order[here + 1] if here is not None and here + 1 < len(order) else None
    html = marking.rendered(answer)
    return page(
        request,
        "marking.html",
        422 if error else 200,
        user=user,
        queue=queue,
        item=marking,
        answer=answer,
        grade=marking.grades.get(answer.id),
        # cleaned by nbconvert's sanitiser and report.clean_html: the learner's HTML is inert
        rendered=Markup(html) if html is not None else None,
        missing=manual.MISSING,
        position=(here + 1 if here is not None else None, len(order)),
        before=_href(before) if before else "",
        after=_href(after) if after else "",
        keys=KEYS,
        href=_href,
        saved=_saved_note(request, saved),
        error=error,
    )


@router.get("/marking/{submission_id}/{answer_id}", include_in_schema=False)
def marking_answer(request: Request, submission_id: str, answer_id: str, saved: str = "") -> Response:
    user = _instructor_page(request, request.url.path)
    if isinstance(user, Response):
        return user
    return _answer_page(request, user, submission_id, answer_id, saved=saved)


def _next_waiting(queue: manual.Queue, before: list[tuple[str, str]], saved: tuple[str, str]) -> manual.Item | None:
    """The answer waiting after the one just saved (in the order they waited before), else the first waiting."""
    after = before[before.index(saved) + 1 :] if saved in before else []
    later = [i for i in queue.waiting if i.key in after]
    return min(later, key=lambda i: after.index(i.key)) if later else (queue.waiting[0] if queue.waiting else None)


@router.post("/marking/{submission_id}/{answer_id}", include_in_schema=False)
async def marking_save(
    request: Request,
    submission_id: str,
    answer_id: str,
    user: UserDep,
    criteria: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Save the ticked criteria and the comment, then go to the next answer waiting (or back to the list)."""
    if not user.is_instructor:
        raise ApiError(403, "instructors-only", f"{user.name} is a learner; manual grading is for instructors")
    state = app_state(request)
    before = [i.key for i in (await run_in_threadpool(manual.awaiting, state.store, state.settings)).waiting]
    try:
        positions = [int(c) for c in criteria]
        await run_in_threadpool(manual.grade, state.store, submission_id, answer_id, positions, comment, user)
    except (UsageError, ValueError) as exc:
        message = str(exc) if isinstance(exc, UsageError) else "criteria must be rubric positions"
        return await run_in_threadpool(_answer_page, request, user, submission_id, answer_id, error=message)
    queue = await run_in_threadpool(manual.awaiting, state.store, state.settings)
    saved = quote(f"{submission_id}/{answer_id}", safe="")
    following = _next_waiting(queue, before, (submission_id, answer_id))
    target = _href(following) if following else "/marking"
    return RedirectResponse(f"{target}?saved={saved}", status_code=303)


# --- the API ------------------------------------------------------------------------------------


class GradeIn(BaseModel):
    criteria: list[int] = Field(description="the ticked rubric criteria, 0-based positions (e.g. [0, 2])")
    comment: str = Field("", description="the instructor's comment for the learner (Markdown)")


def _marking(request: Request, submission_id: str) -> manual.Marking:
    found = manual.load(app_state(request).store, submission_id)
    if found is None:
        raise ApiError(
            404, "not-found", f"no graded submission {submission_id[:40]!r}; GET /api/manual lists those to grade"
        )
    return found


@router.get("/api/manual", tags=["manual grading"], responses=error_responses(401, 403))
def list_manual(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """The manually graded answers of every learner's counted submission (instructors): ``waiting`` (oldest
    first) and ``graded`` (``docs/SERVICE.md``, "Manual grading")."""
    state = app_state(request)
    return manual.awaiting(state.store, state.settings).to_dict()


@router.get("/api/manual/{submission_id}", tags=["manual grading"], responses=error_responses(401, 403, 404))
def get_manual(request: Request, submission_id: str, _user: InstructorDep) -> dict[str, Any]:
    """One submission's manual answers (instructors): each answer's rubric, the learner's answer as inert HTML
    (``html``; ``missing`` when they deleted the cell), its grade, and the submission's total."""
    return _marking(request, submission_id).to_dict()


@router.put(
    "/api/manual/{submission_id}/{answer_id}",
    tags=["manual grading"],
    responses=error_responses(400, 401, 403, 404, 422),
)
def put_manual(
    request: Request, submission_id: str, answer_id: str, body: GradeIn, user: InstructorDep
) -> dict[str, Any]:
    """Grade (or grade again) one manual answer (instructors): the ticked criteria and a comment. An unknown
    answer, a criterion outside the rubric or one given twice is refused with 422 and changes nothing."""
    _marking(request, submission_id)
    try:
        graded = manual.grade(app_state(request).store, submission_id, answer_id, body.criteria, body.comment, user)
    except UsageError as exc:
        raise ApiError(422, "invalid-grade", str(exc)) from None
    return graded.to_dict()

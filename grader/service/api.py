"""The JSON API under ``/api`` (its OpenAPI at ``/api/openapi.json``, a readable page at ``/api/docs``).

Submit a notebook, read a submission and your own list, the exercises and their notebooks;
instructors: the queue, the gradebook and per-check pass rates. Errors are
:class:`~grader.service.web.ApiError` answers (the table is in :mod:`grader.service.app`).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from grader.errors import UsageError
from grader.grading import report
from grader.service import catalog, deadlines, gradebook, queue
from grader.service.web import (
    ApiError,
    InstructorDep,
    UserDep,
    accept,
    app_state,
    error_responses,
    find_submission,
    full_view,
    my_submissions,
)

router = APIRouter()


@router.post(
    "/api/submissions",
    status_code=202,
    tags=["submissions"],
    responses=error_responses(401, 403, 413, 415, 422, 429, 503),
)
async def submit(
    request: Request,
    user: UserDep,
    file: Annotated[UploadFile, File(description="the .ipynb notebook")],
    exercise: Annotated[str, Form(min_length=1, description="exercise id, from GET /api/exercises")],
) -> JSONResponse:
    """Queue a notebook for grading. A second identical submit while the first waits returns the same id.

    Every attempt counts toward your submissions a minute, refused ones included. The notebook must be
    within the service's limits (size, cells, outputs, one cell's size: ``docs/SERVICE.md``, "Uploads").
    """
    enqueued = await accept(app_state(request), user, exercise=exercise, upload=file)
    location = f"/api/submissions/{enqueued.id}"
    return JSONResponse(
        {
            "id": enqueued.id,
            "status": enqueued.status,
            "duplicate": not enqueued.created,
            "url": location,
            "page": f"/submissions/{enqueued.id}",
        },
        status_code=202,
        headers={"Location": location},
    )


@router.get("/api/submissions/{submission_id}", tags=["submissions"], responses=error_responses(401, 404))
def get_submission(request: Request, submission_id: str, user: UserDep) -> dict[str, Any]:
    """One submission: its status (queued, running, graded, invalid, error) and, once final, the result."""
    state = app_state(request)
    return full_view(state, find_submission(state, submission_id, user))


@router.get("/api/submissions", tags=["submissions"], responses=error_responses(401))
def list_submissions(request: Request, user: UserDep) -> dict[str, Any]:
    """Your 100 latest submissions, newest first."""
    return {"submissions": my_submissions(app_state(request), user)}


def _final(request: Request, submission_id: str, user: UserDep) -> tuple[sa.Row, dict[str, Any]]:
    """A final submission and its Result's JSON object; 409 while it is still queued or running."""
    state = app_state(request)
    row = find_submission(state, submission_id, user)
    if not row.result:
        raise ApiError(409, "not-graded-yet", f"submission {row.id} is {row.status}: ask again once it is graded")
    return row, full_view(state, row)


@router.get(
    "/api/submissions/{submission_id}/report.html",
    tags=["submissions"],
    response_class=Response,
    responses={
        200: {"description": "the feedback report, one offline HTML file", "content": {"text/html": {}}},
        **error_responses(401, 404, 409),
    },
)
def feedback_report(request: Request, submission_id: str, user: UserDep) -> Response:
    """Your notebook with each check's verdict beside it, as one self-contained HTML file (hidden checks named only)."""
    row, view = _final(request, submission_id, user)
    notebook = report.learner_notebook(row.notebook, name=row.filename)
    html = report.render_report(notebook, view, title=f"Feedback: {row.exercise} ({row.filename})")
    name = f"feedback-{row.exercise}-{row.id[:8]}.html"
    return Response(html, media_type="text/html; charset=utf-8", headers=_attachment(name))


@router.get(
    "/api/submissions/{submission_id}/gradescope.json",
    tags=["submissions"],
    responses=error_responses(401, 404, 409),
)
def gradescope_results(request: Request, submission_id: str, user: UserDep) -> dict[str, Any]:
    """The result in the shape Gradescope's autograder reads (``results.json``): score and one test per check."""
    return report.gradescope_results(_final(request, submission_id, user)[1])


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@router.get("/api/exercises", tags=["exercises"])
def list_exercises(request: Request) -> dict[str, Any]:
    """The exercises you can submit: id, title, points, and where to download the notebook."""
    found = catalog.list_exercises(app_state(request).settings)
    return {"exercises": [{**e.to_dict(), "download": f"/api/exercises/{e.id}/notebook"} for e in found]}


@router.get(
    "/api/exercises/{exercise_id}/notebook",
    tags=["exercises"],
    responses=error_responses(404),
    response_class=FileResponse,
)
def download_exercise(request: Request, exercise_id: str) -> Response:
    """The learner's notebook for an exercise (``exercises/<id>.ipynb``)."""
    settings = app_state(request).settings
    if exercise_id not in {e.id for e in catalog.list_exercises(settings)}:
        raise ApiError(404, "not-found", f"no exercise {exercise_id[:100]!r}; GET /api/exercises lists them")
    path = settings.exercises_dir / f"{exercise_id}.ipynb"
    if not path.is_file():
        raise ApiError(404, "not-found", f"{exercise_id} has no learner notebook yet; run `grader assign`")
    return FileResponse(path, media_type="application/x-ipynb+json", filename=path.name)


@router.get("/api/me", tags=["accounts"], responses=error_responses(401))
def me(user: UserDep) -> dict[str, Any]:
    """Who the token belongs to."""
    return {"name": user.name, "role": user.role}


@router.get("/api/health", tags=["service"])
def health(request: Request) -> dict[str, Any]:
    """Whether the service and its store answer."""
    app_state(request).store.run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar(), write=False)
    return {"status": "ok"}


@router.get("/api/queue", tags=["service"], responses=error_responses(401, 403))
def queue_status(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """How many submissions are in each status (instructors)."""
    return {"counts": queue.queue_depth(app_state(request).store)}


@router.get(
    "/api/gradebook.csv",
    tags=["gradebook"],
    response_class=Response,
    responses={
        200: {"description": "the gradebook as CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 422),
    },
)
def gradebook_csv(
    request: Request,
    _user: InstructorDep,
    format: Annotated[str, Query(description="wide, canvas or long")] = "wide",
) -> Response:
    """The gradebook as CSV (instructors): ``wide`` learners × exercises, ``canvas`` Canvas's gradebook import,
    ``long`` one row per learner and exercise (``docs/SERVICE.md``, "Exports"). The headers
    ``X-Grader-Provisional`` and ``X-Grader-Answers-To-Grade`` say how many scores are provisional and how many
    manual answers they wait for (0 and 0: every score is final)."""
    if format not in gradebook.EXPORT_FORMATS:
        known = ", ".join(gradebook.EXPORT_FORMATS)
        raise ApiError(422, "unknown-format", f"no gradebook format {format[:40]!r}; the formats: {known}")
    state = app_state(request)
    exercises = catalog.list_exercises(state.settings)
    made = gradebook.export_of(state.store, exercises, format, state.settings.counted_submission)  # type: ignore[arg-type]
    headers = _attachment(gradebook.EXPORT_FILENAMES[format]) | {
        "X-Grader-Provisional": str(made.provisional),
        "X-Grader-Answers-To-Grade": str(made.answers_to_grade),
    }
    return Response(made.text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/api/gradebook/checks", tags=["gradebook"], responses=error_responses(401, 403))
def gradebook_checks(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """Per exercise and check: how many learners' best submissions pass it (instructors)."""
    state = app_state(request)
    return {"exercises": gradebook.check_pass_rates(state.store, state.settings.counted_submission)}


class DeadlineIn(BaseModel):
    due: str = Field(description="ISO 8601 with a zone, e.g. 2026-12-20T23:59Z")
    policy: str = Field("none", description="none (late work flagged), penalty, or refuse")
    per_day: float = Field(0.0, description="penalty: percent of the raw score lost per started day late")
    floor: float = Field(0.0, description="penalty: percent of the raw score a late submission keeps at least")
    allow_past: bool = Field(False, description="accept a due time that has already passed")


class ExtensionIn(BaseModel):
    until: str = Field(description="the learner's own due time, ISO 8601 with a zone")
    allow_past: bool = False


def _deadline_call(request: Request, work: Any) -> Any:
    state = app_state(request)
    try:
        return work(state, [e.id for e in catalog.list_exercises(state.settings)])
    except UsageError as exc:
        raise ApiError(422, "invalid-deadline", str(exc)) from None


@router.get("/api/deadlines", tags=["deadlines"], responses=error_responses(401, 403))
def list_deadlines(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """Every exercise's due time, late policy and extensions (instructors; ``docs/SERVICE.md``, "Deadlines")."""
    return {"deadlines": deadlines.listing(app_state(request).store)}


@router.put("/api/deadlines/{exercise}", tags=["deadlines"], responses=error_responses(400, 401, 403, 422))
def set_deadline(request: Request, exercise: str, body: DeadlineIn, _user: InstructorDep) -> dict[str, Any]:
    """Set or replace an exercise's due time (UTC) and late policy (instructors). A due time in the past,
    an unknown exercise or policy, or a percentage outside 0–100 is refused with 422 and changes nothing."""
    found = _deadline_call(
        request,
        lambda state, known: deadlines.set_deadline(
            state.store, known, exercise, **body.model_dump(), now=state.clock()
        ),
    )
    return found.to_dict()  # type: ignore[no-any-return]


@router.put(
    "/api/deadlines/{exercise}/extensions/{learner}", tags=["deadlines"], responses=error_responses(400, 401, 403, 422)
)
def grant_extension(
    request: Request, exercise: str, learner: str, body: ExtensionIn, _user: InstructorDep
) -> dict[str, Any]:
    """Give one learner a later due time for one exercise (instructors); 422 for an unknown learner or exercise,
    an exercise without a deadline, or a time in the past."""
    return _deadline_call(  # type: ignore[no-any-return]
        request,
        lambda state, known: deadlines.grant_extension(
            state.store, known, learner, exercise, **body.model_dump(), now=state.clock()
        ),
    )

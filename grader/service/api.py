"""The JSON API under ``/api`` (its OpenAPI at ``/api/openapi.json``, a readable page at ``/api/docs``).

Submit a notebook, read a submission and your own list, the exercises and their notebooks;
instructors: the queue, the gradebook and per-check pass rates. Errors are
:class:`~grader.service.web.ApiError` answers (the table is in :mod:`grader.service.app`).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from grader.service import catalog, gradebook, queue
from grader.service.web import (
    ApiError,
    InstructorDep,
    UserDep,
    accept,
    app_state,
    error_responses,
    find_submission,
    my_submissions,
    submission_view,
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
    return submission_view(find_submission(app_state(request), submission_id, user))


@router.get("/api/submissions", tags=["submissions"], responses=error_responses(401))
def list_submissions(request: Request, user: UserDep) -> dict[str, Any]:
    """Your 100 latest submissions, newest first."""
    return {"submissions": my_submissions(app_state(request), user)}


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
        **error_responses(401, 403),
    },
)
def gradebook_csv(request: Request, _user: InstructorDep) -> Response:
    """Learners × exercises, each learner's best score (instructors)."""
    state = app_state(request)
    book = gradebook.gradebook(state.store, [e.id for e in catalog.list_exercises(state.settings)])
    return Response(
        gradebook.to_csv(book),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="gradebook.csv"'},
    )


@router.get("/api/gradebook/checks", tags=["gradebook"], responses=error_responses(401, 403))
def gradebook_checks(request: Request, _user: InstructorDep) -> dict[str, Any]:
    """Per exercise and check: how many learners' best submissions pass it (instructors)."""
    return {"exercises": gradebook.check_pass_rates(app_state(request).store)}

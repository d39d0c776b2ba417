"""Manual grading: the answers waiting for an instructor, their grades, and what a grade does to a total.

An exercise's manually graded answers (``manual`` cells, :mod:`grader.format.rubric`) are listed in each
graded submission's result (``result["manual"]``); grading never scores them. For each learner's **counted**
submission of an exercise (:func:`grader.service.gradebook.best_submissions`) every manual answer waits for an
instructor (:func:`awaiting`, oldest first) until :func:`grade` stores the rubric criteria they ticked and a
comment in ``manual_grades``. The answer's points are the sum of the ticked criteria's points; grading again
replaces the grade. The submission's total is automatic + manual (:mod:`grader.service.totals`), provisional
while any of its manual answers has no grade; the late policy applies to the total.

The instructor reads the answer from the notebook the learner submitted (``submissions.notebook``, the cell
:func:`grader.format.rubric.learner_answer` finds), rendered inert by :func:`grader.grading.report.render_cells`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from nbformat import NotebookNode

from grader.errors import UsageError
from grader.format.rubric import ManualAnswer, learner_answer
from grader.grading import report
from grader.grading.results import points_text
from grader.service import deadlines, gradebook, totals
from grader.service.accounts import User
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, manual_grades, submissions, users
from grader.service.totals import ManualGrade, Total
from grader.settings import Settings

#: what the marking page and ``grader manual show`` say when the learner deleted the answer's cell
MISSING = "no answer: the cell is missing from the submission"


@dataclass(frozen=True)
class Item:
    """One manual answer of one counted submission: waiting for a grade, or graded."""

    submission_id: str
    learner: str
    exercise: str
    answer: ManualAnswer
    #: when the service received the submission (epoch seconds)
    submitted_at: float
    grade: ManualGrade | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.submission_id, self.answer.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "learner": self.learner,
            "exercise": self.exercise,
            "answer": self.answer.to_dict(),
            "submitted_at": self.submitted_at,
            "received": deadlines.utc_text(self.submitted_at),
            "grade": self.grade.to_dict() if self.grade else None,
        }


@dataclass(frozen=True)
class Queue:
    #: answers without a grade, oldest submission first (then by the answer's place in the exercise)
    waiting: list[Item]
    #: answers already graded, most recently graded last (to go back and change one)
    graded: list[Item]

    @property
    def order(self) -> list[Item]:
        """The order the marking page steps through: the graded answers (most recent last), then those waiting,
        so the next answer is the next to grade and the previous the last one graded."""
        return [*self.graded, *self.waiting]

    def to_dict(self) -> dict[str, Any]:
        return {"waiting": [i.to_dict() for i in self.waiting], "graded": [i.to_dict() for i in self.graded]}


def awaiting(store: Store, settings: Settings) -> Queue:
    """Every manual answer of every learner's counted submission: those waiting for a grade and those graded."""
    _, best = gradebook.best_submissions(store, settings.counted_submission)
    waiting: list[Item] = []
    graded: list[Item] = []
    for b in best:
        for position, answer in enumerate(totals.answers_of(b.result)):
            given = b.grades.get(answer.id)
            placed = dataclasses.replace(answer, index=position)
            item = Item(b.submission_id, b.learner, b.exercise, placed, b.submitted_at, given)
            (graded if given else waiting).append(item)
    waiting.sort(key=lambda i: (i.submitted_at, i.learner, i.answer.index))
    graded.sort(key=lambda i: (i.grade.graded_at if i.grade else 0.0, i.learner, i.answer.index))
    return Queue(waiting, graded)


@dataclass(frozen=True)
class Marking:
    """One graded submission as the instructor marks it: its answers, the learner's cells, the grades."""

    submission_id: str
    learner: str
    exercise: str
    filename: str
    submitted_at: float
    result: dict[str, Any]
    notebook: bytes
    answers: tuple[ManualAnswer, ...]
    grades: dict[str, ManualGrade]

    @property
    def total(self) -> Total:
        return totals.total_of(self.result, self.grades)

    def answer(self, answer_id: str) -> ManualAnswer:
        """Raises UsageError naming the answers this submission has."""
        for answer in self.answers:
            if answer.id == answer_id:
                return answer
        known = ", ".join(a.id for a in self.answers) or "none"
        raise UsageError(
            f"submission {self.submission_id} ({self.exercise}) has no manual answer {answer_id[:40]!r}; "
            f"its manual answers: {known}"
        )

    @functools.cached_property
    def submitted(self) -> NotebookNode:
        """The notebook the learner submitted, read once for all its answers."""
        return report.learner_notebook(self.notebook, name=self.filename)

    def rendered(self, answer: ManualAnswer) -> str | None:
        """The learner's answer as inert HTML, or None when they deleted its cell."""
        cell = learner_answer(self.submitted, answer)
        return None if cell is None else report.render_cells([cell])

    def source(self, answer: ManualAnswer) -> str | None:
        """The learner's answer as text (its source), or None when they deleted its cell."""
        cell = learner_answer(self.submitted, answer)
        return None if cell is None else str(cell.get("source", ""))

    def to_dict(self, *, rendered: bool = True) -> dict[str, Any]:
        answers = []
        for answer in self.answers:
            entry: dict[str, Any] = {**answer.to_dict(), "grade": None}
            if answer.id in self.grades:
                entry["grade"] = self.grades[answer.id].to_dict()
            if rendered:
                html = self.rendered(answer)
                entry["missing"] = html is None
                entry["html"] = html if html is not None else ""
            answers.append(entry)
        return {
            "submission_id": self.submission_id,
            "learner": self.learner,
            "exercise": self.exercise,
            "filename": self.filename,
            "received": deadlines.utc_text(self.submitted_at),
            "answers": answers,
            "total": self.total.to_dict(),
        }


def load(store: Store, submission_id: str) -> Marking | None:
    """A graded submission with manual answers, and its grades; None when there is no such graded submission."""

    def work(conn: sa.Connection) -> tuple[Any, dict[str, dict[str, ManualGrade]]]:
        row = conn.execute(
            sa.select(submissions, users.c.name.label("learner"))
            .join(users, users.c.id == submissions.c.user_id)
            .where(submissions.c.id == submission_id)
        ).first()
        return row, totals.read_grades(conn, [submission_id]) if row is not None else {}

    row, grades = store.run(work, write=False)
    if row is None or row.status != SubmissionStatus.GRADED or not row.result:
        return None
    result = {**json.loads(row.result), "score": row.score, "max_score": row.max_score}
    return Marking(
        submission_id=row.id,
        learner=row.learner,
        exercise=row.exercise,
        filename=row.filename,
        submitted_at=float(row.created_at),
        result=result,
        notebook=bytes(row.notebook),
        answers=totals.answers_of(result),
        grades=grades.get(row.id, {}),
    )


def require(store: Store, submission_id: str) -> Marking:
    """:func:`load`, or UsageError saying how to find the ids."""
    found = load(store, submission_id)
    if found is None:
        raise UsageError(
            f"no graded submission {submission_id[:40]!r}; `grader manual list` (or GET /api/manual) "
            "shows the submissions with answers to grade"
        )
    return found


def check_criteria(answer: ManualAnswer, criteria: list[int]) -> None:
    """Raises UsageError for a position outside the rubric or given twice (0-based positions)."""
    count = len(answer.rubric)
    for position in criteria:
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < count:
            raise UsageError(
                f"{answer.label} has {count} rubric criteria (numbered 1 to {count}); there is no criterion "
                f"{position + 1 if isinstance(position, int) else position!r}"
            )
    repeated = sorted({p + 1 for p in criteria if criteria.count(p) > 1})
    if repeated:
        raise UsageError(f"criterion {', '.join(map(str, repeated))} is given twice; tick each criterion once")


@dataclass(frozen=True)
class Graded:
    grade: ManualGrade
    #: the submission's new total (before the late policy)
    total: Total
    #: the total the gradebook counts (late policy applied), and what the policy did
    counted: float
    late_note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "grade": self.grade.to_dict(),
            "total": self.total.to_dict(),
            "counted_score": self.counted,
            "late_note": self.late_note,
        }

    def text(self, marking: Marking) -> str:
        """``alice · 90-manual-answers · Answer 90.2: … — 2/3 (criteria 1, 3); total 4/7 (provisional: …)``"""
        g = self.grade
        ticked = ", ".join(str(i + 1) for i in g.criteria) or "none"
        late = f"; {self.late_note}" if self.late_note else ""
        return (
            f"{marking.learner} · {marking.exercise} · {marking.answer(g.item).label}: "
            f"{points_text(g.points)}/{points_text(g.max_points)} (criteria {ticked}); "
            f"total {self.total.text()}{late}"
        )


def grade(store: Store, submission_id: str, answer_id: str, criteria: list[int], comment: str, grader: User) -> Graded:
    """Store (or replace) an instructor's grade of one manual answer: the ticked criteria (0-based), a comment.

    Raises:
        UsageError: no such graded submission, no such answer in it, a criterion outside its rubric or
            given twice, or a grader who is not an instructor; nothing is changed.
    """
    if not grader.is_instructor:
        raise UsageError(f"{grader.name} is a learner; only instructors grade answers")
    marking = require(store, submission_id)
    answer = marking.answer(answer_id)
    check_criteria(answer, criteria)
    ticked = tuple(sorted(criteria))
    points = round(sum(answer.rubric[i].points for i in ticked), 6)
    now = time.time()
    row = {
        "criteria": json.dumps(list(ticked)),
        "points": points,
        "max_points": answer.points,
        "comment": comment.strip(),
        "grader_id": grader.id,
        "graded_at": now,
    }

    def work(conn: sa.Connection) -> deadlines.Rules:
        g = manual_grades.c
        where = sa.and_(g.submission_id == submission_id, g.item == answer.id)
        if conn.execute(sa.select(g.item).where(where)).first() is None:
            conn.execute(sa.insert(manual_grades).values(submission_id=submission_id, item=answer.id, **row))
        else:
            conn.execute(sa.update(manual_grades).where(where).values(**row))
        return deadlines.read_rules(conn)

    rules = store.run(work)
    given = ManualGrade(submission_id, answer.id, ticked, points, answer.points, row["comment"], grader.name, now)  # type: ignore[arg-type]
    total = totals.total_of(marking.result, {**marking.grades, answer.id: given})
    timing = rules.timing(marking.learner, marking.exercise, marking.submitted_at)
    return Graded(given, total, timing.counted(total.score), timing.note(total.score))


def render_queue(queue: Queue) -> str:
    """``grader manual list``: the waiting answers (with the ids to grade them), then how many are graded."""
    if not queue.waiting:
        lines = ["No answers wait for manual grading."]
    else:
        lines = [f"{len(queue.waiting)} answer{'' if len(queue.waiting) == 1 else 's'} to grade (oldest first):"]
        for item in queue.waiting:
            lines.append(
                f"  {item.submission_id}  {item.answer.id:<6} {item.learner:<12} {item.exercise}  "
                f"received {deadlines.utc_text(item.submitted_at)}  {item.answer.title} "
                f"({points_text(item.answer.points)} points)"
            )
    if queue.graded:
        lines.append(f"{len(queue.graded)} graded (`grader manual show SUBMISSION` shows one).")
    return "\n".join(lines)


def render_marking(marking: Marking) -> str:
    """``grader manual show``: each answer's rubric (criteria numbered from 1), the grade, the learner's text."""
    lines = [
        f"{marking.learner} · {marking.exercise} · {marking.filename} · received "
        f"{deadlines.utc_text(marking.submitted_at)} · total {marking.total.text()}"
    ]
    for answer in marking.answers:
        given = marking.grades.get(answer.id)
        state = "to grade"
        if given:
            state = f"graded {points_text(given.points)}/{points_text(answer.points)} by {given.grader}"
        lines += ["", f"{answer.label} ({points_text(answer.points)} points): {state}"]
        for number, criterion in enumerate(answer.rubric, start=1):
            mark = "[x]" if given and number - 1 in given.criteria else "[ ]"
            lines.append(f"  {mark} {number}. {criterion.description} ({points_text(criterion.points)})")
        if given and given.comment:
            lines.append(f"  comment: {given.comment}")
        text = marking.source(answer)
        lines.append("  --- the learner's answer ---")
        lines += [f"  {line}" for line in (text.splitlines() if text is not None else [MISSING])] or ["  (empty)"]
    return "\n".join(lines)

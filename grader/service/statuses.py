"""A submission's status: the service's vocabulary, defined once.

How a submission moves between them is drawn in :mod:`grader.service.queue`.
The three final statuses are a :class:`~grader.grading.results.Result`'s own (``ResultStatus``):
a verdict is stored as the status it has. Members are ``str``: the store keeps, the API sends
and the templates compare the very same strings (``SubmissionStatus.QUEUED == "queued"``), so
values read back from the database need no conversion.
"""

from __future__ import annotations

from enum import Enum


class SubmissionStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    GRADED = "graded"
    INVALID = "invalid"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


#: waiting for a worker, or being graded: at most one such job per identical submission
ACTIVE_STATUSES = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING)
#: nothing more will happen to the submission
FINAL_STATUSES = (SubmissionStatus.GRADED, SubmissionStatus.INVALID, SubmissionStatus.ERROR)
#: what a worker may record with :func:`grader.service.queue.complete` (errors go through ``fail``)
VERDICTS = (SubmissionStatus.GRADED, SubmissionStatus.INVALID)

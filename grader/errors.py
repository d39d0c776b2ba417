"""Errors the grader raises on purpose, each with the exit code the CLI returns for it.

    GraderError                 1  something went wrong that the message explains
     ├── UsageError             2  the command line asks for something that does not exist
     ├── AuthoringError         3  a solution/lesson notebook breaks the authoring rules
     │    └── MarkerError       3  unbalanced or nested solution markers
     ├── InvalidNotebook        4  a submitted or lesson notebook cannot be read as a notebook
     ├── LessonFailed           5  a lesson notebook raised or timed out under papermill
     ├── BookBuildFailed        6  Jupyter Book reported an error (broken reference, bad toc…)
     ├── StaleExercises         7  exercises/ is not what solutions/ generates
     ├── VerificationFailed     8  an exercise's solution, stub or re-runs do not verify
     ├── SandboxUnavailable    10  no grading sandbox can be built here (see `grader doctor`)
     ├── StoreUnavailable       1  the service's database does not answer (after retries); the
     │                             API answers 503 store-unavailable
     └── SubmissionRefused      1  the service's queue will not take a submission now; the API
          ├── RateLimited       1  answers 429 rate-limited / 503 queue-full with Retry-After
          └── QueueFull         1  (``code`` and ``retry_after_s`` say which and when)

Library code raises these; only ``grader.cli`` turns them into messages and exit codes.
Messages name the place and the fix.

Verdict exit codes are not errors: ``grader check`` and ``grader grade`` exit with the first
that applies to the notebooks they graded (:func:`grader.grading.results.exit_code`):

    EXIT_GRADING_ERROR   9  a notebook could not be graded: the grader failed, not the learner
    EXIT_INVALID         4  a submission is not a gradable notebook (InvalidNotebook's code)
    EXIT_LOST_POINTS     1  a notebook lost points
    EXIT_FULL_MARKS      0  every notebook earned full marks

9 is no exception's code: a grading error is a verdict a Result carries, never raised.
"""

from __future__ import annotations


class GraderError(Exception):
    """Base class: the message is meant for a person and says what to do."""

    exit_code = 1


class UsageError(GraderError):
    exit_code = 2


class AuthoringError(GraderError):
    exit_code = 3


class MarkerError(AuthoringError):
    pass


class InvalidNotebook(GraderError):
    exit_code = 4


class LessonFailed(GraderError):
    exit_code = 5


class BookBuildFailed(GraderError):
    exit_code = 6


class StaleExercises(GraderError):
    exit_code = 7


class VerificationFailed(GraderError):
    exit_code = 8


class SandboxUnavailable(GraderError):
    exit_code = 10


class StoreUnavailable(GraderError):
    """The service's database cannot be reached (after retries); the message names the URL and the fix."""


class SubmissionRefused(GraderError):
    """A submission the service's queue will not take now; ``retry_after_s`` says when to try again."""

    #: the API's error code for it
    code = "refused"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1.0, retry_after_s)


class RateLimited(SubmissionRefused):
    code = "rate-limited"


class QueueFull(SubmissionRefused):
    code = "queue-full"


# --- verdict exit codes (grader check, grader grade) ------------------------------------------

EXIT_FULL_MARKS = 0
EXIT_LOST_POINTS = 1
EXIT_INVALID = InvalidNotebook.exit_code  # 4
EXIT_GRADING_ERROR = 9

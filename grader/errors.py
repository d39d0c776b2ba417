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
     └── SandboxUnavailable    10  no grading sandbox can be built here (see `grader doctor`)

Library code raises these; only ``grader.cli`` turns them into messages and exit codes.
Messages name the place and the fix.
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

"""Verdicts, and every word a learner reads about them.

One :class:`Result` per graded (or self-checked) notebook, one :class:`CheckResult` per graded
cell. Text (:func:`render_text`), JSON (:func:`render_json`) and HTML (:func:`render_html`)
are all rendered from the same object, and every message a learner can see is built by a
function in this module — the grading engine only decides *which* one applies.

What feedback never shows about a **hidden** check: its source, its expected output, the
traceback, or the text of an exception raised inside it (``assert x == 3, f"expected {y}"``
would leak the answer). A hidden check fails with "output differs from the reference" or
"raised <ExceptionType>", optionally naming the learner's own function the error came from.

Statuses:

============  ===========================================================================
check         ``pass`` (full points), ``fail`` (0), ``not-run`` (0: the kernel died or
              stopped before it, or it needed an exercise that raised NotImplementedError
              or failed to define a name)
result        ``graded``, ``invalid`` (the submission is not a gradable notebook; the
              message says what to do), ``error`` (the grader itself failed; not the
              learner's doing)
============  ===========================================================================

Exit codes (:func:`exit_code`, for ``grader check`` and ``grader grade``), the first that applies:
9 a grading error, 4 an invalid submission, 1 a notebook lost points, 0 full marks everywhere
(the constants live in :mod:`grader.errors`, with every other exit code).
"""

from __future__ import annotations

import builtins
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from grader.errors import EXIT_FULL_MARKS, EXIT_GRADING_ERROR, EXIT_INVALID, EXIT_LOST_POINTS
from grader.format.rubric import ManualAnswer
from grader.grading.devices import GradingDevice as GradingDevice  # its label is what feedback says

CheckStatus = Literal["pass", "fail", "not-run"]
ResultStatus = Literal["graded", "invalid", "error"]

_LABELS: dict[str, str] = {"pass": "PASS", "fail": "FAIL", "not-run": "NOT RUN"}
#: longest exception text or output line quoted in feedback
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one graded cell."""

    id: str
    name: str
    hidden: bool
    points: float
    max_points: float
    status: CheckStatus
    message: str = ""

    @property
    def title(self) -> str:
        """``Check 3.3 (hidden): catches duplicated tickets``"""
        return f"Check {self.id}{' (hidden)' if self.hidden else ''}: {self.name}"


@dataclass(frozen=True)
class Result:
    """The verdict on one notebook."""

    exercise: str | None
    submission: str
    status: ResultStatus
    score: float
    max_score: float
    duration_s: float
    device: str
    checks: tuple[CheckResult, ...] = ()
    message: str = ""
    #: how the learner's kernel was isolated: "bubblewrap sandbox", "local self-check" (grader check),
    #: or "none" (--unsafe-no-sandbox)
    isolation: str = "none"
    #: the device that graded it, from the grading worker itself (``device`` is its label)
    device_info: GradingDevice | None = None
    #: the device the exercise asked for (solution metadata ``grader.device``): ``"cpu"`` or ``"gpu"``
    wanted_device: str = "cpu"
    #: how grading differed from what the exercise asked for (:func:`cpu_fallback_note`); "" when it did not
    device_note: str = ""
    #: the exercise's manually graded answers (not in ``score``/``max_score``: an instructor scores them)
    manual: tuple[ManualAnswer, ...] = ()

    @property
    def full_marks(self) -> bool:
        return self.status == "graded" and self.score >= self.max_score

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``grader grade --json`` (schema in the book's Grading page)."""
        return {
            "exercise": self.exercise,
            "submission": self.submission,
            "status": self.status,
            "score": self.score,
            "max_score": self.max_score,
            "duration_s": round(self.duration_s, 3),
            "device": self.device,
            "message": self.message,
            "isolation": self.isolation,
            "device_info": self.device_info.to_dict() if self.device_info is not None else None,
            "wanted_device": self.wanted_device,
            "device_note": self.device_note,
            "checks": [asdict(check) for check in self.checks],
            "manual": [answer.to_dict() for answer in self.manual],
        }


#: the isolation of ``grader check``: the learner's own code on their own machine, no sandbox needed
LOCAL_SELF_CHECK = "local self-check"
#: said in every report of a run without the sandbox
UNSANDBOXED = "WARNING: graded WITHOUT a sandbox (--unsafe-no-sandbox): only for code you trust"


# --- constructors -----------------------------------------------------------------------


def invalid(submission: str, message: str, *, exercise: str | None = None, duration_s: float = 0.0) -> Result:
    """A submission that cannot be graded; ``message`` says what to do."""
    return Result(
        exercise=exercise,
        submission=submission,
        status="invalid",
        score=0.0,
        max_score=0.0,
        duration_s=duration_s,
        device="none",
        message=message,
    )


# --- a job that is not graded (yet) ------------------------------------------------------


def retrying_message(failed_attempts: int, max_attempts: int) -> str:
    return (
        f"grading error, we will retry (attempt {failed_attempts} of {max_attempts} failed on the "
        "grader's side; this is not your doing)"
    )


def worker_lost_message(failed_attempts: int, max_attempts: int) -> str:
    """A job whose grading worker died under it (seen dying, or its lease ran out), queued or taken again."""
    return (
        f"being graded again: the grading worker stopped while grading your notebook (attempt {failed_attempts} "
        f"of {max_attempts}; this is not your doing, there is nothing to resubmit)"
    )


def dead_letter_message(attempts: int, *, worker_died: bool) -> str:
    if worker_died:
        return (
            f"grading stopped {attempts} times without a result: the grading process died each time. "
            "If your notebook uses a lot of memory, starts processes or calls os._exit, change that and "
            "resubmit; otherwise tell your instructor"
        )
    return (
        f"grading failed {attempts} times for reasons on the grader's side; your notebook was not graded. "
        "Resubmit later, and tell your instructor if it happens again"
    )


# --- where a job was graded ------------------------------------------------------------

#: why a GPU exercise was graded on a CPU, in the service (no live GPU worker was registered)
NO_GPU_WORKER = "no GPU worker was available"
#: ... and with ``grader grade``, which grades on the machine's CPU
LOCAL_CPU = "`grader grade` grades on this machine's CPU"


def cpu_fallback_note(reason: str) -> str:
    """What a learner reads when a GPU exercise was graded on a CPU, at smoke size and without torch.compile."""
    return f"graded on CPU at smoke size: {reason}; torch.compile was skipped"


# --- the wording of check messages ------------------------------------------------------


#: control characters (ESC, CR, BEL…) and bidirectional overrides in learner text: a terminal
#: would obey them (rewrite a FAIL line as PASS), so they are shown escaped, the way ascii() writes them
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clip(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text else text.strip()
    text = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s"


#: why a notebook that printed too much was stopped
OUTPUT_LIMIT = "output limit exceeded (the kernel was stopped)"

#: exceptions that mean a sandbox limit was hit, in words a learner understands
_LIMIT_EXCEPTIONS = {
    "MemoryError": "memory limit exceeded",
    "BlockingIOError": "process limit exceeded (too many processes or threads)",
}


def not_run_exercise_raised(exercise: str, exception: str) -> str:
    """A check skipped because the exercise it needs is not done (or broke, or hit a limit)."""
    if exception in _LIMIT_EXCEPTIONS:
        return f"not run: {_LIMIT_EXCEPTIONS[exception]} in {exercise}"
    return f"not run: {exercise} raised {exception_name(exception)}"


def not_run_exercise_timed_out(exercise: str, seconds: float) -> str:
    return f"not run: {exercise} timed out after {_seconds(seconds)}"


def not_run_kernel_died(where: str, cause: str | None = None) -> str:
    """Checks after the cell whose kernel died; ``cause`` names the limit that ended it, if one did."""
    if cause:
        return f"not run: {cause} in {where}"
    return f"not run: the kernel died in {where} (os._exit or a crash)"


def not_run_after_timeout(where: str, seconds: float) -> str:
    """Checks after a cell that timed out and whose kernel could not be interrupted."""
    return f"not run: {where} timed out after {_seconds(seconds)} and the kernel had to be stopped"


def not_run_past_limit(seconds: float) -> str:
    """Checks not reached before the wall-clock limit for a whole notebook."""
    return f"not run: grading stopped at the {_seconds(seconds)} limit for a whole notebook"


def limit_exception(exception: str) -> str | None:
    """The limit an exception raised in learner code means ("memory limit exceeded"), or None."""
    return _LIMIT_EXCEPTIONS.get(exception)


def stopped_whole_notebook(seconds: float) -> str:
    """The Result message when grading ran past the time limit for a whole notebook."""
    return (
        f"stopped by a limit: grading a whole notebook may take {_seconds(seconds)} (all its cells together); "
        "the cells after that point did not run"
    )


def stopped_in_cell(where: str, cause: str, *, went_on: bool) -> str:
    """The Result message when a limit stopped one cell: which limit (``cause``), where, and what followed."""
    after = "the cells after it still ran" if went_on else "the cells after it did not run"
    return f"stopped by a limit in {where}: {cause}; {after}"


def not_run_grading_error() -> str:
    return "not run: grading error (the grader could not run the notebook; this is not your doing)"


def timed_out(seconds: float) -> str:
    """The check cell itself ran past the per-cell limit."""
    return f"timed out after {_seconds(seconds)} (the limit for one cell)"


def kernel_died_here(cause: str | None = None) -> str:
    if cause:
        return f"{cause} while running this check"
    return "the kernel died while running this check (os._exit or a crash)"


#: exceptions of the libraries notebooks use, quoted by name (a fixed list carries nothing learner-made)
_LIBRARY_EXCEPTIONS = frozenset(
    {
        "StdinNotImplementedError",
        "LinAlgError",
        "AxisError",
        "NotFittedError",
        "InvalidIndexError",
        "SettingWithCopyError",
        "IntCastingNaNError",
        "OutOfBoundsDatetime",
        "ParserError",
        "EmptyDataError",
    }
)


def exception_name(name: str) -> str:
    """An exception's class name as feedback may quote it.

    Python's own exceptions are named; any other class name is learner-controlled (learner code
    can create a class named after what it saw, e.g. a hidden check's source), so it is not quoted.
    """
    known = getattr(builtins, name, None)
    if name in _LIBRARY_EXCEPTIONS or (isinstance(known, type) and issubclass(known, BaseException)):
        return name
    return "an exception"


#: the difference recorded when a check's only failing were its criteria (grading.nbval_plugin)
CRITERIA_ONLY = "a criterion was not met"

#: why a visible check's details are withheld in graded feedback
WITHHELD = "details withheld: it ran after a hidden check; `grader check` shows them"


def raised(exception: str, last_line: str, *, hidden: bool, where: str | None = None, withheld: bool = False) -> str:
    """A check cell raised: the last traceback line, or only the exception type for hidden checks.

    ``withheld``: a visible check that ran after a hidden one. Learner code may have seen the
    hidden check's source by then and could put it into this check's message, so only the type
    is shown (the learner's own ``grader check`` shows the whole line).
    """
    if hidden or withheld:
        text = f"raised {exception_name(exception)}" + (f" in {where}" if where else "")
        return f"{text} ({WITHHELD})" if withheld and not hidden else text
    return _clip(last_line or exception)


def _bound(value: float) -> str:
    return f"{value:g}"


def criterion_missed(name: str, op: str, bound: float | None, cases: str, failed: int, total: int) -> str:
    """One criterion a check's cases missed: "macro-F1 below 0.5 on 1 of 2 held-out sets".

    Only what the exercise text states is named (the criterion, its public bound) and how many
    cases missed it: never a value the learner's code produced, never an input.
    """
    if op == "holds" or bound is None:
        what = f"{name}: false"
    else:
        what = f"{name} {'below' if op == 'at_least' else 'above'} {_bound(bound)}"
    return f"{what} on {failed} of {total} {cases}"


def output_differs(
    difference: str | None, *, hidden: bool, withheld: bool = False, criteria: Sequence[dict[str, Any]] = ()
) -> str:
    """The check ran but reported something else: a short diff for visible checks only.

    ``criteria``: the criteria it missed (``checkvalues.Criterion`` as dicts), named for any check.
    """
    missed = "; ".join(
        criterion_missed(c["name"], c["op"], c.get("bound"), c["cases"], c["failed"], c["total"]) for c in criteria
    )
    if missed and difference == CRITERIA_ONLY:
        return _clip(missed)
    if withheld and not hidden:
        text = f"output differs from the reference ({WITHHELD})"
    elif hidden or not difference:
        text = "output differs from the reference"
    else:
        text = "output differs from the reference: " + _clip(difference)
    return f"{text}; {_clip(missed)}" if missed else text


def grading_error(detail: str) -> str:
    """The Result message when the grader itself failed (``detail`` holds no learner-visible secrets)."""
    return f"grading error: {detail}; try again, and tell your instructor if it persists"


def missing_exercises(labels: Sequence[str]) -> str:
    """The Result message when some exercise cells were not found in the submission."""
    return (
        f"{', '.join(labels)} not found in the notebook (matched by cell id); graded as not done — "
        "keep the exercise cells of the notebook you downloaded, and write your code in them"
    )


# --- rendering ---------------------------------------------------------------------------


def points_text(value: float) -> str:
    """Points as people read them: rounded to 2 decimals, trailing zeros dropped (``2``, ``2.5``, ``2.67``).

    For display only; the JSON result keeps the exact numbers.
    """
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _headline(result: Result) -> str:
    if result.status == "invalid":
        return f"{result.submission}: not graded (invalid submission)"
    if result.status == "error":
        return f"{result.submission}: not graded (grading error)"
    return f"{result.submission}: {points_text(result.score)}/{points_text(result.max_score)} points"


def render_text(result: Result) -> str:
    """What a learner sees in a terminal: a headline, then one line per check."""
    lines = [_headline(result)]
    if result.status != "invalid" and result.isolation == "none":
        lines.append(f"  {UNSANDBOXED}")
    if result.status == "graded" and result.wanted_device == "gpu":  # where the device matters, say which
        lines.append(f"  graded on {result.device}")
    if result.device_note:
        lines.append(f"  {result.device_note}")
    if result.message:
        lines.append(f"  {result.message}")
    width = min(60, max((len(check.title) for check in result.checks), default=0))
    for check in result.checks:
        score = f"{points_text(check.points)}/{points_text(check.max_points)}"
        lines.append(f"  {_LABELS[check.status]:<7} {check.title:<{width}}  {score}".rstrip())
        if check.message and check.status != "pass":
            lines.append(f"          {check.message}")
    lines.extend(f"  MANUAL  {manual_note(answer)}" for answer in result.manual if result.status == "graded")
    return "\n".join(lines)


def manual_note(answer: ManualAnswer) -> str:
    """``Answer 20.7: Why the small scorer ships (4 points): graded by an instructor``"""
    return f"{answer.label} ({points_text(answer.points)} points): graded by an instructor, not counted here"


def render_json(result: Result) -> str:
    """One line of JSON (``grader grade --json`` prints one per submission)."""
    return json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":"))


_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:2rem}td,th{text-align:left;padding:.3rem .6rem;
border-bottom:1px solid #ddd;vertical-align:top}.pass{color:#176117}.fail{color:#a11}.not-run{color:#8a5a00}
.msg{font-family:ui-monospace,monospace;font-size:.9em;white-space:pre-wrap}.meta{color:#666}
"""


def _html_result(result: Result) -> str:
    e = html.escape
    parts = [f"<section><h2>{e(_headline(result))}</h2>"]
    meta = [
        f"exercise {result.exercise}" if result.exercise else "",
        f"{result.duration_s:.1f} s",
        f"device {result.device}",
    ]
    parts.append(f'<p class="meta">{e(" · ".join(m for m in meta if m))}</p>')
    if result.status != "invalid" and result.isolation == "none":
        parts.append(f'<p class="fail">{e(UNSANDBOXED)}</p>')
    if result.device_note:
        parts.append(f'<p class="not-run">{e(result.device_note)}</p>')
    if result.message:
        parts.append(f'<p class="msg">{e(result.message)}</p>')
    if result.checks:
        parts.append("<table><tr><th>verdict</th><th>check</th><th>points</th><th>message</th></tr>")
        for check in result.checks:
            parts.append(
                f'<tr><td class="{e(check.status)}">{e(_LABELS[check.status])}</td><td>{e(check.title)}</td>'
                f"<td>{e(points_text(check.points))}/{e(points_text(check.max_points))}</td>"
                f'<td class="msg">{e(check.message if check.status != "pass" else "")}</td></tr>'
            )
        parts.append("</table>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(results: Iterable[Result]) -> str:
    """A self-contained feedback page (no scripts, no external resources; all text escaped)."""
    body = "\n".join(_html_result(result) for result in results)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Grading feedback</title>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<style>{_PAGE_STYLE}</style></head>\n<body><h1>Grading feedback</h1>\n{body}\n</body></html>\n"
    )


def exit_code(results: Iterable[Result]) -> int:
    """9 if any grading error, else 4 if any invalid submission, else 1 if points were lost, else 0."""
    statuses = [(result.status, result.full_marks) for result in results]
    if any(status == "error" for status, _ in statuses):
        return EXIT_GRADING_ERROR
    if any(status == "invalid" for status, _ in statuses):
        return EXIT_INVALID
    if any(not full for _, full in statuses):
        return EXIT_LOST_POINTS
    return EXIT_FULL_MARKS

"""Feedback out of the grader: a self-contained HTML report, and Gradescope's ``results.json``.

Both read a Result's JSON object (:meth:`~grader.grading.results.Result.to_dict`, which is what
the service stores), so ``grader grade`` and the service render the same thing.

- :func:`render_report`: the learner's notebook with each check's verdict beside its cell,
  rendered by nbconvert's HTMLExporter with our template (``templates/report``). Hidden checks
  are named in the summary, never shown. Everything the learner made that reaches the page as
  HTML (Markdown cells, HTML and Markdown outputs) goes through :func:`clean_html` (nh3):
  no scripts, event handlers, frames, styles or external loads; images only as ``data:`` URIs.
  The page itself has no scripts and a Content-Security-Policy that would block them anyway.
- :func:`render_cells`: some of a learner's cells (a manually graded answer) as an HTML fragment for the
  instructor's marking page, made inert the same way by the same exporter and template.
- the report and the Gradescope JSON show manually graded answers (``result["manual_lines"]``, which the
  service adds: :func:`grader.service.totals.manual_lines`): the rubric lines awarded, the points, the
  instructor's comment (escaped), or that the answer waits for an instructor.
- :func:`gradescope_results`: the object Gradescope's autograder reads from
  ``/autograder/results/results.json``: ``score``, and one ``tests`` entry per check with
  ``name``, ``score``, ``max_score``, ``status``, ``output`` and ``visibility`` (hidden checks
  ``after_published``; their output is the same withheld message feedback shows).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
import nh3
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from grader.errors import GraderError
from grader.format.cells import graded_cells
from grader.format.notebooks import parse_notebook
from grader.grading.results import UNSANDBOXED, points_text

TEMPLATES = Path(__file__).parent / "templates"
#: the cell metadata key the template reads a check's verdict from (set on a copy, never trusted from the learner)
_VERDICT_KEY = "grader_report_verdict"
_LABELS = {"pass": "PASS", "fail": "FAIL", "not-run": "NOT RUN"}
_IMAGE_DATA_URI = re.compile(r"^data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
_SAFE_LINK = re.compile(r"^(?:https?:|mailto:|#)", re.IGNORECASE)
_RASTER = ("image/png", "image/jpeg", "image/gif")
#: output types that only ever run code in a browser: dropped
_ACTIVE = ("application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json")


def _attribute(tag: str, name: str, value: str) -> str | None:
    if name == "src":
        return value if tag == "img" and _IMAGE_DATA_URI.match(value) else None
    if name == "href":
        return value if _SAFE_LINK.match(value.strip()) else None
    return value


def clean_html(html: str | bytes) -> str:
    """Learner-made HTML, inert: nh3's safe tags, class attributes, images only from ``data:`` URIs."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html)
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = {"class", "title"}
    return nh3.clean(
        text, attributes=attributes, attribute_filter=_attribute, url_schemes={"http", "https", "mailto", "data"}
    )


def _base64(data: object) -> bool:
    try:
        base64.b64decode("".join(str(data).split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _inert_outputs(cell: NotebookNode) -> None:
    """Drop what would run or load from elsewhere: scripts, widgets, images given as files, broken base64."""
    kept = []
    for output in cell.get("outputs", []):
        data = output.get("data")
        if isinstance(data, dict):
            for mime in list(data):
                if mime in _ACTIVE or (mime in _RASTER and not _base64(data[mime])):
                    del data[mime]
            if not data:
                continue
        metadata = output.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("filenames", None)
        kept.append(output)
    if "outputs" in cell:
        cell.outputs = kept


def _check_view(check: Mapping[str, Any]) -> dict[str, str]:
    hidden = bool(check.get("hidden"))
    status = str(check.get("status", "not-run"))
    return {
        "id": str(check.get("id", "")),
        "status": status,
        "label": _LABELS.get(status, status.upper()),
        "title": f"Check {check.get('id', '')}{' (hidden)' if hidden else ''}: {check.get('name', '')}",
        "points": f"{points_text(check.get('points', 0))}/{points_text(check.get('max_points', 0))}",
        "message": str(check.get("message") or "") if status != "pass" else "",
    }


def headline(result: Mapping[str, Any]) -> str:
    status = result.get("status")
    if status == "invalid":
        return "not graded (invalid submission)"
    if status == "error":
        return "not graded (grading error)"
    return f"{points_text(result.get('score') or 0)}/{points_text(result.get('max_score') or 0)} points"


def _inert_copy(cells: list[NotebookNode]) -> NotebookNode:
    """A notebook of copies of ``cells``, with nothing a learner set that the template trusts, outputs inert."""
    nb = nbformat.v4.new_notebook()
    nb.cells = copy.deepcopy(cells)
    for cell in nb.cells:
        cell.setdefault("metadata", {}).pop(_VERDICT_KEY, None)
        _inert_outputs(cell)
    return nb


def _export(nb: NotebookNode, report: Mapping[str, Any]) -> str:
    """The report template on ``nb`` (``report["fragment"]``: the cells only, no page around them)."""
    exporter = HTMLExporter(
        template_name="report",
        extra_template_basedirs=[str(TEMPLATES)],
        sanitize_html=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_filter("clean_html", clean_html)
    body, _ = exporter.from_notebook_node(nb, resources={"report": report})
    return body


def render_cells(cells: list[NotebookNode]) -> str:
    """Some of a learner's cells (Markdown, code, outputs, plots as ``data:`` images) as an inert HTML fragment."""
    return _export(_inert_copy(cells), {"fragment": True})


def _manual_view(line: Mapping[str, Any]) -> dict[str, Any]:
    graded = bool(line.get("graded"))
    points = f"{points_text(line.get('points') or 0)}/{points_text(line.get('max_points') or 0)}"
    return {
        "label": str(line.get("label", "")),
        "graded": graded,
        "full": graded and float(line.get("points") or 0) >= float(line.get("max_points") or 0),
        "points": points if graded else f"?/{points_text(line.get('max_points') or 0)}",
        "comment": str(line.get("comment") or ""),
        "rubric": [
            {
                "mark": "✓" if c.get("awarded") else ("✗" if graded else "·"),
                "text": f"{c.get('description', '')} ({points_text(c.get('points') or 0)})",
            }
            for c in line.get("rubric") or []
        ],
    }


def render_report(notebook: NotebookNode, result: Mapping[str, Any], *, title: str | None = None) -> str:
    """The learner's notebook as one offline HTML page, each visible check's verdict beside its cell."""
    nb = _inert_copy(notebook.cells)
    checks = [_check_view(c) for c in result.get("checks", [])]
    by_id = {c["id"]: c for c in checks}
    placed: set[str] = set()
    for graded in graded_cells(nb, strict=False):
        view = by_id.get(graded.check_id)
        if view is not None and not graded.hidden and graded.check_id not in placed:
            nb.cells[graded.index].metadata[_VERDICT_KEY] = view
            placed.add(graded.check_id)
    notes = [str(result[k]) for k in ("message", "device_note") if result.get(k)]
    if result.get("provisional_note"):  # the service's manual answers (grader.service.totals)
        notes.append(f"The score is {result['provisional_note']}: an instructor has not graded every answer yet.")
    deadline = result.get("deadline")
    if isinstance(deadline, Mapping) and deadline.get("late"):  # the service's lateness (grader.service.deadlines)
        notes.append(f"Late: due {deadline.get('due')}; {deadline.get('note')} points count.")
    if result.get("status") != "invalid" and result.get("isolation") == "none":
        notes.insert(0, UNSANDBOXED)
    exercise = result.get("exercise") or ""
    report = {
        "title": title or f"Feedback: {exercise or result.get('submission', 'notebook')}",
        "headline": headline(result),
        "notes": notes,
        "checks": checks,
        "manual": [_manual_view(line) for line in result.get("manual_lines") or []],
    }
    return _export(nb, report)


def learner_notebook(data: bytes, *, name: str) -> NotebookNode:
    """The submitted notebook, or an empty one when it is not a notebook (the report's summary says why)."""
    try:
        return parse_notebook(data, name=name)
    except GraderError:
        return nbformat.v4.new_notebook()


def write_feedback(notebook: Path, result: Mapping[str, Any], *, gradescope: str | None, html: str | None) -> None:
    """``grader check/grade --gradescope FILE --report FILE``: one notebook's results.json and HTML report."""
    if gradescope:
        Path(gradescope).write_text(json.dumps(gradescope_results(result), indent=2) + "\n", encoding="utf-8")
    if html:
        page = render_report(learner_notebook(notebook.read_bytes(), name=notebook.name), result)
        Path(html).write_text(page, encoding="utf-8")


def gradescope_results(result: Mapping[str, Any]) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one graded notebook (hidden checks visible after publishing)."""
    tests = []
    for check in result.get("checks", []):
        view = _check_view(check)
        tests.append(
            {
                "name": view["title"],
                "number": view["id"],
                "score": float(check.get("points", 0)),
                "max_score": float(check.get("max_points", 0)),
                "status": "passed" if check.get("status") == "pass" else "failed",
                "output": view["message"],
                "visibility": "after_published" if check.get("hidden") else "visible",
            }
        )
    for line in result.get("manual_lines") or []:
        if line.get("graded"):  # an answer waiting for an instructor is not a test yet
            manual = _manual_view(line)
            lines = [f"{r['mark']} {r['text']}" for r in manual["rubric"]]
            tests.append(
                {
                    "name": manual["label"],
                    "number": str(line.get("id", "")),
                    "score": float(line.get("points") or 0.0),
                    "max_score": float(line.get("max_points") or 0.0),
                    "status": "passed" if manual["full"] else "failed",
                    "output": "\n".join([*lines, manual["comment"]]).strip(),
                    "visibility": "visible",
                }
            )
    output = "\n".join(str(result[k]) for k in ("message", "device_note") if result.get(k))
    return {
        "score": float(result.get("score") or 0.0) if result.get("status") == "graded" else 0.0,
        "output": f"{headline(result)}\n{output}".strip(),
        "execution_time": round(float(result.get("duration_s") or 0.0), 3),
        "tests": tests,
    }

"""When and where each lesson was last verified, and the recorded GPU runs the site shows.

Two kinds of record say where a lesson ran:

* **The book's own executions.** Before papermill runs a lesson, :func:`with_probe` appends a
  cell (tagged ``device-probe``) that prints the device the lesson's kernel used: the
  fingerprint of :func:`mlcourse.device.device_fingerprint` when the lesson imported torch
  (with the NVIDIA driver on CUDA), else the CPU. :func:`take_probe` removes that cell from the
  executed copy, so executed copies stay byte-identical between runs, and the record
  (date, profile, device) goes into the lesson's manifest entry under ``"verified"``. A cached
  lesson keeps its record, so staging stays deterministic: the date changes only when the
  lesson really ran again.
* **Recorded runs**, committed under ``bench/results/`` by ``python -m bench gpu``: a JSON file
  ``gpu-<date>-<device>.json`` (``"kind": "gpu-check"``) with the device fingerprint, and the
  executed notebooks in a folder beside it. Only runs on CUDA, at profile ``full``, count.

At staging time (:func:`decorated_sources`), each lesson's notebook page and chapter page get a
note under their title, "Last verified: CPU (2 cores), profile smoke, 2026-12-05 · GPU: not yet
verified" (a MyST admonition, which Jupyter Book 1 renders on both kinds of page). When a
recorded GPU run of the lesson's *current* cells exists, the notebook page shows that run's
outputs instead of this machine's, and the note names its device. A run of an earlier version of
the lesson is named, but its outputs are not shown.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbformat import NotebookNode, v4

from grader.format import markers
from grader.format.notebooks import notebook_text, read_notebook
from grader.settings import Settings

__all__ = [
    "RECORDED_RUNS_DIR",
    "RUN_KIND",
    "RecordedRun",
    "decorated_sources",
    "describe_device",
    "execution_record",
    "recorded_runs",
    "same_cells",
    "take_probe",
    "verified_note",
    "with_probe",
]

#: where recorded runs are committed, relative to the course root, and how their files are named
RECORDED_RUNS_DIR = "bench/results"
RUN_GLOB = "gpu-*.json"
#: the ``kind`` of a recorded-run JSON file (written by ``python -m bench gpu``)
RUN_KIND = "gpu-check"
#: the profile a recorded run must have executed a lesson at for the site to show it
RECORDED_PROFILE = "full"
#: the line the probe cell prints, before its JSON record
PROBE_PREFIX = "MLCOURSE-VERIFIED-ON "
#: where the decorated copies of staged pages are written (under the build folder)
DECORATED_DIR = "site-decorated"
#: cells that never count when a recorded run is compared with the lesson (papermill's, ours,
#: and the Colab setup cell, which `grader assign` rewrites when the repository URL changes)
_IGNORED_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag", markers.TAG_DEVICE_PROBE})
_IGNORED_IDS = frozenset({markers.COLAB_SETUP_ID, markers.VERIFIED_ID})

_PROBE_SOURCE = f"""\
# grader: which device this lesson ran on (removed from the executed copy)
def _grader_device_probe():
    import json, os, subprocess, sys
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record = {{"device": "cpu", "cpu_count": cores}}
    if "torch" in sys.modules:
        try:
            from mlcourse.device import device_fingerprint
            record = dict(device_fingerprint())
        except Exception as exc:
            record = {{"device": "unknown", "cpu_count": cores, "probe_error": repr(exc)[:200]}}
    if str(record.get("device", "")).startswith("cuda"):
        try:
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", "-i", "0"]
            out = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout
            record["driver"] = out.strip().splitlines()[0].strip() or None
        except Exception:
            record["driver"] = None
    print({PROBE_PREFIX!r} + json.dumps(record, sort_keys=True))
_grader_device_probe()
del _grader_device_probe
"""


# --- the book's own executions -----------------------------------------------------------------


def with_probe(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` with the device probe as its last cell."""
    probed = copy.deepcopy(nb)
    cell = v4.new_code_cell(_PROBE_SOURCE)
    cell.metadata["tags"] = [markers.TAG_DEVICE_PROBE, markers.TAG_REMOVE_CELL]
    if (probed.get("nbformat", 4), probed.get("nbformat_minor", 0)) >= (4, 5):
        cell["id"] = markers.TAG_DEVICE_PROBE
    else:
        cell.pop("id", None)
    probed.cells.append(cell)
    return probed


def _tags(cell: Mapping[str, Any]) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def take_probe(nb: NotebookNode) -> dict[str, Any]:
    """Remove the probe cell(s) from an executed notebook; the device record they printed."""
    record: dict[str, Any] = {"device": "unknown"}
    kept = []
    for cell in nb.cells:
        if markers.TAG_DEVICE_PROBE not in _tags(cell):
            kept.append(cell)
            continue
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                if line.startswith(PROBE_PREFIX):
                    try:
                        found = json.loads(line.removeprefix(PROBE_PREFIX))
                    except ValueError:
                        continue
                    if isinstance(found, dict):
                        record = found
    nb.cells = kept
    return record


def execution_record(device: Mapping[str, Any], *, profile: str, date: datetime.date | None = None) -> dict[str, Any]:
    """What the manifest keeps about one successful execution: date, profile, device."""
    return {"date": (date or datetime.date.today()).isoformat(), "profile": profile, "device": dict(device)}


# --- recorded runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRun:
    """One lesson as a recorded GPU run executed it."""

    lesson: str
    date: str
    profile: str
    #: the run's device fingerprint (name, capability, driver, CUDA, torch, …)
    fingerprint: dict[str, Any]
    #: the executed notebook
    notebook: Path
    #: the JSON file that records the run
    record: Path


def recorded_runs(root: Path) -> dict[str, list[RecordedRun]]:
    """Every recorded CUDA run of each lesson at profile ``full``, newest first.

    Files that are not recorded runs, runs on other devices, lessons that failed and
    notebooks that are missing are skipped: only what was really executed on a GPU counts.
    """
    found: dict[str, list[RecordedRun]] = {}
    for path in sorted((root / RECORDED_RUNS_DIR).glob(RUN_GLOB)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("kind") != RUN_KIND:
            continue
        fingerprint = data.get("fingerprint")
        lessons = data.get("lessons")
        if not isinstance(fingerprint, dict) or not isinstance(lessons, dict):
            continue
        if not str(fingerprint.get("device", "")).startswith("cuda"):
            continue
        for name, entry in lessons.items():
            if not isinstance(entry, dict) or entry.get("status") != "ok":
                continue
            if entry.get("profile") != RECORDED_PROFILE or not isinstance(entry.get("notebook"), str):
                continue
            notebook = path.parent / entry["notebook"]
            if notebook.is_file():
                found.setdefault(name, []).append(
                    RecordedRun(name, str(data.get("date", "")), RECORDED_PROFILE, fingerprint, notebook, path)
                )
    for runs in found.values():
        runs.sort(key=lambda run: (run.date, run.record.name), reverse=True)
    return found


def _cells(nb: NotebookNode) -> list[tuple[str, str]]:
    return [
        (cell.cell_type, cell.source)
        for cell in nb.cells
        if not (_tags(cell) & _IGNORED_TAGS) and cell.get("id") not in _IGNORED_IDS
    ]


def same_cells(executed: NotebookNode, source: NotebookNode) -> bool:
    """Was ``executed`` produced from these cells (type and source), papermill's own cells aside?"""
    return _cells(executed) == _cells(source)


# --- the note on the pages ---------------------------------------------------------------------


def describe_device(device: Mapping[str, Any] | None) -> str:
    """``NVIDIA H100 80GB HBM3 (cc 9.0, driver 550.54.15, CUDA 12.4, torch 2.5.1)``, ``CPU (2 cores)``…"""
    if not device:
        return "a device that was not recorded"
    kind = str(device.get("device", "unknown")).split(":", 1)[0]
    if kind == "cuda":
        details = [
            f"{label} {device[key]}"
            for key, label in (("capability", "cc"), ("driver", "driver"), ("cuda", "CUDA"), ("torch", "torch"))
            if device.get(key)
        ]
        name = str(device.get("name") or "a CUDA GPU")
        return f"{name} ({', '.join(details)})" if details else name
    if kind == "cpu":
        cores = device.get("cpu_count")
        return f"CPU ({cores} cores)" if cores else "CPU"
    if kind == "mps":
        return "Apple GPU (MPS" + (f", torch {device['torch']})" if device.get("torch") else ")")
    return "a device that was not recorded"


def _is_cuda(device: Mapping[str, Any] | None) -> bool:
    return bool(device) and str(device.get("device", "")).startswith("cuda")  # type: ignore[union-attr]


def verified_note(
    own: Mapping[str, Any] | None, gpu: RecordedRun | None, *, gpu_current: bool, page: str = "notebook"
) -> str:
    """The note's text: where this build executed the lesson, and where a GPU last ran it.

    Args:
        own: the lesson's execution record from the manifest (None: not recorded).
        gpu: the newest recorded GPU run of the lesson, if any.
        gpu_current: whether that run executed the lesson's current cells.
        page: ``"notebook"`` (the page that shows the outputs) or ``"chapter"``.
    """
    if own:
        first = (
            f"{describe_device(own.get('device'))}, profile `{own.get('profile', '?')}`, "
            f"{own.get('date', 'date not recorded')}"
        )
    else:
        first = "this build did not record where it ran"
    if gpu is not None:
        where = f"**GPU:** {describe_device(gpu.fingerprint)}, profile `{gpu.profile}`, {gpu.date}"
        here = "this page shows" if page == "notebook" else "the lesson notebook shows"
        if gpu_current:
            shown = f"{here} that run's outputs"
        else:
            shown = f"that run was of an earlier version of this lesson, so {here} this build's outputs"
        second = f"{where}; {shown}."
    elif _is_cuda(own.get("device") if own else None):
        second = ""
    else:
        second = "**GPU:** not yet verified."
    return f"{first} · {second}" if second else f"{first}."


#: the note's title on the page
NOTE_TITLE = "Last verified"


def _note_markdown(text: str) -> str:
    return f"```{{admonition}} {NOTE_TITLE}\n:class: note\n{text}\n```"


def _note_cell(nb: NotebookNode, text: str) -> NotebookNode:
    cell = v4.new_markdown_cell(_note_markdown(text))
    if (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5):
        cell["id"] = markers.VERIFIED_ID
    else:
        cell.pop("id", None)
    return cell


def _title_index(nb: NotebookNode) -> int:
    """Where the note goes: after the first markdown cell with a ``# `` title, else first."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and any(line.startswith("# ") for line in cell.source.splitlines()):
            return index + 1
    return 0


def _decorate_chapter(text: str, note: str) -> str:
    lines = text.splitlines(keepends=True)
    start = 0
    if lines and lines[0].strip() == "---":  # front matter
        start = next((i + 1 for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
    at = next((i + 1 for i in range(start, len(lines)) if lines[i].startswith("# ")), start)
    block = ["\n", _note_markdown(note) + "\n", "\n"]
    return "".join(lines[:at] + block + lines[at:])


def _write_if_changed(path: Path, data: bytes) -> Path:
    try:
        if path.read_bytes() == data:
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def decorated_sources(
    settings: Settings,
    name: str,
    *,
    source: Path,
    executed: Path,
    own: Mapping[str, Any] | None,
    recorded: Mapping[str, list[RecordedRun]],
) -> dict[str, Path]:
    """The staged lesson page (and chapter page, when ``book/<name>.md`` exists), with the note.

    Returns staged path → decorated copy under ``<build>/site-decorated/``; a copy is
    rewritten only when its bytes change.
    """
    lesson_nb = read_notebook(source)
    gpu = next(iter(recorded.get(name, [])), None)
    current = next((run for run in recorded.get(name, []) if same_cells(read_notebook(run.notebook), lesson_nb)), None)
    shown = current or gpu
    page_nb = read_notebook(current.notebook if current is not None else executed)
    page_nb.cells = [cell for cell in page_nb.cells if cell.get("id") != markers.VERIFIED_ID]
    note = verified_note(own, shown, gpu_current=current is not None)
    page_nb.cells.insert(_title_index(page_nb), _note_cell(page_nb, note))
    folder = settings.build_dir / DECORATED_DIR
    staged = {
        f"{settings.notebooks_dir.name}/{name}.ipynb": _write_if_changed(
            folder / settings.notebooks_dir.name / f"{name}.ipynb", notebook_text(page_nb).encode("utf-8")
        )
    }
    chapter = settings.root / "book" / f"{name}.md"
    if chapter.is_file():
        chapter_note = verified_note(own, shown, gpu_current=current is not None, page="chapter")
        text = _decorate_chapter(chapter.read_text(encoding="utf-8"), chapter_note)
        staged[f"book/{name}.md"] = _write_if_changed(folder / "book" / f"{name}.md", text.encode("utf-8"))
    return staged

"""The lesson pipeline: execute ``notebooks/*.ipynb`` with papermill, cached by content hash.

Each lesson runs in its own papermill subprocess (:mod:`grader.book.papermill_ipc`), in a session of its own, with
the ``profile`` parameter injected into the cell tagged ``parameters``. The executed copy goes
to ``<build>/executed/<profile>/<name>.ipynb``; the source tree is never written to.

A lesson is *fresh* (skipped) when the manifest next to the executed copies records the same
cache key and the executed copy on disk still has the recorded hash. The key covers what can
change a lesson's outputs::

    cells (type, tags, source) + course package version + mlcourse source files
        + requirements.txt + profile + this pipeline's own format version

The manifest is updated only after a lesson succeeded; a failed or timed-out run removes the
lesson's entry and leaves its partial output under ``failed/`` for inspection, never in place of
a valid executed copy. Each entry also records where the lesson ran (date, profile, the device
its kernel used, read by a probe cell that is removed from the executed copy): see
:mod:`grader.book.verified`.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nbformat
from nbformat import NotebookNode
from tqdm import tqdm

from grader.book import verified
from grader.book.cache import KERNEL_NAME, MANIFEST_NAME, Manifest, cache_key, environment_fingerprint, sha256_file
from grader.errors import AuthoringError, LessonFailed, UsageError
from grader.format import markers
from grader.format.cells import describe_cell
from grader.format.notebooks import read_notebook, write_notebook
from grader.processes import kill_tree
from grader.settings import Settings

__all__ = ["MANIFEST_NAME", "LessonRun", "find_lessons", "render_report", "run_lessons"]

FAILED_DIR = "failed"
LOG_DIR = "logs"
#: tags papermill adds to the notebooks it writes
_PAPERMILL_INJECTED_TAG = "injected-parameters"
_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"

Status = Literal["executed", "cached"]


@dataclass(frozen=True)
class LessonRun:
    """What happened to one lesson notebook."""

    name: str
    source: Path
    executed: Path
    profile: str
    status: Status
    #: wall-clock seconds of this run (0.0 for a cache hit)
    seconds: float
    key: str
    #: where and when the executed copy was produced: date, profile, device (None: not recorded)
    verified: dict[str, Any] | None = None

    @property
    def device(self) -> str:
        """The device the lesson's kernel ran on, in words (``CPU (2 cores)``, the GPU's name…)."""
        return verified.describe_device((self.verified or {}).get("device"))


# --- discovery and cache keys -----------------------------------------------------------------


def find_lessons(settings: Settings) -> dict[str, Path]:
    """Every lesson notebook, by id (the file stem), in name order."""
    folder = settings.notebooks_dir
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")}


def _select(settings: Settings, names: Sequence[str] | None) -> dict[str, Path]:
    known = find_lessons(settings)
    if not names:
        return known
    chosen: dict[str, Path] = {}
    for raw in names:
        name = Path(raw).name.removesuffix(".ipynb")
        if name not in known:
            listing = ", ".join(known) or "none: notebooks/ holds no .ipynb file"
            raise UsageError(f"unknown lesson {raw!r}; known lessons: {listing}")
        chosen[name] = known[name]
    return chosen


def _check_parameters_cell(nb: NotebookNode, where: str) -> None:
    tagged = [c for c in nb.cells if markers.TAG_PARAMETERS in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise AuthoringError(
            f"{where}: no cell is tagged {markers.TAG_PARAMETERS!r}; tag the code cell that sets "
            f'`{markers.PROFILE_PARAMETER} = "{markers.DEFAULT_PROFILE}"` so papermill can inject the profile'
        )
    if len(tagged) > 1 or tagged[0].cell_type != "code":
        raise AuthoringError(
            f"{where}: the {markers.TAG_PARAMETERS!r} tag must be on exactly one code cell "
            f"(found {len(tagged)} tagged cell(s)); papermill injects the profile after it"
        )


# --- running one lesson ------------------------------------------------------------------------


def _relative(settings: Settings, path: Path) -> str:
    try:
        return path.resolve().relative_to(settings.root).as_posix()
    except ValueError:
        return str(path)


def _source_cells(executed: NotebookNode) -> list[NotebookNode]:
    """The executed notebook's cells that correspond, in order, to the source notebook's."""
    return [
        cell
        for cell in executed.cells
        if not {_PAPERMILL_INJECTED_TAG, _PAPERMILL_ERROR_TAG, markers.TAG_DEVICE_PROBE}
        & set(cell.get("metadata", {}).get("tags", []))
    ]


def _diagnose(partial: Path, log_text: str) -> str:
    """What went wrong, read from papermill's partially executed output notebook."""
    try:
        executed = nbformat.read(partial, as_version=4)
    except Exception:
        executed = None
    cells = _source_cells(executed) if executed is not None else []
    for index, cell in enumerate(cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if not errors and status != "failed":
            continue
        where = describe_cell(cells, index, show="line")
        if "CellTimeoutError" in log_text:
            return f"{where} did not finish within the per-cell limit"
        if errors:
            ename, evalue = errors[-1].get("ename", "Error"), str(errors[-1].get("evalue", ""))
            evalue = evalue.strip().splitlines()[0] if evalue.strip() else ""
            return f"{where} raised {ename}: {evalue}" if evalue else f"{where} raised {ename}"
        return f"{where} failed"
    tail = [line for line in log_text.strip().splitlines() if line.strip()][-3:]
    return "papermill stopped before any cell failed: " + (" | ".join(tail) if tail else "no output")


def _running_cell(partial: Path) -> str | None:
    try:
        executed = nbformat.read(partial, as_version=4)
    except Exception:
        return None
    cells = _source_cells(executed)
    for index, cell in enumerate(cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return describe_cell(cells, index, show="line")
    return None


def _normalise(nb: NotebookNode, *, profile: str) -> NotebookNode:
    """Drop what changes between identical runs (timestamps, durations, temp paths, random ids)."""
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        tags = cell.metadata.get("tags", [])
        if _PAPERMILL_INJECTED_TAG in tags:
            cell["id"] = f"{_PAPERMILL_INJECTED_TAG}-{index}"
            # the site shows the notebook's own parameters cell; the injected copy would repeat it
            if markers.TAG_REMOVE_CELL not in tags:
                cell.metadata["tags"] = [*tags, markers.TAG_REMOVE_CELL]
    nb.metadata["papermill"] = {"parameters": {markers.PROFILE_PARAMETER: profile}}
    return nb


def _papermill_command(settings: Settings, source: Path, output: Path, profile: str, *, cwd: Path) -> list[str]:
    """papermill on ``source`` (a probed copy of the lesson), run in ``cwd`` (the lesson's own folder), its
    kernel on the ipc transport (:mod:`grader.book.papermill_ipc`: no TCP port to race other programs for)."""
    return [
        sys.executable,
        "-m",
        "grader.book.papermill_ipc",
        str(source),
        str(output),
        "--parameter",
        markers.PROFILE_PARAMETER,
        profile,
        "--kernel",
        KERNEL_NAME,
        "--language",
        "python",
        "--execution-timeout",
        str(max(1, math.ceil(settings.cell_timeout_s))),
        "--cwd",
        str(cwd),
    ]


def _execute(
    settings: Settings, name: str, source: Path, profile: str
) -> tuple[NotebookNode | None, dict[str, Any], str | None]:
    """Run papermill on one lesson; the normalised executed notebook and its device, or why it failed."""
    folder = settings.executed_dir / profile
    (folder / LOG_DIR).mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.running.ipynb"
    probed = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.input.ipynb"
    write_notebook(verified.with_probe(read_notebook(source)), probed)
    log_path = folder / LOG_DIR / f"{name}.log"
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _papermill_command(settings, probed, partial, profile, cwd=source.parent),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=settings.lesson_timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc)
        except BaseException:
            kill_tree(proc)
            partial.unlink(missing_ok=True)
            raise
        finally:
            probed.unlink(missing_ok=True)
    if proc.returncode == 0 and not timed_out:
        nb = nbformat.read(partial, as_version=4)
        partial.unlink(missing_ok=True)
        device = verified.take_probe(nb)
        return _normalise(nb, profile=profile), device, None
    return None, {}, _failure(settings, name, source, profile, partial, log_path, timed_out=timed_out)


def _failure(
    settings: Settings, name: str, source: Path, profile: str, partial: Path, log_path: Path, *, timed_out: bool
) -> str:
    """Why a lesson failed, naming the cell; its partial output is kept under ``failed/``."""
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    where = _relative(settings, source)
    kept = settings.executed_dir / profile / FAILED_DIR / f"{name}.ipynb"
    if partial.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial.replace(kept)
    if timed_out:
        running = _running_cell(kept) if kept.exists() else None
        message = (
            f"{where} (profile {profile}) did not finish within the lesson limit of {settings.lesson_timeout_s:g} s "
            f"({markers.ENV_PREFIX}LESSON_TIMEOUT_S){'; it was running ' + running if running else ''}; "
            "papermill and its kernel were stopped"
        )
    else:
        message = f"{where} (profile {profile}): {_diagnose(kept, log_text)}"
        if "CellTimeoutError" in log_text:
            message += f" of {settings.cell_timeout_s:g} s ({markers.ENV_PREFIX}CELL_TIMEOUT_S)"
    details = [f"log: {_relative(settings, log_path)}"]
    if kept.exists():
        details.insert(0, f"partial output: {_relative(settings, kept)}")
    return message + "\n  " + "; ".join(details)


# --- the public entry points -------------------------------------------------------------------


def _cache_keys(settings: Settings, selected: dict[str, Path], profile: str) -> dict[str, str]:
    """Each selected lesson's cache key (reading it also checks its ``parameters`` cell)."""
    environment = environment_fingerprint(settings)
    keys: dict[str, str] = {}
    for name, source in selected.items():
        nb = read_notebook(source)
        _check_parameters_cell(nb, _relative(settings, source))
        keys[name] = cache_key(nb, profile=profile, environment=environment)
    return keys


class _Batch:
    """The stale lessons of one ``run_lessons`` call, executed one by one or in threads, with a progress bar."""

    def __init__(
        self, settings: Settings, selected: dict[str, Path], keys: dict[str, str], profile: str, manifest: Manifest
    ) -> None:
        self.settings, self.selected, self.keys, self.profile = settings, selected, keys, profile
        self.manifest = manifest
        self.folder = settings.executed_dir / profile
        self.runs: dict[str, LessonRun] = {}
        self.failures: dict[str, str] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._bar: tqdm[Any] | None = None

    def run(self, stale: list[str]) -> None:
        jobs = max(1, min(self.settings.lesson_jobs, len(stale) or 1))
        with tqdm(
            total=len(stale), desc=f"lessons ({self.profile})", unit="nb", file=sys.stderr, disable=None, leave=False
        ) as self._bar:
            if jobs == 1:
                for name in stale:
                    self.one(name)
                return
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lesson") as pool:
                for future in [pool.submit(self.one, name) for name in stale]:
                    future.result()

    def _show(self, name: str, *, done: bool) -> None:
        with self._lock:
            (self._running.discard if done else self._running.add)(name)
            if self._bar is None:
                return
            self._bar.set_postfix_str(", ".join(sorted(self._running)), refresh=not done)
            if done:
                self._bar.update(1)

    def one(self, name: str) -> None:
        """Execute one lesson; record it in the manifest only when it succeeded."""
        self._show(name, done=False)
        started = time.perf_counter()
        self.manifest.update(name, None)  # not fresh while it runs, nor if it fails
        nb, device, error = _execute(self.settings, name, self.selected[name], self.profile)
        seconds = time.perf_counter() - started
        executed = self.folder / f"{name}.ipynb"
        if nb is None:
            self.failures[name] = error or f"{name}: failed"
        else:
            write_notebook(nb, executed)
            (self.folder / FAILED_DIR / f"{name}.ipynb").unlink(missing_ok=True)
            record = verified.execution_record(device, profile=self.profile)
            entry: dict[str, object] = {
                "key": self.keys[name],
                "sha256": sha256_file(executed),
                "seconds": round(seconds, 3),
                "verified": record,
            }
            self.manifest.update(name, entry)
            self.runs[name] = LessonRun(
                name, self.selected[name], executed, self.profile, "executed", seconds, self.keys[name], record
            )
        self._show(name, done=True)


def run_lessons(
    settings: Settings, names: Sequence[str] | None, *, profile: str, force: bool = False
) -> list[LessonRun]:
    """Execute the named lessons (default: all) for ``profile``, skipping those whose cache is fresh.

    Returns one :class:`LessonRun` per lesson, in name order.

    Raises:
        UsageError: an unknown lesson name or profile.
        InvalidNotebook: a lesson file is not a readable notebook.
        AuthoringError: a lesson has no (or more than one) cell tagged ``parameters``.
        LessonFailed: one or more lessons raised or ran past a time limit; every other
            selected lesson was still run, and the message names each failure's notebook,
            cell and exception.
    """
    if profile not in markers.PROFILES:
        raise UsageError(f"unknown profile {profile!r}; choose one of {', '.join(markers.PROFILES)}")
    selected = _select(settings, names)
    keys = _cache_keys(settings, selected, profile)
    batch = _Batch(settings, selected, keys, profile, Manifest(settings.executed_dir / profile))
    recorded = batch.manifest.read()
    stale: list[str] = []
    for name, source in selected.items():
        executed = batch.folder / f"{name}.ipynb"
        entry = recorded.get(name)
        if not force and batch.manifest.is_fresh(entry, key=keys[name], executed=executed):
            record = entry.get("verified") if isinstance(entry, dict) else None
            batch.runs[name] = LessonRun(
                name, source, executed, profile, "cached", 0.0, keys[name], record if isinstance(record, dict) else None
            )
        else:
            stale.append(name)
    batch.run(stale)
    if batch.failures:
        count = f"{len(batch.failures)} of {len(selected)} lesson(s) failed"
        raise LessonFailed(count + ":\n" + "\n".join(batch.failures[name] for name in sorted(batch.failures)))
    return [batch.runs[name] for name in selected]


def render_report(runs: Sequence[LessonRun]) -> str:
    """One line per lesson: status, id, profile, seconds and the device it ran on; then a summary line."""
    if not runs:
        return "no lesson notebooks found in notebooks/"
    width = max(len(run.name) for run in runs)
    lines = [
        f"{run.status:<8}  {run.name:<{width}}  {run.profile:<5}  "
        + (f"{run.seconds:6.1f} s" if run.status == "executed" else "   fresh")
        + f"  on {run.device}"
        + (f" ({run.verified['date']})" if run.status == "cached" and run.verified and run.verified.get("date") else "")
        for run in runs
    ]
    executed = sum(run.status == "executed" for run in runs)
    devices = sorted({run.device for run in runs})
    lines.append(
        f"{len(runs)} lesson(s): {executed} executed, {len(runs) - executed} cached; ran on {', '.join(devices)}"
    )
    return "\n".join(lines)

"""Checking an uploaded notebook: bounded work, in processes of its own.

A notebook is checked before it is queued, and the check costs at most a bounded amount of work,
whatever the upload holds (``docs/SERVICE.md``, "Uploads"):

1. its size (``settings.max_upload_mb``; the app refuses a larger declared body before reading it);
2. UTF-8, then JSON (C speed), nested at most :data:`~grader.format.notebooks.MAX_DEPTH` levels and
   holding at most :data:`MAX_CONTAINERS` objects and arrays — both counted in one walk that stops at
   the first excess;
3. a Jupyter notebook of format 4, with at most ``settings.upload_max_cells`` cells,
   ``settings.upload_max_outputs`` outputs in all, and ``settings.upload_max_cell_mb`` in any one cell;
4. the nbformat schema, by nbformat's compiled (fastjsonschema) validator only. An invalid notebook is
   never handed to the slow validator whole (it took a minute over 100,000 cells): the invalid cell,
   then its invalid output, is found by bisection with the fast one, and only that one is described.

Each limit has its own answer: 413 ``too-large`` naming the limit and what to do, or 415
``not-a-notebook`` with the reason (:class:`Refusal`).

The check runs in a small pool of processes (``settings.upload_check_workers``, spawned, at a lower
CPU priority), never on the event loop or the threads that answer other requests: a hostile upload
cannot hold the web process's interpreter. Each check is cut off after ``settings.upload_check_timeout_s``.
At most :func:`queue_capacity` checks wait or run at once; beyond that an upload is answered 503
``busy`` with ``Retry-After`` (:class:`CheckerBusy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import threading
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from grader.format.notebooks import MAX_DEPTH
from grader.settings import Settings

log = logging.getLogger(__name__)

#: objects and arrays one notebook's JSON may hold in all (a 5 MB course notebook has a few thousand)
MAX_CONTAINERS = 500_000
#: a JSON string, escapes included (what :func:`_containers` leaves out of its count)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
#: checks that may wait for a checker process, per process, beyond those running
WAITING_PER_WORKER = 32
#: cells the fast validator judges at a time (the first chunk refused is then bisected)
_CHUNK = 64
#: what a 503 ``busy`` asks the client to wait, seconds
BUSY_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may cost; from :class:`~grader.settings.Settings`."""

    max_bytes: int
    max_cells: int
    max_outputs: int
    max_cell_bytes: int
    timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            max_bytes=int(settings.max_upload_mb * 1e6),
            max_cells=settings.upload_max_cells,
            max_outputs=settings.upload_max_outputs,
            max_cell_bytes=int(settings.upload_max_cell_mb * 1e6),
            timeout_s=settings.upload_check_timeout_s,
        )


@dataclass(frozen=True)
class Refusal:
    """Why an upload is refused: ``status`` 413 (``too-large``) or 415 (``not-a-notebook``)."""

    status: int
    code: str
    message: str


def too_large_message(limit_bytes: int) -> str:
    """The words of the 413 for an upload over the size limit (also nginx's, ``docs/deploy``)."""
    return (
        f"the upload is over the {limit_bytes / 1e6:g} MB limit; clear the outputs "
        "(Edit → Clear All Outputs), save, and upload again"
    )


def _too_large(message: str) -> Refusal:
    return Refusal(413, "too-large", message)


def _not_a_notebook(message: str) -> Refusal:
    return Refusal(415, "not-a-notebook", message)


# --- the check itself (pure; runs in a checker process) ------------------------------------------


def _too_many_containers(name: str) -> str:
    return (
        f"{name}: over {MAX_CONTAINERS:,} JSON objects and arrays; clear the outputs "
        "(Edit → Clear All Outputs) and empty the notebook's metadata, save, and upload again"
    )


def _shape(raw: Any, name: str) -> Refusal | None:
    """Nesting depth and the number of objects and arrays, in one walk that stops at the first excess."""
    stack: list[tuple[Any, int]] = [(raw, 1)]
    containers = 1
    while stack:
        value, depth = stack.pop()
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, (dict, list)):
                containers += 1
                if containers > MAX_CONTAINERS:
                    return _too_large(_too_many_containers(name))
                if depth + 1 > MAX_DEPTH:
                    return _not_a_notebook(
                        f"{name}: JSON nested more than {MAX_DEPTH} levels deep; this is not a notebook"
                    )
                stack.append((child, depth + 1))
    return None


def _containers(data: bytes) -> int:
    """How many objects and arrays JSON text holds, at most: its brackets outside strings (counted exactly only
    when the plain count is over the limit, since dropping the strings costs a pass over each of them)."""
    upper = data.count(b"[") + data.count(b"{")
    if upper <= MAX_CONTAINERS:
        return upper
    bare = _JSON_STRING.sub(b"", data)
    return bare.count(b"[") + bare.count(b"{")


def _text_size(value: Any) -> int:
    """Characters in all the strings of a JSON value (keys left out): what a cell holds."""
    size, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return size


def _counts(cells: list[Any], name: str, limits: UploadLimits) -> Refusal | None:
    if len(cells) > limits.max_cells:
        return _too_large(
            f"{name}: {len(cells)} cells, over the {limits.max_cells}-cell limit; delete empty and scratch "
            "cells (or split the work into two notebooks), save, and upload again"
        )
    outputs = sum(len(c["outputs"]) for c in cells if isinstance(c, dict) and isinstance(c.get("outputs"), list))
    if outputs > limits.max_outputs:
        return _too_large(
            f"{name}: {outputs} outputs, over the {limits.max_outputs}-output limit; clear the outputs "
            "(Edit → Clear All Outputs), save, and upload again"
        )
    return None


def _cell_sizes(cells: list[Any], name: str, limits: UploadLimits) -> Refusal | None:
    for number, cell in enumerate(cells, start=1):
        size = _text_size(cell)
        if size > limits.max_cell_bytes:
            return _too_large(
                f"{name}: cell {number} holds {size / 1e6:.2f} MB (its code and outputs), over the "
                f"{limits.max_cell_bytes / 1e6:g} MB limit of one cell; clear its outputs and read large "
                "data from a file instead of pasting it, save, and upload again"
            )
    return None


def _as_read(raw: dict[str, Any], minor: int) -> None:
    """What ``nbformat.reads`` and ``validate`` do to a notebook before judging it, in place: transient
    keys dropped (``strip_transient``), and from format 4.5 a cell id given to cells without one and to
    repeated ones (``normalize``). Joining split lines is left out: the schema allows both forms."""
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
            metadata.pop(key, None)
    cells = [c for c in raw["cells"] if isinstance(c, dict)]
    for cell in cells:
        if isinstance(cell.get("metadata"), dict):
            cell["metadata"].pop("trusted", None)
    if minor >= 5:
        seen: set[Any] = set()
        for cell in cells:
            if "id" not in cell or (isinstance(cell["id"], str) and cell["id"] in seen):
                cell["id"] = uuid.uuid4().hex[:12]
            if isinstance(cell["id"], str):
                seen.add(cell["id"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _bisect(valid: Callable[[list[Any]], bool], items: list[Any]) -> int:
    """The index of an item that ``valid`` refuses, given that it refuses ``items`` as a whole."""
    low, high = 0, len(items)
    while high - low > 1:
        middle = (low + high) // 2
        if valid(items[low:middle]):
            low = middle
        else:
            high = middle
    return low


def _schema_refusal(raw: dict[str, Any], minor: int, name: str) -> Refusal | None:
    """The nbformat schema, judged by the fast validator: the notebook without its cells, then the cells
    :data:`_CHUNK` at a time (the schema judges each cell alone), stopping at the first chunk refused; the
    culprit cell, then output, found by bisection and described by the thorough validator."""
    import nbformat
    from nbformat.validator import ValidationError, get_validator

    current = int(nbformat.v4.nbformat_minor)
    # every minor version from the future shares the latest schema, relaxed: one compiled validator for all
    fast = get_validator(4, min(minor, current + 1))
    if fast is None:
        return _not_a_notebook(f"{name}: notebook format 4.{minor} is not supported; save it with Jupyter")

    def valid(document: dict[str, Any]) -> bool:
        try:
            fast.validate(document)
        except ValidationError:
            return False
        return True

    shell = {**raw, "cells": []}
    bare = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": min(minor, current + 1)}
    if not valid(shell):
        where, culprit = "", {**shell, "nbformat_minor": bare["nbformat_minor"]}
    else:
        cells: list[Any] = raw["cells"]
        start = next(
            (s for s in range(0, len(cells), _CHUNK) if not valid({**bare, "cells": cells[s : s + _CHUNK]})), None
        )
        if start is None:
            return None
        chunk = cells[start : start + _CHUNK]
        number = start + _bisect(lambda part: valid({**bare, "cells": part}), chunk)
        cell = cells[number]
        where, culprit = f"cell {number + 1}: ", {**bare, "cells": [cell]}
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if isinstance(outputs, list) and outputs and valid({**bare, "cells": [{**cell, "outputs": []}]}):
            out = _bisect(lambda part: valid({**bare, "cells": [{**cell, "outputs": part}]}), outputs)
            where = f"cell {number + 1}, output {out + 1}: "
            culprit = {**bare, "cells": [{**cell, "outputs": [outputs[out]]}]}
    try:  # the thorough validator, on the small culprit only: its words are the best
        nbformat.validate(nbformat.from_dict(culprit))
        reason = "it does not follow the notebook schema"
    except Exception as exc:  # nbformat raises several unrelated types
        reason = _first_line(exc)
    return _not_a_notebook(f"{name}: not a valid notebook ({where}{reason}); re-save it from Jupyter")


def check_notebook(data: bytes, name: str, limits: UploadLimits) -> Refusal | None:
    """Why ``data`` (an upload named ``name``) is refused, or None when it is a notebook within the limits."""
    if len(data) > limits.max_bytes:
        return _too_large(too_large_message(limits.max_bytes))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _not_a_notebook(f"{name}: not UTF-8 text (byte {exc.start}); upload the .ipynb file that Jupyter saved")
    if _containers(data) > MAX_CONTAINERS:  # before reading the JSON: a million arrays take long to build
        return _too_large(_too_many_containers(name))
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return _not_a_notebook(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "upload the .ipynb file that Jupyter saved, not a copy edited by hand"
        )
    except RecursionError:
        return _not_a_notebook(f"{name}: JSON nested more than {MAX_DEPTH} levels deep; this is not a notebook")
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return _not_a_notebook(
            f"{name}: not valid JSON ({_first_line(exc)}); upload the .ipynb file that Jupyter saved"
        )
    not_a_notebook = f"{name}: JSON but not a Jupyter notebook (no 'cells' or 'nbformat' field)"
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return _not_a_notebook(not_a_notebook)
    if raw["nbformat"] != 4:
        return _not_a_notebook(
            f"{name}: notebook format {raw['nbformat']!r} is not supported; save it with Jupyter 4.x or later"
        )
    if "cells" not in raw:
        return _not_a_notebook(not_a_notebook)
    minor = raw.get("nbformat_minor")
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0 or not isinstance(raw["cells"], list):
        return _not_a_notebook(
            f"{name}: not a valid notebook (its 'nbformat_minor' or 'cells'); re-save it from Jupyter"
        )
    # cheapest first: counting cells and outputs reads only the top of the document
    refused = _counts(raw["cells"], name, limits) or _shape(raw, name) or _cell_sizes(raw["cells"], name, limits)
    if refused is not None:
        return refused
    _as_read(raw, minor)
    return _schema_refusal(raw, minor, name)


# --- the checker processes ----------------------------------------------------------------------


class _OutOfTime(Exception):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _OutOfTime


def _start_checker() -> None:
    """A checker process's start: a lower CPU priority than the web process, quiet nbformat, warm schema."""
    with contextlib.suppress(OSError):  # not allowed here: the check still runs
        os.nice(10)
    warnings.simplefilter("ignore")
    logging.getLogger("traitlets").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_alarm)
    check_notebook(b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "warm-up", _WARM_LIMITS)


_WARM_LIMITS = UploadLimits(max_bytes=1000, max_cells=1, max_outputs=1, max_cell_bytes=1000, timeout_s=10.0)


def _check_in_checker(data: bytes, name: str, limits: UploadLimits) -> Refusal | None:
    """:func:`check_notebook`, cut off after ``limits.timeout_s`` (a checker process's main thread)."""
    signal.setitimer(signal.ITIMER_REAL, limits.timeout_s)
    gc.disable()  # JSON of a million small arrays: 0.4 s to read without the collector, 3.5 s with it
    try:
        return check_notebook(data, name, limits)
    except _OutOfTime:
        return _too_large(
            f"{name}: checking it took over {limits.timeout_s:g} s; clear the outputs "
            "(Edit → Clear All Outputs), save, and upload again"
        )
    except Exception as exc:  # a shape no rule above foresaw: refused, never a 500
        log.exception("checking upload %s failed", name)
        return _not_a_notebook(f"{name}: not a valid notebook ({_first_line(exc)}); re-save it from Jupyter")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        gc.enable()


class CheckerBusy(Exception):
    """Every checker slot is taken (or the checker processes had to be restarted): try again shortly."""

    retry_after_s = BUSY_RETRY_AFTER_S


class Checker:
    """``workers`` spawned checker processes; at most ``capacity`` checks running or waiting at once."""

    def __init__(self, workers: int, capacity: int) -> None:
        self.workers, self.capacity = max(1, workers), max(1, capacity)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_checker
        )

    def _done(self, _future: Future[Refusal | None]) -> None:
        with self._lock:
            self._in_flight -= 1

    def submit(self, data: bytes, name: str, limits: UploadLimits) -> Future[Refusal | None]:
        """Start one check; :class:`CheckerBusy` when ``capacity`` are already waiting or running."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise CheckerBusy
            self._in_flight += 1
            pool = self._pool
        try:
            future = pool.submit(_check_in_checker, data, name, limits)
        except (BrokenProcessPool, RuntimeError):
            self._done(Future())
            self._replace(pool)
            raise CheckerBusy from None
        future.add_done_callback(self._done)
        return future

    async def check(self, data: bytes, name: str, limits: UploadLimits) -> Refusal | None:
        """Check an upload without holding the event loop or a thread while a checker process works."""
        future = self.submit(data, name, limits)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:  # a checker process died (killed from outside): start new ones
            log.error("an upload checker process died; starting new ones")
            self._replace(self._pool)
            raise CheckerBusy from None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return
            self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)

    def warm(self) -> None:
        """Start the checker processes now (in the background), so the first upload does not wait for them."""
        with self._lock:
            pool = self._pool
        for _ in range(self.workers):
            pool.submit(os.getpid)

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def pids(self) -> list[int]:
        with self._lock:
            processes = getattr(self._pool, "_processes", None) or {}
            return sorted(int(pid) for pid in processes)


_checker: Checker | None = None
_checker_lock = threading.Lock()


def queue_capacity(settings: Settings) -> int:
    """Checks that may run or wait at once before an upload is answered 503 ``busy``."""
    return max(1, settings.upload_check_workers) * (1 + WAITING_PER_WORKER)


def checker(settings: Settings) -> Checker:
    """This process's checker (one for every app in it: the processes hold no app's state)."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = Checker(settings.upload_check_workers, queue_capacity(settings))
        return _checker


def checker_pids() -> list[int]:
    """The checker processes now running (none before the first check)."""
    return _checker.pids() if _checker is not None else []


def checks_in_flight() -> int:
    """Checks running or waiting now."""
    return _checker.in_flight() if _checker is not None else 0


def retry_after_header() -> dict[str, str]:
    return {"Retry-After": str(math.ceil(BUSY_RETRY_AFTER_S))}

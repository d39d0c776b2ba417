"""The worker registry: who is grading, on which device, and where a GPU job goes.

Every grading worker (embedded threads of ``grader worker``, or a ``grader worker --celery``
process) registers itself in the store's ``workers`` table with the device it detected on
itself (:func:`grader.grading.placement.worker_placement`) and renews a heartbeat every third of
``settings.worker_ttl_s`` (:class:`Registration`). A worker is **live** while its heartbeat is
younger than ``worker_ttl_s``; a worker that stops cleanly removes its row, one that dies simply
goes stale.

Routing, the one rule (:func:`gpu_worker_live` and :func:`live_gpu_clause`, read in the same
transaction as each claim): a job whose exercise wants a GPU goes to a GPU worker **while one is
live**; otherwise any worker may take it, and a CPU worker grades it at smoke size (the
feedback says so). So no GPU job is stranded: when the last GPU worker dies, its heartbeat
expires after ``worker_ttl_s`` and the CPU workers take the waiting GPU jobs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from grader.errors import StoreUnavailable
from grader.format import markers
from grader.grading.results import GradingDevice
from grader.service.store import Store, workers

log = logging.getLogger(__name__)
_w = workers.c

#: the Celery queue of CPU workers (every job when no GPU worker is live) and of GPU workers
CPU_QUEUE = "grader"
GPU_QUEUE = "grader-gpu"
#: a worker not heard from for this long is deleted from the table (until then its row helps operators)
FORGET_AFTER_S = 24 * 3600.0


def live_gpu_clause(now: float, ttl_s: float) -> sa.ColumnElement[bool]:
    """SQL: some GPU worker's heartbeat is younger than ``ttl_s``."""
    return sa.exists(sa.select(_w.name).where(_w.kind == markers.DEVICE_GPU, _w.heartbeat_at > now - ttl_s))


def gpu_worker_live(store: Store, ttl_s: float) -> bool:
    """Is a GPU worker live now?"""
    return bool(
        store.run(lambda conn: conn.execute(sa.select(live_gpu_clause(time.time(), ttl_s))).scalar(), write=False)
    )


def queue_for(device: str, gpu_live: bool) -> str:
    """The Celery queue a job of ``device`` goes to: the GPU queue only while a GPU worker is live."""
    return GPU_QUEUE if device == markers.DEVICE_GPU and gpu_live else CPU_QUEUE


def register(store: Store, name: str, device: GradingDevice) -> None:
    """Put ``name`` in the registry (or renew it) with the device it detected on itself."""
    now = time.time()
    data = json.dumps(device.to_dict())

    def work(conn: sa.Connection) -> None:
        updated = conn.execute(
            sa.update(workers).where(_w.name == name).values(kind=device.kind, device=data, heartbeat_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(workers).values(name=name, kind=device.kind, device=data, started_at=now, heartbeat_at=now)
            )
        conn.execute(sa.delete(workers).where(_w.heartbeat_at < now - FORGET_AFTER_S))

    store.run(work)


def unregister(store: Store, name: str) -> None:
    store.run(lambda conn: conn.execute(sa.delete(workers).where(_w.name == name)))


def live_workers(store: Store, ttl_s: float) -> list[dict[str, Any]]:
    """The live workers: name, kind, device (as it detected itself), started and last heard of."""
    now = time.time()
    rows = store.run(
        lambda conn: conn.execute(sa.select(workers).where(_w.heartbeat_at > now - ttl_s).order_by(_w.name)).all(),
        write=False,
    )
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "device": json.loads(r.device),
            "started_at": r.started_at,
            "heartbeat_at": r.heartbeat_at,
        }
        for r in rows
    ]


class Registration:
    """A worker's entry in the registry, renewed every third of ``ttl_s`` until :meth:`close`."""

    def __init__(self, store: Store, name: str, device: GradingDevice, ttl_s: float) -> None:
        self.store, self.name, self.device, self.ttl_s = store, name, device, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"registry-{name[-8:]}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                register(self.store, self.name, self.device)
            except (StoreUnavailable, sa.exc.DBAPIError):
                log.warning("could not renew worker %s in the registry; will retry", self.name)

    def open(self) -> Registration:
        register(self.store, self.name, self.device)
        self._thread.start()
        log.info("registered worker %s: %s", self.name, self.device.label)
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            unregister(self.store, self.name)
        except (StoreUnavailable, sa.exc.DBAPIError):  # its heartbeat simply goes stale
            log.warning("could not remove worker %s from the registry", self.name)

    def __enter__(self) -> Registration:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

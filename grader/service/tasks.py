"""Scale-out grading with Celery: one task per submission id, PostgreSQL as the store.

The task runs the same worker function as the embedded queue
(:func:`grader.service.workers.grade_submission` → :func:`grader.service.workers.process`), so the lease rules
hold here too: the task claims its submission in the store, grades it, and records the verdict
only while it holds the lease. That makes a task idempotent per submission id — a task for a
graded submission does nothing, one for a submission leased by a live worker waits for the
lease — which is what at-least-once delivery needs:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after the
  task ends, and handed to another worker if the process running it dies;
- ``worker_prefetch_multiplier = 1``: a worker holds one waiting message per process, so a
  long grading does not hoard jobs another worker could take;
- time limits a little above ``settings.grading_timeout_s`` (the runner's own limit).

A lost message cannot lose a submission: the store is the source of truth, and every worker
started with ``grader worker --celery`` re-sends tasks for submissions nobody is grading
(:func:`redispatch`), every ``lease_s``.

A pool process that dies under a task (SIGKILL, the out-of-memory killer, the hard time limit)
is seen by the worker's main process, which gives its leases back at once (:class:`GradingRequest`)
before the message is handed out again, so the redelivered task claims the job at once rather
than after the lease.

Fairness (:mod:`grader.service.fairness`): the broker hands out tasks in the order they were
sent, so a task does not insist on its own submission. It claims the fairest claimable job of
its submission's device (:func:`grader.service.queue.claim_submission`): learners take turns as
on the embedded queue. A task that finds only jobs of learners at ``max_running_per_learner``
does nothing ("held"); when one of that learner's jobs ends, the worker that ran it sends tasks
for the learner's held jobs again (and the re-sender does, every ``lease_s``).

Two queues (:mod:`grader.service.registry`): ``grader`` (CPU workers) and ``grader-gpu``
(``grader worker --celery --gpu``, which consumes only that one). A GPU exercise's task goes to
``grader-gpu`` while a GPU worker is live, else to ``grader``, where a CPU worker grades it at
smoke size. A task for a GPU job that reaches a CPU worker while a GPU worker is live is sent on
to ``grader-gpu`` (nothing graded); a GPU job waiting in ``grader-gpu`` after the last GPU worker
died (its heartbeat expired) is re-sent to ``grader`` by the re-sender.

Broker: ``GRADER_BROKER_URL`` — RabbitMQ (``amqp://guest:guest@127.0.0.1:5672//``) or Redis
(``redis://127.0.0.1:6379/0``). Nothing is created at import time: :func:`make_celery` builds
the app from settings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Celery
from celery.worker.request import Request

from grader.errors import StoreUnavailable, UsageError
from grader.format import markers
from grader.grading.placement import Placement, cpu_placement, worker_placement
from grader.service import queue, registry, regrade_jobs, workers
from grader.service.store import Store, open_store
from grader.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME = "grader.grade_submission"
#: a regrade job's task (:mod:`grader.service.regrade_jobs`): grades the oldest claimable one
REGRADE_TASK_NAME = "grader.regrade_job"
QUEUE_NAME = registry.CPU_QUEUE

#: per-process state of a worker (the store's connections must not cross a fork)
_process_state: dict[int, tuple[Store, workers.GradeFunction]] = {}


def _state(settings: Settings) -> tuple[Store, workers.GradeFunction]:
    pid = os.getpid()
    if pid not in _process_state:
        grade, _release = workers.worker_grade_function(settings, concurrency=1)  # released when the process ends
        _process_state[pid] = (open_store(settings, pool_size=2), grade)
    return _process_state[pid]


#: what ends a pool process under a task: its leases are given back at once
_PROCESS_LOST = (WorkerLostError, TimeLimitExceeded, SystemExit, KeyboardInterrupt)


def _request_class(settings: Settings) -> type[Request]:
    class GradingRequest(Request):  # type: ignore[misc]
        """A task's request in the worker's main process: when the pool process running it dies, that
        process's leases are given back (:func:`grader.service.workers.release_dead_worker`) before the
        message is requeued, so the redelivered task claims the job at once."""

        def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
            exc = getattr(exc_info, "exception", None)
            exc = getattr(exc, "exc", exc)  # unwrapped from billiard's ExceptionWithTraceback
            pid = self.worker_pid
            stopped_on_purpose = getattr(self, "_already_cancelled", False) or getattr(self, "_already_revoked", False)
            if isinstance(exc, _PROCESS_LOST) and pid and not stopped_on_purpose:
                try:
                    workers.release_dead_worker(settings, pid)
                except Exception:  # the lease expires instead
                    log.exception("could not give back the leases of pool process %s", pid)
            return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    return GradingRequest


def _send_follow_up(app: Celery, store: Store, settings: Settings, jobs: tuple[tuple[str, str], ...]) -> None:
    """Send tasks for a learner's jobs that were held at the cap, to the back of their queues."""
    gpu_live = registry.gpu_worker_live(store, settings.worker_ttl_s) if jobs else False
    for submission_id, device in jobs:
        to = registry.queue_for(device, gpu_live)
        send(app, submission_id, to)
        queue.mark_dispatched(store, [submission_id], routed_to=to)


def make_celery(settings: Settings, placement: Placement | None = None) -> Celery:
    """The Celery app for ``settings.broker_url``, with the grading task registered.

    ``placement``: the device the worker processes of this app grade on (default: this machine's CPU).
    """
    if not settings.broker_url:
        raise UsageError(
            "no broker configured for Celery: set GRADER_BROKER_URL (amqp://guest:guest@127.0.0.1:5672// "
            "or redis://127.0.0.1:6379/0), or run the embedded worker without --celery"
        )
    app = Celery("grader", broker=settings.broker_url, set_as_current=False)
    limit = settings.grading_timeout_s + settings.lease_s
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        task_soft_time_limit=settings.grading_timeout_s + settings.lease_s / 2,
        task_default_queue=QUEUE_NAME,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Redis: an unacknowledged message returns to the queue after this long (must outlast a task)
        broker_transport_options={"visibility_timeout": int(limit + 2 * settings.lease_s)},
    )

    @app.task(name=TASK_NAME, bind=True, max_retries=None, acks_late=True, Request=_request_class(settings))
    def grade_submission_task(task: Any, submission_id: str) -> str:
        store, grade = _state(settings)
        owner = workers.worker_name(f"celery-{task.request.id}")
        where = placement or cpu_placement()
        try:
            outcome = workers.grade_submission(settings, store, grade, submission_id, owner, where)
        except StoreUnavailable as exc:
            raise task.retry(countdown=max(1.0, settings.lease_s / 3), exc=exc) from exc
        if outcome.reroute:  # a GPU job, and a GPU worker is live: its queue, not this one
            send(app, submission_id, registry.GPU_QUEUE)
            queue.mark_dispatched(store, [submission_id], routed_to=registry.GPU_QUEUE)
            return "sent to the GPU queue"
        if outcome.held:  # sent again when one of the learner's running jobs ends
            return "held: the learner is at the cap of running jobs"
        try:
            _send_follow_up(app, store, settings, outcome.follow_up)
        except Exception:  # the re-sender sends them later
            log.exception("could not send the tasks of %s's learner's held jobs", submission_id)
        if outcome.retry_in_s is not None:
            queue.mark_dispatched(store, [submission_id])
            raise task.retry(countdown=outcome.retry_in_s)
        return outcome.processed.outcome if outcome.processed is not None else "nothing to do"

    @app.task(name=REGRADE_TASK_NAME, bind=True, max_retries=None, acks_late=True)
    def regrade_task(task: Any) -> str:
        """Grade the oldest claimable regrade job this worker may take (nothing when there is none)."""
        store, grade = _state(settings)
        owner = workers.worker_name(f"celery-{task.request.id}")
        try:
            processed = workers.run_regrade_once(settings, store, grade, owner, placement or cpu_placement())
        except StoreUnavailable as exc:
            raise task.retry(countdown=max(1.0, settings.lease_s / 3), exc=exc) from exc
        if processed is None:
            if regrade_jobs.pending(store):  # leased (perhaps by a worker that died) or backing off: look again
                raise task.retry(countdown=settings.lease_s)
            return "nothing to do"
        if processed.outcome == "retrying":  # its job failed an attempt: the next one after the back-off
            raise task.retry(countdown=queue.backoff_s(settings.max_attempts) + 0.1)
        return processed.outcome

    return app


def send(app: Celery, submission_id: str, queue_name: str = QUEUE_NAME) -> None:
    """Ask a Celery worker to grade a submission (``queue_name``: :func:`grader.service.registry.queue_for`)."""
    app.send_task(TASK_NAME, args=[submission_id], queue=queue_name)


def send_regrades(app: Celery, store: Store, settings: Settings, devices: Sequence[str]) -> None:
    """One regrade task per job (``devices``: each job's exercise's device), to the queue its device is routed to;
    a task grades the oldest claimable regrade job (:func:`grader.service.workers.run_regrade_once`), if any."""
    gpu_live = registry.gpu_worker_live(store, settings.worker_ttl_s) if markers.DEVICE_GPU in devices else False
    for device in devices:
        app.send_task(REGRADE_TASK_NAME, queue=registry.queue_for(device, gpu_live))


def redispatch(settings: Settings, app: Celery, store: Store) -> list[str]:
    """Send tasks for submissions nobody is grading (never sent, lost, whose worker died, or waiting in the
    GPU queue with no GPU worker live), each to the queue its device is routed to now."""
    found = queue.needs_dispatch(
        store,
        redispatch_after_s=settings.grading_timeout_s + 2 * settings.lease_s,
        max_attempts=settings.max_attempts,
        worker_ttl_s=settings.worker_ttl_s,
    )
    gpu_live = registry.gpu_worker_live(store, settings.worker_ttl_s) if found else False
    routed: dict[str, list[str]] = {}
    for submission_id, device in found:
        to = registry.queue_for(device, gpu_live)
        send(app, submission_id, to)
        routed.setdefault(to, []).append(submission_id)
    for to, ids in routed.items():
        queue.mark_dispatched(store, ids, routed_to=to)
    return [submission_id for submission_id, _ in found]


def _redispatch_loop(settings: Settings, app: Celery, stop: threading.Event) -> None:
    store = open_store(settings, pool_size=1)
    try:
        while not stop.wait(settings.lease_s):
            try:
                workers.release_dead_here(settings, store)
                sent = redispatch(settings, app, store)
                lost = regrade_jobs.stale(store, older_than_s=settings.grading_timeout_s + 2 * settings.lease_s)
                if lost:
                    send_regrades(app, store, settings, lost)
                if sent:
                    log.info("re-sent %d grading tasks: %s", len(sent), ", ".join(sent))
            except Exception:  # the broker or store is down: try again next round
                log.exception("re-sending grading tasks failed; trying again in %s s", settings.lease_s)
    finally:
        store.dispose()


def _registered(settings: Settings, placement: Placement, stop: threading.Event) -> None:
    """Keep this worker in the registry (with the device it detected on itself) until ``stop``."""
    store = open_store(settings, pool_size=1)
    registration = registry.Registration(
        store, workers.worker_name(f"celery-{placement.device.kind}"), placement.device, settings.worker_ttl_s
    )
    try:
        registration.open()
        stop.wait()
    except Exception:
        log.exception("registering this worker failed; GPU routing may not see it")
    finally:
        registration.close()
        store.dispose()


def run_celery_worker(settings: Settings, *, concurrency: int = 1, gpu: bool = False) -> None:
    """``grader worker --celery``: a Celery worker (prefork, ``concurrency`` processes) plus the re-sender.

    ``gpu``: a GPU worker (its own GPUs, detected here), consuming the GPU queue only.
    """
    placement = worker_placement(gpu=gpu)
    store = open_store(settings)  # migrate once, before the pool forks
    try:
        workers.release_dead_here(settings, store)  # what this machine's killed processes held
    finally:
        store.dispose()
    app = make_celery(settings, placement)
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_redispatch_loop, args=(settings, app, stop), name="grader-redispatch", daemon=True
    )
    sweeper.start()
    threading.Thread(target=_registered, args=(settings, placement, stop), name="grader-registry", daemon=True).start()
    try:
        app.worker_main(
            [
                "worker",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                f"--queues={registry.GPU_QUEUE if placement.gpu else QUEUE_NAME}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--prefetch-multiplier=1",
            ]
        )
    finally:
        stop.set()

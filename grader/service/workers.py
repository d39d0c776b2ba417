"""Grading workers: the one function that grades a claimed job, and the loops that feed it.

:func:`process` is the single worker function. It grades a claimed :class:`~grader.service.queue.Job`
with the grade function while a heartbeat renews the lease, then records the verdict — or,
for an infrastructure failure, hands the job back for a retry. Two ways feed it:

- **embedded** (:class:`EmbeddedWorkers`, ``grader worker``): threads that claim the fairest
  queued job from the store (:mod:`grader.service.fairness`), in this process;
- **Celery** (:mod:`grader.service.tasks`, ``grader worker --celery``): one task per submission
  id, which claims the fairest job of that submission's device (:func:`grade_submission`: its own
  when it is the fairest) and does nothing when none is claimable — so a task delivered twice
  grades no job twice.

Which of the two runs is decided in :mod:`grader.service.dispatch`; this module knows nothing of Celery.

**A worker that dies** leaves its leases behind. Whoever sees it die gives them back at once
(:func:`release_dead_worker`, :mod:`grader.service.leases`), and every worker process gives back,
as it starts, the leases of the dead processes of its own machine; one that is stopped gives
back the job it could not finish.

The grade function has the signature of :func:`grader.grading.engine.grade_notebook`
(``grade(settings, source, *, exercise, name) -> Result``); ``settings.grade_function``
names it as ``module:function``. It returns ``invalid`` for learner-caused problems (a final
verdict) and raises or returns ``error`` for infrastructure problems (retried). One that also
takes ``placement=`` is told where it grades (:mod:`grader.grading.placement`).

**Devices.** Every worker knows its own :class:`~grader.grading.placement.Placement` (the CPU,
or with ``grader worker --gpu`` the GPUs it detected itself), registers with it
(:mod:`grader.service.registry`) and claims by it: a GPU worker GPU jobs first, a CPU worker GPU
jobs only while no GPU worker is live. The device in every result it records is its own
(:func:`stamp_device`), whatever the grade function or the learner's kernel said.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from grader.errors import StoreUnavailable, UsageError
from grader.grading.placement import Placement, cpu_placement, kernel_setup, worker_placement
from grader.grading.results import Result
from grader.service import fairness, leases, queue, registry, regrade_jobs
from grader.service.queue import Job
from grader.service.statuses import SubmissionStatus
from grader.service.store import Store, open_store
from grader.settings import Settings

log = logging.getLogger(__name__)

#: how long a stopping worker waits for the job it is grading before leaving it to its lease
STOP_WAIT_S = 5.0


class GradeFunction(Protocol):
    def __call__(self, settings: Settings, source: bytes, *, exercise: str | None, name: str) -> Result: ...


Outcome = Literal["recorded", "retrying", "dead-lettered", "lost-lease"]


@dataclass(frozen=True)
class Processed:
    outcome: Outcome
    #: the submission's status after processing (None when the lease was lost)
    status: str | None


def load_grade_function(settings: Settings) -> GradeFunction:
    """Import ``settings.grade_function`` (``module:function``)."""
    spec = settings.grade_function
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(
            f"GRADER_GRADE_FUNCTION={spec!r} is not 'module:function' (e.g. grader.grading.engine:grade_notebook)"
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"GRADER_GRADE_FUNCTION={spec!r} cannot be imported ({exc}); check the module path") from exc
    return function  # type: ignore[no-any-return]


def worker_grade_function(settings: Settings, *, concurrency: int) -> tuple[GradeFunction, Callable[[], None]]:
    """The grade function a worker process uses, and how to release what it holds.

    With the default grade function and ``settings.warm_pool_size`` > 0, submissions are graded
    on pre-started sandboxed kernels (:class:`grader.grading.warm.WarmPool`, one use each, refilled in the
    background), which takes the kernel start out of the latency a learner sees.
    """
    function = load_grade_function(settings)
    from grader.grading import engine

    if function is not engine.grade_notebook or settings.warm_pool_size <= 0:
        return function, lambda: None
    from grader.grading.warm import WarmPool

    pool = WarmPool(settings, size=max(1, min(settings.warm_pool_size, concurrency)))
    return functools.partial(engine.grade_notebook, pool=pool), pool.close


def worker_name(label: str = "worker") -> str:
    """A name unique to this thread of this process on this machine (lease owners must differ)."""
    return leases.owner_name(label)


def release_dead_worker(settings: Settings, pid: int, store: Store | None = None) -> list[str]:
    """Give back at once the leases of worker process ``pid`` of this machine, which the caller saw die (its
    jobs are graded again without waiting for their leases to expire). Returns the jobs given back."""
    own = store is None
    store = store or open_store(settings, upgrade=False, pool_size=1)
    try:
        released, regrading = _give_back(settings, store, pid)
    finally:
        if own:
            store.dispose()
    if released or regrading:
        jobs = ", ".join([*released, *(f"a regrade of {sid}" for sid in regrading)])
        log.warning("worker process %d died grading %s; graded again at once", pid, jobs)
    return released + regrading


def _give_back(settings: Settings, store: Store, pid: int | None) -> tuple[list[str], list[str]]:
    """Give back at once every lease, on a submission or a regrade job, held by process ``pid`` of this
    machine (None: by its processes found gone). Returns the submissions and the regrade jobs given back."""
    attempts = settings.max_attempts
    if pid is None:
        released = leases.release_dead_here(store, max_attempts=attempts)
    else:
        released = leases.release_process(store, pid, max_attempts=attempts)
    return released, regrade_jobs.release(store, None if pid is None else {pid}, max_attempts=attempts)


def release_dead_here(settings: Settings, store: Store) -> None:
    """At a worker's start: give back the leases (submissions' and regrade jobs') of this machine's worker
    processes that are gone."""
    try:
        released, regrading = _give_back(settings, store, None)
    except StoreUnavailable:
        return  # their leases simply expire
    if released or regrading:
        jobs = [*released, *regrading]
        log.warning("gave back %d jobs of worker processes that died here: %s", len(jobs), ", ".join(jobs))


class Heartbeat:
    """Renews a lease every third of its length until stopped; notes when the lease was lost."""

    def __init__(
        self, store: Store, job_id: str, owner: str, lease_s: float, renew: Callable[[], bool] | None = None
    ) -> None:
        """``renew``: how to renew the lease (default: the submission's, :func:`grader.service.leases.renew`)."""
        self._store, self._job_id, self._owner, self._lease_s = store, job_id, owner, lease_s
        self._renew = renew or (lambda: leases.renew(store, job_id, owner, lease_s=lease_s))
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                if not self._renew():
                    self.lost = True
                    log.warning("lost the lease on %s (it expired and was taken over)", self._job_id)
                    return
            except StoreUnavailable:
                log.warning("could not renew the lease on %s: the store is unavailable; will retry", self._job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _takes_placement(grade: Callable[..., Result]) -> bool:
    try:
        parameters = inspect.signature(grade).parameters
    except (TypeError, ValueError):
        return False
    return "placement" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def stamp_device(result: Result, placement: Placement, wanted: str, *, told: bool) -> Result:
    """``result`` with the worker's own device; ``told``: the grade function knew the placement (and said
    itself what the exercise wanted and how grading differed), else that is worked out from the job."""
    if result.status == "invalid":
        return result
    fields: dict[str, object] = {"device": placement.device.label, "device_info": placement.device}
    if not told:
        fields |= {"wanted_device": wanted, "device_note": kernel_setup(wanted, placement).note}
    return dataclasses.replace(result, **fields)  # type: ignore[arg-type]


def process(
    settings: Settings, store: Store, grade: GradeFunction, job: Job, placement: Placement | None = None
) -> Processed:
    """Grade one claimed job and record what happened (the worker function of both paths).

    ``placement``: the worker's own (default: this machine's CPU); the result's device is its device.
    """
    owner = job.lease_owner
    placement = placement or cpu_placement()
    told = _takes_placement(grade)
    error: str | None = None
    result: Result | None = None
    with Heartbeat(store, job.id, owner, settings.lease_s) as heartbeat:
        try:
            extra = {"placement": placement} if told else {}
            result = grade(settings, job.notebook, exercise=job.exercise, name=job.filename, **extra)
            result = stamp_device(result, placement, job.device, told=told)
        except Exception as exc:  # the grader failed, not the learner: retried
            log.exception("grading %s (attempt %d) raised", job.id, job.attempts)
            error = f"{type(exc).__name__}: {exc}"
    if heartbeat.lost:
        return Processed("lost-lease", None)
    if result is not None and result.status == SubmissionStatus.ERROR:
        error = result.message
        log.warning("grading %s (attempt %d) reported an error: %s", job.id, job.attempts, result.message)
    if error is not None:
        status = queue.fail(store, job, owner, max_attempts=settings.max_attempts)
        if status is None:
            return Processed("lost-lease", None)
        return Processed("dead-lettered" if status == SubmissionStatus.ERROR else "retrying", status)
    if result is None or not queue.complete(store, job.id, owner, result):
        return Processed("lost-lease", None)
    return Processed("recorded", result.status)


def process_regrade(
    settings: Settings,
    store: Store,
    grade: GradeFunction,
    job: regrade_jobs.RegradeJob,
    placement: Placement | None = None,
) -> Processed:
    """Grade one claimed regrade job and keep its new result with the regrade (:mod:`grader.service.regrade_jobs`);
    the submission itself is not touched until the regrade is applied."""
    placement = placement or cpu_placement()
    told = _takes_placement(grade)
    error: str | None = None
    result: Result | None = None
    renew = functools.partial(regrade_jobs.renew, store, job, lease_s=settings.lease_s)
    with Heartbeat(store, job.submission_id, job.lease_owner, settings.lease_s, renew=renew) as heartbeat:
        try:
            extra = {"placement": placement} if told else {}
            result = grade(settings, job.notebook, exercise=job.exercise, name=job.filename, **extra)
            result = stamp_device(result, placement, job.device, told=told)
        except Exception as exc:  # the grader failed: retried, then the job fails (the old result stays)
            log.exception("regrading %s (attempt %d) raised", job.submission_id, job.attempts)
            error = f"grading error: {type(exc).__name__}: {exc}"
    if heartbeat.lost:
        return Processed("lost-lease", None)
    if result is not None and result.status == SubmissionStatus.ERROR:
        error = result.message
    if error is not None:
        state = regrade_jobs.fail(
            store, job, error, max_attempts=settings.max_attempts, backoff_s=queue.backoff_s(job.attempts)
        )
        if state is None:
            return Processed("lost-lease", None)
        return Processed("dead-lettered" if state == regrade_jobs.FAILED else "retrying", state)
    if result is None or not regrade_jobs.record(store, job, result):
        return Processed("lost-lease", None)
    return Processed(
        "recorded", regrade_jobs.GRADED if result.status == SubmissionStatus.GRADED else regrade_jobs.FAILED
    )


def run_regrade_once(
    settings: Settings, store: Store, grade: GradeFunction, owner: str, placement: Placement | None = None
) -> Processed | None:
    """Claim the oldest regrade job and process it; None when there is none."""
    placement = placement or cpu_placement()
    job = regrade_jobs.claim(
        store,
        owner,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
        gpu_worker=placement.gpu,
        worker_ttl_s=settings.worker_ttl_s,
    )
    return process_regrade(settings, store, grade, job, placement) if job is not None else None


def run_once(
    settings: Settings, store: Store, grade: GradeFunction, owner: str, placement: Placement | None = None
) -> Processed | None:
    """Claim the fairest job this worker may take (by its ``placement``) and process it; None when there is none.

    Regrade jobs (:mod:`grader.service.regrade_jobs`) are taken only when no learner's submission is claimable.
    """
    placement = placement or cpu_placement()
    job = queue.claim(
        store,
        owner,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
        gpu_worker=placement.gpu,
        worker_ttl_s=settings.worker_ttl_s,
        max_running_per_learner=settings.max_running_per_learner,
    )
    if job is None:
        return run_regrade_once(settings, store, grade, owner, placement)
    return process(settings, store, grade, job, placement)


@dataclass(frozen=True)
class TaskOutcome:
    """What a Celery task should do after :func:`grade_submission`."""

    processed: Processed | None
    #: try the same submission again in this many seconds (None: done)
    retry_in_s: float | None
    #: a GPU job, and a GPU worker is live: send it to the GPU queue (this CPU worker did nothing)
    reroute: bool = False
    #: its learner is at the cap of running jobs: nothing done; it is sent again when one of theirs ends
    held: bool = False
    #: jobs (id, device) to send tasks for now: the learner's jobs that were held back at the cap
    follow_up: tuple[tuple[str, str], ...] = ()


def grade_submission(
    settings: Settings,
    store: Store,
    grade: GradeFunction,
    submission_id: str,
    owner: str,
    placement: Placement | None = None,
) -> TaskOutcome:
    """The Celery task's body for ``submission_id``: grade the fairest job of its device; never one job twice.

    When no job of that device is claimable: nothing happens for a final submission; a submission
    leased by a live worker or backing off after a failure asks to be retried when that ends; a GPU
    job given to a CPU worker while a GPU worker is live asks to be rerouted; the job of a learner at
    the cap of running jobs is held (set aside). Once a job is processed, its learner's held jobs
    that the cap now lets through are named in ``follow_up``.
    """
    placement = placement or cpu_placement()
    found = queue.claim_submission(
        store,
        submission_id,
        owner,
        lease_s=settings.lease_s,
        max_attempts=settings.max_attempts,
        gpu_worker=placement.gpu,
        worker_ttl_s=settings.worker_ttl_s,
        max_running_per_learner=settings.max_running_per_learner,
    )
    if found.job is None:
        return TaskOutcome(None, found.retry_in_s, reroute=found.reroute, held=found.held)
    processed = process(settings, store, grade, found.job, placement)
    follow_up = tuple(fairness.held_back(store, found.job.user_id, settings.max_running_per_learner))
    if processed.outcome == "retrying":
        return TaskOutcome(processed, queue.backoff_s(found.job.attempts) + 0.1, follow_up=follow_up)
    return TaskOutcome(processed, None, follow_up=follow_up)


class EmbeddedWorkers:
    """``count`` threads that grade queued jobs from the store until :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        grade: GradeFunction,
        *,
        count: int,
        on_processed: Callable[[Processed], None] | None = None,
        placement: Placement | None = None,
    ) -> None:
        """``placement``: the device these workers grade on and register with (default: this machine's
        CPU). Tests pass a simulated GPU worker's here (see :mod:`grader.grading.placement`)."""
        self.settings, self.store, self.grade = settings, store, grade
        self.placement = placement or cpu_placement()
        self._registration = registry.Registration(
            store, worker_name(f"{self.placement.device.kind}-workers"), self.placement.device, settings.worker_ttl_s
        )
        self._count = count
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_processed = on_processed

    def _loop(self, owner: str) -> None:
        while not self._stop.is_set():
            try:
                processed = run_once(self.settings, self.store, self.grade, owner, self.placement)
            except StoreUnavailable:
                log.warning("the store is unavailable; the worker %s waits and tries again", owner)
                self._stop.wait(max(1.0, self.settings.worker_poll_s))
                continue
            except Exception:  # a bug here must not silently stop grading: log it and go on
                log.exception("worker %s failed outside grading", owner)
                self._stop.wait(max(1.0, self.settings.worker_poll_s))
                continue
            if processed is None:
                self._stop.wait(self.settings.worker_poll_s)
            elif self._on_processed is not None:
                self._on_processed(processed)

    def start(self) -> EmbeddedWorkers:
        self._registration.open()
        for index in range(self._count):
            owner = worker_name(f"embedded-{index}")
            thread = threading.Thread(target=self._loop, args=(owner,), name=f"grader-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop claiming; wait for jobs in progress (an unfinished one's lease simply expires)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._registration.close()

    def wait(self) -> None:
        """Block until stopped (``grader worker`` runs this in the foreground)."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(1.0)

    def __enter__(self) -> EmbeddedWorkers:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_embedded_worker(settings: Settings, concurrency: int, *, gpu: bool = False) -> None:
    """``grader worker`` on the embedded queue: ``concurrency`` threads grade until interrupted.

    Raises:
        UsageError: ``gpu`` (``--gpu``) on a machine where no GPU is found.
    """
    placement = worker_placement(gpu=gpu)
    store = open_store(settings)
    release_dead_here(settings, store)
    grade, release = worker_grade_function(settings, concurrency=concurrency)
    workers = EmbeddedWorkers(settings, store, grade, count=concurrency, placement=placement)

    def _terminate(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        workers.start().wait()
    finally:
        workers.stop(timeout_s=STOP_WAIT_S)
        try:  # a job still being graded is given back, to be graded again at once by another worker
            _give_back(settings, store, os.getpid())
        except StoreUnavailable:
            log.warning("could not give back the jobs in progress; they are graded again when their leases expire")
        release()
        store.dispose()

"""How grading is dispatched: embedded workers or Celery, decided here and nowhere else.

An :class:`Engine` says the three things that differ between the two ways of grading:

============  =======================================  ======================================
              ``embedded`` (no broker)                 ``celery`` (``GRADER_BROKER_URL``)
============  =======================================  ======================================
new           nothing to send: workers poll the store  a Celery task per submission id
submission                                             (:func:`grader.service.tasks.send`)
worker        :class:`~grader.service.workers.         a Celery worker plus the re-sender
              EmbeddedWorkers` threads                 (:func:`grader.service.tasks.
                                                       run_celery_worker`)
``grader      ``settings.service_workers`` worker      none: Celery workers run wherever they
serve``       processes                                reach the broker and the store
============  =======================================  ======================================

:func:`engine_for` chooses from settings (the web app and ``grader serve``); ``grader worker``
names its engine on the command line (``--celery``), as it always has. Either way the store is
the source of truth and both engines run the same worker function
(:func:`grader.service.workers.process`). Celery is imported only when the celery engine is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grader.service import workers
from grader.service.store import Store
from grader.settings import Settings

#: hands a new submission (by id) to the workers, on a Celery queue (:data:`grader.service.registry.CPU_QUEUE`
#: or ``GPU_QUEUE``, chosen by :func:`grader.service.registry.queue_for`)
Sender = Callable[[str, str], None]


@dataclass(frozen=True)
class Engine:
    name: str
    #: how a new submission reaches a worker: a :data:`Sender`, or None when workers poll the store
    sender: Callable[[Settings], Sender | None]
    #: how ``grader worker`` grades, until interrupted: ``run_worker(settings, concurrency, gpu)``
    run_worker: Callable[[Settings, int, bool], None]
    #: how many worker processes ``grader serve`` starts by default
    service_workers: Callable[[Settings], int]


def _no_sender(_settings: Settings) -> None:
    return None


def _celery_sender(settings: Settings) -> Sender:
    from grader.service import tasks

    app = tasks.make_celery(settings)

    def send(submission_id: str, queue_name: str) -> None:
        tasks.send(app, submission_id, queue_name)

    return send


#: hands a regrade's jobs to Celery workers: one task per job, given the devices its jobs' exercises ask for
RegradeSender = Callable[[Store, Sequence[str]], None]


def regrade_sender(settings: Settings) -> RegradeSender | None:
    """How a regrade's jobs reach the workers: None on the embedded queue (its workers poll the store after
    learners' submissions), with Celery one task per job (:func:`grader.service.tasks.send_regrades`)."""
    if not settings.broker_url:
        return None
    from grader.service import tasks

    app = tasks.make_celery(settings)
    return lambda store, devices: tasks.send_regrades(app, store, settings, devices)


def _celery_worker(settings: Settings, concurrency: int, gpu: bool) -> None:
    from grader.service import tasks

    tasks.run_celery_worker(settings, concurrency=concurrency, gpu=gpu)


def _embedded_worker(settings: Settings, concurrency: int, gpu: bool) -> None:
    workers.run_embedded_worker(settings, concurrency, gpu=gpu)


EMBEDDED = Engine(
    "embedded",
    sender=_no_sender,
    run_worker=_embedded_worker,
    service_workers=lambda settings: settings.service_workers,
)
CELERY = Engine("celery", sender=_celery_sender, run_worker=_celery_worker, service_workers=lambda _settings: 0)


def engine_for(settings: Settings) -> Engine:
    """Celery when ``settings.broker_url`` is set, else the embedded queue."""
    return CELERY if settings.broker_url else EMBEDDED


def run_worker(settings: Settings, *, celery: bool = False, concurrency: int = 1, gpu: bool = False) -> None:
    """``grader worker``: grade until interrupted, from the embedded queue or (``celery``) from Celery.

    ``gpu`` (``--gpu``): a GPU worker. It detects its GPUs itself and registers with them; on the
    embedded queue it takes GPU jobs first and CPU jobs when none waits, with Celery it consumes
    the GPU queue only (:mod:`grader.service.registry`).

    Raises:
        UsageError: ``gpu`` on a machine without an NVIDIA GPU.
        SandboxUnavailable: ``settings.sandbox`` is on and no sandbox can be built here (fail at
            start, not on every job; ``--unsafe-no-sandbox`` turns it off, for trusted code only).
    """
    if gpu:
        from grader.grading.placement import worker_placement

        worker_placement(gpu=True)  # refuse at once, before any store or broker is touched
    if settings.sandbox:
        from grader.sandbox.doctor import require_sandbox

        require_sandbox()
    (CELERY if celery else EMBEDDED).run_worker(settings, concurrency, gpu)

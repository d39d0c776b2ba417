"""GPU routing on CPU machines: GPU jobs go to a registered (simulated) GPU worker, and to CPU workers at smoke
size when none is live — on SQLite and PostgreSQL; the device in every result is the worker's own.

The seam: a worker's device is a :class:`~grader.grading.placement.Placement` value; these tests hand a
simulated GPU worker's to :class:`~grader.service.workers.EmbeddedWorkers` in-process. Only
``grader worker --gpu`` looks at the hardware, and here (no GPU) it must refuse.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import service_fakes
import sqlalchemy as sa
from conftest import REPO, make_settings, wait_until
from fastapi.testclient import TestClient

from grader.errors import UsageError
from grader.format import markers
from grader.grading import results
from grader.grading.placement import Placement
from grader.grading.results import GradingDevice
from grader.service import accounts, queue, registry
from grader.service.app import create_app
from grader.service.server import settings_env
from grader.service.store import Store, open_store, workers
from grader.service.workers import EmbeddedWorkers, load_grade_function
from grader.settings import Settings

GPU_EXERCISE, CPU_EXERCISE = "08-gpu-toy", "01-cpu-toy"
SIM_GPU = Placement(GradingDevice("gpu", "Simulated GPU", "9.0", "550.54.15", "12.4", host="gpu-box"))
CPU = Placement(GradingDevice("cpu", "Test CPU", host="cpu-box"))
LEASE_S = 30.0
TTL_S = 30.0


def _course(root: Path) -> Path:
    """A course with one GPU exercise and one CPU exercise (their solutions are read for the device only)."""
    (root / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "_toc.yml", root / "_toc.yml")
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    for exercise, device in ((GPU_EXERCISE, "gpu"), (CPU_EXERCISE, "cpu")):
        nb = nbformat.v4.new_notebook()
        nb.metadata[markers.META_GRADER] = {markers.META_DEVICE: device}
        nbformat.write(nb, root / "solutions" / f"{exercise}.ipynb")
    return root


@pytest.fixture
def gpu_settings(tmp_path: Path, store_url: str) -> Settings:
    settings = make_settings(tmp_path, database_url=store_url, lease_s=LEASE_S, worker_ttl_s=TTL_S)
    return dataclasses.replace(settings, root=_course(tmp_path / "course"))


def _enqueue(store: Store, user_id: int, exercise: str, **fake: object) -> str:
    device = "gpu" if exercise == GPU_EXERCISE else "cpu"
    data = service_fakes.notebook(**fake)
    return queue.enqueue(
        store, user_id=user_id, exercise=exercise, filename="nb.ipynb", notebook=data, device=device
    ).id


def _claim(store: Store, owner: str, *, gpu: bool) -> queue.Job | None:
    return queue.claim(store, owner, lease_s=LEASE_S, max_attempts=3, gpu_worker=gpu, worker_ttl_s=TTL_S)


def _age(store: Store, name: str, seconds: float) -> None:
    """A worker whose last heartbeat was ``seconds`` ago (it died then)."""
    with store.write() as conn:
        conn.execute(sa.update(workers).where(workers.c.name == name).values(heartbeat_at=time.time() - seconds))


def test_gpu_jobs_wait_for_a_live_gpu_worker_and_fall_back_to_cpu_when_it_dies(store: Store, people: dict) -> None:
    """Routing in the store: CPU workers leave GPU jobs to a live GPU worker, a GPU worker takes GPU jobs first,
    and once the GPU worker's heartbeat is older than the TTL the CPU workers take them."""
    alice = people["alice"][0].id
    cpu_job = _enqueue(store, alice, CPU_EXERCISE)
    gpu_job = _enqueue(store, alice, GPU_EXERCISE)
    registry.register(store, "gpu-worker", SIM_GPU.device)
    assert registry.gpu_worker_live(store, TTL_S)
    first = _claim(store, "cpu-1", gpu=False)
    assert first is not None and first.id == cpu_job  # the CPU job only
    assert _claim(store, "cpu-2", gpu=False) is None  # the GPU job is left to the GPU worker
    later = _enqueue(store, alice, CPU_EXERCISE)
    taken = _claim(store, "gpu-1", gpu=True)
    assert taken is not None and taken.id == gpu_job and taken.device == "gpu"  # GPU jobs first, though newer
    assert (_claim(store, "gpu-1", gpu=True) or pytest.fail("idle GPU worker takes CPU jobs")).id == later
    stranded = _enqueue(store, alice, GPU_EXERCISE)
    assert _claim(store, "cpu-3", gpu=False) is None
    _age(store, "gpu-worker", TTL_S + 1)  # the GPU worker died: its heartbeat expires
    assert not registry.gpu_worker_live(store, TTL_S)
    fallback = _claim(store, "cpu-3", gpu=False)
    assert fallback is not None and fallback.id == stranded


def test_celery_routing_reroutes_to_the_gpu_queue_and_resends_stranded_gpu_jobs(store: Store, people: dict) -> None:
    """A GPU task offered to a CPU worker while a GPU worker is live says reroute; a GPU job sent to the GPU
    queue is due for re-sending (to the CPU queue) as soon as no GPU worker is live."""
    sid = _enqueue(store, people["alice"][0].id, GPU_EXERCISE)
    registry.register(store, "gpu-worker", SIM_GPU.device)
    found = queue.claim_submission(store, sid, "cpu", lease_s=LEASE_S, max_attempts=3, worker_ttl_s=TTL_S)
    assert found.job is None and found.reroute
    queue.mark_dispatched(store, [sid], routed_to=registry.GPU_QUEUE)
    due = queue.needs_dispatch(store, redispatch_after_s=600, max_attempts=3, worker_ttl_s=TTL_S)
    assert due == []  # in the GPU queue, and a GPU worker is live
    _age(store, "gpu-worker", TTL_S + 1)
    due = queue.needs_dispatch(store, redispatch_after_s=600, max_attempts=3, worker_ttl_s=TTL_S)
    assert due == [(sid, "gpu")] and registry.queue_for("gpu", registry.gpu_worker_live(store, TTL_S)) == "grader"
    claimed = queue.claim_submission(store, sid, "cpu", lease_s=LEASE_S, max_attempts=3, worker_ttl_s=TTL_S)
    assert claimed.job is not None and claimed.job.id == sid


def _submit(client: TestClient, token: str, exercise: str, data: bytes) -> str:
    response = client.post(
        "/api/submissions",
        headers={"Authorization": f"Bearer {token}"},
        data={"exercise": exercise},
        files={"file": ("nb.ipynb", data)},
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _final(client: TestClient, token: str, sid: str) -> dict:
    def done() -> dict | None:
        view = client.get(f"/api/submissions/{sid}", headers={"Authorization": f"Bearer {token}"}).json()
        return view if view["final"] else None

    return wait_until(done, timeout_s=30, what=f"submission {sid} to be graded")


def _spoof() -> bytes:
    """A learner notebook that claims a GPU every way it can: metadata, a cell printing cuda, the grade's device."""
    nb = nbformat.reads(service_fakes.notebook(device="NVIDIA H100 (said the notebook)").decode(), as_version=4)
    nb.metadata[markers.META_GRADER] = {markers.META_EXERCISE: CPU_EXERCISE, markers.META_DEVICE: "gpu"}
    nb.cells.append(
        nbformat.v4.new_code_cell('print("cuda")', outputs=[nbformat.v4.new_output("stream", text="cuda\n")])
    )
    return nbformat.writes(nb).encode()


def test_through_the_api_gpu_jobs_go_to_the_gpu_worker_or_to_cpu_with_the_note(gpu_settings: Settings) -> None:
    """No GPU worker: a GPU exercise is graded by a CPU worker with the smoke-size note. With a (simulated) GPU
    worker registered: it grades the GPU job and its device is in the result. Nothing the notebook claims counts."""
    store = open_store(gpu_settings)
    _, token = accounts.add_user(store, "ada")
    grade = load_grade_function(gpu_settings)
    try:
        with TestClient(create_app(gpu_settings, workers=0, store=store)) as client:
            assert {e["id"]: e["device"] for e in client.get("/api/exercises").json()["exercises"]} == {
                GPU_EXERCISE: "gpu",
                CPU_EXERCISE: "cpu",
            }
            with EmbeddedWorkers(gpu_settings, store, grade, count=1, placement=CPU):
                assert not registry.gpu_worker_live(store, TTL_S)
                fallback = _final(client, token, _submit(client, token, GPU_EXERCISE, _spoof()))
                plain = _final(client, token, _submit(client, token, CPU_EXERCISE, _spoof()))
                client.cookies.set("grader_token", token)
                page = client.get(f"/submissions/{fallback['id']}").text
            assert fallback["status"] == "graded" and fallback["device"] == "CPU (Test CPU)"
            assert fallback["device_info"]["kind"] == "cpu" and fallback["wanted_device"] == "gpu"
            assert fallback["device_note"] == results.cpu_fallback_note(results.NO_GPU_WORKER)
            assert "no GPU worker was available; torch.compile was skipped" in page
            assert (
                plain["device"] == "CPU (Test CPU)" and plain["device_note"] == "" and plain["wanted_device"] == "cpu"
            )
            with (
                EmbeddedWorkers(gpu_settings, store, grade, count=1, placement=SIM_GPU),
                EmbeddedWorkers(gpu_settings, store, grade, count=1, placement=CPU),
            ):
                assert [w["kind"] for w in registry.live_workers(store, TTL_S)].count("gpu") == 1
                on_gpu = _final(client, token, _submit(client, token, GPU_EXERCISE, service_fakes.notebook(sleep=0.2)))
            assert on_gpu["device_info"] == SIM_GPU.device.to_dict() and on_gpu["device_note"] == ""
            assert on_gpu["device"] == "Simulated GPU (compute 9.0, driver 550.54.15, CUDA 12.4)"
            assert not registry.live_workers(store, TTL_S)  # stopped workers leave the registry
            for view in (fallback, plain, on_gpu):
                assert "said the notebook" not in json.dumps(view)
    finally:
        store.dispose()


def test_a_gpu_worker_without_a_gpu_refuses_to_start(tmp_path: Path) -> None:
    """`grader worker --gpu` on a machine without an NVIDIA GPU: a clear refusal, nothing registered."""
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    settings = make_settings(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "worker", "--gpu", "--unsafe-no-sandbox"],
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == UsageError.exit_code, done.stderr
    assert "no NVIDIA GPU found" in done.stderr and "without --gpu" in done.stderr
    assert not (settings.service_dir / "grader.db").exists()  # refused before touching the store

"""Where a job is graded: the worker's own device, and what a GPU exercise's kernel gets there.

A :class:`Placement` is decided by the worker that claimed the job, from what it detected on
itself (:func:`worker_placement`: ``nvidia-smi`` on the worker, never anything in a submission).
:func:`kernel_setup` turns it and the exercise's wish (solution metadata ``grader.device``,
:data:`grader.format.markers.META_DEVICE`) into what the grading kernel gets:

==============  ====================  ============================================================
exercise wants  worker                the kernel
==============  ====================  ============================================================
``cpu``         any                   as always: no GPU, no extra environment (the warm pool serves it)
``gpu``         GPU worker            one GPU (:mod:`grader.sandbox.gpu`), ``MLCOURSE_PROFILE=full``
``gpu``         CPU                   no GPU, ``MLCOURSE_PROFILE=smoke``, ``MLCOURSE_COMPILE=0`` (no
                                      ``torch.compile``), and the feedback says so
==============  ====================  ============================================================

Each of the three is its own grading bundle variant (:func:`grader.grading.bundle.build_bundle`):
reference outputs come from the solution run the same way.

**The test seam.** A worker's placement is a plain value: tests construct a GPU worker's
(``Placement(GradingDevice("gpu", "Simulated GPU"))``, no GPUs to bind) and hand it to the
worker in-process; only :func:`worker_placement` looks at the hardware, and it refuses
``gpu=True`` on a machine without a GPU.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import UsageError
from grader.format import markers
from grader.grading import results
from grader.grading.results import GradingDevice
from grader.sandbox.gpu import GpuInfo, detect_gpus


@dataclass(frozen=True)
class Placement:
    """The worker a job is graded on: its device, the GPUs it may bind, why a GPU job would be on its CPU."""

    device: GradingDevice
    #: the GPUs this worker may give a job (one each); empty on a CPU worker, and in a simulated GPU worker
    gpus: tuple[GpuInfo, ...] = ()
    #: said in the feedback when a GPU exercise is graded here on the CPU
    cpu_reason: str = results.NO_GPU_WORKER

    @property
    def gpu(self) -> bool:
        return self.device.kind == markers.DEVICE_GPU


@dataclass(frozen=True)
class KernelSetup:
    """What one job's grading kernel gets, and what the result says about it."""

    #: the bundle variant: "" (as always), "gpu", or "cpu-smoke" (a GPU exercise on a CPU)
    variant: str = ""
    env: dict[str, str] = field(default_factory=dict)
    gpus: tuple[GpuInfo, ...] = ()
    #: :func:`grader.grading.results.cpu_fallback_note` for a GPU exercise graded on the CPU
    note: str = ""


def kernel_setup(wanted: str, placement: Placement) -> KernelSetup:
    """The kernel of an exercise that wants ``wanted`` (``cpu``/``gpu``), graded on ``placement``."""
    if wanted != markers.DEVICE_GPU:
        return KernelSetup()
    if placement.gpu:
        return KernelSetup("gpu", {markers.ENV_KERNEL_PROFILE: "full"}, placement.gpus)
    env = {markers.ENV_KERNEL_PROFILE: "smoke", markers.ENV_KERNEL_COMPILE: "0"}
    return KernelSetup("cpu-smoke", env, (), results.cpu_fallback_note(placement.cpu_reason))


def cpu_name() -> str:
    """This machine's CPU model (``/proc/cpuinfo``), or its architecture."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.machine() or "unknown"


def cpu_placement(reason: str = results.NO_GPU_WORKER) -> Placement:
    """This machine's CPU (``reason``: what a GPU exercise's feedback says about being graded here)."""
    return Placement(GradingDevice(markers.DEVICE_CPU, cpu_name(), host=socket.gethostname()), cpu_reason=reason)


def gpu_device(gpus: tuple[GpuInfo, ...]) -> GradingDevice:
    """The device a GPU worker reports: its first GPU (a worker's GPUs are alike in practice)."""
    first = gpus[0]
    name = first.name if len(gpus) == 1 else f"{first.name} (1 of {len(gpus)})"
    return GradingDevice(
        markers.DEVICE_GPU, name, first.capability, first.driver, first.cuda, host=socket.gethostname()
    )


def worker_placement(*, gpu: bool) -> Placement:
    """A worker's own placement, from its own hardware.

    Raises:
        UsageError: ``gpu`` on a machine where ``nvidia-smi`` finds no GPU (a GPU worker that grades
            on its CPU would be registered as a GPU worker and keep GPU jobs from the CPU fallback).
    """
    if not gpu:
        return cpu_placement()
    gpus = detect_gpus()
    if not gpus:
        raise UsageError(
            "grader worker --gpu: no NVIDIA GPU found on this machine (`nvidia-smi` lists none, or is not "
            "installed); start the worker without --gpu, and GPU exercises are graded on CPU at smoke size"
        )
    return Placement(gpu_device(gpus), gpus)

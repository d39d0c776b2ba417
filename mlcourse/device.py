"""Which device to run on, whether bf16 is really native there, and a fingerprint for reports.

The order of preference is ``cuda`` > ``mps`` > ``cpu``. A notebook may ask for a device
explicitly (``select_device("cpu")``), or a learner may set the environment variable
``MLCOURSE_DEVICE`` (an explicit argument wins over the variable). Asking for a device that
this machine does not have is an error that lists the devices it does have; it never silently
falls back, because a benchmark that quietly ran on the CPU is worse than no benchmark.

bf16 is *native* only on CUDA GPUs of compute capability 8.0 (Ampere) or newer.
``torch.cuda.is_bf16_supported()`` also answers True on older GPUs, where bf16 is emulated and
slower than fp32, so it is not the question to ask before choosing a mixed-precision dtype.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TypedDict

import torch

#: environment variable that overrides the automatic choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``)
ENV_DEVICE = "MLCOURSE_DEVICE"
#: ``"0"`` skips ``torch.compile`` in :func:`compile_model` (the grader sets it when it grades a
#: GPU exercise on a CPU, where compiling needs a C++ compiler and minutes on 2 cores)
ENV_COMPILE = "MLCOURSE_COMPILE"
#: the size an exercise runs at (``"smoke"`` or ``"full"``); unset: ``"full"`` on CUDA, else ``"smoke"``
ENV_PROFILE = "MLCOURSE_PROFILE"
PROFILES = ("smoke", "full")
#: every device type, most preferred first
DEVICE_ORDER = ("cuda", "mps", "cpu")
#: the first compute capability with native bf16 arithmetic (NVIDIA Ampere)
BF16_MIN_CAPABILITY = (8, 0)

__all__ = [
    "BF16_MIN_CAPABILITY",
    "DEVICE_ORDER",
    "ENV_COMPILE",
    "ENV_DEVICE",
    "ENV_PROFILE",
    "PROFILES",
    "DeviceFingerprint",
    "available_devices",
    "bf16_native",
    "bf16_native_for_capability",
    "compile_allowed",
    "compile_model",
    "device_fingerprint",
    "run_profile",
    "select_device",
]


class DeviceFingerprint(TypedDict):
    """What a benchmark result records about where it ran."""

    #: the device, as torch spells it: ``"cuda:0"``, ``"mps"``, ``"cpu"``
    device: str
    #: the GPU's name on CUDA, otherwise the CPU model
    name: str
    #: ``torch.__version__``
    torch: str
    #: the CUDA version torch was built with, None off CUDA
    cuda: str | None
    #: compute capability as ``"major.minor"`` (``"8.6"``), None off CUDA
    capability: str | None
    bf16_native: bool
    #: CPU cores this process may use
    cpu_count: int
    #: ``platform.python_version()``
    python: str


def available_devices() -> tuple[str, ...]:
    """The device types usable here, most preferred first; ``"cpu"`` is always last."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return tuple(found)


def select_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer``, else ``$MLCOURSE_DEVICE``, else the best available.

    Args:
        prefer: a device such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``; ``None`` or
            ``"auto"`` defers to the environment variable, then to the order cuda > mps > cpu.

    Raises:
        ValueError: the requested device is not a device name, or this machine does not have
            it (the message lists the devices it has).
    """
    source = "argument"
    if prefer is None or str(prefer).strip().lower() == "auto":
        prefer = os.environ.get(ENV_DEVICE, "").strip() or None
        source = f"environment variable {ENV_DEVICE}"
    available = available_devices()
    if prefer is None or str(prefer).lower() == "auto":
        return torch.device(available[0])

    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{prefer!r} (from the {source}) is not a device name; use one of: {', '.join(available)}"
        ) from exc
    if device.type not in available:
        raise ValueError(
            f"device {str(device)!r} (from the {source}) is not available on this machine; "
            f"available: {', '.join(available)}"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r} (from the {source}) does not exist: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def bf16_native_for_capability(capability: tuple[int, int] | None) -> bool:
    """Does a CUDA GPU of this compute capability do bf16 arithmetic natively?

    ``None`` stands for "not a CUDA GPU" and answers False.
    """
    if capability is None:
        return False
    return tuple(capability) >= BF16_MIN_CAPABILITY


def bf16_native(device: str | torch.device | None = None) -> bool:
    """True only on a CUDA device of compute capability 8.0 or newer.

    Args:
        device: the device to ask about; ``None`` asks about :func:`select_device`'s choice.
    """
    resolved = select_device(device)
    return bf16_native_for_capability(_capability(resolved))


def device_fingerprint(device: str | torch.device | None = None) -> DeviceFingerprint:
    """Where a measurement was taken: device, its name, software versions, CPU cores.

    Args:
        device: the device to describe; ``None`` describes :func:`select_device`'s choice.
    """
    resolved = select_device(device)
    capability = _capability(resolved)
    name = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else _cpu_name()
    return DeviceFingerprint(
        device=str(resolved),
        name=name,
        torch=str(torch.__version__),
        cuda=torch.version.cuda if resolved.type == "cuda" else None,
        capability=None if capability is None else f"{capability[0]}.{capability[1]}",
        bf16_native=bf16_native_for_capability(capability),
        cpu_count=_cpu_count(),
        python=platform.python_version(),
    )


def _capability(device: torch.device) -> tuple[int, int] | None:
    """The compute capability of a CUDA device; None for any other device."""
    if device.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def _cpu_name() -> str:
    """The CPU model: from /proc/cpuinfo on Linux, otherwise what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_profile(device: str | torch.device | None = None) -> str:
    """The size to run an exercise at: ``$MLCOURSE_PROFILE`` if set, else ``"full"`` on CUDA, else ``"smoke"``.

    Raises:
        ValueError: the environment variable names no profile.
    """
    chosen = os.environ.get(ENV_PROFILE, "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"{ENV_PROFILE}={chosen!r} is not a profile; use one of: {', '.join(PROFILES)}")
        return chosen
    return "full" if select_device(device).type == "cuda" else "smoke"


def compile_allowed() -> bool:
    """False when ``$MLCOURSE_COMPILE`` is ``"0"`` (or ``false``/``no``/``off``): skip ``torch.compile``."""
    return os.environ.get(ENV_COMPILE, "1").strip().lower() not in ("0", "false", "no", "off")


def compile_model(model: torch.nn.Module, **options: object) -> tuple[torch.nn.Module, bool]:
    """``torch.compile(model, **options)`` unless :func:`compile_allowed` says no.

    Returns ``(model, compiled)``: the compiled module and True, or the module unchanged and
    False, so a notebook can say which it measured.
    """
    if not compile_allowed():
        return model, False
    return torch.compile(model, **options), True  # type: ignore[call-overload]

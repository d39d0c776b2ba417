"""GPUs on a grading worker: which there are, what one job's sandbox sees of one, what doctor reports.

A GPU worker detects its own GPUs (:func:`detect_gpus`: ``nvidia-smi`` in a subprocess, the
device minor numbers from ``/proc/driver/nvidia/gpus``); nothing about a GPU ever comes from a
submission. Each GPU job holds one GPU (:func:`grader.sandbox.jobs.gpu_slot`, an flock per GPU shared by
every worker process on the machine) and its sandbox gets exactly this of the machine
(:func:`gpu_access`):

- the control nodes ``/dev/nvidiactl``, ``/dev/nvidia-uvm`` and ``/dev/nvidia-uvm-tools`` (those
  present) and the job's one ``/dev/nvidiaN``, bound at the same paths (``--dev-bind``: device
  access; no other ``/dev/nvidia*`` node exists in the sandbox);
- the driver's user-space libraries, ``libcuda.so*`` and ``libnvidia-*.so*`` (from ``ldconfig -p``
  and :data:`LIB_DIRS`), read-only; those under ``/usr`` are already there read-only with
  ``/usr`` itself, the others are bound one by one;
- ``CUDA_VISIBLE_DEVICES`` naming that GPU by UUID (so CUDA's own numbering cannot pick another).

The sandbox's address-space rlimit is lifted for a GPU job (the CUDA driver reserves far more
virtual memory than any limit a kernel could work under); the job's memory cgroup still caps
what it really uses (:mod:`grader.sandbox.cgroups`, as root).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.errors import SandboxUnavailable

#: the driver's control nodes a CUDA process opens (``-tools`` is optional: profilers use it)
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
#: the driver's user-space libraries a CUDA process loads
LIB_PATTERNS = ("libcuda.so*", "libnvidia-*.so*")
#: where drivers put those libraries when ``ldconfig -p`` does not list them
LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/lib/wsl/lib",
)
#: trees the sandbox already binds read-only whole (:data:`grader.sandbox.command.FILESYSTEM`)
READ_ONLY_TREES = ("/usr",)
#: what ``nvidia-smi --query-gpu`` is asked, in this order
SMI_FIELDS = ("index", "uuid", "name", "compute_cap", "driver_version", "pci.bus_id")
#: the driver's per-GPU information (``Device Minor: N``), one folder per PCI bus id
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
#: what a worker without a GPU says about GPU jobs
NO_GPU = "no NVIDIA GPU: GPU jobs will be graded on CPU"

Run = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the worker's own driver reports it."""

    index: int
    #: N of ``/dev/nvidiaN``
    minor: int
    uuid: str
    name: str
    #: compute capability, ``"9.0"``
    capability: str
    driver: str
    #: the newest CUDA the driver supports, ``"12.4"`` ("" when unknown)
    cuda: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GpuInfo:
        return cls(**data)  # type: ignore[arg-type]


def _minor(bus_id: str, proc_dir: Path, fallback: int) -> int:
    """``Device Minor`` of the GPU at ``bus_id`` (``00000000:3B:00.0``), from the driver's /proc files."""
    wanted = bus_id.strip().lower()
    for folder in sorted(proc_dir.glob("*")) if proc_dir.is_dir() else []:
        name = folder.name.lower()
        if not wanted.endswith(name):  # nvidia-smi: 00000000:3B:00.0; /proc: 0000:3b:00.0
            continue
        with contextlib.suppress(OSError):
            found = re.search(r"Device Minor:\s*(\d+)", (folder / "information").read_text())
            if found:
                return int(found.group(1))
    return fallback


def parse_nvidia_smi(query_csv: str, banner: str = "", *, proc_dir: Path = PROC_GPUS) -> tuple[GpuInfo, ...]:
    """GPUs from ``nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader`` (and the plain banner for CUDA)."""
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner)
    gpus = []
    for line in query_csv.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != len(SMI_FIELDS) or not parts[0].isdigit():
            continue
        index, uuid, name, capability, driver, bus_id = parts
        gpus.append(
            GpuInfo(
                index=int(index),
                minor=_minor(bus_id, proc_dir, int(index)),
                uuid=uuid,
                name=name,
                capability=capability,
                driver=driver,
                cuda=cuda.group(1) if cuda else "",
            )
        )
    return tuple(gpus)


def detect_gpus(*, run: Run = subprocess.run, proc_dir: Path = PROC_GPUS) -> tuple[GpuInfo, ...]:
    """This machine's NVIDIA GPUs, asked of its own driver (``nvidia-smi``); empty when it has none."""
    query = ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader"]
    try:
        listed = run(query, capture_output=True, text=True, timeout=30, check=False)
        if listed.returncode != 0:
            return ()
        banner = run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return parse_nvidia_smi(listed.stdout, banner, proc_dir=proc_dir)


@dataclass(frozen=True)
class GpuAccess:
    """What one job's sandbox sees of one GPU: device nodes, driver libraries, an environment."""

    #: host device nodes, bound at the same paths with device access
    devices: tuple[str, ...]
    #: driver libraries (host paths, symlinks resolved), visible read-only
    libraries: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bound_libraries(self) -> tuple[str, ...]:
        """The libraries bound one by one: those outside the trees the sandbox binds read-only anyway."""
        return tuple(lib for lib in self.libraries if not _under(lib, READ_ONLY_TREES))

    def bwrap_args(self) -> list[str]:
        """bubblewrap options: the device nodes (``--dev-bind``) and the libraries outside /usr (``--ro-bind``)."""
        args = [arg for node in self.devices for arg in ("--dev-bind", node, node)]
        return args + [arg for lib in self.bound_libraries for arg in ("--ro-bind", lib, lib)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GpuAccess:
        data = json.loads(text)
        return cls(tuple(data["devices"]), tuple(data["libraries"]), dict(data["env"]))


def _under(path: str, trees: Sequence[str]) -> bool:
    return any(path == tree or path.startswith(tree.rstrip("/") + "/") for tree in trees)


def _ldconfig() -> str:
    for tool in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            return subprocess.run([tool, "-p"], capture_output=True, text=True, timeout=30, check=False).stdout
    return ""


def driver_libraries(*, ldconfig_text: str | None = None, lib_dirs: Sequence[str | Path] = LIB_DIRS) -> tuple[str, ...]:
    """The driver's libraries on this machine: every path ``ldconfig -p`` lists for :data:`LIB_PATTERNS`,
    and every match in ``lib_dirs``; symlinks resolved too (both the link and its target are needed)."""
    text = _ldconfig() if ldconfig_text is None else ldconfig_text
    found: set[Path] = set()
    for line in text.splitlines():
        name, arrow, target = line.strip().partition("=>")
        if arrow and any(Path(name.split()[0]).match(pattern) for pattern in LIB_PATTERNS if name.split()):
            found.add(Path(target.strip()))
    for folder in map(Path, lib_dirs):
        for pattern in LIB_PATTERNS:
            found.update(folder.glob(pattern) if folder.is_dir() else ())
    paths: set[str] = set()
    for path in found:
        if path.exists():
            paths.update({str(path), str(path.resolve())})
    return tuple(sorted(paths))


def gpu_access(
    gpu: GpuInfo,
    *,
    dev: Path = Path("/dev"),
    ldconfig_text: str | None = None,
    lib_dirs: Sequence[str | Path] = LIB_DIRS,
) -> GpuAccess:
    """What a job's sandbox sees of ``gpu``: its node and the control nodes under ``dev``, the driver libraries.

    Raises:
        SandboxUnavailable: ``dev`` has no ``nvidiactl`` or no node for this GPU (the driver is not loaded).
    """
    node = dev / f"nvidia{gpu.minor}"
    missing = [str(path) for path in (dev / "nvidiactl", node) if not path.exists()]
    if missing:
        raise SandboxUnavailable(
            f"GPU {gpu.index} ({gpu.name}): {', '.join(missing)} not found; is the NVIDIA driver loaded "
            "(`nvidia-smi`)? Without it this worker cannot grade GPU jobs: run it without --gpu"
        )
    controls = [str(dev / name) for name in CONTROL_NODES if (dev / name).exists()]
    env = {"CUDA_VISIBLE_DEVICES": gpu.uuid} if gpu.uuid else {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if not gpu.uuid:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu.index)
    libraries = driver_libraries(ldconfig_text=ldconfig_text, lib_dirs=lib_dirs)
    return GpuAccess(devices=(*controls, str(node)), libraries=libraries, env=env)


def gpu_report(
    gpus: Sequence[GpuInfo], *, dev: Path = Path("/dev"), ldconfig_text: str | None = None
) -> list[tuple[str, bool, str]]:
    """What a GPU worker here would see, as ``(name, ok, detail)`` lines for ``grader doctor``.

    No GPU is not a failure: GPU jobs are then graded on CPU (at smoke size), and the line says so.
    """
    if not gpus:
        return [("GPU for GPU exercises", True, NO_GPU)]
    lines: list[tuple[str, bool, str]] = []
    for gpu in gpus:
        what = f"GPU {gpu.index}: {gpu.name} (compute {gpu.capability}, driver {gpu.driver}, CUDA {gpu.cuda or '?'})"
        try:
            access = gpu_access(gpu, dev=dev, ldconfig_text=ldconfig_text)
        except SandboxUnavailable as exc:
            lines.append((what, False, str(exc)))
            continue
        bound = len(access.bound_libraries)
        env = " ".join(f"{key}={value}" for key, value in access.env.items())
        lines.append(
            (
                what,
                True,
                f"a job on it sees {', '.join(access.devices)}; {len(access.libraries)} driver libraries read-only "
                f"({bound} bound one by one, the rest under /usr); {env}",
            )
        )
    return lines

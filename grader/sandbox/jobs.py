"""One grading job's sandbox: a uid slot, a trusted job directory, the limits, and why it ended."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import SandboxUnavailable
from grader.sandbox.cgroups import JobCgroup, job_cgroup_name
from grader.sandbox.gpu import GpuAccess, GpuInfo
from grader.sandbox.limits import ResourceLimits

#: first uid handed to sandboxed jobs; slot N runs as UID_BASE + N
UID_BASE = 61000
#: concurrent jobs per machine (one uid each)
SLOTS = 64
#: in a job directory: the files the kernel finds, read-only, in its working directory (the
#: launcher binds each one there; :meth:`SandboxJob.provide_files` puts them here)
WORK_FILES = "files"


#: where the kernel's private work directory appears inside the sandbox
@dataclass(frozen=True)
class Slot:
    number: int
    uid: int


def _state_dir() -> Path:
    path = Path(
        os.environ.get(
            "GRADER_SANDBOX_STATE",
            "/run/grader-sandbox"
            if os.geteuid() == 0
            else Path(tempfile.gettempdir()) / f"grader-sandbox-{os.getuid()}",
        )
    )
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def job_slot() -> Iterator[Slot]:
    """Hold one of :data:`SLOTS` uids for the duration of a job (an flock per slot).

    When the job ends every process left behind by that uid is killed, so the next job that
    gets the uid starts clean. Without root (no uid switching) all slots share the caller's uid.
    """
    state = _state_dir()
    for number in range(SLOTS):
        handle = (state / f"slot-{number}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        uid = UID_BASE + number if os.geteuid() == 0 else os.getuid()
        try:
            if os.geteuid() == 0:
                kill_uid(uid)
            yield Slot(number, uid)
        finally:
            if os.geteuid() == 0:
                kill_uid(uid)
            handle.close()
        return
    raise SandboxUnavailable(f"all {SLOTS} sandbox slots are busy; lower --jobs or wait")


@contextlib.contextmanager
def gpu_slot(gpus: Sequence[GpuInfo]) -> Iterator[GpuInfo]:
    """Hold one of ``gpus`` for the duration of a job (an flock per GPU, shared by the machine's workers).

    A free GPU is taken at once; when all are busy, this waits for one (a worker runs no more
    GPU jobs at once than the machine has GPUs unless it was started with a higher concurrency).
    """
    if not gpus:
        raise SandboxUnavailable("no GPU to hold: this worker found none")
    state = _state_dir()
    handles = []
    try:
        for gpu in gpus:
            handle = (state / f"gpu-{gpu.uuid or gpu.index}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handles.append(handle)
                continue
            try:
                yield gpu
            finally:
                handle.close()
            return
        chosen = os.getpid() % len(gpus)
        fcntl.flock(handles[chosen], fcntl.LOCK_EX)  # every GPU is busy: wait for one
        yield gpus[chosen]
    finally:
        for handle in handles:
            handle.close()


def processes_of(uid: int) -> list[int]:
    """Pids of live (not zombie) processes whose uid is ``uid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return pids


def kill_uid(uid: int, *, timeout_s: float = 5.0) -> None:
    """SIGKILL every process of ``uid`` (never the caller's own uid) and wait until none is left."""
    if uid in (0, os.getuid()):
        return
    deadline = time.monotonic() + timeout_s
    while (pids := processes_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


_SIGNAL_CAUSES = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGSEGV: "crashed (segmentation fault, often memory exhaustion)",
    signal.SIGABRT: "crashed (aborted, often memory exhaustion)",
    signal.SIGBUS: "crashed (bus error)",
}


def place_files(files: Mapping[str, Path], folder: Path, *, keep_existing: bool = False) -> None:
    """Copy ``files`` (relative POSIX path → source file) under ``folder``, readable by all, writable by none.

    Folders made on the way are readable and traversable by all (the sandbox's uid reads them).
    ``keep_existing``: a file already there is left as it is.

    Raises:
        ValueError: a path that is absolute or climbs out of ``folder``.
    """
    for name, source in sorted(files.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or not relative.parts or any(part in ("", ".", "..") for part in relative.parts):
            raise ValueError(f"{name!r}: a file for the work directory must be a relative path inside it")
        target = folder.joinpath(*relative.parts)
        if keep_existing and (target.exists() or target.is_symlink()):
            continue
        for parent in reversed(target.relative_to(folder).parents[:-1]):
            if not (folder / parent).is_dir():
                (folder / parent).mkdir()
                (folder / parent).chmod(0o755)  # whatever the umask: the sandbox's uid passes through
        shutil.copyfile(source, target)
        target.chmod(0o444)


@dataclass(frozen=True)
class SandboxJob:
    """One grading job's sandbox: a uid, a trusted job directory, the limits (and a GPU, on a GPU worker)."""

    directory: Path
    uid: int
    limits: ResourceLimits
    #: the one GPU this job sees (:mod:`grader.sandbox.gpu`); None: no GPU device at all
    gpu: GpuAccess | None = None
    #: variables set in the kernel's environment besides :data:`grader.sandbox.command.KERNEL_ENV`
    #: (a GPU exercise's ``MLCOURSE_PROFILE``, ``MLCOURSE_COMPILE``), as sorted pairs
    env: tuple[tuple[str, str], ...] = ()

    def spec(self) -> str:
        """What the trusted pytest process needs to start this job's kernel (``--grader-sandbox``)."""
        data: dict[str, object] = {
            "job": str(self.directory),
            "uid": self.uid,
            "limits": dataclasses.asdict(self.limits),
        }
        data["gpu"] = self.gpu.to_json() if self.gpu is not None else None
        data["env"] = dict(self.env)
        return json.dumps(data)

    @classmethod
    def from_spec(cls, text: str) -> SandboxJob:
        data = json.loads(text)
        gpu = GpuAccess.from_json(data["gpu"]) if data.get("gpu") else None
        env = tuple(sorted(dict(data.get("env") or {}).items()))
        return cls(Path(data["job"]), int(data["uid"]), ResourceLimits(**data["limits"]), gpu, env)

    def provide_files(self, files: Mapping[str, Path]) -> None:
        """Make ``files`` (relative path → source) appear read-only in the kernel's working directory.

        Call before the kernel starts: the launcher binds what :data:`WORK_FILES` holds then.
        """
        folder = self.directory / WORK_FILES
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
        place_files(files, folder)

    @property
    def ipc_prefix(self) -> Path:
        """ZMQ ipc endpoint prefix: the kernel's sockets are ``<prefix>-<port>``."""
        return self.directory / "ipc" / "kernel"

    def kernel_argv(self) -> list[str]:
        """The kernelspec argv: this module's launcher, run trusted, which starts the sandbox."""
        return [
            sys.executable,
            "-m",
            "grader.sandbox",
            "launch",
            "--job",
            str(self.directory),
            "--uid",
            str(self.uid),
            "--limits",
            self.limits.to_json(),
            *(["--gpu", self.gpu.to_json()] if self.gpu is not None else []),
            *(["--env", json.dumps(dict(self.env))] if self.env else []),
            "{connection_file}",
        ]

    def exit_cause(self) -> str | None:
        """Why the kernel ended, when a limit ended it; ``None`` for a normal end or an unknown one."""
        try:
            info = json.loads((self.directory / "exit.json").read_text())
        except (OSError, ValueError):
            return None
        if info.get("wall_clock_exceeded"):
            return f"wall-clock limit exceeded ({self.limits.wall_s:g} s)"
        code = info.get("returncode")
        if info.get("memory_exceeded") and code == -signal.SIGKILL:  # the OOM killer's signal
            return f"memory limit exceeded ({self.limits.memory_mb} MB)"
        if isinstance(code, int) and code < 0:
            cause = _SIGNAL_CAUSES.get(signal.Signals(-code)) if -code in signal.valid_signals() else None
            if -code == signal.SIGXCPU:
                return f"{cause} ({self.limits.cpu_s} s)"
            return cause
        return None


@contextlib.contextmanager
def sandbox_job(
    limits: ResourceLimits, *, gpu: GpuAccess | None = None, env: Mapping[str, str] | None = None
) -> Iterator[SandboxJob]:
    """A uid slot and a job directory for one sandboxed kernel; everything is removed afterwards.

    ``gpu``: the one GPU the kernel sees; ``env``: extra variables of the kernel's environment.
    """
    with job_slot() as slot:
        directory = Path(tempfile.mkdtemp(prefix="grader-job-"))
        directory.chmod(0o711)  # the sandbox uid may pass through (to its ipc dir), never list
        try:
            yield SandboxJob(directory, slot.uid, limits, gpu, tuple(sorted((env or {}).items())))
        finally:
            kill_uid(slot.uid)
            ipc = directory / "ipc"
            if ipc.is_mount():
                subprocess.run(["umount", "-l", str(ipc)], capture_output=True, check=False)
            # the trusted launcher may still write its exit record as its sandbox dies: retry
            for _ in range(50):
                shutil.rmtree(directory, ignore_errors=True)
                if not directory.exists():
                    break
                time.sleep(0.05)
            JobCgroup.discard(job_cgroup_name(slot.uid))

"""Whole-job caps (memory, task count) with cgroups, where root can make them."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.limits import ResourceLimits

_CGROUP_FS = Path("/sys/fs/cgroup")
#: the cgroup, in each hierarchy, that holds one child per running job
CGROUP_NAME = "grader-sandbox"


def _cgroup_v2() -> bool:
    return (_CGROUP_FS / "cgroup.controllers").is_file()


@dataclass(frozen=True)
class JobCgroup:
    """Caps on a whole job that per-process rlimits cannot give: its memory and its task count.

    RLIMIT_AS bounds each process, so N processes may use N times as much; and files in the
    job's tmpfs mounts, or their inodes, are counted by no rlimit. A memory cgroup counts all of
    it (processes, tmpfs pages, kernel objects); a pids cgroup counts every task. cgroup v2 (one
    directory) or v1 (a ``memory`` and a ``pids`` directory). Only root can make one.
    """

    directories: tuple[Path, ...]

    @classmethod
    def create(cls, name: str, limits: ResourceLimits) -> JobCgroup | None:
        """A fresh cgroup ``name`` under :data:`CGROUP_NAME`, or None where cgroups cannot be written."""
        if os.geteuid() != 0:
            return None
        cls.discard(name)  # left by a launcher that was killed
        try:
            if _cgroup_v2():
                parent = _CGROUP_FS / CGROUP_NAME
                parent.mkdir(exist_ok=True)
                if not {"memory", "pids"} <= set((parent / "cgroup.controllers").read_text().split()):
                    (_CGROUP_FS / "cgroup.subtree_control").write_text("+memory +pids")
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
                job = parent / name
                job.mkdir()
                (job / "memory.max").write_text(str(limits.job_memory_bytes))
                if (job / "memory.swap.max").exists():
                    (job / "memory.swap.max").write_text("0")
                (job / "pids.max").write_text(str(limits.processes))
                return cls((job,))
            memory = _CGROUP_FS / "memory" / CGROUP_NAME / name
            pids = _CGROUP_FS / "pids" / CGROUP_NAME / name
            memory.mkdir(parents=True)
            pids.mkdir(parents=True)
            (memory / "memory.limit_in_bytes").write_text(str(limits.job_memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():  # no swapping around the cap
                (memory / "memory.memsw.limit_in_bytes").write_text(str(limits.job_memory_bytes))
            (pids / "pids.max").write_text(str(limits.processes))
            return cls((memory, pids))
        except OSError:
            cls.discard(name)
            return None

    def join(self) -> None:
        """Move the calling process into the job's cgroup (in the child, before exec)."""
        for directory in self.directories:
            with contextlib.suppress(OSError):
                (directory / "cgroup.procs").write_text(str(os.getpid()))

    def memory_exceeded(self) -> bool:
        """Did the kernel's OOM killer end a process of this job at its memory cap?"""
        for directory in self.directories:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError, ValueError):
                    for line in (directory / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
        return False

    @staticmethod
    def discard(name: str) -> None:
        """Remove the cgroup ``name`` wherever it exists (its processes must be gone)."""
        for hierarchy in (_CGROUP_FS, _CGROUP_FS / "memory", _CGROUP_FS / "pids"):
            directory = hierarchy / CGROUP_NAME / name
            for _ in range(50):
                if not directory.is_dir():
                    break
                try:
                    directory.rmdir()
                except OSError:
                    time.sleep(0.02)  # the last task is still exiting


def job_cgroup_name(uid: int) -> str:
    return f"job-{uid}"


def job_cgroups_available() -> bool:
    """Can this process cap whole jobs with cgroups (made and removed here to find out)?"""
    probe = JobCgroup.create(f"probe-{os.getpid()}", ResourceLimits())
    if probe is None:
        return False
    JobCgroup.discard(f"probe-{os.getpid()}")
    return True

"""What isolation this machine can give (``grader doctor``), and the refusal when it can give none."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.errors import SandboxUnavailable
from grader.sandbox.cgroups import _cgroup_v2, job_cgroups_available
from grader.sandbox.command import BWRAP_ENV, apply_limits, bwrap_command
from grader.sandbox.gpu import detect_gpus, gpu_report
from grader.sandbox.interpreter import Interpreter, find_interpreter
from grader.sandbox.jobs import SLOTS, UID_BASE
from grader.sandbox.limits import ResourceLimits
from grader.sandbox.seccomp import DENIED_SYSCALLS, write_seccomp_filter


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str


UID_FINDING = "distinct uid per job"
CGROUP_FINDING = "whole-job memory and process caps"
#: findings that weaken the sandbox when missing but do not make it unavailable
OPTIONAL_FINDINGS = (UID_FINDING, CGROUP_FINDING)


def doctor() -> list[Finding]:
    """What isolation this machine can give, and why not where it cannot."""
    findings = [Finding("linux", sys.platform.startswith("linux"), sys.platform)]
    bwrap = shutil.which("bwrap")
    findings.append(
        Finding(
            "bubblewrap",
            bwrap is not None,
            bwrap or "not installed: `apt-get install bubblewrap` (make setup does this)",
        )
    )
    try:
        import pyseccomp  # noqa: F401

        with tempfile.TemporaryDirectory() as tmp:
            write_seccomp_filter(Path(tmp) / "f.bpf")
        findings.append(Finding("seccomp", True, f"{len(DENIED_SYSCALLS)} syscalls denied"))
    except Exception as exc:
        findings.append(Finding("seccomp", False, f"{type(exc).__name__}: {exc}; install libseccomp2 and pyseccomp"))
    root = os.geteuid() == 0
    findings.append(
        Finding(
            UID_FINDING,
            root,
            f"uids {UID_BASE}–{UID_BASE + SLOTS - 1}"
            if root
            else "not root: every job runs as your own uid (process limits shared)",
        )
    )
    cgroups = root and job_cgroups_available()
    findings.append(
        Finding(
            CGROUP_FINDING,
            cgroups,
            "memory and task count of each whole job capped (cgroup " + ("v2)" if _cgroup_v2() else "v1)")
            if cgroups
            else "no writable cgroup fs (or not root): only per-process rlimits, so a job's processes together "
            "may use up to processes × memory_mb",
        )
    )
    try:
        interp = find_interpreter()
        findings.append(Finding("interpreter readable by the sandbox uid", True, str(interp.executable)))
    except SandboxUnavailable as exc:
        findings.append(Finding("interpreter readable by the sandbox uid", False, str(exc)))
        interp = None
    if bwrap and interp is not None:
        findings.append(_probe(interp))
    return findings


def gpu_findings() -> list[Finding]:
    """What a GPU worker on this machine would see: its GPUs, the device nodes and driver libraries a
    GPU job's sandbox gets, or that there is no GPU (GPU jobs are then graded on CPU). Never a failure
    of the sandbox itself: :func:`sandbox_available` does not read these."""
    return [Finding(name, ok, detail) for name, ok, detail in gpu_report(detect_gpus())]


def _probe(interp: Interpreter) -> Finding:
    """Actually start the interpreter in the sandbox and ask it what it sees."""
    uid = UID_BASE + SLOTS - 1 if os.geteuid() == 0 else os.getuid()
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp)
        os.chmod(job, 0o755)
        ipc = job / "ipc"
        ipc.mkdir()
        if os.geteuid() == 0:
            os.chown(ipc, uid, uid)
        cmd = bwrap_command(
            job=job, ipc_dir=ipc, uid=uid, limits=ResourceLimits(), interpreter=interp, seccomp_fd=None, kernel_args=[]
        )
        # replace the kernel boot with a probe
        probe = "import os, socket; print(os.getuid()); socket.create_connection(('127.0.0.1', 5432), timeout=1)"
        cmd = [*cmd[: cmd.index("-c") + 1], probe]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=lambda: apply_limits(ResourceLimits(), uid),
            check=False,
            env=BWRAP_ENV,
        )
    isolated = "ConnectionRefusedError" in result.stderr or "Network is unreachable" in result.stderr
    if result.returncode != 0 and isolated:
        return Finding("sandbox starts, network isolated", True, f"kernel uid {result.stdout.strip()}")
    if result.returncode == 0:
        return Finding("sandbox starts, network isolated", False, "the probe reached 127.0.0.1:5432 from inside")
    tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
    return Finding("sandbox starts, network isolated", False, f"bubblewrap failed: {tail}")


@functools.lru_cache(maxsize=1)
def require_sandbox() -> str:
    """Raise SandboxUnavailable (saying why and what to do) unless a sandbox can be built here.

    A cheap check (tools present, interpreter readable), made once per process; ``grader doctor``
    runs the full probe.
    """
    problems = []
    if not sys.platform.startswith("linux"):
        problems.append(f"the sandbox needs Linux (this is {sys.platform})")
    if shutil.which("bwrap") is None:
        problems.append("bubblewrap is not installed (`apt-get install bubblewrap`; `make setup` does it)")
    try:
        import pyseccomp  # noqa: F401
    except Exception as exc:  # ImportError, or OSError when libseccomp is missing
        problems.append(f"seccomp is unavailable ({type(exc).__name__}: {exc}; install libseccomp2)")
    try:
        find_interpreter()
    except SandboxUnavailable as exc:
        problems.append(str(exc))
    if problems:
        raise SandboxUnavailable(
            "cannot grade untrusted notebooks here: "
            + "; ".join(problems)
            + ". Fix that (see `grader doctor`), or grade code you trust with --unsafe-no-sandbox"
        )
    return "bubblewrap sandbox"


def sandbox_available() -> tuple[bool, str]:
    """(available, reason) for ``grader grade``'s refusal message."""
    missing = [f for f in doctor() if not f.ok and f.name not in OPTIONAL_FINDINGS]
    if not missing:
        return True, "sandboxed"
    return False, "; ".join(f"{f.name}: {f.detail}" for f in missing)

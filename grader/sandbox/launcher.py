"""The kernelspec's trusted launcher: ``python -m grader.sandbox launch --job DIR --uid N --limits JSON CONN``.

It runs outside the sandbox, prepares the job's private ipc directory (the only host path the
kernel can write), the job's cgroup and seccomp filter, binds the job's work files (``job/files``,
when the job has any) read-only into the work directory, starts bubblewrap (:mod:`.command`) as
the job's uid, enforces the wall-clock limit, and writes ``exit.json`` (what ended the kernel)
for the trusted side. See :mod:`grader.sandbox` for the whole design.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from grader.sandbox.cgroups import JobCgroup, job_cgroup_name
from grader.sandbox.command import BWRAP_ENV, apply_limits, bwrap_command
from grader.sandbox.gpu import GpuAccess
from grader.sandbox.interpreter import find_interpreter
from grader.sandbox.jobs import WORK_FILES, kill_uid
from grader.sandbox.limits import ResourceLimits
from grader.sandbox.seccomp import write_seccomp_filter


def _private_ipc_dir(job: Path, uid: int) -> tuple[Path, bool]:
    """``job/ipc``, owned by the job's uid; as root, a 1 MB tmpfs so it cannot fill the disk.

    Returns the directory and whether a tmpfs was mounted there (to unmount afterwards).
    """
    ipc_dir = job / "ipc"
    ipc_dir.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() != 0:
        return ipc_dir, False
    options = f"size=1m,nr_inodes=64,mode=0700,uid={uid},gid={uid}"
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(ipc_dir)]
    mounted = subprocess.run(mount, capture_output=True, check=False).returncode == 0
    if not mounted:
        os.chown(ipc_dir, uid, uid)
    return ipc_dir, mounted


def _connection_inside(connection_file: Path, ipc_dir: Path, uid: int) -> Path:
    """A read-only copy of the kernel's connection file where the kernel can read it."""
    inside = ipc_dir / "connection.json"
    shutil.copyfile(connection_file, inside)
    if os.geteuid() == 0:
        os.chown(inside, uid, uid)
    inside.chmod(0o400)
    return inside


def _start(
    job: Path,
    uid: int,
    limits: ResourceLimits,
    ipc_dir: Path,
    connection: Path,
    cgroup: JobCgroup | None,
    gpu: GpuAccess | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start bubblewrap with the seccomp filter, the rlimits, the job's cgroup and uid."""
    bpf = job / "seccomp.bpf"
    write_seccomp_filter(bpf)
    seccomp_fd = os.open(bpf, os.O_RDONLY)
    cmd = bwrap_command(
        job=job,
        ipc_dir=ipc_dir,
        uid=uid,
        limits=limits,
        interpreter=find_interpreter(),
        seccomp_fd=seccomp_fd,
        kernel_args=["-f", str(connection)],
        files=job / WORK_FILES if (job / WORK_FILES).is_dir() else None,
        gpu=gpu,
        env=env,
    )
    # the kernel's own output never reaches the runner; GRADER_SANDBOX_DEBUG keeps it in the job dir
    sink = (job / "kernel.log").open("wb") if os.environ.get("GRADER_SANDBOX_DEBUG") else subprocess.DEVNULL
    try:
        # bubblewrap stays in the sandbox as its pid 1, whose /proc/1/environ the kernel can read:
        # it must not carry the worker's environment (database URLs, tokens)
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            pass_fds=(seccomp_fd,),
            preexec_fn=lambda: apply_limits(limits, uid, cgroup, gpu=gpu is not None),
            close_fds=True,
            env=BWRAP_ENV,
        )
    finally:
        os.close(seccomp_fd)


def _exit_record(child: subprocess.Popen[bytes], *, wall_exceeded: bool, cgroup: JobCgroup | None) -> dict[str, object]:
    """What ended the kernel, for :meth:`grader.sandbox.jobs.SandboxJob.exit_cause`."""
    # bwrap's own status: the kernel's signal comes back as 128+N from its init
    code = child.returncode if child.returncode is not None else -signal.SIGKILL
    if code > 128:
        code = -(code - 128)
    memory_exceeded = cgroup is not None and cgroup.memory_exceeded()
    return {"returncode": code, "wall_clock_exceeded": wall_exceeded, "memory_exceeded": memory_exceeded}


def launch(
    *,
    job: Path,
    uid: int,
    limits: ResourceLimits,
    connection_file: Path,
    gpu: GpuAccess | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run one sandboxed kernel to completion (the kernelspec's process); returns its exit status.

    ``job`` is a fresh trusted directory; only ``job/ipc`` is visible inside the sandbox.
    ``gpu``: the one GPU the kernel sees; ``env``: more of its environment.
    """
    ipc_dir, mounted = _private_ipc_dir(job, uid)
    connection = _connection_inside(connection_file, ipc_dir, uid)
    cgroup = JobCgroup.create(job_cgroup_name(uid), limits)
    child = _start(job, uid, limits, ipc_dir, connection, cgroup, gpu, env)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: child.kill())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts reach the kernel as messages
    wall_exceeded = False
    try:
        status = child.wait(timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        child.kill()
        status = child.wait()
        wall_exceeded = True
    finally:
        record = _exit_record(child, wall_exceeded=wall_exceeded, cgroup=cgroup)
        (job / "exit.json").write_text(json.dumps(record))
        kill_uid(uid)
        if cgroup is not None:
            JobCgroup.discard(job_cgroup_name(uid))
        if mounted:
            subprocess.run(["umount", "-l", str(ipc_dir)], capture_output=True, check=False)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("launch", help="(kernelspec) run one sandboxed kernel")
    p.add_argument("--job", required=True, type=Path)
    p.add_argument("--uid", required=True, type=int)
    p.add_argument("--limits", required=True)
    p.add_argument("--gpu", help="(GPU jobs) the GpuAccess JSON: device nodes, driver libraries, environment")
    p.add_argument("--env", help="a JSON object of more variables for the kernel's environment")
    p.add_argument("connection_file", type=Path)
    args = parser.parse_args(argv)
    return launch(
        job=args.job,
        uid=args.uid,
        limits=ResourceLimits.from_json(args.limits),
        connection_file=args.connection_file,
        gpu=GpuAccess.from_json(args.gpu) if args.gpu else None,
        env={str(k): str(v) for k, v in json.loads(args.env).items()} if args.env else None,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

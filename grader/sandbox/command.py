"""The bubblewrap command line, and the rlimits and uid switch applied before it starts."""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Mapping
from pathlib import Path

from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.gpu import GpuAccess
from grader.sandbox.interpreter import Interpreter, editable_package_dirs
from grader.sandbox.limits import ResourceLimits

#: where the kernel's private work directory appears inside the sandbox
SANDBOX_HOME = "/home/learner"

#: the whole environment of the bubblewrap process (the kernel's own is set with --setenv)
BWRAP_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _passwd_files(job: Path, uid: int) -> tuple[Path, Path]:
    etc = job / "etc"
    etc.mkdir(exist_ok=True)
    passwd, group = etc / "passwd", etc / "group"
    passwd.write_text(
        f"root:x:0:0::/nonexistent:/usr/sbin/nologin\nlearner:x:{uid}:{uid}::{SANDBOX_HOME}:/usr/sbin/nologin\n"
    )
    group.write_text(f"root:x:0:\nlearner:x:{uid}:\n")
    return passwd, group


#: bubblewrap's isolation flags: every namespace, no nested user namespaces, dies with its parent
ISOLATION = ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session")

#: the read-only filesystem every job sees: (option, source, destination); ``-try`` mounts may be absent
FILESYSTEM = (
    ("--ro-bind", "/usr", "/usr"),
    ("--symlink", "usr/bin", "/bin"),
    ("--symlink", "usr/sbin", "/sbin"),
    ("--symlink", "usr/lib", "/lib"),
    ("--symlink", "usr/lib64", "/lib64"),
    ("--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"),
    ("--ro-bind-try", "/etc/alternatives", "/etc/alternatives"),
    ("--ro-bind-try", "/etc/localtime", "/etc/localtime"),
)

#: private, size-capped tmpfs mounts: (permissions, path)
SCRATCH = (("1777", "/dev/shm"), ("1777", "/tmp"), ("0700", SANDBOX_HOME))

#: the kernel's whole environment inside (bubblewrap's own is cleared by --clearenv)
KERNEL_ENV = {
    "HOME": SANDBOX_HOME,
    "USER": "learner",
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "PYTHONDONTWRITEBYTECODE": "1",
    "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def _filesystem(job: Path, uid: int, limits: ResourceLimits) -> list[str]:
    """/usr, a generated /etc/passwd and group, /proc, /dev and the private scratch mounts."""
    passwd, group = _passwd_files(job, uid)
    args = [*(arg for mount in FILESYSTEM[:5] for arg in mount), "--dir", "/etc"]
    args += [arg for mount in FILESYSTEM[5:] for arg in mount]
    args += [
        "--ro-bind",
        str(passwd),
        "/etc/passwd",
        "--ro-bind",
        str(group),
        "/etc/group",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    size = str(limits.disk_mb * 1024 * 1024)
    for perms, path in SCRATCH:
        args += ["--perms", perms, "--size", size, "--tmpfs", path]
    return args


def _work_files(files: Path | None) -> list[str]:
    """Each file under ``files`` bound read-only at the same path in the work directory (its folders made)."""
    if files is None:
        return []
    found = sorted(path for path in files.rglob("*") if path.is_file() and not path.is_symlink())
    inside = [f"{SANDBOX_HOME}/{path.relative_to(files).as_posix()}" for path in found]
    return [arg for path, where in zip(found, inside, strict=True) for arg in ("--ro-bind", str(path), where)]


def _course_mounts(interpreter: Interpreter, ipc_dir: Path) -> list[str]:
    """The interpreter, its site directories and the course package (read-only); the ipc dir (writable)."""
    args = [arg for mount in interpreter.mounts for arg in ("--ro-bind", str(mount), str(mount))]
    args += [arg for site_dir in interpreter.site_dirs for arg in ("--ro-bind-try", str(site_dir), str(site_dir))]
    args += [arg for package in editable_package_dirs() for arg in ("--ro-bind", str(package), str(package))]
    return [*args, "--bind", str(ipc_dir), str(ipc_dir)]


#: the variables numerical libraries read for their thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The kernel's thread-count variables for ``limits.threads`` (torch follows OMP_NUM_THREADS)."""
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


def bwrap_command(
    *,
    job: Path,
    ipc_dir: Path,
    uid: int,
    limits: ResourceLimits,
    interpreter: Interpreter,
    seccomp_fd: int | None,
    kernel_args: list[str],
    files: Path | None = None,
    gpu: GpuAccess | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``kernel_args`` under ``interpreter``.

    ``files``: a folder whose files appear, read-only, at the same paths in the work directory.
    ``gpu``: one GPU's device nodes and driver libraries (:mod:`grader.sandbox.gpu`), and its
    ``CUDA_VISIBLE_DEVICES``. ``env``: more of the kernel's environment (``MLCOURSE_PROFILE`` …).
    """
    cmd = [shutil.which("bwrap") or "bwrap", *ISOLATION, "--uid", str(uid), "--gid", str(uid), "--hostname", "sandbox"]
    cmd += _filesystem(job, uid, limits)
    cmd += _course_mounts(interpreter, ipc_dir)
    cmd += _work_files(files)
    cmd += gpu.bwrap_args() if gpu is not None else []
    # bubblewrap's own tmpfs (the root, /etc, /dev) would take any amount of writing: read-only
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_HOME, "--clearenv"]
    kernel_env = {**KERNEL_ENV, **thread_env(limits.threads), **(env or {}), **(gpu.env if gpu is not None else {})}
    cmd += [arg for key, value in kernel_env.items() for arg in ("--setenv", key, value)]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    boot = (
        "import site, sys\n"
        f"for d in {[str(d) for d in interpreter.site_dirs]!r}: site.addsitedir(d)\n"
        "from ipykernel.kernelapp import launch_new_instance\n"
        "launch_new_instance()\n"
    )
    return [*cmd, "--", str(interpreter.executable), "-I", "-c", boot, *kernel_args]


def rlimits(limits: ResourceLimits, *, gpu: bool = False) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for each rlimit of a sandboxed process.

    RLIMIT_CPU's hard limit is one second above the soft one: at the soft limit the kernel sends
    SIGXCPU (which names the cause); were they equal, it would send SIGKILL, which names nothing.
    ``gpu``: no address-space limit (the CUDA driver reserves tens of GB of virtual memory at
    start); the job's memory cgroup caps what it uses.
    """
    mb = 1024 * 1024
    address_space = resource.RLIM_INFINITY if gpu else limits.memory_mb * mb
    return [
        (resource.RLIMIT_AS, address_space, address_space),
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
        (resource.RLIMIT_NPROC, limits.processes, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def apply_limits(limits: ResourceLimits, uid: int, cgroup: JobCgroup | None = None, *, gpu: bool = False) -> None:
    """In the child, before exec: the job's cgroup, rlimits, then drop to the job's uid (if we are root)."""
    if cgroup is not None:
        cgroup.join()
    for which, soft, hard in rlimits(limits, gpu=gpu):
        resource.setrlimit(which, (soft, hard))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

"""The sandbox that a learner's kernel runs in.

Trust boundary (see ``docs/ARCHITECTURE.md``): pytest + nbval, the grading bundle and the
result file stay in the trusted process; only the learner's ipykernel runs in here. The kernel
is started through a kernelspec the grader builds (the notebook's own kernelspec is ignored)
whose ``argv`` is this module's launcher::

    python -m grader.sandbox launch --job DIR --uid N --limits JSON CONNECTION_FILE

The launcher runs trusted (outside), and starts the kernel as

- a distinct uid per concurrent job (a slot from :func:`job_slot`),
- in a cgroup of its own where root can make one (:class:`JobCgroup`): the memory and the task
  count of the whole job, which per-process rlimits cannot bound,
- under rlimits: address space, CPU seconds, processes, file size, open files, no core dumps,
- in bubblewrap with every namespace unshared (no network), a read-only minimal filesystem
  (``/usr``, the course environment, a generated ``/etc/passwd``; bubblewrap's own root and
  ``/dev`` remounted read-only), size-capped private ``/tmp``, ``/dev/shm`` and work
  directory, a cleared environment (bubblewrap's own too: it is the sandbox's pid 1, whose
  ``/proc/1/environ`` the kernel can read) and ``--die-with-parent``,
- with a seccomp deny list (:data:`DENIED_SYSCALLS`),
- killed from outside after a wall-clock limit.

ZMQ uses the ``ipc`` transport (Unix sockets in a per-job directory, the only host path the
kernel can write) because TCP cannot cross the empty network namespace. The kernel's
stdout/stderr go to ``/dev/null``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import AuthoringError, SandboxUnavailable

#: first uid handed to sandboxed jobs; slot N runs as UID_BASE + N
UID_BASE = 61000
#: concurrent jobs per machine (one uid each)
SLOTS = 64
#: where the kernel's private work directory appears inside the sandbox
SANDBOX_HOME = "/home/learner"

#: the whole environment of the bubblewrap process (the kernel's own is set with --setenv)
BWRAP_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: syscalls a notebook never needs and an attacker would like: answered with EPERM
DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "add_key",
    "request_key",
    "keyctl",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "fanotify_init",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "open_by_handle_at",
    "name_to_handle_at",
    "personality",
    "vhangup",
    "iopl",
    "ioperm",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed kernel (defaults suit a light exercise on 2 cores)."""

    #: address space (RLIMIT_AS); torch alone maps ~1.5 GB of virtual memory
    memory_mb: int = 3072
    #: CPU seconds of the kernel process (RLIMIT_CPU)
    cpu_s: int = 300
    #: processes and threads of the job's uid (RLIMIT_NPROC)
    processes: int = 128
    #: largest file the kernel may write (RLIMIT_FSIZE)
    file_mb: int = 64
    #: open file descriptors (RLIMIT_NOFILE)
    open_files: int = 512
    #: size of the private /tmp and of the work directory (tmpfs each)
    disk_mb: int = 128
    #: wall-clock limit of the whole kernel, enforced from outside
    wall_s: float = 600.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Limits:
        return cls(**json.loads(text))

    @property
    def job_memory_bytes(self) -> int:
        """The memory of the whole job (every process, and its tmpfs files), where cgroups cap it."""
        return (self.memory_mb + 3 * self.disk_mb) * 1024 * 1024

    @classmethod
    def for_notebook(cls, nb: Any) -> Limits:
        """The defaults, overridden by the solution's ``metadata.grader.limits`` (per exercise).

        Raises:
            AuthoringError: the overrides are not a mapping of known limits to positive numbers.
        """
        from grader.format import markers

        meta = nb.metadata.get(markers.META_GRADER, {})
        overrides = meta.get(markers.META_LIMITS, {}) if isinstance(meta, dict) else {}
        if not isinstance(overrides, dict):
            raise AuthoringError(
                f"metadata {markers.META_GRADER}.{markers.META_LIMITS} must map limit names to numbers "
                f'(e.g. {{"memory_mb": 4096}}), not {type(overrides).__name__}'
            )
        return cls().replace(**overrides) if overrides else cls()

    def replace(self, **changes: float) -> Limits:
        """A copy with some limits changed (e.g. an exercise's own overrides).

        Raises:
            AuthoringError: an unknown limit, or a value that is not a positive number (a whole
                number for every limit but ``wall_s``).
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(fields)
        if unknown:
            raise AuthoringError(
                f"unknown sandbox limits: {', '.join(sorted(unknown))}; known: {', '.join(fields)}"
            )
        checked: dict[str, float] = {}
        for name, value in changes.items():
            whole = name != "wall_s"
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not value > 0 or (whole and float(value) != int(value)) or value == float("inf"):
                kind = "a positive whole number" if whole else "a positive number of seconds"
                raise AuthoringError(f"sandbox limit {name} must be {kind}, not {value!r}")
            checked[name] = int(value) if whole else float(value)
        return dataclasses.replace(self, **checked)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the interpreter
def _readable_by_others(path: Path) -> bool:
    """Can a stranger uid reach and read ``path`` (every parent searchable)?"""
    try:
        path = path.resolve()
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs inside the sandbox, and the site directories it must see."""

    executable: Path
    site_dirs: tuple[Path, ...]

    @property
    def mounts(self) -> tuple[Path, ...]:
        """Host directories to bind read-only so the interpreter works inside."""
        dirs = {Path(sysconfig.get_paths()["purelib"]), Path(sys.prefix)}
        if not str(self.executable).startswith("/usr/"):
            dirs.add(Path(self.executable).resolve().parents[1])
        return tuple(sorted(d for d in dirs if not str(d).startswith("/usr/")))


def find_interpreter() -> Interpreter:
    """This environment's Python if a sandbox uid can read it, else a system Python of the same X.Y.

    A Python under a 0700 home directory (pyenv under /root, say) cannot be read by the sandbox
    uid; Debian's ``/usr/bin/python3.X`` runs the same environment's packages (same ABI).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site_dirs = tuple(
        Path(p) for p in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    )
    own = Path(sys.executable)
    if _readable_by_others(own):
        return Interpreter(own.resolve(), site_dirs)
    for candidate in (Path(f"/usr/bin/python{version}"), Path(f"/usr/local/bin/python{version}")):
        if candidate.exists() and _readable_by_others(candidate):
            return Interpreter(candidate.resolve(), site_dirs)
    raise SandboxUnavailable(
        f"the course's Python ({own.resolve()}) is not readable by the sandbox uid (a parent directory is "
        f"private) and no system python{version} was found; install Debian's python{version} "
        "(`apt-get install python3`) or create .venv from a Python outside a private home directory"
    )


# --------------------------------------------------------------------------- seccomp
def write_seccomp_filter(path: Path) -> None:
    """Compile the deny list into a BPF program that bubblewrap loads (``--seccomp FD``)."""
    import pyseccomp

    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(Exception):  # a syscall this kernel/arch does not have
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    with path.open("wb") as handle:
        flt.export_bpf(handle)


# --------------------------------------------------------------------------- job slots (uids)
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


# --------------------------------------------------------------------------- cgroups (whole-job caps)
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
    def create(cls, name: str, limits: Limits) -> JobCgroup | None:
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
    probe = JobCgroup.create(f"probe-{os.getpid()}", Limits())
    if probe is None:
        return False
    JobCgroup.discard(f"probe-{os.getpid()}")
    return True


# --------------------------------------------------------------------------- one job
_SIGNAL_CAUSES = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGSEGV: "crashed (segmentation fault, often memory exhaustion)",
    signal.SIGABRT: "crashed (aborted, often memory exhaustion)",
    signal.SIGBUS: "crashed (bus error)",
}


@dataclass(frozen=True)
class SandboxJob:
    """One grading job's sandbox: a uid, a trusted job directory, the limits."""

    directory: Path
    uid: int
    limits: Limits

    def spec(self) -> str:
        """What the trusted pytest process needs to start this job's kernel (``--grader-sandbox``)."""
        return json.dumps({"job": str(self.directory), "uid": self.uid, "limits": dataclasses.asdict(self.limits)})

    @classmethod
    def from_spec(cls, text: str) -> SandboxJob:
        data = json.loads(text)
        return cls(Path(data["job"]), int(data["uid"]), Limits(**data["limits"]))

    @property
    def ipc_prefix(self) -> Path:
        """ZMQ ipc endpoint prefix: the kernel's sockets are ``<prefix>-<port>``."""
        return self.directory / "ipc" / "kernel"

    def kernel_argv(self) -> list[str]:
        """The kernelspec argv: this module's launcher, run trusted, which starts the sandbox."""
        return [sys.executable, "-m", "grader.sandbox", "launch", "--job", str(self.directory),
                "--uid", str(self.uid), "--limits", self.limits.to_json(), "{connection_file}"]

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
def sandbox_job(limits: Limits) -> Iterator[SandboxJob]:
    """A uid slot and a job directory for one sandboxed kernel; everything is removed afterwards."""
    with job_slot() as slot:
        directory = Path(tempfile.mkdtemp(prefix="grader-job-"))
        directory.chmod(0o711)  # the sandbox uid may pass through (to its ipc dir), never list
        try:
            yield SandboxJob(directory, slot.uid, limits)
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


# --------------------------------------------------------------------------- the command
def _passwd_files(job: Path, uid: int) -> tuple[Path, Path]:
    etc = job / "etc"
    etc.mkdir(exist_ok=True)
    passwd, group = etc / "passwd", etc / "group"
    passwd.write_text(
        f"root:x:0:0::/nonexistent:/usr/sbin/nologin\nlearner:x:{uid}:{uid}::{SANDBOX_HOME}:/usr/sbin/nologin\n"
    )
    group.write_text(f"root:x:0:\nlearner:x:{uid}:\n")
    return passwd, group


def bwrap_command(
    *,
    job: Path,
    ipc_dir: Path,
    uid: int,
    limits: Limits,
    interpreter: Interpreter,
    seccomp_fd: int | None,
    kernel_args: list[str],
) -> list[str]:
    """The bubblewrap command line that runs ``kernel_args`` under ``interpreter``."""
    passwd, group = _passwd_files(job, uid)
    size = str(limits.disk_mb * 1024 * 1024)
    cmd = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--uid",
        str(uid),
        "--gid",
        str(uid),
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--dir",
        "/etc",
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--ro-bind-try",
        "/etc/localtime",
        "/etc/localtime",
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
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/dev/shm",
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--perms",
        "0700",
        "--size",
        size,
        "--tmpfs",
        SANDBOX_HOME,
    ]
    for mount in interpreter.mounts:
        cmd += ["--ro-bind", str(mount), str(mount)]
    for site_dir in interpreter.site_dirs:
        cmd += ["--ro-bind-try", str(site_dir), str(site_dir)]
    for package in _editable_package_dirs():
        cmd += ["--ro-bind", str(package), str(package)]
    cmd += ["--bind", str(ipc_dir), str(ipc_dir)]
    # bubblewrap's own tmpfs (the root, /etc, /dev) would take any amount of writing: read-only
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_HOME, "--clearenv"]
    for key, value in {
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
    }.items():
        cmd += ["--setenv", key, value]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    boot = (
        "import site, sys\n"
        f"for d in {[str(d) for d in interpreter.site_dirs]!r}: site.addsitedir(d)\n"
        "from ipykernel.kernelapp import launch_new_instance\n"
        "launch_new_instance()\n"
    )
    return [*cmd, "--", str(interpreter.executable), "-I", "-c", boot, *kernel_args]


def _editable_package_dirs() -> list[Path]:
    """The course's own packages (installed editable): only ``mlcourse`` is visible inside."""
    import mlcourse

    return [Path(mlcourse.__file__).resolve().parent]


def rlimits(limits: Limits) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for each rlimit of a sandboxed process.

    RLIMIT_CPU's hard limit is one second above the soft one: at the soft limit the kernel sends
    SIGXCPU (which names the cause); were they equal, it would send SIGKILL, which names nothing.
    """
    mb = 1024 * 1024
    return [
        (resource.RLIMIT_AS, limits.memory_mb * mb, limits.memory_mb * mb),
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
        (resource.RLIMIT_NPROC, limits.processes, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def _apply_limits(limits: Limits, uid: int, cgroup: JobCgroup | None = None) -> None:
    """In the child, before exec: the job's cgroup, rlimits, then drop to the job's uid (if we are root)."""
    if cgroup is not None:
        cgroup.join()
    for which, soft, hard in rlimits(limits):
        resource.setrlimit(which, (soft, hard))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def launch(*, job: Path, uid: int, limits: Limits, connection_file: Path) -> int:
    """Run one sandboxed kernel to completion (the kernelspec's process); returns its exit status.

    ``job`` is a fresh trusted directory; only ``job/ipc`` is visible inside the sandbox.
    """
    ipc_dir = job / "ipc"
    ipc_dir.mkdir(mode=0o700, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        # a tiny tmpfs: the only writable host path inside cannot fill the disk
        mounted = (
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size=1m,nr_inodes=64,mode=0700,uid={uid},gid={uid}",
                    "tmpfs",
                    str(ipc_dir),
                ],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
        if not mounted:
            os.chown(ipc_dir, uid, uid)
    inside_connection = ipc_dir / "connection.json"
    shutil.copyfile(connection_file, inside_connection)
    if os.geteuid() == 0:
        os.chown(inside_connection, uid, uid)
    inside_connection.chmod(0o400)
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
        kernel_args=["-f", str(inside_connection)],
    )
    # the kernel's own output never reaches the runner; GRADER_SANDBOX_DEBUG keeps it in the job dir
    sink = (job / "kernel.log").open("wb") if os.environ.get("GRADER_SANDBOX_DEBUG") else subprocess.DEVNULL
    cgroup = JobCgroup.create(job_cgroup_name(uid), limits)
    child = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=sink,
        stderr=sink,
        pass_fds=(seccomp_fd,),
        preexec_fn=lambda: _apply_limits(limits, uid, cgroup),
        close_fds=True,
        # bubblewrap stays in the sandbox as its pid 1, whose /proc/1/environ the kernel can read:
        # it must not carry the worker's environment (database URLs, tokens)
        env=BWRAP_ENV,
    )
    os.close(seccomp_fd)

    def stop(signum: int, frame: object) -> None:
        child.kill()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts reach the kernel as messages
    wall_exceeded = False
    try:
        status = child.wait(timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        child.kill()
        status = child.wait()
        wall_exceeded = True
    finally:
        # bwrap's own status: the kernel's signal comes back as 128+N from its init
        code = child.returncode if child.returncode is not None else -signal.SIGKILL
        if code > 128:
            code = -(code - 128)
        memory_exceeded = cgroup is not None and cgroup.memory_exceeded()
        (job / "exit.json").write_text(json.dumps(
            {"returncode": code, "wall_clock_exceeded": wall_exceeded, "memory_exceeded": memory_exceeded}
        ))
        kill_uid(uid)
        if cgroup is not None:
            JobCgroup.discard(job_cgroup_name(uid))
        if mounted:
            subprocess.run(["umount", "-l", str(ipc_dir)], capture_output=True, check=False)
    return status


# --------------------------------------------------------------------------- doctor
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
            job=job, ipc_dir=ipc, uid=uid, limits=Limits(), interpreter=interp, seccomp_fd=None, kernel_args=[]
        )
        # replace the kernel boot with a probe
        probe = "import os, socket; print(os.getuid()); socket.create_connection(('127.0.0.1', 5432), timeout=1)"
        cmd = [*cmd[: cmd.index("-c") + 1], probe]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=lambda: _apply_limits(Limits(), uid),
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
            "cannot grade untrusted notebooks here: " + "; ".join(problems)
            + ". Fix that (see `grader doctor`), or grade code you trust with --unsafe-no-sandbox"
        )
    return "bubblewrap sandbox"


def sandbox_available() -> tuple[bool, str]:
    """(available, reason) for ``grader grade``'s refusal message."""
    missing = [f for f in doctor() if not f.ok and f.name not in OPTIONAL_FINDINGS]
    if not missing:
        return True, "sandboxed"
    return False, "; ".join(f"{f.name}: {f.detail}" for f in missing)


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("launch", help="(kernelspec) run one sandboxed kernel")
    p.add_argument("--job", required=True, type=Path)
    p.add_argument("--uid", required=True, type=int)
    p.add_argument("--limits", required=True)
    p.add_argument("connection_file", type=Path)
    args = parser.parse_args(argv)
    return launch(
        job=args.job, uid=args.uid, limits=Limits.from_json(args.limits), connection_file=args.connection_file
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

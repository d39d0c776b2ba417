"""The sandbox's parts, without a kernel: limits, exit causes, the bubblewrap command, doctor.

A few tests start bubblewrap directly with a one-line Python probe (a fraction of a second
each) where the answer can only come from inside; they are skipped where bubblewrap or root is
missing. The real kernel in the real sandbox is the hostile suite's business
(``tests/integration/test_hostile.py``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from nbformat import v4

from grader import cli
from grader.errors import AuthoringError, SandboxUnavailable
from grader.sandbox.cgroups import JobCgroup, job_cgroups_available
from grader.sandbox.command import BWRAP_ENV, apply_limits, bwrap_command, rlimits
from grader.sandbox.doctor import CGROUP_FINDING, UID_FINDING, doctor, require_sandbox, sandbox_available
from grader.sandbox.interpreter import Interpreter, find_interpreter
from grader.sandbox.jobs import SandboxJob, kill_uid, processes_of
from grader.sandbox.limits import ResourceLimits
from grader.sandbox.seccomp import write_seccomp_filter
from grader.settings import find_root

#: a uid of its own for the probes (not one a grader on this machine would hand out)
PROBE_UID = 61463
#: a uid nothing in the suite runs as (the probes' uid may be busy: another worker can be probing)
UNUSED_UID = 61473


def _notebook(metadata: dict[str, object]) -> object:
    nb = v4.new_notebook()
    nb.metadata.update(metadata)
    return nb


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({}, ResourceLimits()),
        ({"grader": {"exercise": "03"}}, ResourceLimits()),
        ({"grader": {"limits": {}}}, ResourceLimits()),
        ({"grader": {"limits": {"memory_mb": 4096, "cpu_s": 600}}}, ResourceLimits(memory_mb=4096, cpu_s=600)),
        ({"grader": {"limits": {"wall_s": 30.5, "disk_mb": 16.0}}}, ResourceLimits(wall_s=30.5, disk_mb=16)),
    ],
)
def test_limits_come_from_the_solution_metadata(metadata: dict[str, object], expected: ResourceLimits) -> None:
    """Are the defaults used unless the solution's metadata.grader.limits overrides some of them?"""
    assert ResourceLimits.for_notebook(_notebook(metadata)) == expected


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ({"memroy_mb": 4096}, "unknown sandbox limits: memroy_mb; known: memory_mb, cpu_s"),
        ({"memory_mb": -1}, "sandbox limit memory_mb must be a positive whole number, not -1"),
        ({"memory_mb": 0}, "must be a positive whole number, not 0"),
        ({"memory_mb": "lots"}, "must be a positive whole number, not 'lots'"),
        ({"processes": True}, "must be a positive whole number, not True"),
        ({"cpu_s": 1.5}, "sandbox limit cpu_s must be a positive whole number, not 1.5"),
        ({"wall_s": 0}, "sandbox limit wall_s must be a positive number of seconds, not 0"),
        ({"wall_s": float("inf")}, "must be a positive number of seconds, not inf"),
        ({"wall_s": float("nan")}, "not nan"),
    ],
)
def test_bad_limits_are_an_authoring_error_that_names_them(limits: dict[str, object], says: str) -> None:
    """Does a misspelt limit or a value that is not a positive number stop the author with its name?"""
    with pytest.raises(AuthoringError) as raised:
        ResourceLimits.for_notebook(_notebook({"grader": {"limits": limits}}))
    assert says in str(raised.value)


def test_limits_that_are_not_a_mapping_are_refused() -> None:
    """Is metadata.grader.limits that is a list, not a mapping, refused with an example?"""
    with pytest.raises(AuthoringError, match=r'grader.limits must map limit names to numbers \(e.g. {"memory_mb"'):
        ResourceLimits.for_notebook(_notebook({"grader": {"limits": [4096]}}))


def test_replace_keeps_the_other_limits_and_round_trips_through_json() -> None:
    """Does replace change only what it names, and does a job spec carry the limits unchanged?"""
    limits = ResourceLimits().replace(memory_mb=1024, wall_s=60)
    assert (limits.memory_mb, limits.wall_s, limits.cpu_s) == (1024, 60.0, ResourceLimits().cpu_s)
    assert ResourceLimits.from_json(limits.to_json()) == limits
    job = SandboxJob(Path("/tmp/job"), 61000, limits)
    assert SandboxJob.from_spec(job.spec()) == job


def test_rlimits_let_the_cpu_limit_name_itself() -> None:
    """Is RLIMIT_CPU's hard limit above the soft one (SIGXCPU first, not a bare SIGKILL), the others equal?"""
    limits = ResourceLimits(memory_mb=1024, cpu_s=20, processes=64, file_mb=8, open_files=100)
    table = {which: (soft, hard) for which, soft, hard in rlimits(limits)}
    mb = 1024 * 1024
    assert table == {
        resource.RLIMIT_AS: (1024 * mb, 1024 * mb),
        resource.RLIMIT_CPU: (20, 21),
        resource.RLIMIT_NPROC: (64, 64),
        resource.RLIMIT_FSIZE: (8 * mb, 8 * mb),
        resource.RLIMIT_NOFILE: (100, 100),
        resource.RLIMIT_CORE: (0, 0),
    }


# --- exit causes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_json", "cause"),
    [
        ({"returncode": -signal.SIGXCPU}, "CPU time limit exceeded (20 s)"),
        ({"returncode": -signal.SIGKILL, "wall_clock_exceeded": True}, "wall-clock limit exceeded (60 s)"),
        ({"returncode": -signal.SIGKILL, "memory_exceeded": True}, "memory limit exceeded (1024 MB)"),
        ({"returncode": -signal.SIGXCPU, "memory_exceeded": True}, "CPU time limit exceeded (20 s)"),
        ({"returncode": 0, "memory_exceeded": True}, None),
        ({"returncode": -signal.SIGXFSZ}, "file size limit exceeded"),
        ({"returncode": -signal.SIGSEGV}, "crashed (segmentation fault, often memory exhaustion)"),
        ({"returncode": -signal.SIGABRT}, "crashed (aborted, often memory exhaustion)"),
        ({"returncode": 0}, None),
        ({"returncode": 1}, None),
        ({"returncode": -signal.SIGKILL}, None),
        ({"returncode": -200}, None),
        (None, None),
        ("not json", None),
    ],
)
def test_exit_cause_names_the_limit_that_ended_the_kernel(tmp_path: Path, exit_json: object, cause: str | None) -> None:
    """Does the launcher's exit record become the limit a learner hit, and nothing for a normal end?"""
    if exit_json is not None:
        text = exit_json if isinstance(exit_json, str) else json.dumps(exit_json)
        (tmp_path / "exit.json").write_text(text)
    job = SandboxJob(tmp_path, 61000, ResourceLimits(memory_mb=1024, cpu_s=20, wall_s=60))
    assert job.exit_cause() == cause


# --- the bubblewrap command -----------------------------------------------------------------


def _command(tmp_path: Path, limits: ResourceLimits | None = None, seccomp_fd: int | None = 7) -> list[str]:
    ipc = tmp_path / "ipc"
    ipc.mkdir(exist_ok=True)
    interpreter = Interpreter(Path("/usr/bin/python3"), (Path("/usr/lib/python3/dist-packages"),))
    return bwrap_command(
        job=tmp_path,
        ipc_dir=ipc,
        uid=PROBE_UID,
        limits=limits or ResourceLimits(),
        interpreter=interpreter,
        seccomp_fd=seccomp_fd,
        kernel_args=["-f", "c.json"],
    )


@pytest.mark.parametrize(
    "flag",
    ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--clearenv", "--new-session"],
)
def test_the_command_isolates(tmp_path: Path, flag: str) -> None:
    """Does the bubblewrap command unshare every namespace, clear the environment and die with its parent?"""
    assert flag in _command(tmp_path)


def _sources(command: list[str]) -> list[Path]:
    """The host paths a bubblewrap command binds into the sandbox."""
    binds = ("--bind", "--ro-bind", "--ro-bind-try", "--bind-try", "--dev-bind", "--dev-bind-try")
    return [Path(command[i + 1]) for i, arg in enumerate(command) if arg in binds]


def test_the_command_binds_neither_the_course_nor_its_secrets(tmp_path: Path) -> None:
    """Is nothing of the repository bound but the environment and the course package: no solutions, no _build?"""
    root = find_root(Path(__file__).parent)
    command = _command(tmp_path)
    for source in _sources(command):
        resolved = source.resolve()
        assert resolved not in (root, *root.parents), f"{source} exposes the repository"
        for secret in (root / "solutions", root / "_build", root / "grader"):
            assert resolved != secret and secret not in resolved.parents, f"{source} exposes {secret}"
    assert root / "mlcourse" in _sources(command)


def test_the_command_makes_the_filesystem_read_only_but_for_capped_tmpfs(tmp_path: Path) -> None:
    """Is / read-only, and is every writable tmpfs (/tmp, /dev/shm, the home) given a size?"""
    command = _command(tmp_path, ResourceLimits(disk_mb=32))
    assert command[command.index("--remount-ro") + 1] == "/dev"
    assert "/" in [command[i + 1] for i, arg in enumerate(command) if arg == "--remount-ro"]
    tmpfs = [command[i + 1] for i, arg in enumerate(command) if arg == "--tmpfs"]
    assert sorted(tmpfs) == ["/dev/shm", "/home/learner", "/tmp"]
    for i, arg in enumerate(command):
        if arg == "--tmpfs":
            assert command[i - 2 : i] == ["--size", str(32 * 1024 * 1024)]


def test_the_command_sets_only_its_own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Does no variable of the grader's environment (a database URL, a token) reach the kernel?"""
    monkeypatch.setenv("GRADER_DATABASE_URL", "postgresql://grader:secret@db/grades")
    command = _command(tmp_path)
    names = [command[i + 1] for i, arg in enumerate(command) if arg == "--setenv"]
    assert "GRADER_DATABASE_URL" not in names and "secret" not in " ".join(command)
    assert set(BWRAP_ENV) == {"PATH", "LANG"}


def test_the_kernel_starts_as_many_library_threads_as_its_limit(tmp_path: Path) -> None:
    """Do OpenMP, BLAS and torch get limits.threads (1 by default), so concurrent jobs share the cores?"""
    for limits, expected in ((ResourceLimits(), "1"), (ResourceLimits(threads=4), "4")):
        command = _command(tmp_path, limits)
        env = {command[i + 1]: command[i + 2] for i, arg in enumerate(command) if arg == "--setenv"}
        assert {env[name] for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} == {expected}


def test_the_command_loads_the_seccomp_filter_when_given(tmp_path: Path) -> None:
    """Is the seccomp program passed by its descriptor, and left out when there is none?"""
    command = _command(tmp_path, seccomp_fd=7)
    assert command[command.index("--seccomp") + 1] == "7"
    assert "--seccomp" not in _command(tmp_path, seccomp_fd=None)


# --- probes: bubblewrap started directly --------------------------------------------------

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0, reason="needs bubblewrap and root (a uid of its own)"
)


def _inside(tmp_path: Path, code: str, *, seccomp: bool = True) -> str:
    """Run ``code`` under the sandbox's command (seccomp, rlimits, uid) and return its stdout."""
    ipc = tmp_path / "ipc"
    ipc.mkdir(exist_ok=True)
    os.chown(ipc, PROBE_UID, PROBE_UID)
    tmp_path.chmod(0o711)
    limits = ResourceLimits(memory_mb=1024, disk_mb=8)
    bpf = tmp_path / "seccomp.bpf"
    write_seccomp_filter(bpf)
    fd = os.open(bpf, os.O_RDONLY)
    try:
        command = bwrap_command(
            job=tmp_path,
            ipc_dir=ipc,
            uid=PROBE_UID,
            limits=limits,
            interpreter=find_interpreter(),
            seccomp_fd=fd if seccomp else None,
            kernel_args=[],
        )
        command = [*command[: command.index("-c") + 1], code]
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=(fd,),
            preexec_fn=lambda: apply_limits(limits, PROBE_UID),
            env=BWRAP_ENV,
            check=False,
        )
    finally:
        os.close(fd)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip()


UNSHARE_USER = (
    "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
    "print(libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))"
)
TRY = "def t(f):\n    try:\n        f()\n    except OSError as e:\n        return e.strerror\n    return 'ok'\n"


@needs_bwrap
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("import os; print(os.getuid(), os.getgid())", f"{PROBE_UID} {PROBE_UID}", id="own-uid"),
        pytest.param(
            TRY + "import socket; print(t(lambda: socket.create_connection(('1.1.1.1', 80), 1)))",
            "Network is unreachable",
            id="no-network",
        ),
        pytest.param(
            TRY + "print(t(lambda: open('/new-file', 'w')), t(lambda: open('/etc/x', 'w')))",
            "Read-only file system Read-only file system",
            id="read-only-root",
        ),
        pytest.param(
            TRY + "print(t(lambda: open('/dev/shm/x', 'wb').write(bytes(9 << 20))))",
            "No space left on device",
            id="capped-dev-shm",
        ),
        pytest.param(
            "print(open('/proc/1/environ').read().replace(chr(0), ' ').strip())",
            "PATH=/usr/bin:/bin LANG=C.UTF-8",
            id="bwrap-environment",
        ),
        pytest.param(
            "import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\nchild = os.fork()\n"
            "if child == 0:\n    time.sleep(5)\n    os._exit(0)\n"
            "print(libc.ptrace(16, child, 0, 0), os.strerror(ctypes.get_errno()))\nos.kill(child, 9)",
            "-1 Operation not permitted",
            id="ptrace-of-own-child-denied",
        ),
        pytest.param(
            "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
            "[1, 2]",
            id="own-pid-namespace",
        ),
        pytest.param(UNSHARE_USER, "-1 Operation not permitted", id="no-user-namespace-seccomp"),
    ],
)
def test_what_the_sandbox_sees(code: str, expected: str) -> None:
    """From inside, is the world what the sandbox promises?"""
    job = Path(tempfile.mkdtemp(prefix="grader-unit-"))  # under /tmp: searchable by the sandbox uid
    try:
        assert _inside(job, code) == expected
    finally:
        shutil.rmtree(job, ignore_errors=True)


@needs_bwrap
def test_bubblewrap_alone_refuses_new_user_namespaces() -> None:
    """Without the seccomp filter, does --disable-userns still stop a new user namespace (a second layer)?"""
    job = Path(tempfile.mkdtemp(prefix="grader-unit-"))
    try:
        assert _inside(job, UNSHARE_USER, seccomp=False) == "-1 No space left on device"
    finally:
        shutil.rmtree(job, ignore_errors=True)


# --- job cgroups ----------------------------------------------------------------------------


def test_a_job_cgroup_caps_memory_and_tasks_and_is_removed() -> None:
    """Does a job's cgroup carry its memory (with room for its tmpfs) and task caps, and vanish when discarded?"""
    if not job_cgroups_available():
        pytest.skip("no writable cgroups here (not root, or none mounted)")
    limits = ResourceLimits(memory_mb=100, disk_mb=10, processes=32)
    cgroup = JobCgroup.create(f"unit-{os.getpid()}", limits)
    assert cgroup is not None
    try:
        values = {}
        for directory in cgroup.directories:
            for name in ("memory.max", "memory.limit_in_bytes", "pids.max"):
                if (directory / name).exists():
                    values[name.split(".")[0]] = (directory / name).read_text().strip()
        assert values == {"memory": str(130 * 1024 * 1024), "pids": "32"}
        assert not cgroup.memory_exceeded()
    finally:
        JobCgroup.discard(f"unit-{os.getpid()}")
    assert not [d for d in cgroup.directories if d.exists()]


# --- slots and processes ------------------------------------------------------------------


def test_kill_uid_never_kills_root_or_the_caller() -> None:
    """Is killing "every process of a uid" refused for root and for the grader's own uid?"""
    kill_uid(0, timeout_s=0.1)
    kill_uid(os.getuid(), timeout_s=0.1)
    assert os.getpid() in processes_of(os.getuid())


def test_processes_of_an_unused_uid_is_empty() -> None:
    assert processes_of(UNUSED_UID) == []


# --- doctor and the refusal -----------------------------------------------------------------


def test_doctor_reports_each_finding() -> None:
    """Does doctor name every thing it checked, in order, with a detail for each?"""
    findings = doctor()
    names = [f.name for f in findings]
    expected = [
        "linux",
        "bubblewrap",
        "seccomp",
        UID_FINDING,
        CGROUP_FINDING,
        "interpreter readable by the sandbox uid",
    ]
    assert names[: len(expected)] == expected
    if shutil.which("bwrap"):
        assert names[len(expected) :] == ["sandbox starts, network isolated"]
    assert all(f.detail for f in findings)


def test_doctor_says_how_to_install_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bubblewrap, does doctor's finding name the package, and the sandbox count as unavailable?"""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    finding = next(f for f in doctor() if f.name == "bubblewrap")
    assert not finding.ok and "apt-get install bubblewrap" in finding.detail
    available, reason = sandbox_available()
    assert not available and "bubblewrap: not installed" in reason


@pytest.mark.skipif(shutil.which("bwrap") is None or os.geteuid() != 0, reason="needs bubblewrap and root")
def test_grader_doctor_exits_zero_here(capsys: pytest.CaptureFixture[str]) -> None:
    """Does `grader doctor` find a working sandbox on this machine (exit code 0)?"""
    assert cli.main(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "sandboxed grading: available"


def test_require_sandbox_names_the_fix_and_the_unsafe_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bubblewrap, does the refusal say what to install, where to look, and how to grade trusted code?"""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    require_sandbox.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as raised:
            require_sandbox()
    finally:
        require_sandbox.cache_clear()
    message = str(raised.value)
    assert message.startswith("cannot grade untrusted notebooks here: bubblewrap is not installed")
    assert "apt-get install bubblewrap" in message
    assert "grader doctor" in message and "--unsafe-no-sandbox" in message
    assert raised.value.exit_code == 10

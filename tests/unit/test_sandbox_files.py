"""An exercise's files in the sandbox: each one bound read-only into the kernel's work directory.

The trusted side copies them into the job directory (:meth:`SandboxJob.provide_files`), the
launcher binds each at the same relative path under the sandbox's home; from inside they read,
and neither writing, replacing nor deleting them works.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from grader.sandbox.command import BWRAP_ENV, SANDBOX_HOME, apply_limits, bwrap_command
from grader.sandbox.interpreter import Interpreter, find_interpreter
from grader.sandbox.jobs import WORK_FILES, SandboxJob, place_files
from grader.sandbox.limits import ResourceLimits
from grader.sandbox.seccomp import write_seccomp_filter

#: a uid of its own for the probes (not one a grader hands out, nor test_sandbox's)
PROBE_UID = 61464
CSV = "id,priority\n1,high\n"


def _sources(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tickets.csv").write_text(CSV)
    (tmp_path / "src" / "logo.png").write_bytes(b"\x89PNG")
    return {"data/tickets.csv": tmp_path / "src" / "tickets.csv", "logo.png": tmp_path / "src" / "logo.png"}


def test_place_files_makes_read_only_copies_in_traversable_folders(tmp_path: Path) -> None:
    """Are the copies read-only for everyone, and their folders passable by the sandbox's uid?"""
    target = tmp_path / "work"
    target.mkdir()
    place_files(_sources(tmp_path), target)
    assert (target / "data" / "tickets.csv").read_text() == CSV
    assert stat.S_IMODE((target / "data" / "tickets.csv").stat().st_mode) == 0o444
    assert stat.S_IMODE((target / "data").stat().st_mode) == 0o755


def test_place_files_keeps_what_is_there_when_asked(tmp_path: Path) -> None:
    """In a learner's own folder, is an existing file left as it is, and only the missing one copied?"""
    target = tmp_path / "work"
    (target / "data").mkdir(parents=True)
    (target / "data" / "tickets.csv").write_text("mine")
    place_files(_sources(tmp_path), target, keep_existing=True)
    assert (target / "data" / "tickets.csv").read_text() == "mine"
    assert (target / "logo.png").read_bytes() == b"\x89PNG"


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape.csv", "data/../../x", ""])
def test_place_files_refuses_a_path_out_of_the_folder(tmp_path: Path, name: str) -> None:
    """Is a path that is absolute or climbs out refused, even from trusted callers?"""
    (tmp_path / "x").write_text("x")
    with pytest.raises(ValueError, match="relative path inside it"):
        place_files({name: tmp_path / "x"}, tmp_path / "work")


def _command(job: Path, files: Path | None) -> list[str]:
    ipc = job / "ipc"
    ipc.mkdir(exist_ok=True)
    interpreter = Interpreter(Path("/usr/bin/python3"), (Path("/usr/lib/python3/dist-packages"),))
    return bwrap_command(
        job=job,
        ipc_dir=ipc,
        uid=PROBE_UID,
        limits=ResourceLimits(),
        interpreter=interpreter,
        seccomp_fd=None,
        kernel_args=[],
        files=files,
    )


def test_the_command_binds_each_file_read_only_into_the_home(tmp_path: Path) -> None:
    """Is each job file bound read-only at its path under the home, after the home's tmpfs is made?"""
    job = SandboxJob(tmp_path, PROBE_UID, ResourceLimits())
    job.provide_files(_sources(tmp_path))
    command = _command(tmp_path, tmp_path / WORK_FILES)
    binds = {command[i + 2]: command[i + 1] for i, arg in enumerate(command) if arg == "--ro-bind"}
    assert binds[f"{SANDBOX_HOME}/data/tickets.csv"] == str(tmp_path / WORK_FILES / "data" / "tickets.csv")
    assert binds[f"{SANDBOX_HOME}/logo.png"] == str(tmp_path / WORK_FILES / "logo.png")
    home = next(i for i, arg in enumerate(command) if arg == "--tmpfs" and command[i + 1] == SANDBOX_HOME)
    assert all(command.index(where) > home for where in binds if where.startswith(SANDBOX_HOME))
    assert not [arg for arg in _command(tmp_path, None) if arg.startswith(f"{SANDBOX_HOME}/")]


needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None or os.geteuid() != 0, reason="needs bubblewrap and root (a uid of its own)"
)

PROBE = """
import os
def t(f):
    try:
        f()
    except OSError as e:
        return e.strerror
    return 'ok'
print(open('data/tickets.csv').read().splitlines()[1])
print(t(lambda: open('data/tickets.csv', 'a').write('x')))
print(t(lambda: os.remove('data/tickets.csv')))
print(t(lambda: os.chmod('data/tickets.csv', 0o666)))
print(t(lambda: open('data/mine.csv', 'w').write('x')))
"""


@needs_bwrap
def test_from_inside_the_files_read_but_cannot_be_changed() -> None:
    """From inside, does the shipped file read and refuse writing, deleting and chmod (its folder stays usable)?"""
    job = Path(tempfile.mkdtemp(prefix="grader-unit-"))  # under /tmp: passable by the sandbox uid
    try:
        job.chmod(0o711)
        source = job / "source.csv"
        source.write_text(CSV)
        SandboxJob(job, PROBE_UID, ResourceLimits()).provide_files({"data/tickets.csv": source})
        ipc = job / "ipc"
        ipc.mkdir()
        os.chown(ipc, PROBE_UID, PROBE_UID)
        limits = ResourceLimits(memory_mb=1024, disk_mb=8)
        bpf = job / "seccomp.bpf"
        write_seccomp_filter(bpf)
        fd = os.open(bpf, os.O_RDONLY)
        try:
            command = bwrap_command(
                job=job,
                ipc_dir=ipc,
                uid=PROBE_UID,
                limits=limits,
                interpreter=find_interpreter(),
                seccomp_fd=fd,
                kernel_args=[],
                files=job / WORK_FILES,
            )
            command = [*command[: command.index("-c") + 1], PROBE]
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
        read, write, remove, chmod, beside = run.stdout.splitlines()
        assert read == "1,high"
        assert write in ("Permission denied", "Read-only file system")  # 0444 and a read-only bind
        assert remove == "Device or resource busy"  # a mount point
        assert chmod in ("Operation not permitted", "Read-only file system")
        assert beside == "ok"
        assert source.read_text() == CSV
    finally:
        shutil.rmtree(job, ignore_errors=True)

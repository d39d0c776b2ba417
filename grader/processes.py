"""Ending child processes and everything they started: the one place that kills.

Kernels run in sessions of their own (jupyter_client starts them with ``start_new_session``)
and sandboxed jobs under uids of their own, so killing the direct child is never enough. The
runner, the warm pool, the lesson pipeline and the sandbox all end their work through these.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group led by ``pid`` (a child started with ``start_new_session``)."""
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def kill_tree(proc: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> None:
    """Kill ``proc``, every process group its descendants lead (kernels), and the descendants; reap them."""
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    groups = {proc.pid}
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            groups.add(os.getpgid(child.pid))
    groups.discard(os.getpgrp())
    for group in groups:
        kill_group(group)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=timeout_s)
    proc.wait()


def wait_or_kill_group(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, bool]:
    """Wait for ``proc`` (a session leader) up to ``timeout_s``; past it kill its group.

    Returns its exit status and whether it had to be killed.
    """
    try:
        return proc.wait(timeout=timeout_s), False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        return proc.wait(), True

"""The seccomp deny list, compiled to the BPF program bubblewrap loads."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

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


def write_seccomp_filter(path: Path) -> None:
    """Compile the deny list into a BPF program that bubblewrap loads (``--seccomp FD``)."""
    import pyseccomp

    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(Exception):  # a syscall this kernel/arch does not have
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    with path.open("wb") as handle:
        flt.export_bpf(handle)

"""The kernel a grading run executes in: nbval's kernel wrapper, hardened for untrusted code.

A dead kernel is noticed within half a second (not at the cell timeout); output is counted
against a budget and ZMQ refuses huge or too many messages, so the trusted side's memory stays
bounded; :class:`SandboxedKernel` starts the learner's kernel through the sandbox's launcher
over ZMQ ``ipc``. Used by :mod:`grader.grading.nbval_plugin` in the trusted pytest process.
"""

from __future__ import annotations

import contextlib
import json
import time
from queue import Empty
from typing import Any

from nbval.kernel import RunningKernel

#: output (text and data) one notebook may produce before the grader stops its kernel, MB
MAX_OUTPUT_MB = 8.0
#: the largest single kernel message the trusted side accepts (larger: the connection is dropped)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: kernel messages queued on the trusted side before ZMQ drops new ones
MAX_QUEUED_MESSAGES = 64
#: how often a waiting runner checks that the kernel is still alive, seconds
LIVENESS_POLL_S = 0.5

#: asks the kernel which device torch would use, without running learner-visible code
_DEVICE_EXPRESSION = (
    "(lambda t: t.cuda.get_device_name(0) if t is not None and t.cuda.is_available() else 'cpu')"
    "(__import__('sys').modules.get('torch'))"
)


class KernelDied(Exception):
    """The kernel process exited while a cell was running."""


class OutputLimitExceeded(Exception):
    """The notebook printed more than the grader keeps (``--grader-max-output-mb``)."""


class GradingKernel(RunningKernel):
    """nbval's kernel wrapper, but a dead kernel is noticed while waiting for a reply."""

    def await_reply(self, msg_id: str, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_s = LIVENESS_POLL_S
            if deadline is not None:
                slice_s = min(slice_s, deadline - time.monotonic())
                if slice_s <= 0:
                    raise Empty
            try:
                msg = self.get_message(stream="shell", timeout=slice_s)
            except Empty:
                if not self.is_alive():
                    raise KernelDied from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                self.last_reply = msg["content"]
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    #: the content of the last execute_reply (its status says whether the cell raised)
    last_reply: dict[str, Any] | None = None

    #: bytes of output still accepted from this kernel (set from --grader-max-output-mb)
    output_budget: float = MAX_OUTPUT_MB * 1024 * 1024

    def get_message(self, stream: str, timeout: float | None = None) -> dict[str, Any]:
        """One message, read straight from the channel's socket.

        nbval's version pretty-prints every message for a debug log, and the blocking client
        runs an event loop per message; together about a millisecond per cell. Output is
        counted against :attr:`output_budget`; past it the kernel is stopped.
        """
        if stream == "iopub":
            try:
                msg = self.kc.iopub_channel.get_msg(timeout=timeout)
            except Empty:
                if self.last_reply is None:
                    raise
                # the cell has replied but its output never ended: ZMQ dropped a message over
                # MAX_MESSAGE_BYTES (and the connection) or more than MAX_QUEUED_MESSAGES
                with contextlib.suppress(Exception):
                    self.km.shutdown_kernel(now=True)
                raise OutputLimitExceeded from None
            self.output_budget -= _output_size(msg)
            if self.output_budget < 0:
                with contextlib.suppress(Exception):
                    self.km.shutdown_kernel(now=True)
                raise OutputLimitExceeded
            return msg
        if stream == "shell":
            return self.kc.shell_channel.get_msg(timeout=timeout)
        raise ValueError(f"no kernel channel {stream!r}")

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return getattr(process, "pid", None)


class SandboxedKernel(GradingKernel):
    """The learner's kernel in the grading sandbox (:mod:`grader.sandbox`), reached over ZMQ ``ipc``.

    The kernelspec is built here, never read from the notebook; its process is the trusted
    launcher, which starts ipykernel under bubblewrap as the job's uid.
    """

    def __init__(self, spec: str, *, startup_timeout: float) -> None:
        import subprocess

        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

        from grader.sandbox.jobs import SandboxJob

        job = SandboxJob.from_spec(spec)

        class _OnlySandbox(KernelSpecManager):
            def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
                # interrupts travel as messages: a signal to the launcher would not reach the kernel
                return KernelSpec(
                    argv=job.kernel_argv(),
                    display_name="Python (grading sandbox)",
                    language="python",
                    interrupt_mode="message",
                )

        self.km = KernelManager(
            kernel_name="grader-sandbox", kernel_spec_manager=_OnlySandbox(), transport="ipc", ip=str(job.ipc_prefix)
        )
        self.km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(job.directory))
        self.kc = self.km.client(context=_bounded_context())
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
        except RuntimeError:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
            raise
        self._ensure_iopub_up()

    def stop(self) -> None:
        """Ask the kernel to exit, so the launcher reaps the sandbox and records how it ended."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def start_kernel(kernel_name: str, *, cwd: str, startup_timeout: float, sandbox: str | None = None) -> GradingKernel:
    """Start the kernel a notebook runs in: sandboxed when ``sandbox`` (a job spec) is given."""
    if sandbox:
        return SandboxedKernel(sandbox, startup_timeout=startup_timeout)
    return GradingKernel(kernel_name, cwd=cwd, startup_timeout=startup_timeout)


def _output_size(msg: dict[str, Any]) -> int:
    """Bytes of learner output in one iopub message (text, data, tracebacks)."""
    content = msg.get("content", {})
    size = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


def _bounded_context() -> Any:
    """A ZMQ context whose sockets refuse huge messages and queue few: the grader's memory stays bounded."""
    import zmq

    context = zmq.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.RCVHWM, MAX_QUEUED_MESSAGES)
    return context


def query_device(kernel: GradingKernel, timeout: float = 2.0) -> str:
    """The device torch would use in the kernel (a GPU's name, or ``cpu``), asked without running learner code."""
    msg_id = kernel.kc.execute("", silent=True, store_history=False, user_expressions={"device": _DEVICE_EXPRESSION})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kernel.get_message(stream="shell", timeout=max(0.01, deadline - time.monotonic()))
        except Empty:
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        value = msg["content"].get("user_expressions", {}).get("device", {})
        if value.get("status") == "ok":
            text = value.get("data", {}).get("text/plain", "unknown")
            return str(text).strip("'\"")[:80]
        break
    return "unknown"

"""The device an exercise asks to be graded on: solution metadata ``grader.device``.

::

    "metadata": {"grader": {"device": "gpu"}}

``"cpu"`` (the default, also when the key is absent) or ``"gpu"``
(:data:`grader.format.markers.DEVICES`). A ``"gpu"`` exercise is routed to GPU workers by the
service and graded on CPU at smoke size when none is registered (see ``docs/SERVICE.md``);
:func:`~grader.authoring.lint.lint` refuses any other value, and the grading bundle keeps it.
"""

from __future__ import annotations

from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers

_WHERE = f"metadata {markers.META_GRADER}.{markers.META_DEVICE}"


def device_problem(nb: NotebookNode, *, path: str) -> str | None:
    """Why the notebook's declared device is not one the grader knows (``None``: it is, or none is declared)."""
    meta = nb.metadata.get(markers.META_GRADER, {})
    value = meta.get(markers.META_DEVICE, markers.DEVICE_CPU) if isinstance(meta, dict) else markers.DEVICE_CPU
    if value in markers.DEVICES:
        return None
    allowed = " or ".join(repr(device) for device in markers.DEVICES)
    return f"{path}: {_WHERE} is {value!r}; use {allowed} (or leave it out: {markers.DEVICE_CPU!r})"


def declared_device(nb: NotebookNode, *, path: str) -> str:
    """The device the solution asks for: ``"cpu"`` or ``"gpu"``.

    Raises:
        AuthoringError: any other value (the message names the allowed ones).
    """
    problem = device_problem(nb, path=path)
    if problem is not None:
        raise AuthoringError(problem)
    meta = nb.metadata.get(markers.META_GRADER, {})
    return str(meta.get(markers.META_DEVICE, markers.DEVICE_CPU)) if isinstance(meta, dict) else markers.DEVICE_CPU

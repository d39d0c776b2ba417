"""The device that graded a job, as the grading worker detected it on itself (never from a submission).

Part of every :class:`grader.grading.results.Result` (and imported from there); its :attr:`GradingDevice.label`
is how feedback names the device. Where it comes from: :mod:`grader.grading.placement`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GradingDevice:
    """The device that graded a job, as the grading worker detected it on itself (never from a submission)."""

    #: ``"cpu"`` or ``"gpu"``
    kind: str
    #: the GPU's name ("NVIDIA H100 80GB HBM3") or the CPU's model
    name: str = ""
    #: a GPU's compute capability (``"9.0"``), its driver, and the newest CUDA that driver supports
    capability: str = ""
    driver: str = ""
    cuda: str = ""
    #: the worker's host name
    host: str = ""

    @property
    def label(self) -> str:
        """``NVIDIA H100 80GB HBM3 (compute 9.0, driver 550.54.15, CUDA 12.4)``, ``CPU (AMD EPYC 7B13)``."""
        if self.kind != "gpu":
            return f"CPU ({self.name})" if self.name else "CPU"
        details = [
            f"compute {self.capability}" if self.capability else "",
            f"driver {self.driver}" if self.driver else "",
        ]
        details.append(f"CUDA {self.cuda}" if self.cuda else "")
        inside = ", ".join(part for part in details if part)
        return f"{self.name or 'GPU'} ({inside})" if inside else self.name or "GPU"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradingDevice:
        known = {name: str(data[name]) for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

"""The resource limits of one sandboxed kernel, and an exercise's own overrides."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from grader.errors import AuthoringError


@dataclass(frozen=True)
class ResourceLimits:
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
    #: CPU threads the kernel's numerical libraries start (OpenMP, OpenBLAS, MKL, torch): a worker
    #: grades several jobs at once, and libraries that each start one thread per host core
    #: oversubscribe it (OpenMP's spinning threads slow a loaded 2-core machine tenfold)
    threads: int = 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ResourceLimits:
        return cls(**json.loads(text))

    @property
    def job_memory_bytes(self) -> int:
        """The memory of the whole job (every process, and its tmpfs files), where cgroups cap it."""
        return (self.memory_mb + 3 * self.disk_mb) * 1024 * 1024

    @classmethod
    def for_notebook(cls, nb: Any) -> ResourceLimits:
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

    def replace(self, **changes: float) -> ResourceLimits:
        """A copy with some limits changed (e.g. an exercise's own overrides).

        Raises:
            AuthoringError: an unknown limit, or a value that is not a positive number (a whole
                number for every limit but ``wall_s``).
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(fields)
        if unknown:
            raise AuthoringError(f"unknown sandbox limits: {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
        checked: dict[str, float] = {}
        for name, value in changes.items():
            whole = name != "wall_s"
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not value > 0 or (whole and float(value) != int(value)) or value == float("inf"):
                kind = "a positive whole number" if whole else "a positive number of seconds"
                raise AuthoringError(f"sandbox limit {name} must be {kind}, not {value!r}")
            checked[name] = int(value) if whole else float(value)
        return dataclasses.replace(self, **checked)  # type: ignore[arg-type]

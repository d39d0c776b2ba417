"""What varies between two correct runs, removed before outputs are compared.

The default sanitizer set is an ordered list of small steps, each a ``(name, regex,
replacement)`` triple applied to the whole text of one output. Order matters: colour codes go
first (a coloured progress bar is still a progress bar), then whole progress-bar lines, then
the fragments inside a line (paths, addresses, timestamps).

Both sides of a comparison (the reference output and the submission's output) go through the
same steps, so a step can only ever make two outputs *more* alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Sanitizer:
    """One step: every match of ``pattern`` becomes ``replacement``."""

    name: str
    pattern: re.Pattern[str]
    replacement: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)


def _step(name: str, regex: str, replacement: str, flags: int = 0) -> Sanitizer:
    return Sanitizer(name, re.compile(regex, flags), replacement)


#: the default set, in the order it is applied
DEFAULT_SANITIZERS: tuple[Sanitizer, ...] = (
    # ESC [ … final byte: colours, cursor moves (tqdm, rich, IPython tracebacks)
    _step("ansi-codes", r"\x1b\[[0-?]*[ -/]*[@-~]", ""),
    # a whole tqdm-style line: " 40%|████      | 4/10 [00:01<00:02,  2.9it/s]"
    _step("progress-bars", r"^[^\n]*\d{1,3}%\|[^\n]*\|[^\n]*\n?", "", re.MULTILINE),
    # the files ipykernel compiles cells into: /tmp/ipykernel_12345/2837466.py
    _step("ipykernel-paths", r"/[^\s'\"]*/ipykernel_\d+/\d+\.py", "<ipykernel-cell>"),
    # anything under a temporary directory (Linux, macOS)
    _step("temp-paths", r"(?:/private)?(?:/tmp|/var/tmp|/var/folders)/[^\s'\",;:)\]}>]*", "<tmp-path>"),
    # object addresses: <Foo object at 0x7f3a2c1b5e50>
    _step("memory-addresses", r"\b0x[0-9a-fA-F]{8,16}\b", "0x<address>"),
    # ISO 8601 date-times (a bare date is data, and is kept)
    _step(
        "iso-datetimes",
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b",
        "<datetime>",
    ),
)


def sanitize(text: str, steps: tuple[Sanitizer, ...] = DEFAULT_SANITIZERS) -> str:
    """Apply each step in order."""
    for step in steps:
        text = step.apply(text)
    return text

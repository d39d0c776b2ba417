"""Staging the site's sources: only changed files are rewritten, removed ones disappear."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.book.site import stage


def origin(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    found = {}
    for name, text in files.items():
        path = tmp_path / "origin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        found[name] = path
    return found


BEFORE = {"_toc.yml": "toc", "book/intro.md": "# Intro", "notebooks/01.ipynb": "{}"}


@pytest.mark.parametrize(
    ("after", "written", "removed"),
    [
        (BEFORE, [], []),
        ({**BEFORE, "book/intro.md": "# Intro, edited"}, ["book/intro.md"], []),
        ({**BEFORE, "book/new.md": "# New"}, ["book/new.md"], []),
        ({k: v for k, v in BEFORE.items() if k != "notebooks/01.ipynb"}, [], ["notebooks/01.ipynb"]),
    ],
    ids=["nothing", "edited", "added", "deleted"],
)
def test_only_what_changed_is_touched(
    tmp_path: Path, after: dict[str, str], written: list[str], removed: list[str]
) -> None:
    """Does a second staging rewrite exactly the changed files and keep the others' mtimes?"""
    destination = tmp_path / "staged"
    first = stage(origin(tmp_path, BEFORE), destination)
    assert sorted(first.written) == sorted(BEFORE)
    mtimes = {p: p.stat().st_mtime_ns for p in destination.rglob("*") if p.is_file()}

    second = stage(origin(tmp_path / "v2", after), destination)

    assert (second.written, second.removed) == (written, removed)
    assert sorted(p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()) == sorted(after)
    for path, mtime in mtimes.items():
        name = path.relative_to(destination).as_posix()
        if name in after and name not in written:
            assert path.stat().st_mtime_ns == mtime, name
    assert (second.digest == first.digest) == (after == BEFORE)
    assert not (destination / "notebooks").exists() or any((destination / "notebooks").iterdir())

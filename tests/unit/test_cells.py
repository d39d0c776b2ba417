"""The exercise format's cells: roles, the one graded-cell parser (strict and lenient), cell names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.errors import AuthoringError
from grader.format import markers
from grader.format.cells import GradedCell, cell_label, describe_cell, graded_cells
from grader.format.notebooks import write_notebook
from grader.grading.selfcheck import visible_checks
from grader.service import catalog
from grader.settings import load_settings


def cell(
    source: str,
    role: str | None = None,
    grader: dict[str, object] | None = None,
    *,
    cell_id: str = "",
    markdown: bool = False,
) -> NotebookNode:
    new = new_markdown_cell(source) if markdown else new_code_cell(source)
    new.id = cell_id or f"c{abs(hash(source)) % 10**6}"
    if role:
        new.metadata["tags"] = [role]
    if grader is not None:
        new.metadata[markers.META_GRADER] = grader
    return new


def valid() -> NotebookNode:
    return new_notebook(
        cells=[
            cell("# Intro", markdown=True, cell_id="intro"),  # 0
            cell(f"x = 1  {markers.SOLUTION_SUFFIX}", markers.TAG_EXERCISE, {"id": "1.1"}, cell_id="ex"),  # 1
            cell("# Check 1.1: x is one\nassert x == 1", markers.TAG_CHECK, {"id": "1.1", "points": 1}, cell_id="ck"),
            cell(
                "# Check 1.2: x printed\nprint(x)",
                markers.TAG_HIDDEN_CHECK,
                {"id": "1.2", "points": 2.5},
                cell_id="hid",
            ),  # 3
        ]
    )


# --- how messages name a cell -------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "path", "show", "expected"),
    [
        (1, None, None, "cell 2"),
        (1, "solutions/x.ipynb", None, "solutions/x.ipynb, cell 2"),
        (1, "solutions/x.ipynb", "id", "solutions/x.ipynb, cell 2 (id 'ex')"),
        (2, None, "id", "cell 3 (id 'ck')"),
        (2, "solutions/x.ipynb", "check", "solutions/x.ipynb, cell 3 (Check 1.1)"),
        (1, "solutions/x.ipynb", "check", "solutions/x.ipynb, cell 2"),
        (0, None, "line", "cell 1 of 4 (`# Intro`)"),
        (3, None, "line", "cell 4 of 4 (`# Check 1.2: x printed`)"),
    ],
)
def test_describe_cell(index: int, path: str | None, show: Any, expected: str) -> None:
    """Does every kind of message name a cell exactly as it always has?"""
    nb = valid()
    assert describe_cell(nb, index, path=path, show=show) == expected
    assert describe_cell(list(nb.cells), index, path=path, show=show) == expected


def test_describe_cell_without_id_or_text() -> None:
    """Are a cell without an id and an empty or very long cell still named usefully?"""
    blank, long = cell("\n  \n"), cell("y = " + "1" * 100)
    del blank["id"]
    assert describe_cell([blank], 0, show="id") == "cell 1 (no id)"
    assert describe_cell([blank, long], 0, show="line") == "cell 1 of 2 (`(empty cell)`)"
    assert describe_cell([blank, long], 1, show="line") == f"cell 2 of 2 (`{'y = ' + '1' * 73}...`)"


@pytest.mark.parametrize(("index", "label"), [(0, "cell 1"), (1, "exercise 1.1"), (2, "Check 1.1"), (3, "Check 1.2")])
def test_cell_label(index: int, label: str) -> None:
    """Does feedback name cells the way the learner sees them?"""
    assert cell_label(valid(), index) == label


# --- graded cells: one parser, strict and lenient ---------------------------------------


def test_strict_and_lenient_agree_on_a_valid_notebook() -> None:
    """Does the lenient reading of a valid notebook give exactly what the strict one does?"""
    expected = [
        GradedCell(2, "ck", "1.1", "x is one", 1.0, hidden=False),
        GradedCell(3, "hid", "1.2", "x printed", 2.5, hidden=True),
    ]
    assert graded_cells(valid()) == expected
    assert graded_cells(valid(), strict=False) == expected


def test_lenient_reading_fills_in_what_a_learner_broke() -> None:
    """Is a touched check still run, with the id from its title or position, its first line and 1 point?"""
    nb = new_notebook(
        cells=[
            cell("# Check 9.9: hidden\nprint(1)", markers.TAG_HIDDEN_CHECK, {}, cell_id="h"),
            cell("# Check 3.1: from the title\nassert True", markers.TAG_CHECK, {"points": "2"}, cell_id="a"),
            cell("# my own words\nassert True", markers.TAG_CHECK, None, cell_id="b"),
            cell("", markers.TAG_CHECK, {"id": 7, "points": True}, cell_id="c"),
            cell("# Check 4.1: markdown", markers.TAG_CHECK, {"id": "4.1", "points": 1}, cell_id="m", markdown=True),
        ]
    )
    with pytest.raises(AuthoringError, match=r"cell 1 \(id 'h'\)"):
        graded_cells(nb)
    assert visible_checks(nb) == [
        GradedCell(1, "a", "3.1", "from the title", 1.0, hidden=False),
        GradedCell(2, "b", "2", "my own words", 1.0, hidden=False),
        GradedCell(3, "c", "7", "cell 4", 1.0, hidden=False),
    ]
    assert [c.check_id for c in graded_cells(nb, strict=False)] == ["9.9", "3.1", "2", "7"]


# --- the service's catalog reads points with the same parser ------------------------------


def test_catalog_points_come_from_the_graded_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Are an exercise's points the sum over its graded cells, and unknown when they break the rules?"""
    for name in ("ROOT", "BUILD_DIR"):
        monkeypatch.delenv(markers.ENV_PREFIX + name, raising=False)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", encoding="utf-8")
    (tmp_path / "_config.yml").write_text("title: t\n", encoding="utf-8")
    write_notebook(valid(), tmp_path / "solutions" / "01-good.ipynb")
    write_notebook(valid(), tmp_path / "exercises" / "01-good.ipynb")
    broken = valid()
    broken.cells[2].metadata[markers.META_GRADER]["points"] = 0
    write_notebook(broken, tmp_path / "solutions" / "02-broken.ipynb")
    (tmp_path / "solutions" / "03-unreadable.ipynb").write_text("{", encoding="utf-8")
    found = {e.id: (e.title, e.max_points) for e in catalog.list_exercises(load_settings(tmp_path))}
    assert found == {
        "01-good": ("Intro", 3.5),
        "02-broken": ("02-broken", None),
        "03-unreadable": ("03-unreadable", None),
    }

"""The real-text dataset: library docstrings, balanced, seeded, masked, split by subpackage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlcourse import docstrings
from mlcourse.docstrings import ALIASES, data_card, load_docstrings, split_by_module


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_docstrings(per_library=60, seed=3, cache=False)


def test_balanced_labelled_and_seeded(frame) -> None:  # type: ignore[no-untyped-def]
    """Does each library give exactly per_library rows, and the same seed the same frame?"""
    assert frame["library"].value_counts().to_dict() == dict.fromkeys(docstrings.LIBRARIES, 60)
    assert frame.equals(load_docstrings(per_library=60, seed=3, cache=False))
    other = load_docstrings(per_library=60, seed=4, cache=False)
    assert set(other["text"]) != set(frame["text"])
    assert frame["text"].is_unique
    assert frame["text"].str.len().between(60, 400).all()
    assert all(module.startswith(library) for module, library in zip(frame["module"], frame["library"], strict=True))


def test_no_library_name_survives_masking(frame) -> None:  # type: ignore[no-untyped-def]
    """Is every library's name and alias masked in every text, and are they there without the mask?"""
    names = {name for aliases in ALIASES.values() for name in aliases}
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])", re.IGNORECASE)
    assert not any(pattern.search(text) for text in frame["text"])
    assert frame["text"].str.contains("<lib>", regex=False).any()
    unmasked = load_docstrings(per_library=60, seed=3, mask=False, cache=False)
    assert any(pattern.search(text) for text in unmasked["text"])


def test_descriptions_leave_out_sections_and_doctests(frame) -> None:  # type: ignore[no-untyped-def]
    assert not frame["text"].str.contains(">>>", regex=False).any()
    assert not frame["text"].str.contains(r"Parameters -{3,}", regex=True).any()


def test_split_keeps_every_subpackage_on_one_side(frame) -> None:  # type: ignore[no-untyped-def]
    train, test = split_by_module(frame, 0.3, seed=0)
    assert not set(train["group"]) & set(test["group"])
    assert len(train) + len(test) == len(frame)
    assert set(test["library"]) == set(train["library"]) == set(docstrings.LIBRARIES)
    assert 0.1 < len(test) / len(frame) < 0.6
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_module(frame, 1.0)


def test_cache_round_trip_and_unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a cached frame equal a fresh one, and does an unwritable cache still give the data?"""
    monkeypatch.setenv(docstrings.ENV_CACHE, str(tmp_path / "cache"))
    first = load_docstrings(["numpy", "pandas"], per_library=20)
    assert len(list((tmp_path / "cache").glob("docstrings-*.json"))) == 1
    assert load_docstrings(["numpy", "pandas"], per_library=20).equals(first)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(docstrings.ENV_CACHE, str(blocker / "below-a-file"))
    assert load_docstrings(["numpy", "pandas"], per_library=20).equals(first)


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown libraries"):
        load_docstrings(["tensorflow"])
    with pytest.raises(ValueError, match="at least 1"):
        load_docstrings(per_library=0)


def test_data_card_names_size_classes_versions_licences_and_quirks(frame) -> None:  # type: ignore[no-untyped-def]
    card = data_card(frame)
    assert f"{len(frame)} docstrings" in card
    for library in docstrings.LIBRARIES:
        assert f"{library} 60" in card and docstrings.LICENCES[library] in card
    assert "Known quirks" in card and "split_by_module" in card

"""Does each artefact of a run have one byte form, whatever the process, dict order or platform?"""

from __future__ import annotations

import importlib.metadata
import io
import json
import math

import pandas as pd
import pytest

import mlcourse.stats
import mlcourse.tickets
from mlcourse.artefacts import (
    ARTEFACT_FILES,
    canonical_json,
    code_revision,
    dependency_lock,
    frame_bytes,
    router_artefacts,
    router_bytes,
)
from mlcourse.router import TicketRouter, train_router


@pytest.fixture(scope="module")
def small() -> tuple[TicketRouter, pd.DataFrame]:
    frame = mlcourse.tickets.make_tickets(200, seed=3)
    return train_router(frame, seed=3), frame


def test_canonical_json_ignores_key_order_and_reads_back():
    """Do two dicts with the same items in another order give the same bytes, which json reads back?"""
    a, b = (
        {"C": 4.0, "seed": 0, "nested": {"y": 1, "x": [1, 2]}},
        {"nested": {"x": [1, 2], "y": 1}, "seed": 0, "C": 4.0},
    )
    assert canonical_json(a) == canonical_json(b) == b'{"C":4.0,"nested":{"x":[1,2],"y":1},"seed":0}\n'
    assert json.loads(canonical_json(a)) == a


@pytest.mark.parametrize(("value", "error"), [({"x": math.nan}, ValueError), ({"x": {1, 2}}, TypeError)])
def test_canonical_json_refuses_what_has_no_single_spelling(value, error):
    """Are NaN and sets refused rather than written in a form another reader spells differently?"""
    with pytest.raises(error):
        canonical_json(value)


def test_frame_bytes_are_stable_and_read_back_exactly():
    """Does a frame with dates and floats give the same bytes twice, and read back to equal values?"""
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-02 03:04:05", "2026-02-03 00:00:00"]),
            "x": [0.1 + 0.2, 1 / 3],
            "t": ["a", "b,c"],
        }
    )
    data = frame_bytes(frame)
    assert data == frame_bytes(frame.copy())
    assert b"\r\n" not in data and b"2026-01-02T03:04:05" in data
    back = pd.read_csv(io.BytesIO(data), parse_dates=["when"])
    assert back["x"].tolist() == frame["x"].tolist()
    assert back["t"].tolist() == frame["t"].tolist()


def test_router_bytes_leave_out_the_process_address(small):
    """Does the vectorizer's remembered memory address change to_bytes() but not router_bytes()?"""
    router, _ = small
    before_stable, before_raw = router_bytes(router), router.to_bytes()
    words = router.pipeline.named_steps["features"].transformer_list[0][1]
    assert hasattr(words, "_stop_words_id"), "scikit-learn no longer keeps _stop_words_id: simplify router_bytes"
    saved = words._stop_words_id
    try:
        words._stop_words_id = saved + 16  # what another process would have written
        assert router.to_bytes() != before_raw
        assert router_bytes(router) == before_stable
    finally:
        words._stop_words_id = saved
    assert words._stop_words_id == saved, "router_bytes must not change the router it reads"


def test_router_bytes_load_back_into_the_same_router(small):
    """Do the stable bytes load with from_bytes and predict exactly as the original?"""
    router, frame = small
    loaded = TicketRouter.from_bytes(router_bytes(router))
    texts = frame["text"].tolist()[:50]
    assert loaded.predict(texts) == router.predict(texts)
    assert (loaded.predict_proba(texts) == router.predict_proba(texts)).all()
    assert router_bytes(loaded) == router_bytes(router)


def test_code_revision_names_each_module_and_the_commit():
    """Is there one sorted line per module with its file's digest, and the commit first when given?"""
    text = code_revision([mlcourse.tickets, mlcourse.stats], commit="abc123").decode()
    lines = text.splitlines()
    assert lines[0] == "git abc123"
    assert [line.split()[0] for line in lines[1:]] == ["mlcourse.stats", "mlcourse.tickets"]
    assert all(len(line.split("sha256:")[1]) == 64 for line in lines[1:])
    assert code_revision([mlcourse.stats]) != code_revision([mlcourse.tickets])


def test_code_revision_refuses_a_module_without_source():
    """Does a built-in module get a message naming it instead of an empty digest?"""
    import sys

    with pytest.raises(ValueError, match="sys"):
        code_revision([sys])


def test_dependency_lock_pins_installed_versions_sorted():
    """Is each package pinned to the installed version, sorted by name, and an unknown one refused?"""
    lock = dependency_lock(["scipy", "numpy", "numpy"]).decode()
    assert lock == f"numpy=={importlib.metadata.version('numpy')}\nscipy=={importlib.metadata.version('scipy')}\n"
    with pytest.raises(ValueError, match="no-such-package-xyz"):
        dependency_lock(["no-such-package-xyz"])


def test_router_artefacts_are_the_five_files_and_repeat(small):
    """Are the five artefacts there, under their file names, with the same bytes on a second call?"""
    router, frame = small
    first = router_artefacts(router, frame)
    assert tuple(first) == ARTEFACT_FILES
    assert first == router_artefacts(router, frame)
    assert json.loads(first["config.json"]) == router.config.as_dict()
    assert first["lock.txt"].startswith(b"numpy==")
    assert b"mlcourse.router sha256:" in first["code.txt"]

"""mlcourse.router: the ticket router Part V ships."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mlcourse.router import TicketRouter, train_router
from mlcourse.tickets import TEAMS, make_tickets


@pytest.fixture(scope="module")
def router() -> TicketRouter:
    return train_router(n_tickets=800, seed=1)


def test_it_routes_unseen_tickets_well_above_chance(router: TicketRouter) -> None:
    held_out = make_tickets(400, seed=77)
    predicted = np.array(router.predict(held_out["text"].tolist()))
    assert set(predicted) <= set(TEAMS)
    assert (predicted == held_out["team"].to_numpy()).mean() > 0.6  # chance is 0.2


def test_probabilities_are_one_row_per_text_over_its_teams(router: TicketRouter) -> None:
    proba = router.predict_proba(["my invoice is wrong", "the app crashes on start"])
    assert proba.shape == (2, len(router.teams))
    assert np.allclose(proba.sum(axis=1), 1)
    assert router.predict_proba([]).shape == (0, len(router.teams))
    assert router.predict([]) == []


def test_the_same_training_gives_the_same_bytes_and_they_round_trip(router: TicketRouter) -> None:
    again = train_router(n_tickets=800, seed=1)
    assert again.to_bytes() == router.to_bytes() and again.digest() == router.digest()
    loaded = TicketRouter.from_bytes(router.to_bytes())
    texts = make_tickets(50, seed=3)["text"].tolist()
    assert loaded.predict(texts) == router.predict(texts)
    assert loaded.config == router.config
    assert train_router(n_tickets=800, seed=2).digest() != router.digest()


def test_bad_input_is_named(router: TicketRouter) -> None:
    with pytest.raises(TypeError, match="list of texts"):
        router.predict("one string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is int"):
        router.predict(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a ticket router"):
        TicketRouter.from_bytes(b"PK\x03\x04 a zip file")
    damaged = router.to_bytes()[:-100]
    with pytest.raises(ValueError, match="damaged"):
        TicketRouter.from_bytes(damaged)
    with pytest.raises(ValueError, match="lacks"):
        train_router(make_tickets(50)[["text"]])


def test_the_digest_names_the_same_router_the_same_in_every_process() -> None:
    """Do two processes that train the same router name it alike (its pickle differs: a memory address)?"""
    code = (
        "import hashlib; from mlcourse.router import train_router; r = train_router(n_tickets=300, seed=4); "
        "r.predict(['my invoice is wrong']); print(r.digest(), hashlib.sha256(r.to_bytes()).hexdigest())"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in "ab"]
    (digest_a, raw_a), (digest_b, raw_b) = (run.stdout.split() for run in runs)
    assert digest_a == digest_b
    assert raw_a != raw_b, "to_bytes() is now the same across processes: lesson 12's point about it needs rewriting"

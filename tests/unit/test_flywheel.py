"""Does the flywheel simulator spend budgets fairly, and does its log say what lineage needs?"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.naive_bayes import MultinomialNB

from mlcourse.flywheel import (
    EVENTS,
    AcquisitionError,
    NaiveBayes,
    Oracle,
    compare,
    label_record,
    make_log,
    make_problem,
    prediction_record,
    random_sampling,
    simulate,
    train_model,
    train_record,
)
from mlcourse.tickets import TEAMS


@pytest.fixture(scope="module")
def problem():
    return make_problem(n_pool=300, n_test=100, seed=4)


def test_naive_bayes_matches_scikit_learn(problem):
    """Does the fast model compute what MultinomialNB computes?"""
    ours = NaiveBayes(alpha=0.1).fit(problem.X_pool[:40], problem.y_pool[:40])
    reference = MultinomialNB(alpha=0.1).fit(problem.X_pool[:40], problem.y_pool[:40])
    assert list(ours.classes_) == list(reference.classes_)
    np.testing.assert_allclose(ours.predict_proba(problem.X_test), reference.predict_proba(problem.X_test), atol=1e-10)
    assert list(ours.predict(problem.X_test)) == list(reference.predict(problem.X_test))


def test_naive_bayes_refuses_labels_that_do_not_match_the_rows(problem):
    """Does a fit with the wrong number of labels say so?"""
    with pytest.raises(ValueError, match="one label per row"):
        NaiveBayes().fit(problem.X_pool[:10], problem.y_pool[:9])


def test_problem_pool_and_test_are_disjoint_and_reproducible(problem):
    """Are the pool and the test set different tickets, drawn the same way every time?"""
    assert not set(problem.pool["ticket_id"]) & set(problem.test["ticket_id"])
    again = make_problem(n_pool=300, n_test=100, seed=4)
    assert list(again.pool["ticket_id"]) == list(problem.pool["ticket_id"])
    assert problem.X_pool.shape[0] == 300 and problem.X_test.shape[0] == 100


def test_simulate_spends_exactly_the_budget_and_repeats(problem):
    """Does a simulation label the budget once each, start from every team, and repeat from its seed?"""
    curve = simulate(random_sampling(1), problem, seed=1, initial=10, batch=10, budget=50)
    assert curve.labels == [10, 20, 30, 40, 50]
    assert len(curve.labelled) == len(set(curve.labelled)) == 50
    assert set(problem.y_pool[curve.labelled[:5]]) == set(TEAMS)
    assert all(0.0 <= a <= 1.0 for a in curve.accuracy)
    assert simulate(random_sampling(1), problem, seed=1, budget=50) == curve


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (lambda model, pool, k: np.arange(k + 1), "returned 11"),
        (lambda model, pool, k: np.zeros(k, dtype=int), "twice"),
        (lambda model, pool, k: np.arange(k) + pool.shape[0], "outside the pool"),
        (lambda model, pool, k: np.arange(k) * 1.0, "integer positions"),
        (lambda model, pool, k: np.arange(k).reshape(2, -1), "1-D"),
    ],
)
def test_a_strategy_that_breaks_the_budget_is_refused(problem, strategy, message):
    """Does the simulator refuse more or fewer than k tickets, repeats and positions out of range, by name?"""
    with pytest.raises(AcquisitionError, match=message):
        simulate(strategy, problem, seed=0, budget=30)


def test_random_against_itself_gains_nothing(problem):
    """Are the two arms paired: the same strategy on the same seed gives exactly the same curve?"""
    result = compare(random_sampling, problem, seeds=[0, 1, 2], per_seed=True, budget=30)
    assert result.gains == [0.0, 0.0, 0.0]
    assert (result.mean, result.low, result.high) == (0.0, 0.0, 0.0)


def test_uncertainty_beats_most_confident(problem):
    """Can the comparison tell a good strategy from a bad one (the lesson's claim, on a small pool)?"""

    def margin(model, pool, k):
        top = np.sort(model.predict_proba(pool), axis=1)[:, -2:]
        return np.argsort(top[:, 1] - top[:, 0])[:k]

    def confident(model, pool, k):
        return np.argsort(-model.predict_proba(pool).max(axis=1))[:k]

    good = compare(margin, problem, seeds=range(4), budget=60)
    bad = compare(confident, problem, seeds=range(4), budget=60)
    assert good.mean > bad.mean
    assert bad.high < 0


def test_oracle_noise_is_fixed_by_seed_and_never_the_truth():
    """Does the oracle flip about `noise` of the labels, always to another team, the same way per seed?"""
    truth = np.array(TEAMS * 400)
    oracle = Oracle(truth, noise=0.2, seed=3)
    answers = oracle.label(np.arange(len(truth)))
    flipped = answers != truth
    assert 0.17 < flipped.mean() < 0.23
    assert oracle.asked == len(truth)
    assert list(Oracle(truth, noise=0.2, seed=3).label(np.arange(len(truth)))) == list(answers)
    assert list(Oracle(truth).label(np.arange(len(truth)))) == list(truth)
    with pytest.raises(ValueError, match="noise"):
        Oracle(truth, noise=1.0)


def test_simulate_refuses_settings_that_cannot_be_spent(problem):
    """Does a budget that is not initial + whole batches, or too few first labels, say what to change?"""
    with pytest.raises(ValueError, match="multiple of batch"):
        simulate(random_sampling(0), problem, budget=55)
    with pytest.raises(ValueError, match="one label per team"):
        simulate(random_sampling(0), problem, initial=3, budget=33)


def test_record_builders_keep_what_lineage_needs():
    """Do the builders make the documented records and refuse ones lineage could not use?"""
    record = prediction_record("v1", "T000001", "billing", 0.4, True, "2026-03-01T10:00:00")
    assert record == {
        "event": "prediction",
        "ts": "2026-03-01T10:00:00",
        "model_version": "v1",
        "input_id": "T000001",
        "prediction": "billing",
        "confidence": 0.4,
        "deferred": True,
    }
    assert label_record("T000001", "security", "agent-01", "2026-03-01T11:00:00")["event"] == "label"
    assert train_record("v2", "v1", "2026-03-02T00:00:00")["parent"] == "v1"
    with pytest.raises(ValueError, match="confidence"):
        prediction_record("v1", "T000001", "billing", 1.5, False, "2026-03-01T10:00:00")
    with pytest.raises(ValueError, match="input_id"):
        label_record("", "billing", "agent-01", "2026-03-01T10:00:00")
    with pytest.raises(ValueError):
        label_record("T000001", "billing", "agent-01", "yesterday")


def test_make_log_is_reproducible_and_complete():
    """Does a simulated log repeat from its seed, hold every kind of record, and differ from another seed?"""
    log = make_log(5)
    assert make_log(5) == log and make_log(6) != log
    kinds = Counter(record["event"] for record in log)
    assert set(kinds) == set(EVENTS) and kinds["train"] == 3
    assert len({record["ts"] for record in log}) == len(log)
    ordered = make_log(5, shuffle=False)
    assert sorted(map(str, ordered)) == sorted(map(str, log)) and ordered != log
    labelled = Counter(record["input_id"] for record in log if record["event"] == "label")
    assert max(labelled.values()) >= 2, "some tickets are relabelled"
    deferred = {r["input_id"] for r in log if r["event"] == "prediction" and r["deferred"]}
    assert deferred <= set(labelled), "every deferred prediction gets a person's label"


def test_train_model_is_the_simulators_model(problem):
    """Is train_model a NaiveBayes that knows the teams it saw?"""
    model = train_model(problem.X_pool[:30], problem.y_pool[:30])
    assert isinstance(model, NaiveBayes)
    assert set(model.classes_) == set(problem.y_pool[:30])

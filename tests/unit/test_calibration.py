"""Do the calibration helpers compute what their docstrings promise?"""

from __future__ import annotations

import numpy as np
import pytest

from mlcourse.calibration import expected_calibration_error, reliability_table, simulate_scores, softmax


def test_softmax_rows_sum_to_one_and_temperature_flattens():
    """Are rows probabilities, is a large logit safe, and does a higher temperature flatten them?"""
    logits = np.array([[1000.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    p = softmax(logits)
    assert np.allclose(p.sum(axis=1), 1.0) and np.all(np.isfinite(p))
    assert np.allclose(p[1], 1 / 3)
    z = np.array([[2.0, 0.0]])
    assert softmax(z, 2.0)[0, 0] < softmax(z)[0, 0]
    assert softmax(z, 2.0)[0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))


@pytest.mark.parametrize(
    ("logits", "temperature", "words"),
    [([1.0, 2.0], 1.0, "2-D"), ([[1.0, 2.0]], 0.0, "positive"), ([[1.0, 2.0]], float("nan"), "positive")],
)
def test_softmax_refuses_bad_input_with_the_fix(logits, temperature, words):
    """Does bad input get a message that names what is wrong?"""
    with pytest.raises(ValueError, match=words):
        softmax(logits, temperature)


def test_reliability_table_counts_and_averages_per_bin():
    """Does each non-empty bin hold its items, their mean confidence and their fraction right?"""
    confidences = [0.05, 0.31, 0.39, 0.92, 0.96]
    correct = [False, True, False, True, False]
    table = reliability_table(confidences, correct, n_bins=10)
    assert table["items"].tolist() == [1, 2, 2]
    assert table["low"].tolist() == pytest.approx([0.0, 0.3, 0.9])
    assert table["confidence"].tolist() == pytest.approx([0.05, 0.35, 0.94])
    assert table["accuracy"].tolist() == [0.0, 0.5, 0.5]


def test_reliability_table_puts_a_confidence_of_one_in_the_last_bin():
    """Is 1.0 counted in the bin [0.9, 1], not in an eleventh bin?"""
    table = reliability_table([1.0, 0.95], [True, False], n_bins=10)
    assert table["items"].tolist() == [2]
    assert table["high"].tolist() == [1.0]


def test_ece_is_the_weighted_mean_gap():
    """Is the ECE the gaps weighted by bin size, not their plain mean over bins?"""
    confidences = np.array([0.95] * 9 + [0.15])
    correct = np.array([True] * 9 + [True])
    # bin 0.9-1.0: 9 items, gap 0.05; bin 0.1-0.2: 1 item, gap 0.85
    assert expected_calibration_error(confidences, correct) == pytest.approx((9 * 0.05 + 1 * 0.85) / 10)
    table = reliability_table(confidences, correct)
    unweighted = np.mean(np.abs(table["accuracy"] - table["confidence"]))
    assert expected_calibration_error(confidences, correct) != pytest.approx(unweighted)


@pytest.mark.parametrize(
    ("confidences", "correct", "words"),
    [([], [], "non-empty"), ([0.5, 0.6], [True], "equally long"), ([1.5], [True], r"\[0, 1\]")],
)
def test_ece_refuses_bad_input(confidences, correct, words):
    """Does a mismatch or a confidence outside [0, 1] name the problem?"""
    with pytest.raises(ValueError, match=words):
        expected_calibration_error(confidences, correct)


def test_simulated_scores_are_reproducible_and_calibrated_at_their_temperature():
    """Same seed, same scores; and does dividing by the overconfidence factor remove most of the ECE?"""
    a = simulate_scores(3000, overconfidence=2.0, seed=4)
    b = simulate_scores(3000, overconfidence=2.0, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    logits, labels = a
    assert logits.shape == (3000, 5) and labels.min() >= 0 and labels.max() <= 4
    correct = softmax(logits).argmax(axis=1) == labels
    raw = expected_calibration_error(softmax(logits).max(axis=1), correct)
    scaled = expected_calibration_error(softmax(logits, 2.0).max(axis=1), correct)
    assert raw > 0.08 and scaled < 0.04


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 10, "n_classes": 1}, {"n": 10, "overconfidence": 0.0}])
def test_simulate_scores_refuses_bad_arguments(kwargs):
    """Does an out-of-range argument raise ValueError?"""
    with pytest.raises(ValueError):
        simulate_scores(**kwargs)

"""Do the bootstrap intervals and McNemar's test say what they promise?"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mlcourse.stats import EXACT_BELOW, bootstrap_ci, mcnemar, paired_bootstrap


def test_same_seed_same_interval_and_other_seed_another():
    """Is the interval reproducible from its seed, and does the seed matter?"""
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_interval_follows_the_documented_resampling():
    """Is the interval the percentile interval of the means of rng.integers resamples?"""
    values = np.random.default_rng(2).exponential(size=40)
    idx = np.random.default_rng(9).integers(0, 40, size=(500, 40))
    expected = np.quantile(values[idx].mean(axis=1), [0.05, 0.95])
    assert bootstrap_ci(values, n_resamples=500, confidence=0.9, seed=9) == pytest.approx(tuple(expected))


def test_constant_values_give_a_zero_width_interval_and_median_works():
    """Does a constant sample give (c, c), and does another statistic go through?"""
    assert bootstrap_ci([2.5] * 10) == (2.5, 2.5)
    low, high = bootstrap_ci(np.arange(101.0), np.median, n_resamples=300)
    assert low < 50 < high


def test_coverage_of_a_known_mean_is_near_nominal():
    """Does the 90% interval contain the true mean of a normal sample about 90% of the time?"""
    rng = np.random.default_rng(2024)
    trials = 200
    hits = sum(
        low <= 1.0 <= high
        for low, high in (
            bootstrap_ci(rng.normal(1.0, 2.0, size=60), n_resamples=400, confidence=0.9, seed=t) for t in range(trials)
        )
    )
    # the percentile bootstrap undercovers a little at n=60; 200 trials have a binomial SD of ~2%
    assert 0.80 <= hits / trials <= 0.97


def test_wider_confidence_gives_a_wider_interval():
    values = np.random.default_rng(5).normal(size=80)
    low90, high90 = bootstrap_ci(values, confidence=0.9)
    low99, high99 = bootstrap_ci(values, confidence=0.99)
    assert low99 < low90 < high90 < high99


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]]])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        bootstrap_ci(bad)


def test_paired_interval_contains_the_true_difference():
    """With a true accuracy gap of 5 points on shared items, is it inside the paired interval?"""
    rng = np.random.default_rng(7)
    n = 4000
    easy = rng.random(n)
    a = easy < 0.80
    b = easy < 0.75  # b is right on a subset of a's items: a is better by exactly 5 points in expectation
    result = paired_bootstrap(a, b, seed=1)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.low <= 0.05 <= result.high
    assert result.high - result.low < 0.03


def test_paired_interval_is_narrower_than_an_unpaired_one():
    """Does pairing remove the variance the two models share?"""
    rng = np.random.default_rng(8)
    easy = rng.random(1000)
    a, b = easy < 0.8, easy < 0.78
    paired = paired_bootstrap(a, b, seed=0)
    low_a, high_a = bootstrap_ci(a.astype(float), seed=0)
    assert paired.high - paired.low < (high_a - low_a) / 2


def test_mcnemar_exact_matches_scipy_binomtest_on_a_worked_example():
    """10 items only a gets right, 2 only b: the exact two-sided binomial p-value."""
    a = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 8)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 8)
    statistic, p_value = mcnemar(a, b)
    assert statistic == 2.0
    assert p_value == pytest.approx(scipy_stats.binomtest(2, 12, 0.5).pvalue)
    assert p_value == pytest.approx(0.0386, abs=1e-4)


def test_mcnemar_chi_square_with_continuity_correction_for_many_disagreements():
    n01, n10 = 40, 20
    assert n01 + n10 >= EXACT_BELOW
    a = np.array([True] * n01 + [False] * n10)
    statistic, p_value = mcnemar(a, ~a)
    assert statistic == pytest.approx((20 - 1) ** 2 / 60)
    assert p_value == pytest.approx(scipy_stats.chi2.sf(statistic, 1))


def test_mcnemar_without_disagreement_and_symmetry():
    same = np.array([True, False, True])
    assert mcnemar(same, same) == (0.0, 1.0)
    a = np.array([True] * 7 + [False] * 3)
    assert mcnemar(a, ~a) == mcnemar(~a, a)

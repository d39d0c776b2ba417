"""Uncertainty for evaluation numbers: bootstrap intervals and paired comparisons of two models.

:func:`bootstrap_ci` resamples the values with replacement and reads a percentile interval off
the statistic of each resample. The resampling is fixed so that results can be reproduced::

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))   # one row of indices per resample

:func:`paired_bootstrap` compares two models scored on the **same** items: both are resampled with
the same indices, so what the items have in common (easy and hard tickets) cancels out.
:func:`mcnemar` tests whether two models make the same number of errors, looking only at the
items on which they disagree: an exact binomial test when there are fewer than
:data:`EXACT_BELOW` such items, the chi-square test with continuity correction otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["EXACT_BELOW", "PairedResult", "bootstrap_ci", "mcnemar", "paired_bootstrap"]

#: below this many discordant items, :func:`mcnemar` uses the exact binomial test
EXACT_BELOW = 25


class PairedResult(NamedTuple):
    """The mean difference ``a - b`` and its percentile bootstrap interval."""

    difference: float
    low: float
    high: float


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    return array


def bootstrap_ci(
    values: Any,
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """(low, high): the percentile bootstrap interval of ``stat(values)``.

    ``stat`` is called on each resample (a 1-D array). The same arguments give the same interval.
    """
    data = _as_1d(values, "values")
    idx = _resample_indices(data.size, n_resamples, seed)
    resampled = np.array([stat(data[row]) for row in idx], dtype=float)
    return _percentile_interval(resampled, confidence)


def _as_pair(a_correct: Any, b_correct: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"a_correct and b_correct must be 1-D, non-empty and equally long; got {a.shape}, {b.shape}")
    return a, b


def paired_bootstrap(
    a_correct: Any, b_correct: Any, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> PairedResult:
    """Accuracy of a minus accuracy of b, with a paired percentile bootstrap interval.

    ``a_correct[i]`` and ``b_correct[i]`` say whether each model got item ``i`` right.
    """
    a, b = _as_pair(a_correct, b_correct)
    diff = a.astype(float) - b.astype(float)
    idx = _resample_indices(diff.size, n_resamples, seed)
    low, high = _percentile_interval(diff[idx].mean(axis=1), confidence)
    return PairedResult(float(diff.mean()), low, high)


def mcnemar(a_correct: Any, b_correct: Any) -> tuple[float, float]:
    """(statistic, p_value) of McNemar's test that a and b have the same error rate.

    With ``n01`` items only a gets right and ``n10`` items only b gets right: if
    ``n01 + n10 < EXACT_BELOW`` the statistic is ``min(n01, n10)`` and the p-value is the two-sided
    exact binomial test of ``n01`` out of ``n01 + n10`` at 1/2; otherwise the statistic is
    ``(|n01 - n10| - 1)**2 / (n01 + n10)`` with a chi-square (1 degree of freedom) p-value. With
    no disagreement at all the answer is ``(0.0, 1.0)``.
    """
    a, b = _as_pair(a_correct, b_correct)
    n01 = int(np.sum(a & ~b))
    n10 = int(np.sum(~a & b))
    discordant = n01 + n10
    if discordant == 0:
        return 0.0, 1.0
    if discordant < EXACT_BELOW:
        smaller = min(n01, n10)
        p_value = min(1.0, 2.0 * float(_scipy_stats.binom.cdf(smaller, discordant, 0.5)))
        return float(smaller), p_value
    statistic = (abs(n01 - n10) - 1) ** 2 / discordant
    return float(statistic), float(_scipy_stats.chi2.sf(statistic, df=1))

"""Calibration of a classifier's confidence: softmax with a temperature, reliability bins, ECE, and
simulated scores whose miscalibration is known.

A classifier is **calibrated** when, among the items it answers with confidence 0.8, about 80%
are right. :func:`reliability_table` bins the items by confidence (equal-width bins on [0, 1])
and gives, per bin, the number of items, their mean confidence and the fraction right;
:func:`expected_calibration_error` (ECE, Naeini et al. 2015) is the gap between those two,
averaged over the bins **weighted by how many items each holds**::

    ECE = sum over bins b of  n_b / n * |accuracy_b - confidence_b|

:func:`simulate_scores` draws logits of a model whose over- (or under-) confidence is a known
factor, for exercises and tests that must run in milliseconds:

    >>> logits, labels = simulate_scores(1000, overconfidence=2.0, seed=0)
    >>> logits.shape, labels.shape
    ((1000, 5), (1000,))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["expected_calibration_error", "reliability_table", "simulate_scores", "softmax"]


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)``, computed without overflow.

    Raises:
        ValueError: ``logits`` is not 2-D, or ``temperature`` is not a positive number.
    """
    z = np.asarray(logits, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"logits must be a 2-D array (items, classes), got shape {z.shape}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _confidences(confidences: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    if c.ndim != 1 or c.shape != ok.shape or c.size == 0:
        raise ValueError(
            f"confidences and correct must be 1-D, non-empty and equally long; got {c.shape} and {ok.shape}"
        )
    if np.any((c < 0) | (c > 1)) or not np.all(np.isfinite(c)):
        raise ValueError("confidences must be probabilities, in [0, 1]")
    return c, ok


def _bin_of(c: np.ndarray, n_bins: int) -> np.ndarray:
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return np.minimum((c * n_bins).astype(int), n_bins - 1)


def reliability_table(confidences: Any, correct: Any, n_bins: int = 10) -> pd.DataFrame:
    """One row per non-empty equal-width bin: ``low``, ``high``, ``items``, ``confidence``, ``accuracy``.

    ``confidences[i]`` is the model's top probability for item ``i``, ``correct[i]`` whether that
    answer was right. A confidence of exactly 1 falls in the last bin.
    """
    c, ok = _confidences(confidences, correct)
    which = _bin_of(c, n_bins)
    items = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=c, minlength=n_bins)
    right = np.bincount(which, weights=ok.astype(float), minlength=n_bins)
    kept = items > 0
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame(
        {
            "low": edges[:-1][kept],
            "high": edges[1:][kept],
            "items": items[kept],
            "confidence": conf_sum[kept] / items[kept],
            "accuracy": right[kept] / items[kept],
        }
    )


def expected_calibration_error(confidences: Any, correct: Any, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width bins, each bin's gap weighted by its share of the items."""
    c, ok = _confidences(confidences, correct)
    which = _bin_of(c, n_bins)
    gap = np.bincount(which, weights=c - ok, minlength=n_bins)
    return float(np.abs(gap).sum() / c.size)


def simulate_scores(
    n: int, *, n_classes: int = 5, overconfidence: float = 1.0, signal: float = 4.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) of a simulated classifier whose calibrating temperature is ``overconfidence``.

    Each item has true logits: standard normal noise plus a bump of random height (exponential,
    mean ``signal``) on one random class. Its label is drawn from the softmax of those, so the
    true logits are perfectly calibrated; the model reports them multiplied by ``overconfidence``
    (above 1: too sure of itself, below 1: too timid), and ``softmax(logits, overconfidence)`` is
    calibrated again.

    Raises:
        ValueError: an argument is out of range.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer of 2 or more, got {n_classes!r}")
    if not overconfidence > 0 or not signal >= 0:
        raise ValueError(f"overconfidence must be positive and signal non-negative, got {overconfidence}, {signal}")
    rng = np.random.default_rng(seed)
    true_logits = rng.standard_normal((n, n_classes))
    pointed = rng.integers(0, n_classes, size=n)
    true_logits[np.arange(n), pointed] += rng.exponential(signal, size=n)
    posterior = softmax(true_logits)
    labels = (rng.random((n, 1)) > np.cumsum(posterior, axis=1)).sum(axis=1)
    return true_logits * overconfidence, np.minimum(labels, n_classes - 1)

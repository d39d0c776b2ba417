"""The data flywheel in miniature: an active-learning simulator and a lineage log of predictions and labels.

**Active learning.** :func:`make_problem` draws a pool of unlabelled tickets and a test set
(:func:`mlcourse.tickets.make_tickets`) and computes their TF-IDF features once. :func:`simulate`
then spends a label budget in rounds: it trains a cheap model (:class:`NaiveBayes`, a
millisecond a fit) on the labelled tickets, asks an acquisition strategy which ``k`` of the
still-unlabelled tickets to label next, asks the :class:`Oracle` for their teams, and records the
test accuracy after every round (a learning curve). A strategy is any function::

    acquire(model, pool, k) -> indices   # k distinct row positions into ``pool``

where ``model`` is the fitted classifier (``predict_proba``, ``classes_``) and ``pool`` is the
feature matrix of the unlabelled tickets. :func:`random_sampling` is the baseline; :func:`compare`
runs a strategy and random sampling on the same seeds (same pool, same first labels, same
oracle) and gives the mean paired gain at the budget with a bootstrap interval over seeds
(:func:`mlcourse.stats.bootstrap_ci`). A strategy that asks for more or fewer than ``k`` tickets,
for one twice or for one out of range raises :class:`AcquisitionError`: both arms always spend
the same budget.

**Lineage.** A flywheel's log is a list of records (plain dicts), one per event:

==========  ===========================================================================
event       fields besides ``event`` and ``ts`` (an ISO 8601 string, ``2026-03-02T09:15:04``)
==========  ===========================================================================
prediction  ``model_version``, ``input_id``, ``prediction``, ``confidence``, ``deferred``
label       ``input_id``, ``label``, ``labeller``
train       ``model_version``, ``parent`` (the version it replaces, or ``None``)
==========  ===========================================================================

:func:`prediction_record`, :func:`label_record` and :func:`train_record` build them (and refuse
a record that lacks what lineage needs). :func:`make_log` simulates weeks of a ticket router's
log: deferred predictions labelled by agents (some after the next model was trained), audited
confident predictions, relabels by a senior agent, records merged from several services and so
not in time order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import logsumexp
from sklearn.feature_extraction.text import TfidfVectorizer

from mlcourse.stats import bootstrap_ci
from mlcourse.tickets import TEAMS, make_tickets

__all__ = [
    "EVENTS",
    "AcquisitionError",
    "Comparison",
    "Curve",
    "NaiveBayes",
    "Oracle",
    "Problem",
    "compare",
    "label_record",
    "make_log",
    "make_problem",
    "prediction_record",
    "random_sampling",
    "simulate",
    "train_model",
    "train_record",
]

#: the kinds of record in a lineage log
EVENTS = ("prediction", "label", "train")

Acquire = Callable[[Any, Any, int], Any]


class AcquisitionError(ValueError):
    """An acquisition strategy returned something other than ``k`` distinct positions into the pool."""


@dataclass(frozen=True)
class Problem:
    """A pool of unlabelled tickets and a test set, with features computed once."""

    pool: pd.DataFrame
    X_pool: sparse.csr_matrix
    y_pool: np.ndarray
    test: pd.DataFrame
    X_test: sparse.csr_matrix
    y_test: np.ndarray
    vectorizer: TfidfVectorizer


def make_problem(n_pool: int = 1200, n_test: int = 400, *, seed: int = 0, drift: float = 0.0) -> Problem:
    """``n_pool`` tickets to label and ``n_test`` to evaluate on, drawn from one ``make_tickets`` run.

    The TF-IDF vocabulary is fitted on the pool's texts only (no labels are used). The pool and the
    test set are disjoint random halves of the same period.
    """
    if n_pool < len(TEAMS) or n_test < 1:
        raise ValueError(f"need at least {len(TEAMS)} pool tickets and 1 test ticket, got {n_pool}, {n_test}")
    frame = make_tickets(n_pool + n_test, seed=seed, drift=drift)
    order = np.random.default_rng([seed, 19]).permutation(len(frame))
    pool = frame.iloc[np.sort(order[:n_pool])].reset_index(drop=True)
    test = frame.iloc[np.sort(order[n_pool:])].reset_index(drop=True)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    X_pool = sparse.csr_matrix(vectorizer.fit_transform(pool["text"]))
    X_test = sparse.csr_matrix(vectorizer.transform(test["text"]))
    y_pool, y_test = pool["team"].to_numpy(dtype=str), test["team"].to_numpy(dtype=str)
    return Problem(pool, X_pool, y_pool, test, X_test, y_test, vectorizer)


class NaiveBayes:
    """Multinomial naive Bayes: what scikit-learn's ``MultinomialNB`` computes, without its input checks.

    A fit on a hundred tickets takes about a millisecond, so a simulation can retrain it after every
    round. ``classes_`` are the labels seen, sorted; ``predict_proba``'s columns follow them.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, X: Any, y: Sequence[str]) -> NaiveBayes:
        labels = np.asarray(y, dtype=str)
        if labels.ndim != 1 or len(labels) != X.shape[0] or len(labels) == 0:
            raise ValueError(f"need one label per row of X; got {labels.shape} labels for {X.shape[0]} rows")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        members = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))))
        counts = np.asarray((members @ sparse.csr_matrix(X)).todense()) + self.alpha
        self.feature_log_prob_ = np.log(counts) - np.log(counts.sum(axis=1, keepdims=True))
        self.class_log_prior_ = np.log(np.bincount(codes) / len(codes))
        return self

    def predict_log_proba(self, X: Any) -> np.ndarray:
        joint = np.asarray(X @ self.feature_log_prob_.T) + self.class_log_prior_
        return np.asarray(joint - logsumexp(joint, axis=1, keepdims=True))

    def predict_proba(self, X: Any) -> np.ndarray:
        """One row per input, one column per class in ``classes_``; each row sums to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self.predict_log_proba(X), axis=1)])


def train_model(X: Any, y: Sequence[str]) -> NaiveBayes:
    """The simulator's cheap model: multinomial naive Bayes (alpha 0.1) on TF-IDF features."""
    return NaiveBayes(alpha=0.1).fit(X, y)


class Oracle:
    """The human labeller of a simulation: the true team, or with probability ``noise`` another one.

    Each ticket's answer is drawn once, from ``seed``: asking again gives the same label, and two
    strategies simulated with the same seed are answered alike. ``asked`` counts the labels given.
    """

    def __init__(self, truth: Any, *, noise: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= noise < 1.0:
            raise ValueError(f"noise is a probability in [0, 1), got {noise}")
        truth = np.asarray(list(truth), dtype=str)
        rng = np.random.default_rng([seed, 1919])
        flip = rng.random(len(truth)) < noise
        other = rng.integers(1, len(TEAMS), size=len(truth))
        position = np.array([TEAMS.index(t) for t in truth])
        noisy = np.array([TEAMS[(p + o) % len(TEAMS)] for p, o in zip(position, other, strict=True)], dtype=str)
        self._answers = np.where(flip, noisy, truth)
        self.asked = 0

    def label(self, indices: Any) -> np.ndarray:
        """The labels of these pool positions."""
        positions = np.asarray(indices, dtype=int)
        self.asked += len(positions)
        return np.asarray(self._answers[positions])


class Curve(NamedTuple):
    """A learning curve: test accuracy after each round, and the pool positions labelled, in order."""

    labels: list[int]
    accuracy: list[float]
    labelled: list[int]


def random_sampling(seed: int = 0) -> Acquire:
    """The baseline strategy: ``k`` unlabelled tickets drawn uniformly (its own generator, from ``seed``)."""
    rng = np.random.default_rng([seed, 7])

    def acquire(model: Any, pool: Any, k: int) -> np.ndarray:
        return rng.choice(pool.shape[0], size=k, replace=False)

    return acquire


def _positions(chosen: Any, k: int, size: int) -> np.ndarray:
    """``chosen`` as k distinct positions in [0, size), or an AcquisitionError that says what is wrong."""
    try:
        array = np.asarray(chosen)
    except Exception as exc:  # a learner's object that numpy cannot read
        raise AcquisitionError(f"acquire returned {type(chosen).__name__}, not a sequence of positions") from exc
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise AcquisitionError(
            f"acquire must return a 1-D sequence of integer positions; got shape {array.shape}, dtype {array.dtype}"
        )
    if array.size != k:
        raise AcquisitionError(f"acquire was asked for k={k} tickets and returned {array.size}: the budget is fixed")
    if array.size and (array.min() < 0 or array.max() >= size):
        raise AcquisitionError(f"acquire returned a position outside the pool of {size} unlabelled tickets")
    if len(np.unique(array)) != k:
        raise AcquisitionError("acquire returned the same ticket twice: a label is paid once")
    return array.astype(int)


def _first_labels(y: np.ndarray, initial: int, rng: np.random.Generator) -> list[int]:
    """One ticket of each team present (a seed set), then random ones up to ``initial``."""
    chosen = [int(rng.choice(np.flatnonzero(y == team))) for team in TEAMS if np.any(y == team)]
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    chosen += [int(i) for i in rng.choice(rest, size=max(0, initial - len(chosen)), replace=False)]
    return chosen


def simulate(
    acquire: Acquire,
    problem: Problem,
    *,
    seed: int = 0,
    initial: int = 10,
    batch: int = 10,
    budget: int = 90,
    noise: float = 0.0,
) -> Curve:
    """Spend ``budget`` labels: ``initial`` to start, then rounds of ``batch`` chosen by ``acquire``.

    The seed fixes the first labels and the oracle's noise, so two strategies run with the same
    seed differ only in what they acquire. Returns the learning curve (labels spent, test accuracy).

    Raises:
        AcquisitionError: ``acquire`` did not return ``batch`` distinct positions into the pool.
    """
    if initial < len(TEAMS):
        raise ValueError(f"start with at least one label per team: initial >= {len(TEAMS)}, got {initial}")
    if budget < initial or (budget - initial) % batch:
        raise ValueError(f"budget - initial must be a multiple of batch; got {budget}, {initial}, {batch}")
    if budget > problem.X_pool.shape[0]:
        raise ValueError(f"a budget of {budget} labels is more than the pool of {problem.X_pool.shape[0]} tickets")
    oracle = Oracle(problem.y_pool, noise=noise, seed=seed)
    labelled = _first_labels(problem.y_pool, initial, np.random.default_rng([seed, 3]))
    labels = list(oracle.label(labelled))
    curve = Curve([], [], labelled)
    while True:
        model = train_model(problem.X_pool[labelled], labels)
        curve.labels.append(len(labelled))
        curve.accuracy.append(float(np.mean(model.predict(problem.X_test) == problem.y_test)))
        if len(labelled) >= budget:
            return curve
        unlabelled = np.ones(problem.X_pool.shape[0], dtype=bool)
        unlabelled[labelled] = False
        rest = np.flatnonzero(unlabelled)
        chosen = rest[_positions(acquire(model, problem.X_pool[rest], batch), batch, len(rest))]
        labelled.extend(int(i) for i in chosen)
        labels.extend(oracle.label(chosen))


class Comparison(NamedTuple):
    """A strategy against random sampling over seeds: accuracy gains at the budget, paired by seed."""

    gains: list[float]
    mean: float
    low: float
    high: float


def compare(
    acquire: Acquire | Callable[[int], Acquire],
    problem: Problem,
    seeds: Sequence[int],
    *,
    per_seed: bool = False,
    confidence: float = 0.95,
    **settings: Any,
) -> Comparison:
    """Run ``acquire`` and random sampling on the same seeds; the mean paired gain at the budget.

    ``settings`` go to :func:`simulate`. With ``per_seed=True``, ``acquire`` is a factory called
    with each seed (for strategies that keep a random generator). The interval is the percentile
    bootstrap of the mean of the per-seed gains.
    """
    gains = []
    for seed in seeds:
        strategy = acquire(seed) if per_seed else acquire  # type: ignore[call-arg]
        ours = simulate(strategy, problem, seed=seed, **settings)  # type: ignore[arg-type]
        baseline = simulate(random_sampling(seed), problem, seed=seed, **settings)
        gains.append(ours.accuracy[-1] - baseline.accuracy[-1])
    low, high = bootstrap_ci(gains, confidence=confidence, seed=0)
    return Comparison(gains, float(np.mean(gains)), low, high)


# --- lineage --------------------------------------------------------------------------------


def _stamp(ts: Any) -> str:
    if isinstance(ts, str):
        datetime.fromisoformat(ts)  # raises ValueError on a malformed stamp
        return ts
    if isinstance(ts, datetime):
        return ts.isoformat(timespec="seconds")
    raise TypeError(f"ts must be an ISO 8601 string or a datetime, got {type(ts).__name__}")


def _named(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return value


def prediction_record(
    model_version: str, input_id: str, prediction: str, confidence: float, deferred: bool, ts: Any
) -> dict[str, Any]:
    """A model version's answer for one input, and whether it was deferred to a person."""
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"confidence is a probability in [0, 1], got {confidence}")
    return {
        "event": "prediction",
        "ts": _stamp(ts),
        "model_version": _named(model_version, "model_version"),
        "input_id": _named(input_id, "input_id"),
        "prediction": _named(prediction, "prediction"),
        "confidence": float(confidence),
        "deferred": bool(deferred),
    }


def label_record(input_id: str, label: str, labeller: str, ts: Any) -> dict[str, Any]:
    """A person's label for one input (a later label of the same input replaces it)."""
    return {
        "event": "label",
        "ts": _stamp(ts),
        "input_id": _named(input_id, "input_id"),
        "label": _named(label, "label"),
        "labeller": _named(labeller, "labeller"),
    }


def train_record(model_version: str, parent: str | None, ts: Any) -> dict[str, Any]:
    """A model version trained at ``ts`` on the labels logged before it, replacing ``parent``."""
    return {
        "event": "train",
        "ts": _stamp(ts),
        "model_version": _named(model_version, "model_version"),
        "parent": None if parent is None else _named(parent, "parent"),
    }


def make_log(
    seed: int = 0,
    *,
    versions: int = 3,
    seed_labels: int = 20,
    per_version: int = 60,
    threshold: float = 0.6,
    audit: float = 0.1,
    relabel: float = 0.15,
    shuffle: bool = True,
) -> list[dict[str, Any]]:
    """A simulated flywheel log: ``versions`` models, each serving ``per_version`` tickets.

    Before v1, ``seed_labels`` tickets are labelled by the ``seed-set`` labeller. Each version's
    predictions below ``threshold`` confidence are deferred and labelled by an agent minutes to
    days later (sometimes after the next version was trained); a share ``audit`` of the confident
    ones is labelled too; a share ``relabel`` of labelled tickets gets a second label from a senior
    agent later still (which may disagree). With ``shuffle`` the records come in no time order,
    as when several services write to one log.
    """
    rng = np.random.default_rng([seed, 2019])
    start = datetime(2026, 3, 2, 9, 0, 0) + timedelta(days=int(rng.integers(0, 60)))
    used: set[str] = set()

    def at(hours: float) -> str:
        stamp = start + timedelta(seconds=round(hours * 3600))
        while stamp.isoformat() in used:  # every record has its own second
            stamp += timedelta(seconds=1)
        used.add(stamp.isoformat())
        return stamp.isoformat()

    log: list[dict[str, Any]] = []
    labels: list[tuple[str, str, float]] = []  # (input_id, true team, hour labelled)
    next_id = int(rng.integers(1, 5000))

    def ticket() -> tuple[str, str]:
        nonlocal next_id
        next_id += int(rng.integers(1, 4))
        return f"T{next_id:06d}", str(rng.choice(TEAMS))

    for _ in range(seed_labels):
        input_id, team = ticket()
        hour = float(rng.uniform(0, 20))
        log.append(label_record(input_id, team, "seed-set", at(hour)))
        labels.append((input_id, team, hour))
    parent, train_hour = None, 24.0
    for v in range(1, versions + 1):
        version = f"v{v}"
        log.append(train_record(version, parent, at(train_hour)))
        for hour in np.sort(rng.uniform(train_hour + 0.5, train_hour + 72, size=per_version)):
            input_id, team = ticket()
            confidence = float(rng.beta(4, 2))
            right = rng.random() < 0.35 + 0.6 * confidence
            prediction = team if right else str(rng.choice([t for t in TEAMS if t != team]))
            deferred = confidence < threshold
            log.append(prediction_record(version, input_id, prediction, round(confidence, 3), deferred, at(hour)))
            if deferred or rng.random() < audit:
                done = float(hour + rng.exponential(10.0))
                agent = f"agent-{int(rng.integers(1, 9)):02d}"
                given = team if rng.random() < 0.92 else str(rng.choice(TEAMS))
                log.append(label_record(input_id, given, agent, at(done)))
                labels.append((input_id, team, done))
        for input_id, team, done in [item for item in labels if rng.random() < relabel / versions]:
            log.append(label_record(input_id, team, "senior-agent", at(done + float(rng.uniform(1, 60)))))
        parent, train_hour = version, train_hour + 72.0
    if shuffle:
        log = [log[i] for i in rng.permutation(len(log))]
    return log

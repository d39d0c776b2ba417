"""Extractive question answering on generated product facts (lesson 20, the capstone).

:func:`make_qa` writes short passages about a few devices and one question about each, with
the answer's character offsets in the passage. Statements and questions come from templates;
``split="test"`` uses templates that ``split="train"`` never does, so a test set asks in words
the training data never had.

:class:`TokenScorer` is a small span scorer: a logistic regression over a dozen features of each
passage token, giving start and end logits in the layout a transformer QA model uses
(``[CLS] question [SEP] passage [SEP]``), with ``None`` as the character offsets of every token
that is not in the passage. :func:`keyword_baseline` answers with the passage sentence that shares
the most words with the question: the baseline a shipped model must beat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from sklearn.linear_model import LogisticRegression

#: the splits of :func:`make_qa`
SPLITS = ("train", "test")

_TOKEN = re.compile(r"\w+(?:[.'-]\w+)*|[^\w\s]")
_STOP = frozenset(
    {
        "a",
        "an",
        "the",
        "is",
        "are",
        "of",
        "on",
        "in",
        "to",
        "by",
        "for",
        "from",
        "with",
        "does",
        "do",
        "which",
        "what",
        "how",
        "who",
        "where",
        "when",
        "long",
        "much",
        "and",
        "it",
        "its",
        "at",
        "be",
        "under",
    }
)

DEVICES = ("Hub", "Beacon", "Relay", "Gateway", "Sensor", "Dock", "Bridge", "Camera")
TEAMS = ("billing", "network", "hardware", "accounts", "logistics")
CITIES = ("Lisbon", "Tallinn", "Porto", "Leipzig", "Ghent", "Turin", "Malmo", "Cork")

#: attribute -> (statement templates, question templates); the last of each is the test split's only
_TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "firmware": (
        (
            "The {d} ships with firmware {v}.",
            "Firmware {v} comes installed on the {d}.",
            "Every {d} leaves the factory running firmware {v}.",
        ),
        (
            "Which firmware does the {d} ship with?",
            "What firmware is installed on the {d}?",
            "The {d} runs which firmware out of the box?",
        ),
    ),
    "warranty": (
        (
            "The {d} is covered by a warranty of {v}.",
            "A warranty of {v} comes with the {d}.",
            "Buyers of the {d} get {v} of warranty cover.",
        ),
        (
            "How long is the warranty on the {d}?",
            "What warranty comes with the {d}?",
            "For how long is the {d} under warranty?",
        ),
    ),
    "price": (
        ("The {d} costs {v}.", "The price of the {d} is {v}.", "Customers pay {v} for the {d}."),
        ("How much does the {d} cost?", "What is the price of the {d}?", "What do customers pay for the {d}?"),
    ),
    "battery": (
        (
            "The battery of the {d} lasts {v}.",
            "On one charge the {d} runs for {v}.",
            "A full battery keeps the {d} going for {v}.",
        ),
        (
            "How long does the battery of the {d} last?",
            "How long does the {d} run on one charge?",
            "What is the battery life of the {d}?",
        ),
    ),
    "team": (
        (
            "Tickets about the {d} are handled by the {v} team.",
            "The {v} team answers tickets about the {d}.",
            "Questions on the {d} go to the {v} team.",
        ),
        (
            "Which team handles tickets about the {d}?",
            "Who answers tickets about the {d}?",
            "Where do questions on the {d} go?",
        ),
    ),
    "origin": (
        (
            "The {d} is shipped from {v}.",
            "Orders of the {d} leave our warehouse in {v}.",
            "We dispatch the {d} from {v}.",
        ),
        (
            "Where is the {d} shipped from?",
            "From which warehouse does the {d} leave?",
            "From which city do we dispatch the {d}?",
        ),
    ),
}
ATTRIBUTES = tuple(_TEMPLATES)


class QAExample(TypedDict):
    """One question about one passage, and where its answer is."""

    passage: str
    question: str
    answer: str
    answer_start: int
    attribute: str


def _value(rng: np.random.Generator, attribute: str) -> str:
    if attribute == "firmware":
        return f"{rng.integers(1, 10)}.{rng.integers(0, 20)}"
    if attribute == "warranty":
        return f"{int(rng.choice([6, 12, 18, 24, 36]))} months"
    if attribute == "price":
        return f"{rng.integers(19, 500)} euros"
    if attribute == "battery":
        return f"{rng.integers(4, 72)} hours"
    if attribute == "team":
        return str(rng.choice(TEAMS))
    return str(rng.choice(CITIES))


def _template(rng: np.random.Generator, templates: tuple[str, ...], split: str) -> str:
    pool = templates[:-1] if split == "train" else templates[-1:]
    return str(pool[rng.integers(len(pool))])


def make_qa(n: int, *, seed: int = 0, split: str = "train", facts: int = 4) -> list[QAExample]:
    """``n`` passages of ``facts`` statements about devices, each with one question and its answer.

    The passage states facts about two or three devices, so answering needs the device as well as
    the attribute; the answer occurs exactly once in its passage. The same arguments give the same
    examples.

    Raises:
        ValueError: an unknown ``split``, ``n`` below 0 or ``facts`` below 1.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0 or facts < 1:
        raise ValueError(f"n must be >= 0 and facts >= 1, got n={n}, facts={facts}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    examples: list[QAExample] = []
    while len(examples) < n:
        devices = rng.choice(DEVICES, size=3, replace=False)
        pairs: set[tuple[str, str]] = set()
        while len(pairs) < facts:
            pairs.add((str(rng.choice(devices)), str(rng.choice(ATTRIBUTES))))
        ordered = sorted(pairs)
        rng.shuffle(ordered)
        statements, values = [], []
        for device, attribute in ordered:
            value = _value(rng, attribute)
            values.append(value)
            statements.append(_template(rng, _TEMPLATES[attribute][0], split).format(d=device, v=value))
        passage = " ".join(statements)
        pick = int(rng.integers(len(ordered)))
        device, attribute = ordered[pick]
        answer = values[pick]
        if len(re.findall(rf"(?<!\w){re.escape(answer)}(?!\w)", passage)) != 1:
            continue  # the answer must be unambiguous
        question = _template(rng, _TEMPLATES[attribute][1], split).format(d=device)
        start = sum(len(s) + 1 for s in statements[:pick]) + statements[pick].index(answer)
        examples.append(
            QAExample(passage=passage, question=question, answer=answer, answer_start=start, attribute=attribute)
        )
    return examples


def tokens(text: str) -> list[tuple[int, int]]:
    """Character offsets ``(start, end)`` of the words and punctuation marks of ``text``."""
    return [match.span() for match in _TOKEN.finditer(text)]


def _words(text: str) -> set[str]:
    return {text[a:b].lower() for a, b in tokens(text)} - _STOP


def _sentences(passage: str, spans: list[tuple[int, int]]) -> list[int]:
    """The sentence number of each token."""
    out, number = [], 0
    for a, b in spans:
        out.append(number)
        if passage[a:b] in ".?!":
            number += 1
    return out


def token_features(question: str, passage: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One row of features per passage token, and the tokens' character offsets."""
    spans = tokens(passage)
    texts = [passage[a:b] for a, b in spans]
    lower = [t.lower() for t in texts]
    asked = _words(question)
    q = question.lower()
    kinds = [
        "firmware" in q,
        "how long" in q or "battery" in q or "warranty" in q,
        "cost" in q or "price" in q or "pay" in q,
        "team" in q or "who" in q or "questions" in q,
        "where" in q or "which city" in q or "warehouse" in q,
    ]
    sentence = _sentences(passage, spans)
    overlap: dict[int, float] = {}
    for s in set(sentence):
        words = {lower[i] for i, n in enumerate(sentence) if n == s}
        overlap[s] = len(words & asked) / max(len(asked), 1)
    best = max(overlap.values(), default=0.0)
    rows = []
    for i, text in enumerate(texts):
        prev_ = lower[i - 1] if i else ""
        next_ = lower[i + 1] if i + 1 < len(lower) else ""
        number = bool(re.fullmatch(r"\d+(?:\.\d+)?", text))
        capital = text[:1].isupper() and i > 0 and texts[i - 1] not in ".?!"
        base = [
            overlap[sentence[i]],
            float(overlap[sentence[i]] == best),
            float(lower[i] in asked),
            float(number),
            float(capital),
            float(not text.isalnum() and "." not in text),
            float(prev_ in asked),
            float(next_ in asked),
            float(bool(re.fullmatch(r"\d+(?:\.\d+)?", texts[i - 1])) if i else 0.0),
            float(next_ == "team"),
            float(prev_ in {"firmware", "from", "in", "costs", "is", "of", "pay", "for", "lasts", "the"}),
            float(lower[i] in _STOP),
        ]
        rows.append(base + [float(k) * x for k in kinds for x in (number, capital, base[8], base[9])])
    return np.asarray(rows, dtype=float).reshape(len(texts), -1), spans


@dataclass
class TokenScorer:
    """Start and end logits for every token of ``[CLS] question [SEP] passage [SEP]``."""

    start_model: LogisticRegression = field(default_factory=lambda: LogisticRegression(C=1.0, max_iter=2000))
    end_model: LogisticRegression = field(default_factory=lambda: LogisticRegression(C=1.0, max_iter=2000))

    def fit(self, examples: Sequence[QAExample]) -> TokenScorer:
        """Learn which tokens start and end answers."""
        features: list[np.ndarray] = []
        starts: list[bool] = []
        ends: list[bool] = []
        for example in examples:
            rows, spans = token_features(example["question"], example["passage"])
            first, last = example["answer_start"], example["answer_start"] + len(example["answer"])
            features.append(rows)
            starts.extend(a == first for a, _ in spans)
            ends.extend(b == last for _, b in spans)
        x = np.vstack(features)
        self.start_model.fit(x, starts)
        self.end_model.fit(x, ends)
        return self

    def logits(self, question: str, passage: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int] | None]]:
        """(start_logits, end_logits, offsets) over ``[CLS] question [SEP] passage [SEP]``.

        ``offsets[i]`` is the ``(start, end)`` of token ``i`` in the passage, or ``None`` for
        ``[CLS]``, the question's tokens and the ``[SEP]`` marks: those are never part of an answer.
        """
        rows, spans = token_features(question, passage)
        n_question = len(tokens(question))
        prefix = np.zeros(1 + n_question + 1)
        if rows.shape[0]:
            start = self.start_model.decision_function(rows)
            end = self.end_model.decision_function(rows)
        else:
            start = end = np.zeros(0)
        # the question's own words are scored high on purpose: a decoder must skip what offsets mark None
        prefix[1 : 1 + n_question] = float(max(start.max(initial=0.0), end.max(initial=0.0)) + 1.0)
        offsets: list[tuple[int, int] | None] = [None] * len(prefix) + list(spans) + [None]
        return (
            np.concatenate([prefix, start, [0.0]]),
            np.concatenate([prefix, end, [0.0]]),
            offsets,
        )


def train_scorer(n: int = 300, *, seed: int = 0) -> TokenScorer:
    """A :class:`TokenScorer` fitted on ``n`` training-split examples (well under a second)."""
    return TokenScorer().fit(make_qa(n, seed=seed, split="train"))


def keyword_baseline(question: str, passage: str) -> str:
    """The passage sentence that shares the most words with the question (the first on ties)."""
    spans = tokens(passage)
    sentence = _sentences(passage, spans)
    asked = _words(question)
    best, best_score = "", -1
    for s in sorted(set(sentence)):
        members = [spans[i] for i, n in enumerate(sentence) if n == s]
        score = len({passage[a:b].lower() for a, b in members} & asked)
        if score > best_score:
            best, best_score = passage[members[0][0] : members[-1][1]], score
    return best

"""The ticket router that Part V ships: one small, fast predictor core that lessons 12–16 version,
serve, scale, test and gate.

It is deliberately plain: word and character n-gram TF-IDF over the ticket's text and a
multinomial logistic regression (lesson 05's strongest classical baseline), trained in about a
second on one thread. What the shipping lessons teach does not depend on the model; this one is
small enough that a notebook can train, save, serve and test it many times.

    >>> from mlcourse.router import train_router
    >>> router = train_router(n_tickets=600, seed=0)
    >>> router.predict(["I was charged twice for my subscription"])
    ['billing']

A router turns into bytes and back with :meth:`TicketRouter.to_bytes` and
:func:`TicketRouter.from_bytes`, and describes itself with :attr:`TicketRouter.config`. Within one
process the same router gives the same bytes; across processes it does not (scikit-learn's
vectorizer pickles a memory address, :data:`PROCESS_STATE`): :meth:`TicketRouter.stable_bytes` (also
:func:`mlcourse.artefacts.router_bytes`) leaves that out and gives the same bytes in every process, and
lesson 12 shows why. :meth:`TicketRouter.digest` hashes those, so the same router has the same name in
every process (a serving replica's ``/version``, a CI run's artefact name).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from mlcourse.tickets import TEAMS, make_tickets

#: attributes a pickle of the pipeline captures that are not part of the model: scikit-learn's text
#: vectorizers remember ``id(self.stop_words)`` (a memory address) to avoid repeating a warning, a cache
#: they rebuild when it is missing
PROCESS_STATE = ("_stop_words_id",)

#: what ``to_bytes`` writes first, so that ``from_bytes`` can tell a router from any other file
_MAGIC = b"mlcourse-router/1\n"


@dataclass(frozen=True)
class RouterConfig:
    """Everything that decides how a router is trained (its ``config`` in a manifest)."""

    n_tickets: int = 2000
    seed: int = 0
    C: float = 4.0
    max_features: int = 20000

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TicketRouter:
    """A fitted ticket router: text in, team out."""

    pipeline: Pipeline
    config: RouterConfig = field(default_factory=RouterConfig)

    @property
    def teams(self) -> tuple[str, ...]:
        """The teams it can answer, in the order of ``predict_proba``'s columns."""
        return tuple(str(t) for t in self.pipeline.classes_)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """One team per text, in order."""
        texts = _texts(texts)
        if not texts:
            return []
        return [str(team) for team in self.pipeline.predict(texts)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """An array (len(texts), len(teams)): each row sums to 1."""
        texts = _texts(texts)
        if not texts:
            return np.zeros((0, len(self.teams)))
        return np.asarray(self.pipeline.predict_proba(texts))

    def to_bytes(self) -> bytes:
        """The router as bytes (a pickle); the same in one process, not across processes (see the module docstring)."""
        buffer = io.BytesIO()
        buffer.write(_MAGIC)
        pickle.dump({"config": self.config.as_dict(), "pipeline": self.pipeline}, buffer, protocol=5)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> TicketRouter:
        """The router that ``to_bytes`` wrote. Only load bytes you trust (or whose digest you checked):
        they are a pickle.

        Raises:
            ValueError: the bytes are not a router written by ``to_bytes``.
        """
        if not data.startswith(_MAGIC):
            raise ValueError("these bytes are not a ticket router written by TicketRouter.to_bytes")
        try:
            payload = pickle.loads(data[len(_MAGIC) :])
        except Exception as exc:  # a truncated or altered pickle raises many kinds of error
            raise ValueError(f"the router's bytes are damaged and cannot be read: {exc}") from exc
        return TicketRouter(pipeline=payload["pipeline"], config=RouterConfig(**payload["config"]))

    def stable_bytes(self) -> bytes:
        """``to_bytes()`` without :data:`PROCESS_STATE`: the same router gives the same bytes in any process
        (``from_bytes`` reads them like any other router bytes). The router itself is not changed."""
        pipeline = copy.deepcopy(self.pipeline)
        for part in (pipeline, *pipeline.get_params(deep=True).values()):
            for name in PROCESS_STATE:
                if name in getattr(part, "__dict__", {}):
                    delattr(part, name)
        return TicketRouter(pipeline=pipeline, config=self.config).to_bytes()

    def digest(self) -> str:
        """sha256 of :meth:`stable_bytes`: names this router, the same in every process."""
        return hashlib.sha256(self.stable_bytes()).hexdigest()


def train_router(
    frame: pd.DataFrame | None = None, *, n_tickets: int = 2000, seed: int = 0, C: float = 4.0
) -> TicketRouter:
    """Train a router on ``frame`` (columns ``text`` and ``team``), or on ``make_tickets(n_tickets, seed=seed)``.

    Deterministic: the same data and arguments give a router that predicts exactly the same.
    """
    config = RouterConfig(n_tickets=n_tickets if frame is None else len(frame), seed=seed, C=C)
    if frame is None:
        frame = make_tickets(n_tickets, seed=seed)
    missing = {"text", "team"} - set(frame.columns)
    if missing:
        raise ValueError(f"the training frame needs columns 'text' and 'team'; it lacks {sorted(missing)}")
    limit = config.max_features
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=limit)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, min_df=3, max_features=limit)
    features = FeatureUnion([("words", words), ("chars", chars)])
    pipeline = Pipeline([("features", features), ("model", LogisticRegression(C=C, max_iter=1000))])
    # One BLAS/OpenMP thread: a model this small trains fastest on one, and on a busy machine the
    # pools' spinning threads made the same fit 25 to 40 times slower (0.3 s against 12 s, measured)
    with threadpool_limits(limits=1):
        pipeline.fit(frame["text"].tolist(), frame["team"].tolist())
    unknown = set(pipeline.classes_) - set(TEAMS)
    if unknown:
        raise ValueError(f"the training frame names teams that do not exist: {sorted(unknown)}")
    return TicketRouter(pipeline=pipeline, config=config)


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, not one string: router.predict([text])")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"every text must be a str; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts

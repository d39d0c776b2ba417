"""Small parts for knowledge distillation: a cheap student's features, a cheap teacher, model sizes.

Lesson 10 distils all-MiniLM-L6-v2 (the teacher) into a bag-of-words network (the student).
These helpers are shared by its lesson notebook and its exercise:

- :func:`hash_features` turns texts into the student's input: each word hashed with
  ``zlib.crc32`` (stable across processes, unlike Python's ``hash``) into one of
  ``n_features`` buckets, counts squashed with ``log1p``. No vocabulary, no tokenizer.
- :func:`truncate_encoder` keeps only the first layers of an encoder's transformer, a copy: a
  real but cheap teacher for smoke runs and for grading on two CPU cores.
- :func:`model_size` counts a model's parameters and the megabytes they take in memory, the
  "size" column of an accuracy / latency / size table.

The distillation loss itself is what the exercise asks for, so it is not here.
"""

from __future__ import annotations

import copy
import re
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import torch

from mlcourse.encoder import Encoder

__all__ = ["DEFAULT_FEATURES", "ModelSize", "hash_features", "model_size", "truncate_encoder"]

#: the number of hash buckets the course's students use
DEFAULT_FEATURES = 2048
_WORD = re.compile(r"[a-z0-9#']+")


class ModelSize(NamedTuple):
    """How big a model is: its parameters, and the megabytes (10⁶ bytes) its parameters and buffers take."""

    parameters: int
    megabytes: float


def hash_features(texts: Sequence[str], n_features: int = DEFAULT_FEATURES) -> torch.Tensor:
    """Hashed bag of words: a float32 tensor ``(len(texts), n_features)`` of ``log1p`` word counts.

    Words are runs of lower-case letters, digits, ``#`` and ``'``; each goes to bucket
    ``crc32(word) % n_features``. The same text gives the same row on every machine.

    Raises:
        TypeError: ``texts`` is a single string, or holds something other than strings.
        ValueError: ``n_features`` is below 1.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings; wrap a single text in a list: [text]")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be an integer >= 1, got {n_features!r}")
    counts = torch.zeros(len(texts), n_features)
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{row}] is a {type(text).__name__}, not a str")
        for word in _WORD.findall(text.lower()):
            counts[row, zlib.crc32(word.encode()) % n_features] += 1.0
    return torch.log1p(counts)


def truncate_encoder(encoder: Encoder, n_layers: int) -> Encoder:
    """A copy of ``encoder`` whose transformer keeps only its first ``n_layers`` layers.

    The embeddings and the kept layers are the pretrained ones, so the truncated model is a
    weaker but real encoder; the original is left as it is.

    Raises:
        ValueError: ``n_layers`` is not between 1 and the number of layers the encoder has.
        TypeError: the model has no ``encoder.layer`` list (it is not a BERT-style model).
    """
    stack = getattr(encoder.model, "encoder", None)
    layers = getattr(stack, "layer", None)
    if not isinstance(stack, torch.nn.Module) or not isinstance(layers, torch.nn.ModuleList):
        raise TypeError(f"{type(encoder.model).__name__} has no encoder.layer list to truncate")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= len(layers):
        raise ValueError(f"n_layers must be an integer from 1 to {len(layers)}, got {n_layers!r}")
    # copy only the layers that are kept: swap the short list in, deep-copy, swap the full list back
    stack.layer = torch.nn.ModuleList(list(layers)[:n_layers])
    try:
        model = copy.deepcopy(encoder.model)
    finally:
        stack.layer = layers
    model.config.num_hidden_layers = n_layers
    return replace(encoder, model=model)


def model_size(model: torch.nn.Module) -> ModelSize:
    """Parameters and buffers of ``model``: how many numbers, and how many megabytes they occupy."""
    tensors = [*model.parameters(), *model.buffers()]
    count = sum(t.numel() for t in model.parameters())
    size = sum(t.numel() * t.element_size() for t in tensors)
    return ModelSize(parameters=int(count), megabytes=size / 1e6)

"""Fast CPU inference, measured (lesson 14): padding, one forward pass for any backend, a loopback load test.

Lesson 14 and its benchmarks (``bench/b12``–``b14``) compare ways to serve the course's encoder on a
CPU. What they share is here:

- :func:`token_lengths` and :func:`padding_waste`: how many of the positions a model computes are
  padding, for fixed-length batches, batches padded to their longest text, and length-sorted batches;
- :func:`embed`: sentence embeddings (mean over the attention mask, L2-normalised, as
  :class:`mlcourse.encoder.Encoder` computes them) through any *forward* function, so a float
  PyTorch model, an int8 copy and an ONNX Runtime session are compared on exactly the same
  tokens; :func:`torch_forward` and :func:`onnx_forward` adapt the two kinds of model;
- :func:`load_test`: a bounded, closed-loop load test over TCP on ``127.0.0.1``: a fixed number of
  requests from ``concurrency`` clients that each wait for their answer before sending the next,
  with every request's latency, p50/p95 and throughput.

The micro-batcher and the quantisation step are the lesson's subject (and its exercise), so they
are not here.

    >>> waste = padding_waste([3, 5, 12, 4], batch_size=2, fixed_length=16)
    >>> round(waste, 3)
    0.625
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Forward",
    "LoadResult",
    "embed",
    "load_test",
    "onnx_forward",
    "padding_waste",
    "token_lengths",
    "torch_forward",
]

#: ``forward(input_ids, attention_mask) -> last hidden state``, all NumPy: (batch, tokens[, width])
Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: the loopback address every load test uses: nothing leaves the machine
_HOST = "127.0.0.1"


def token_lengths(tokenizer: Any, texts: Iterable[str], max_length: int = 256) -> np.ndarray:
    """The number of tokens of each text (special tokens included, truncated at ``max_length``)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def padding_waste(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    fixed_length: int | None = None,
    sort_by_length: bool = False,
) -> float:
    """The fraction of computed positions that are padding when ``lengths`` are cut into batches.

    Each batch is padded to ``fixed_length`` when given (texts longer are truncated to it), else to
    its own longest text ("dynamic padding"). ``sort_by_length`` batches texts of similar length
    together first, as a server does with the requests it holds.

    Raises:
        ValueError: no lengths, a length below 1, or ``batch_size`` / ``fixed_length`` below 1.
    """
    values = np.asarray(lengths, dtype=np.int64)
    if values.ndim != 1 or values.size == 0 or int(values.min()) < 1:
        raise ValueError("lengths must be a non-empty 1-D sequence of token counts >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if fixed_length is not None:
        if fixed_length < 1:
            raise ValueError(f"fixed_length must be >= 1 or None, got {fixed_length}")
        values = np.minimum(values, fixed_length)
    if sort_by_length:
        values = np.sort(values)
    computed = 0
    for first in range(0, values.size, batch_size):
        batch = values[first : first + batch_size]
        width = fixed_length if fixed_length is not None else int(batch.max())
        computed += width * batch.size
    return 1.0 - float(values.sum()) / computed


def embed(
    tokenizer: Any,
    forward: Forward,
    texts: Iterable[str],
    *,
    batch_size: int = 32,
    fixed_length: int | None = None,
    sort_by_length: bool = True,
    max_length: int = 256,
) -> np.ndarray:
    """Sentence embeddings of ``texts`` (float32, one row per text, in the order of ``texts``).

    Tokenises each batch padded to ``fixed_length`` (``padding="max_length"``) or, when it is
    ``None``, to the batch's longest text; ``sort_by_length`` orders texts by length before cutting
    batches (the rows still come back in the order given). Then mean pooling over the attention
    mask and L2 normalisation.

    Raises:
        ValueError: ``batch_size`` below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort_by_length else list(range(len(texts)))
    rows: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
    for first in range(0, len(order), batch_size):
        chosen = order[first : first + batch_size]
        if fixed_length is None:
            padding: dict[str, Any] = {"padding": True, "max_length": max_length}
        else:
            padding = {"padding": "max_length", "max_length": fixed_length}
        batch = tokenizer([texts[i] for i in chosen], truncation=True, return_tensors="np", **padding)
        mask = np.asarray(batch["attention_mask"], dtype=np.int64)
        hidden = np.asarray(forward(np.asarray(batch["input_ids"], dtype=np.int64), mask), dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        for row, i in enumerate(chosen):
            rows[i] = pooled[row]
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def torch_forward(model: Any) -> Forward:
    """A :data:`Forward` for a Hugging Face encoder (float or quantised), run under ``inference_mode``."""
    import torch

    def forward(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out
        return np.asarray(hidden.float().numpy())

    return forward


def onnx_forward(session: Any) -> Forward:
    """A :data:`Forward` for an ONNX Runtime session with inputs ``input_ids`` and ``attention_mask``."""
    names = {i.name for i in session.get_inputs()}
    if not {"input_ids", "attention_mask"} <= names:
        raise ValueError(f"the ONNX model's inputs are {sorted(names)}; expected input_ids and attention_mask")

    def forward(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0])

    return forward


@dataclass(frozen=True)
class LoadResult:
    """One load test: every request's latency and answer, in request order, and the wall time."""

    latencies_s: tuple[float, ...]
    answers: tuple[str, ...]
    wall_s: float
    concurrency: int

    @property
    def n_requests(self) -> int:
        """How many requests were sent (and answered)."""
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        """Answered requests per second of wall time."""
        return self.n_requests / self.wall_s

    def percentile_s(self, q: float) -> float:
        """The ``q``-th percentile of the latencies (0–100), seconds."""
        return float(np.percentile(np.asarray(self.latencies_s), q))

    @property
    def p50_s(self) -> float:
        """Median latency, seconds."""
        return self.percentile_s(50)

    @property
    def p95_s(self) -> float:
        """95th-percentile latency, seconds."""
        return self.percentile_s(95)


async def load_test(
    handler: Callable[[str], Awaitable[str]],
    texts: Sequence[str],
    *,
    n_requests: int | None = None,
    concurrency: int = 16,
) -> LoadResult:
    """Serve ``handler`` on a loopback TCP port and send it ``n_requests`` from ``concurrency`` clients.

    Request ``i`` carries ``texts[i % len(texts)]`` (newlines become spaces: one request per line)
    and is sent by client ``i % concurrency``; each client sends its next request only after the
    answer to the previous one (a closed loop, so at most ``concurrency`` requests are in flight
    and the test is bounded). Latency is measured by the client, from writing the request to
    reading the answer. Await it from a notebook; from a script use ``asyncio.run(load_test(...))``.

    Raises:
        ValueError: no texts, ``n_requests`` or ``concurrency`` below 1.
    """
    if not texts:
        raise ValueError("texts must not be empty")
    total = len(texts) if n_requests is None else n_requests
    if total < 1 or concurrency < 1:
        raise ValueError(f"n_requests and concurrency must be >= 1, got {total} and {concurrency}")
    lines = [texts[i % len(texts)].replace("\n", " ") for i in range(total)]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                answer = await handler(line.decode().rstrip("\n"))
                writer.write(answer.replace("\n", " ").encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    latencies = [0.0] * total
    answers = [""] * total

    async def client(first: int) -> None:
        reader, writer = await asyncio.open_connection(_HOST, port)
        try:
            for i in range(first, total, concurrency):
                start = time.perf_counter()
                writer.write(lines[i].encode() + b"\n")
                await writer.drain()
                answers[i] = (await reader.readline()).decode().rstrip("\n")
                latencies[i] = time.perf_counter() - start
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(serve, _HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(min(concurrency, total))))
        wall = time.perf_counter() - start
    finally:
        server.close()
        await server.wait_closed()
    return LoadResult(tuple(latencies), tuple(answers), wall, concurrency)

"""mlcourse.inference: padding arithmetic, embeddings through any forward, the loopback load test."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mlcourse.inference import LoadResult, embed, load_test, padding_waste


class WordTokenizer:
    """A stand-in tokenizer: one token per word (id = word length), padding with 0."""

    def __call__(self, texts, *, truncation=True, max_length=256, padding=False, return_tensors=None):
        ids = [[len(w) for w in t.split()][:max_length] or [1] for t in texts]
        if not padding:
            return {"input_ids": ids}
        width = max_length if padding == "max_length" else max(map(len, ids))
        out = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(out)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return {"input_ids": out, "attention_mask": mask}


def fake_forward(input_ids, attention_mask):
    """Hidden state of each token: (id, 1); padding positions get garbage the mask must remove."""
    hidden = np.stack([input_ids.astype(np.float32), np.ones_like(input_ids, dtype=np.float32)], axis=-1)
    hidden[attention_mask == 0] = 1000.0
    return hidden


def test_padding_waste_fixed_dynamic_and_sorted():
    lengths = [3, 5, 12, 4]
    assert padding_waste(lengths, 2, fixed_length=16) == pytest.approx(1 - 24 / 64)
    assert padding_waste(lengths, 2) == pytest.approx(1 - 24 / (2 * 5 + 2 * 12))
    assert padding_waste(lengths, 2, sort_by_length=True) == pytest.approx(1 - 24 / (2 * 4 + 2 * 12))
    assert padding_waste([7, 7, 7], 3) == 0.0
    assert padding_waste([40], 1, fixed_length=16) == 0.0  # truncated to the fixed length


@pytest.mark.parametrize("bad", [[], [0, 3]])
def test_padding_waste_refuses_bad_lengths(bad):
    with pytest.raises(ValueError, match="lengths"):
        padding_waste(bad, 2)


def test_embed_is_the_same_whatever_the_padding_and_order():
    texts = ["a bb ccc", "dddd", "ee f gg hhh iiii jj", "k"]
    dynamic = embed(WordTokenizer(), fake_forward, texts, batch_size=3)
    fixed = embed(WordTokenizer(), fake_forward, texts, batch_size=2, fixed_length=8, sort_by_length=False)
    np.testing.assert_allclose(dynamic, fixed, rtol=1e-6)
    mean_len = np.mean([1, 2, 3])  # the first text: mean of (id, 1) rows, then L2-normalised
    expected = np.array([mean_len, 1.0]) / np.hypot(mean_len, 1.0)
    np.testing.assert_allclose(dynamic[0], expected, rtol=1e-6)
    assert dynamic.shape == (4, 2) and dynamic.dtype == np.float32


def test_load_test_answers_every_request_in_order_with_bounded_concurrency():
    in_flight = 0
    most = 0

    async def handler(text: str) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return text.upper()

    result = asyncio.run(load_test(handler, ["one", "two\nlines", "three"], n_requests=20, concurrency=4))
    assert isinstance(result, LoadResult) and result.n_requests == 20
    assert result.answers == tuple(["ONE", "TWO LINES", "THREE"][i % 3] for i in range(20))
    assert most <= 4
    assert all(t > 0 for t in result.latencies_s) and result.p50_s <= result.p95_s
    assert result.throughput == pytest.approx(20 / result.wall_s)


def test_load_test_refuses_an_empty_test():
    async def handler(text: str) -> str:
        return text

    with pytest.raises(ValueError, match="texts"):
        asyncio.run(load_test(handler, []))

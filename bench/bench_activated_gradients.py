"""Activated gradients (Liu et al., docs/SCIENCE.md §12) against plain SGD, over seeds: the figure README quotes.

The Train view's digits CNN setting (SiLU, average pooling, SGD at learning rate 0.2, 15 epochs, batch 64, shifts
of 1 pixel) trained with and without ``alpha * arctan(beta * g)`` (alpha 0.3, beta 4.5) for each seed; prints the
test accuracy per seed and the mean and spread, as a markdown table.

    python bench/bench_activated_gradients.py [--seeds 0 1 2 3 4] [--epochs 15] [--lr 0.2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
import time

import torch

from geometry.models.training import TrainConfig, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--activation", default="silu")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows: dict[str, list[float]] = {"none": [], "arctan": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            for ga in ("none", "arctan"):
                config = TrainConfig(
                    f"bench-{ga}-{seed}",
                    "cnn",
                    "digits",
                    args.activation,
                    {"pool": "avg"},
                    epochs=args.epochs,
                    batch_size=64,
                    lr=args.lr,
                    optimizer="sgd",
                    augment_shift=1,
                    grad_activation=ga,
                    ga_alpha=0.3,
                    ga_beta=4.5,
                    seed=seed,
                )
                result = train(config, out_dir=out)
                accuracy = result.history[-1]["test_accuracy"]
                rows[ga].append(accuracy)
                print(f"seed {seed} {ga:6s} test accuracy {accuracy:.3f}", flush=True)
    print()
    print(
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"{dt.date.today()}; digits CNN ({args.activation}, avg pool), SGD lr {args.lr}, {args.epochs} epochs, "
        f"batch 64, shift 1; alpha 0.3, beta 4.5; {time.perf_counter() - start:.0f} s in all"
    )
    print()
    print("| training | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | sd | min | max |")
    print("|---|" + "---|" * (len(args.seeds) + 4))
    for ga, label in (("none", "plain SGD"), ("arctan", "activated gradients")):
        acc = rows[ga]
        cells = " | ".join(f"{a:.1%}" for a in acc)
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {label} | {cells} | {statistics.mean(acc):.1%} | {sd:.1%} | {min(acc):.1%} | {max(acc):.1%} |")


if __name__ == "__main__":
    main()

"""Held-out vs in-sample false-positive rate and AUC of the curvature-statistic detector (issue 11, item 3).

Run: ``python bench/bench_detection_heldout.py`` (about 1-2 min per model on 2 CPU cores). For each built-in digits
model, ``--n`` test digits (the Detection page's largest sample, 200) are split in half (seeded): the threshold is set
on one half for a 5% false-positive rate, and the other half and their DeepFool perturbations give the held-out
false-positive rate, detection rate and AUC. Seeds 0, 1, 2 (the split and the random directions). Prints a markdown
table of mean ± standard deviation over the seeds; "in-sample FPR" is the rate on the calibration half itself
(<= 5% by construction, what the page showed before).
"""

from __future__ import annotations

import argparse

import numpy as np

import geometry
from geometry.inspection.detection import evaluate_detection


def _mean_sd(values: list[float], fmt: str = ".1%") -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():{fmt}} ± {a.std(ddof=1) if len(a) > 1 else 0.0:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["digits-cnn-silu", "digits-cnn-relu", "digits-mlp-relu"])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--fpr", type=float, default=0.05)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    x = geometry.load_dataset("digits", "test").images[: args.n]
    print(f"{len(x)} digits test images, target FPR {args.fpr:.0%}, M = 32, h = 0.5, seeds {args.seeds}\n")
    print("| model | n calibration / held out / perturbed | in-sample FPR | held-out FPR | detected | held-out AUC |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        handle = geometry.load_model(name, device="cpu")
        rows: dict[str, list[float]] = {"cal": [], "fpr": [], "tpr": [], "auc": []}
        counts = ""
        for seed in args.seeds:
            res = evaluate_detection(handle, x, fpr=args.fpr, seed=seed)
            rows["cal"].append(res.calibration_fpr)
            rows["fpr"].append(res.fpr_at_threshold)
            rows["tpr"].append(res.tpr_at_threshold)
            rows["auc"].append(res.auc)
            counts = f"{res.n_calibration} / {res.n_held_out} / {res.n_perturbed}"
        print(
            f"| {name} | {counts} | {_mean_sd(rows['cal'])} | {_mean_sd(rows['fpr'])} | {_mean_sd(rows['tpr'])} | "
            f"{_mean_sd(rows['auc'], '.3f')} |"
        )


if __name__ == "__main__":
    main()

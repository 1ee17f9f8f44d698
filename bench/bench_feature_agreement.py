"""Held-out vs in-sample agreement of the regions painted behind 2D embeddings (issue 11, item 3).

Run: ``python bench/bench_feature_agreement.py`` (about 1-3 min on 2 CPU cores with UMAP; ``--methods pca tsne``
without it). For the digits-cnn-silu model's 128-d penultimate features of the digits test split (450 images, the
Feature space page's default view), each embedding (PCA, UMAP, t-SNE, and a scrambled one: uniform random 2D
positions) is painted with each back-map at the page's default grid (200 x 200), over seeds 0, 1, 2 (the seed
drives the embedding, the scrambled positions and the 5 held-out folds). Prints a markdown table: in-sample agreement
(at the samples the map was painted from), held-out agreement (each sample scored by a map painted from the other
4 folds), the chance level (the most common predicted class everywhere) and the trusted share of the grid, each as
mean ± standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch

import geometry
from geometry.features import embedding as emb
from geometry.features.extract import compute_features
from geometry.features.regions import paint_regions
from geometry.runtime.cache import DiskCache


def _mean_sd(values: list[float]) -> str:
    a = np.asarray(values, dtype=float) * 100
    return f"{a.mean():.1f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="digits-cnn-silu")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--split", default="test")
    parser.add_argument("--methods", nargs="+", default=["pca", "umap", "tsne", "scrambled"])
    parser.add_argument("--backmaps", nargs="+", default=["knn", "rbf"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--resolution", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    cache = DiskCache(tempfile.mkdtemp(prefix="bench-agreement-"))
    handle = geometry.load_model(args.model, device="cpu")
    data = geometry.load_dataset(args.dataset, args.split)
    fs = compute_features(handle, data, cache=cache)
    print(
        f"{args.model} on {args.dataset} ({args.split}): {len(fs)} samples, {fs.dim}-d features; "
        f"seeds {args.seeds}; grid {args.resolution}; torch {torch.__version__}, {platform.processor() or 'cpu'}\n"
    )
    print("| embedding | back-map | in-sample agreement | held-out agreement | chance | trusted grid | time (s) |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        coords = {}
        for seed in args.seeds:
            if method == "scrambled":  # positions unrelated to the features
                coords[seed] = np.random.default_rng(seed).uniform(-1, 1, size=(len(fs), 2))
            else:
                coords[seed] = emb.embed(fs.features, method, seed=seed, cache=cache).coords  # type: ignore[union-attr]
        for backmap in args.backmaps:
            rows: dict[str, list[float]] = {"in": [], "held": [], "chance": [], "trusted": [], "time": []}
            for seed in args.seeds:
                start = time.perf_counter()
                pr = paint_regions(
                    coords[seed],
                    fs.features,
                    fs.head,
                    predictions=fs.predictions,
                    resolution=args.resolution,
                    method=backmap,
                    seed=seed,
                )
                rows["time"].append(time.perf_counter() - start)
                rows["in"].append(pr.agreement)  # type: ignore[union-attr]
                rows["held"].append(pr.heldout_agreement)  # type: ignore[union-attr]
                rows["chance"].append(pr.chance_agreement)  # type: ignore[union-attr]
                rows["trusted"].append(pr.trusted_share)  # type: ignore[union-attr]
            print(
                f"| {method} | {backmap} | {_mean_sd(rows['in'])} | {_mean_sd(rows['held'])} | "
                f"{np.mean(rows['chance']):.1%} | {_mean_sd(rows['trusted'])} | {np.mean(rows['time']):.2f} |"
            )


if __name__ == "__main__":
    main()

"""Do targeted DeepFool's boundary points lie on the boundary of x's own region? (docs/SCIENCE.md §1)

For each test image x (predicted j) and each other class t, a targeted run gives z; z is on the boundary of x's
region when the two largest logits at z are j and the class across (`boundary_class`). Prints, per model, how many
converged runs have a third class among the top two at z, how many reached the requested target, and the largest
|f_k - f_j| at z.

    python bench/bench_targeted_boundary.py [--images 60] [--models digits-cnn-silu ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform

import torch

import geometry

DATA = {"digits": "digits", "shapes": "shapes"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=60)
    p.add_argument("--models", nargs="+", default=["digits-cnn-silu", "digits-cnn-relu", "digits-mlp-relu"])
    args = p.parse_args()
    print(f"Machine: {platform.machine()}, torch {torch.__version__}; {dt.date.today()}; {args.images} test images")
    print()
    print("| model | runs | converged | third class in top 2 at z | class across = target | max gap (logits) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        handle = geometry.load_model(name)
        test = geometry.load_dataset(name.split("-")[0], split="test")
        x = test.images[: args.images]
        j = handle.predict(x)
        runs = converged = third = reached = 0
        gap = 0.0
        for t in range(handle.num_classes):
            keep = j != t
            result = geometry.deepfool(handle, x[keep], target=t)
            ok = result.converged
            runs += int(keep.sum())
            converged += int(ok.sum())
            if not ok.any():
                continue
            z = result.boundary_point[ok]
            top2 = handle.logits(z).topk(2, dim=1).indices
            expected = torch.stack([j[keep][ok], result.boundary_class[ok]], dim=1)
            third += int((top2.sort(dim=1).values != expected.sort(dim=1).values).any(dim=1).sum())
            reached += int(result.boundary_is_target[ok].sum())
            gap = max(gap, float(result.boundary_gap[ok].max()))
        print(f"| {name} | {runs} | {converged} | {third} | {reached} | {gap:.1e} |", flush=True)


if __name__ == "__main__":
    main()

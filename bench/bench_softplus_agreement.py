"""How closely the softplus copy of a ReLU model predicts like the model (docs/SCIENCE.md §3).

The Curvature page measures ReLU models on a copy with ReLU -> softplus(beta) and max-pooling -> a smooth maximum
and says the copy "predicts like the model on almost every input". This script measures that sentence: the share of
test inputs on which the copy's predicted class equals the model's, per built-in ReLU model and beta, and the share
of DeepFool boundary points (where curvature is measured) at which both still put the same two classes on top.

    python bench/bench_softplus_agreement.py [--betas 5 10 20] [--n 450]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform

import torch

import geometry
from geometry.boundary.hessian import smooth_handle

RELU_MODELS = {
    "digits-cnn-relu": "digits",
    "digits-mlp-relu": "digits",
    "shapes-resnet-relu": "shapes",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--betas", type=float, nargs="+", default=[5.0, 10.0, 20.0])
    p.add_argument("--n", type=int, default=450, help="test images per model (the digits test split has 450)")
    p.add_argument("--boundary", type=int, default=100, help="images whose DeepFool points are compared")
    args = p.parse_args()
    print(
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {dt.date.today()}"
    )
    print()
    print("| model | beta | test inputs | same prediction | boundary points | same top-2 classes there |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, data in RELU_MODELS.items():
        handle = geometry.load_model(name)
        test = geometry.load_dataset(data, split="test")
        x = test.images[: args.n]
        predicted = handle.predict(x)
        fool = geometry.deepfool(handle, x[: args.boundary])
        z = fool.boundary_point[fool.converged]  # NaN where DeepFool did not converge
        top2 = handle.logits(z).topk(2, dim=1).indices.sort(dim=1).values
        for beta in args.betas:
            soft = smooth_handle(handle, beta=beta)
            same = (soft.predict(x) == predicted).float().mean().item()
            soft_top2 = soft.logits(z).topk(2, dim=1).indices.sort(dim=1).values
            same_top2 = (soft_top2 == top2).all(dim=1).float().mean().item()
            print(f"| {name} | {beta:g} | {len(x)} | {same:.1%} | {len(z)} | {same_top2:.1%} |", flush=True)


if __name__ == "__main__":
    main()

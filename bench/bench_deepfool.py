"""DeepFool throughput on the built-in models: batched (all images at once) vs a per-image Python loop.

Run: ``python bench/bench_deepfool.py [--images 200] [--loop-images 20] [--threads N]``; prints a markdown table.
Both runs must agree (the per-image results are compared with the batched ones); the loop runs on a subset.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import geometry  # noqa: E402
from geometry.deepfool import deepfool  # noqa: E402


def _timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200, help="images per model for the batched run")
    parser.add_argument("--loop-images", type=int, default=20, help="images for the per-image loop")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: geometry.default_device())")
    parser.add_argument("--models", nargs="*", default=None, help="built-in models (default: all image models)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.models or [n for n in geometry.builtin_models() if len(geometry.model_card(n)["input_shape"]) == 3]
    rows = []
    for name in names:
        handle = geometry.load_model(name, device=args.device)
        data = geometry.load_dataset(geometry.model_card(name)["dataset"])
        x = data.images[: args.images]
        deepfool(handle, x[:2])  # warm-up
        t_batch, res = _timed(lambda h=handle, x=x: deepfool(h, x))
        m = min(args.loop_images, len(x))
        t_loop, loop = _timed(lambda h=handle, x=x, m=m: [deepfool(h, x[i : i + 1]) for i in range(m)])
        loop_norm = torch.cat([r.norm for r in loop])
        diff = float((loop_norm - res.norm[:m]).abs().max())
        rate_batch, rate_loop = len(x) / t_batch, m / t_loop
        rows.append((name, len(x), rate_batch, rate_loop, rate_batch / rate_loop, float(res.converged.float().mean()),
                     float(res.iterations.float().mean()), float(res.norm.median()), diff))  # fmt: skip

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    device = args.device or str(geometry.default_device())
    print(f"DeepFool (candidates 10, overshoot 0.02, max_iter 50) on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, device {device}, load average {load:.1f}\n")  # fmt: skip
    print("| model | images | batched (img/s) | per-image loop (img/s) | speed-up | converged | mean steps | "
          "median ‖r‖ | max ‖r‖ diff loop vs batch |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, rb, rl, sp, conv, steps, med, diff in rows:
        print(
            f"| {name} | {n} | {rb:,.1f} | {rl:,.1f} | {sp:.1f}x | {conv:.1%} | {steps:.2f} | {med:.3f} | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()

"""DeepFool throughput on the built-in models: batched (all images at once) vs a per-image Python loop, untargeted
and targeted.

Run: ``python bench/bench_deepfool.py [--images 200] [--loop-images 20] [--repeat 3] [--threads N]``; prints a markdown
table. Both runs must agree (the per-image results are compared with the batched ones); the loop runs on a subset.
Targeted runs aim every image at the class after its prediction, ``(j + 1) mod K``: one backward pass per step (only
the target is a candidate), where an untargeted step costs one per candidate class (up to ``--candidates``). Times
are the best of ``--repeat`` runs, as wall time and as this process's CPU time (all its threads; on a shared machine
the CPU time, with ``--threads 1``, is the steadier measure). ``gradients / image`` counts backward passes per
image (steps x classes differentiated per step).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import geometry
from geometry.boundary.deepfool import deepfool

TARGETED_GRADIENTS_PER_STEP = 1  # backward passes per targeted step (tests/geometry/test_deepfool.py counts them)


def _timed(fn: object, repeat: int) -> tuple[float, float, object]:
    """Best wall time and best CPU time (this process, all its threads) of ``repeat`` calls, and the last result."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()  # type: ignore[operator]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, out


def _batched(handle, x, target, candidates):  # noqa: ANN001, ANN202
    return deepfool(handle, x, target=target, candidates=candidates)


def _loop(handle, x, target, candidates, m):  # noqa: ANN001, ANN202
    """The same, one image at a time (a Python loop over images)."""
    return [
        deepfool(handle, x[i : i + 1], target=None if target is None else target[i : i + 1], candidates=candidates)
        for i in range(m)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200, help="images per model for the batched run")
    parser.add_argument("--loop-images", type=int, default=20, help="images for the per-image loop")
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: geometry.default_device())")
    parser.add_argument("--models", nargs="*", default=None, help="built-in models (default: all image models)")
    parser.add_argument("--modes", nargs="*", default=["untargeted", "targeted"], choices=["untargeted", "targeted"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.models or [n for n in geometry.builtin_models() if len(geometry.model_card(n)["input_shape"]) == 3]
    rows = []
    for name in names:
        handle = geometry.load_model(name, device=args.device)
        data = geometry.load_dataset(geometry.model_card(name)["dataset"])
        x = data.images[: args.images]
        deepfool(handle, x[:2], candidates=args.candidates)  # warm-up
        k = handle.num_classes
        for mode in args.modes:
            target = (handle.predict(x) + 1) % k if mode == "targeted" else None
            per_step = TARGETED_GRADIENTS_PER_STEP if mode == "targeted" else min(args.candidates, k - 1)

            m = min(args.loop_images, len(x))
            t_batch, c_batch, res = _timed(lambda: _batched(handle, x, target, args.candidates), args.repeat)  # noqa: B023
            t_loop, c_loop, singles = _timed(lambda: _loop(handle, x, target, args.candidates, m), args.repeat)  # noqa: B023
            loop_norm = torch.cat([r.norm for r in singles])
            diff = float((loop_norm - res.norm[:m]).abs().max())
            rate_batch, rate_loop = len(x) / t_batch, m / t_loop
            cpu_batch, cpu_loop = len(x) / c_batch, m / c_loop
            steps = float(res.iterations.float().mean())
            rows.append(
                (
                    name,
                    mode,
                    len(x),
                    rate_batch,
                    cpu_batch,
                    rate_loop,
                    cpu_loop,
                    cpu_batch / cpu_loop,
                    float(res.converged.float().mean()),
                    steps,
                    steps * per_step,
                    float(res.norm.median()),
                    diff,
                )
            )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    device = args.device or str(geometry.default_device())
    print(
        f"DeepFool (candidates {args.candidates}, overshoot 0.02, max_iter 50) on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, device {device}, load average {load:.1f}; "
        f"best of {args.repeat}\n"
    )
    print(
        "| model | mode | images | batched (img/s, wall / CPU) | per-image loop (img/s, wall / CPU) | speed-up (CPU) "
        "| converged | mean steps | gradients / image | median ‖r‖ | max ‖r‖ diff loop vs batch |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, mode, n, rb, cb, rl, cl, sp, conv, steps, grads, med, diff in rows:
        print(
            f"| {name} | {mode} | {n} | {rb:,.1f} / {cb:,.1f} | {rl:,.1f} / {cl:,.1f} | {sp:.1f}x | {conv:.1%} | "
            f"{steps:.2f} | {grads:.1f} | {med:.3f} | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()

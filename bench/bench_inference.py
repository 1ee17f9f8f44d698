"""Batched inference throughput of the built-in models through `ModelHandle.logits` (auto batch size).

Run: ``python bench/bench_inference.py [--n 20000]``; prints a markdown table (best of 3 runs).
This is the baseline the slice benchmark compares against (slicing should add at most 10%).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import geometry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000, help="inputs per run")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = args.device or str(geometry.default_device())
    cpu = platform.processor() or platform.machine()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
    print("| model | input | inputs/s | ms per 1k |")
    print("| --- | --- | ---: | ---: |")
    for name in geometry.builtin_models():
        handle = geometry.load_model(name, device=device)
        x = torch.rand(args.n, *handle.input_shape)
        handle.logits(x[:256])  # warm-up
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            handle.logits(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        shape = "x".join(map(str, handle.input_shape))
        print(f"| {name} | {shape} | {args.n / best:,.0f} | {1000 * best / args.n * 1000:.1f} |")


if __name__ == "__main__":
    main()

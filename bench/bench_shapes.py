"""Time the procedural shapes generator: sampling factors and rendering images (CPU, numpy).

Run: ``python bench/bench_shapes.py``; prints a markdown table (best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from geometry.data.shapes import render_shapes, sample_factors

CASES = ((10_000, 32), (1_000, 224))


def _best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is reported")
    args = parser.parse_args()

    rows = []
    for n, size in CASES:
        t_sample = _best(lambda n=n: sample_factors(n, seed=0), args.repeat)
        factors = sample_factors(n, seed=0)
        t_render = _best(lambda f=factors, s=size: render_shapes(f, size=s), args.repeat)
        rows.append((n, size, t_sample, t_render, n / (t_sample + t_render)))

    print(
        f"shapes generator on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"best of {args.repeat}\n"
    )
    print("| images | size | sample_factors (s) | render_shapes (s) | images/s |")
    print("|---:|---:|---:|---:|---:|")
    for n, size, ts, tr, rate in rows:
        print(f"| {n:,} | {size}x{size} | {ts:.3f} | {tr:.3f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()

"""Benchmark 2D boundary slices: dense throughput vs plain inference, and adaptive vs dense.

1. Throughput: a dense ``evaluate_slice`` of n x n points vs ``handle.logits`` on the same number of
   already-built inputs (plain batched inference); ratio = plain time / slice time (target >= 0.9).
2. Adaptive vs dense at 256^2, 512^2 and 1024^2 on the page's default plane (DeepFool normal + random
   direction, extent 2x the DeepFool distance) and on a harder one (the plane through three images of
   different classes, twice its default extent): evaluations, label agreement with dense, times.

Run: ``python bench/bench_slices.py`` (``--quick`` for 256^2 and 512^2 only; ``--models a,b`` to choose).
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from geometry.data import load_dataset  # noqa: E402
from geometry.loading import builtin_models, load_model  # noqa: E402
from geometry.planes import input_space_plane, normal_plane, three_image_plane  # noqa: E402
from geometry.slices import evaluate_slice  # noqa: E402


def _best(fn: object, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, out


def _planes(name: str) -> list[tuple[str, object, object]]:
    handle = load_model(name)
    data = load_dataset(handle.card.get("dataset", "digits"))
    if handle.input_shape == (2,):
        p = input_space_plane(data.images)
        return [("input space", p, p.extent_hint)]
    x = data.images
    labels = data.labels
    firsts = [int(torch.nonzero(labels == c)[0]) for c in range(3)]  # one image each of classes 0, 1, 2
    normal = normal_plane(handle, x[firsts[0]], seed=0)
    three = three_image_plane(x[firsts[0]], x[firsts[1]], x[firsts[2]])
    a0, a1, b0, b1 = three.extent_hint
    ca, cb, ha, hb = (a0 + a1) / 2, (b0 + b1) / 2, (a1 - a0), (b1 - b0)
    return [
        ("normal + random", normal, normal.extent_hint),
        ("three images, 2x", three, (ca - ha, ca + ha, cb - hb, cb + hb)),
    ]


def throughput(models: list[str], n: int, repeat: int) -> Iterator[tuple]:
    for name in models:
        handle = load_model(name)
        label, plane, extent = _planes(name)[0]
        a = torch.linspace(extent[0], extent[1], n).repeat(n)
        b = torch.linspace(extent[2], extent[3], n).repeat_interleave(n)
        x = plane.points(a, b)  # built outside the timing: plain inference gets its inputs for free
        handle.logits(x[:256])  # warm-up
        t_plain = t_slice = float("inf")
        for _ in range(repeat):  # interleaved, so both see the same machine load
            t, _ = _best(lambda h=handle, x=x: h.logits(x), 1)
            t_plain = min(t_plain, t)
            t, _ = _best(
                lambda h=handle, p=plane, e=extent: evaluate_slice(h, p, extent=e, resolution=n, adaptive=False), 1
            )
            t_slice = min(t_slice, t)
        yield (name, n * n, t_plain, t_slice, t_plain / t_slice)


def adaptive_vs_dense(models: list[str], sizes: list[int]) -> Iterator[tuple]:
    for name in models:
        handle = load_model(name)
        for label, plane, extent in _planes(name):
            for n in sizes:
                t_dense, dense = _best(
                    lambda h=handle, p=plane, e=extent, n=n: evaluate_slice(
                        h, p, extent=e, resolution=n, adaptive=False
                    ),
                    1,
                )
                t_adapt, adapt = _best(
                    lambda h=handle, p=plane, e=extent, n=n: evaluate_slice(
                        h, p, extent=e, resolution=n, adaptive=True
                    ),
                    1,
                )
                agree = float((dense.labels == adapt.labels).mean())
                classes = len(set(dense.labels.ravel().tolist()))
                ratio = dense.evaluations / adapt.evaluations
                yield (name, label, n, classes, dense.evaluations, adapt.evaluations, ratio, agree, t_dense, t_adapt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="", help="comma-separated built-in models (default: all)")
    parser.add_argument("--quick", action="store_true", help="256^2 and 512^2 only")
    parser.add_argument("--sizes", default="", help="comma-separated grid sizes (default 256,512,1024)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the adaptive-vs-dense table")
    parser.add_argument("--skip-adaptive", action="store_true", help="only the throughput table")
    parser.add_argument("--repeat", type=int, default=5, help="runs per throughput case; the best is reported")
    parser.add_argument("--throughput-n", type=int, default=256, help="points per axis of the throughput case")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m] or builtin_models()
    sizes = [int(n) for n in args.sizes.split(",") if n] or ([256, 512] if args.quick else [256, 512, 1024])
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    dev = load_model(models[0]).device
    where = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"{platform.machine()} CPU"
    print(
        f"2D slices on {where}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )

    if not args.skip_throughput:
        n, r = args.throughput_n, args.repeat
        print(f"### Dense slice throughput vs plain batched inference ({n}^2 points, best of {r})\n")
        print("| model | points | plain logits (s) | dense slice (s) | ratio (plain / slice) |")
        print("|---|---:|---:|---:|---:|")
        for name, points, tp, ts, ratio in throughput(models, n, r):
            print(f"| {name} | {points:,} | {tp:.3f} | {ts:.3f} | {ratio:.2f} |", flush=True)

    if args.skip_adaptive:
        return
    print("\n### Adaptive vs dense (coarse=32, guard=1)\n")
    head = [
        "model",
        "plane",
        "grid",
        "classes",
        "dense evals",
        "adaptive evals",
        "fewer",
        "agreement",
        "dense (s)",
        "adaptive (s)",
    ]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, label, n, classes, de, ae, ratio, agree, td, ta in adaptive_vs_dense(models, sizes):
        cells = [
            name,
            label,
            f"{n}²",
            classes,
            f"{de:,}",
            f"{ae:,}",
            f"{ratio:.1f}x",
            f"{agree:.2%}",
            f"{td:.2f}",
            f"{ta:.2f}",
        ]
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()

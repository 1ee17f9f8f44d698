"""Benchmark 2D boundary slices: dense throughput vs plain inference, and adaptive vs dense.

1. Throughput: a dense ``evaluate_slice`` of n x n points vs plain batched inference of the same model on
   the same number of already-built inputs, timed three ways: ``handle.logits(x)`` (its default batches),
   ``handle.logits(x, batch_size=B)`` (the logits (N, K) on the CPU, in the slice's own batch size
   B = ``default_batch_size``) and a bare loop of ``handle.module`` over batches of B under
   ``torch.inference_mode()`` that keeps nothing. Target: plain (same batch) / slice >= 0.9; the other two
   ratios are shown as well. Runs are interleaved (plain, slice, plain, ...) so all see the same machine
   load; best of ``--repeat``.
2. Adaptive vs dense at 256^2, 512^2 and 1024^2 on the page's default plane (DeepFool normal + random
   direction, extent 2x the DeepFool distance) and on a harder one (the plane through three images of
   different classes, twice its default extent): evaluations, label agreement with dense, times.

Run: ``python bench/bench_slices.py`` (``--quick`` for 256^2 and 512^2 only; ``--models a,b`` to choose;
``--cpu-time`` times the throughput case by this thread's CPU time on one torch thread, which a busy shared
machine disturbs far less than wall time). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Iterator

import torch

from geometry.data.datasets import load_dataset
from geometry.models.cards import builtin_models
from geometry.models.loading import load_model
from geometry.slices.boundary_planes import normal_plane
from geometry.slices.evaluate import default_batch_size, evaluate_slice
from geometry.slices.planes import input_space_plane, three_image_plane

_clock = time.perf_counter


def _best(fn: object, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = _clock()
        out = fn()  # type: ignore[operator]
        best = min(best, _clock() - start)
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


def _module_loop(handle: object, x: torch.Tensor, batch: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            handle.module(x[start : start + batch].to(handle.device)).float().cpu()  # type: ignore[attr-defined]


def throughput(models: list[str], n: int, repeat: int) -> Iterator[tuple]:
    for name in models:
        handle = load_model(name)
        label, plane, extent = _planes(name)[0]
        a = torch.linspace(extent[0], extent[1], n).repeat(n)
        b = torch.linspace(extent[2], extent[3], n).repeat_interleave(n)
        x = plane.points(a, b)  # built outside the timing: plain inference gets its inputs for free
        batch = default_batch_size(handle, plane)
        handle.logits(x[:256])  # warm-up
        plain = {
            "default": lambda h=handle, x=x: h.logits(x),
            "same batch": lambda h=handle, x=x, bs=batch: h.logits(x, batch_size=bs),
            "module loop": lambda h=handle, x=x, bs=batch: _module_loop(h, x, bs),
        }
        times = dict.fromkeys(plain, float("inf"))
        t_slice = float("inf")
        for _ in range(repeat):  # interleaved, so both see the same machine load
            for key, fn in plain.items():
                times[key] = min(times[key], _best(fn, 1)[0])
            t, _ = _best(
                lambda h=handle, p=plane, e=extent: evaluate_slice(h, p, extent=e, resolution=n, adaptive=False), 1
            )
            t_slice = min(t_slice, t)
        yield (name, n * n, batch, times["default"], times["same batch"], times["module loop"], t_slice)


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
    global _clock
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="", help="comma-separated built-in models (default: all)")
    parser.add_argument("--quick", action="store_true", help="256^2 and 512^2 only")
    parser.add_argument("--sizes", default="", help="comma-separated grid sizes (default 256,512,1024)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the adaptive-vs-dense table")
    parser.add_argument("--skip-adaptive", action="store_true", help="only the throughput table")
    parser.add_argument("--repeat", type=int, default=5, help="runs per throughput case; the best is reported")
    parser.add_argument("--throughput-n", type=int, default=256, help="points per axis of the throughput case")
    parser.add_argument(
        "--cpu-time", action="store_true", help="one torch thread, timed by thread CPU time (for a busy machine)"
    )
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m] or builtin_models()
    sizes = [int(n) for n in args.sizes.split(",") if n] or ([256, 512] if args.quick else [256, 512, 1024])
    torch.set_num_threads(1 if args.cpu_time else max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    dev = load_model(models[0]).device
    where = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"{platform.machine()} CPU"
    print(
        f"2D slices on {where}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )

    if not args.skip_throughput:
        _clock = time.thread_time if args.cpu_time else time.perf_counter
        n, r = args.throughput_n, args.repeat
        clock = "thread CPU time, 1 thread" if args.cpu_time else "wall time"
        print(f"### Dense slice throughput vs plain batched inference ({n}^2 points, best of {r}, {clock})\n")
        print(
            "| model | points | batch B | plain, default batches (s) | plain, batch B (s) | bare module loop (s) "
            "| dense slice (s) | ratio: plain B / slice | bare loop / slice | default / slice |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, points, batch, td, tb, tl, ts in throughput(models, n, r):
            cells = [name, f"{points:,}", f"{batch:,}", f"{td:.4f}", f"{tb:.4f}", f"{tl:.4f}", f"{ts:.4f}"]
            ratios = [f"**{tb / ts:.2f}**", f"{tl / ts:.2f}", f"{td / ts:.2f}"]
            print("| " + " | ".join(cells + ratios) + " |", flush=True)

    if args.skip_adaptive:
        return
    _clock = time.perf_counter
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

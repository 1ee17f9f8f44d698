"""Time the inspection views: frequency margins for N images x all bands, the detection statistic, the report.

Run: ``python bench/bench_inspect.py [--n 100] [--models digits-cnn-silu ...] [--skip-report]``; prints markdown
tables. Nothing is read from or written to the user's cache: every timing computes from scratch (the report's second,
cached run is timed separately).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

import geometry
from geometry.inspection import margins as M
from geometry.inspection.detection import curvature_statistic
from geometry.inspection.margins import frequency_bands, frequency_margins
from geometry.report import ReportConfig, build_report


def _image_models() -> list[str]:
    return [n for n in geometry.builtin_models() if len(geometry.model_card(n)["input_shape"]) == 3]


def bench_margins(models: list[str], n: int) -> None:
    print(f"\n### Frequency margins: {n} images x all bands (subspace DeepFool, max_iter 100, 10 candidates)\n")
    print(
        "| model | input | bands (K, stride) | subspace dim | time (s) | images/s per band | not converged | "
        "random baseline (s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in models:
        handle = geometry.load_model(name, device="cpu")
        data = geometry.load_dataset(handle.card["dataset"])
        x = data.images[:n]
        layout = frequency_bands(handle.input_shape)
        start = time.perf_counter()
        res = frequency_margins(handle, x, num_random=0, full=False)
        t_bands = time.perf_counter() - start
        start = time.perf_counter()  # the random baseline alone, as frequency_margins runs it (one dense basis)
        M._margins_of(
            handle, x, layout, [], [0], overshoot=0.02, max_iter=100, candidates=10, progress=None, cancel=None
        )
        t_random = time.perf_counter() - start
        print(
            f"| {name} | {'x'.join(map(str, handle.input_shape))} | {len(layout)} ({layout.block}, {layout.stride}) "
            f"| {layout.subspace_dim} | {t_bands:.1f} | {n * len(layout) / t_bands:.1f} | "
            f"{int((~res.converged).sum())} of {res.margins.numel()} | {t_random:.1f} |"
        )


def bench_detection(models: list[str], n: int) -> None:
    print(f"\n### Detection statistic: {n} images, M = 32 directions (65 model evaluations per image)\n")
    print("| model | time (s) | images/s | model evaluations/s |")
    print("|---|---:|---:|---:|")
    for name in models:
        handle = geometry.load_model(name, device="cpu")
        x = geometry.load_dataset(handle.card["dataset"]).images[:n]
        curvature_statistic(handle, x[:2], num_directions=32)  # warm-up
        start = time.perf_counter()
        curvature_statistic(handle, x, num_directions=32)
        t = time.perf_counter() - start
        print(f"| {name} | {t:.2f} | {n / t:,.0f} | {n * 65 / t:,.0f} |")


def bench_report(model: str, n: int) -> None:
    handle = geometry.load_model(model, device="cpu")
    data = geometry.load_dataset(handle.card["dataset"])
    config = ReportConfig.with_images(n)
    with tempfile.TemporaryDirectory() as root:
        cache = geometry.DiskCache(root)
        start = time.perf_counter()
        report = build_report(handle, data, config, cache=cache)
        t_cold = time.perf_counter() - start
        start = time.perf_counter()
        build_report(handle, data, config, cache=cache)
        t_warm = time.perf_counter() - start
        from geometry.report import report_html

        start = time.perf_counter()
        text = report_html(report)
        t_html = time.perf_counter() - start
    print(f"\n### Report: {model} on {data.name}, {n} images per analysis\n")
    print("| run | time (s) |")
    print("|---|---:|")
    print(f"| first (computes everything) | {t_cold:.1f} |")
    print(f"| second (from the cache) | {t_warm:.1f} |")
    print(f"| HTML ({len(text) / 2**20:.1f} MiB, plotly.js inline) | {t_html:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="images for the margins (default 100)")
    parser.add_argument("--detection-n", type=int, default=500, help="images for the detection statistic")
    parser.add_argument("--models", nargs="*", default=None, help="built-in image models (default: all)")
    parser.add_argument("--report-models", nargs="*", default=["digits-cnn-silu", "shapes-resnet-silu"])
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models or _image_models()
    print(
        f"inspection benchmarks on {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, device cpu"
    )
    bench_margins(models, args.n)
    bench_detection(models, args.detection_n)
    if not args.skip_report:
        for name in args.report_models:
            if name in geometry.builtin_models():
                bench_report(name, args.n)


if __name__ == "__main__":
    main()

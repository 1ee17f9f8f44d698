"""Throughput of the atlas job (`geometry.atlas.build_atlas`): the local engine against Ray with 1 and 2 workers, Ray's
overhead per shard, the scaling ratio, and where a many-worker run stops scaling.

Run: ``python bench/bench_atlas.py`` (the issue's sizes: the 450 digits test images and 2,000 shapes images, margins;
curvature on a subset); ``--shapes-n 256 --repeats 3`` for a run of a few minutes on a 2-core machine. Prints markdown
tables: machine, date, settings, median images/s over the repeats with (min-max).

What is measured, for each job: ``local x1`` (this process, one torch thread), ``local xC`` (all C cores' threads),
``ray W`` (a local Ray cluster of W CPUs, one task per shard, each task one thread). Runs bypass the cache
(``cache=False``); each Ray cluster gets a warm-up run first (worker processes start and load the model once, which a
long job pays once). The per-shard overhead is measured twice: a Ray task that does no work but carries a shard's
images in and a shard's columns out (round trip, one at a time, and pipelined), and the difference between ``ray 1``
and ``local x1`` divided by the number of shards. The simulated many-worker run uses a Ray cluster that claims 8 CPUs
on this machine (more workers than cores), and a model fitted to the measurements: images/s(W) = min(W s / (t + o),
s / d) with s images per shard, t compute and o Ray overhead per shard, d the driver's time per shard.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch

import geometry
from geometry.atlas import AtlasOptions, LocalEngine, RayEngine, build_atlas, make_shard
from geometry.boundary.options import CurvatureOptions


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _rate(n: int, seconds: list[float]) -> str:
    rates = sorted(n / s for s in seconds)
    return f"{statistics.median(rates):,.1f} ({rates[0]:,.1f}-{rates[-1]:,.1f})"


def _noop_task(shard, columns: int):  # what a shard carries in and out, without the work
    n = len(shard)
    return {f"c{i}": np.zeros(n, dtype=np.float32) for i in range(columns)}


def _ray_overhead(ray, shard, columns: int, tasks: int) -> tuple[float, float]:
    """(ms per task one at a time, ms per task pipelined over the cluster) for a no-op task carrying ``shard``."""
    task = ray.remote(_noop_task).options(num_cpus=1)
    ray.get(task.remote(shard, columns))  # warm-up
    start = time.perf_counter()
    for _ in range(tasks):
        ray.get(task.remote(shard, columns))
    serial = (time.perf_counter() - start) / tasks
    start = time.perf_counter()
    ray.get([task.remote(shard, columns) for _ in range(tasks)])
    pipelined = (time.perf_counter() - start) / tasks
    return 1000 * serial, 1000 * pipelined


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--digits-n", type=int, default=450, help="digits test images (margins)")
    parser.add_argument("--shapes-n", type=int, default=2000, help="shapes test images (margins)")
    parser.add_argument("--curvature-n", type=int, default=64, help="images of each data set for the curvature job")
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--simulate", type=int, default=8, help="CPUs the simulated cluster claims (0: skip)")
    parser.add_argument("--all-threads", action="store_true", help="also the local engine with every core's threads")
    args = parser.parse_args()

    import ray

    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    digits_h = geometry.load_model("digits-cnn-silu", device="cpu")
    shapes_h = geometry.load_model("shapes-resnet-silu", device="cpu")
    digits = geometry.load_dataset("digits", "test")
    shapes = geometry.load_dataset("shapes", "test")
    margin = AtlasOptions(analyses=("margin",))
    curvature = AtlasOptions(analyses=("curvature",), curvature=CurvatureOptions(k=3, num_random=32))
    cn = args.curvature_n
    jobs = [  # name, handle, data, options, images, shard size
        ("digits-cnn-silu, margin", digits_h, digits, margin, min(args.digits_n, len(digits)), args.shard_size),
        ("shapes-resnet-silu, margin", shapes_h, shapes, margin, min(args.shapes_n, len(shapes)), args.shard_size),
        ("digits-cnn-silu, margin + curvature", digits_h, digits, curvature, cn, max(1, cn // 4)),
        ("shapes-resnet-silu, margin + curvature", shapes_h, shapes, curvature, max(4, cn // 4), max(1, cn // 16)),
    ]

    def run(job, engine, *, warm_up: bool = False) -> None:
        """The job on ``engine``; ``warm_up``: its first two shards only (workers start and load the model)."""
        _, handle, data, options, n, size = job
        n = min(n, 2 * size) if warm_up else n
        build_atlas(handle, data, options=options, limit=n, shard_size=size, engine=engine, cache=False)

    results: dict[tuple[str, str], list[float]] = {}
    engines = ["local x1"] + ([f"local x{cores}"] if cores > 1 and args.all_threads else [])
    for job in jobs:
        run(job, LocalEngine(threads=1), warm_up=True)
        results[(job[0], "local x1")] = _timed(lambda j=job: run(j, LocalEngine(threads=1)), args.repeats)
        if cores > 1 and args.all_threads:
            results[(job[0], f"local x{cores}")] = _timed(
                lambda j=job: run(j, LocalEngine(threads=cores)), args.repeats
            )
    overhead: dict[int, tuple[float, float]] = {}
    probe = make_shard(digits, 0, args.shard_size)
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            engines.append(f"ray {workers}")
            for job in jobs:
                run(job, RayEngine(workers=workers), warm_up=True)
                results[(job[0], f"ray {workers}")] = _timed(
                    lambda j=job, w=workers: run(j, RayEngine(workers=w)), args.repeats
                )
            overhead[workers] = _ray_overhead(ray, probe, 10, 100)
        finally:
            ray.shutdown()

    date = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    print(f"## Atlas throughput ({date})\n")
    print(
        f"{cpu}, {cores} CPUs, torch {torch.__version__}, ray {ray.__version__}; median images/s over {args.repeats} "
        f"runs (min-max), cache off; shards of {args.shard_size} images for margins; load average at start "
        f"{os.getloadavg()[0]:.1f}.\n"
    )
    print("| job | images | shard | " + " | ".join(engines) + " | ray 2 / ray 1 |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in engines) + " | ---: |")
    fitted = {}
    for job in jobs:
        name, _, _, _, n, size = job
        cells = [_rate(n, results[(name, e)]) for e in engines]
        r1 = statistics.median(n / s for s in results[(name, "ray 1")])
        r2 = statistics.median(n / s for s in results[(name, "ray 2")])
        print(f"| {name} | {n} | {size} | " + " | ".join(cells) + f" | {r2 / r1:.2f} |")
        shards = -(-n // size)
        t_local = statistics.median(results[(name, "local x1")])
        t_ray = statistics.median(results[(name, "ray 1")])
        fitted[name] = (size, t_local / shards, (t_ray - t_local) / shards)
    print()
    print("| Ray overhead per shard | 1 worker | 2 workers |")
    print("| --- | ---: | ---: |")
    print(
        f"| no-op task with a {args.shard_size}-image digits shard, one at a time (ms) | "
        f"{overhead[1][0]:.1f} | {overhead[2][0]:.1f} |"
    )
    print(f"| the same, pipelined (ms per task) | {overhead[1][1]:.1f} | {overhead[2][1]:.1f} |")
    for name, (_size, _t, o) in fitted.items():
        print(f"| (ray 1 - local x1) / shards, {name} (ms) | {1000 * o:.1f} | |")

    if args.simulate:
        print(f"\n### More workers than cores: a Ray cluster claiming {args.simulate} CPUs on {cores} cores\n")
        job = jobs[0]
        ray.init(num_cpus=args.simulate, include_dashboard=False, log_to_driver=False)
        try:
            size = max(1, job[4] // (4 * args.simulate))
            sim_job = (*job[:5], size)
            print(f"{job[0]}, {job[4]} images in shards of {size}; median images/s over {args.repeats} runs.\n")
            print("| workers | images/s | vs 1 worker |")
            print("| ---: | ---: | ---: |")
            base = None
            w = 1
            while w <= args.simulate:
                run(sim_job, RayEngine(workers=w), warm_up=True)
                times = _timed(lambda w=w: run(sim_job, RayEngine(workers=w)), args.repeats)
                rate = statistics.median(job[4] / s for s in times)
                base = base or rate
                print(f"| {w} | {_rate(job[4], times)} | {rate / base:.2f} |")
                w *= 2
            driver = _ray_overhead(ray, probe, 10, 200)[1] / 1000  # the driver's time per shard, all CPUs busy
        finally:
            ray.shutdown()
        print(
            f"\nModel: images/s(W) = min(W s / (t + o), s / d), d = {1000 * driver:.1f} ms per shard (pipelined "
            "no-op tasks: what one driver turns around), t = local x1 time per shard, o = the no-op task's round "
            "trip with one worker.\n"
        )
        widths = (1, 2, 8, 32, 128, 512)
        print("| job | shard s | t (ms) | o (ms) | " + " | ".join(f"W={w}" for w in widths) + " |")
        print("| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in widths) + " |")
        for name, (s, t, _) in fitted.items():
            o = overhead[1][0] / 1000  # the no-op task's round trip: measured apart from the noise of t
            cells = [f"{min(w * s / (t + o), s / driver):,.0f}" for w in widths]
            print(f"| {name} | {s} | {1000 * t:.1f} | {1000 * o:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

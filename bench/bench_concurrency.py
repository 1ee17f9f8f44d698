"""Server CPU seconds for 1 vs 8 identical requests at once: does the cache compute a result once (issue 14.1)?

Run: ``python bench/bench_concurrency.py [--sessions 8] [--work slice curvature]``. Each request is a separate
process (a browser session in a separate server process, or sharing one cache root between servers): it loads
digits-cnn-silu, waits at a barrier so all start together, and calls the same cached slice (a random plane through
a digit, 256x256 adaptive) or cached curvature (3 digits, Lanczos) on a fresh cache. We report the CPU seconds the
requests spent in the call (``time.process_time`` of each process, summed; torch limited to one thread per
process), the CPU seconds of the busiest request, and the wall time until the last request returned. "off" is the
same run with the entry lock turned off: what the cache did before issue 14.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import time

N_IMAGES_CURVATURE = 3


def _request(work: str, root: str, lock: bool, barrier, queue) -> None:  # noqa: ANN001 - multiprocessing objects
    import torch

    torch.set_num_threads(1)
    import geometry
    import geometry.runtime.locks as locks
    from geometry.runtime.cache import DiskCache

    if not lock:
        locks.fcntl = None  # the lock does nothing: every request computes (the cache before issue 14)
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits")
    cache = DiskCache(root)
    if work == "slice":
        plane = geometry.random_plane(data.images[0], seed=0)

        def call() -> object:
            return geometry.cached_slice(handle, plane, extent=2.0, resolution=256, cache=cache)

    else:

        def call() -> object:
            return geometry.cached_curvature(
                handle, data.images[:N_IMAGES_CURVATURE], geometry.CurvatureOptions(k=4, num_random=50), cache=cache
            )

    barrier.wait()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    call()
    queue.put((time.process_time() - cpu0, time.perf_counter() - wall0))


def run(work: str, sessions: int, lock: bool) -> tuple[float, float, float]:
    """(total CPU seconds, CPU seconds of the busiest request, wall seconds) for ``sessions`` identical requests."""
    ctx = multiprocessing.get_context("spawn")
    root = tempfile.mkdtemp(prefix="bench-concurrency-")
    barrier, queue = ctx.Barrier(sessions), ctx.Queue()
    procs = [ctx.Process(target=_request, args=(work, root, lock, barrier, queue)) for _ in range(sessions)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    cpu = [c for c, _ in results]
    return sum(cpu), max(cpu), max(w for _, w in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--work", nargs="+", default=["slice", "curvature"], choices=["slice", "curvature"])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch 1 thread per process\n")
    print("| work | requests | entry lock | CPU s (all requests) | CPU s (busiest) | wall s (last answer) |")
    print("|---|---|---|---|---|---|")
    for work in args.work:
        for sessions, lock in ((1, True), (args.sessions, True), (args.sessions, False)):
            total, busiest, wall = run(work, sessions, lock)
            print(
                f"| {work} | {sessions} | {'on' if lock else 'off (before)'} | {total:.2f} | {busiest:.2f} | "
                f"{wall:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

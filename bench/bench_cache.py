"""Time the disk cache on a big slice-sized result: 512x512 float32 logits + 512x512 int64 labels.

Run: ``python bench/bench_cache.py [--root DIR] [--repeat N]``; prints a markdown table (median and
best of ``--repeat`` runs). Uses a fresh temporary folder unless ``--root`` is given (its contents
are left alone apart from the benchmark's own entries, which are deleted at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geometry.runtime.cache import DiskCache, cache_key
from geometry.runtime.fingerprint import tensor_fingerprint

SIZE = 512


@dataclass(frozen=True)
class BigSlice:
    """Shaped like a large 2D slice result."""

    logit_diff: torch.Tensor  # (512, 512) float32
    labels: np.ndarray  # (512, 512) int64
    extent: tuple[float, float, float, float]
    converged: bool


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="cache folder (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per operation")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    value = BigSlice(
        logit_diff=torch.randn(SIZE, SIZE, generator=g),
        labels=torch.randint(0, 10, (SIZE, SIZE), generator=g).numpy(),
        extent=(-1.0, 1.0, -1.0, 1.0),
        converged=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = DiskCache(args.root or tmp, max_bytes=1 << 30)
        keys = [cache_key("bench", "1", params={"i": i}) for i in range(args.repeat)]
        it = iter(keys)
        rows = [
            ("cache_key (small params)", _times(lambda: cache_key("bench", "1", params={"r": 512}), args.repeat)),
            ("tensor_fingerprint (1 MiB)", _times(lambda: tensor_fingerprint(value.logit_diff), args.repeat)),
            ("put (new key)", _times(lambda: cache.put(next(it), value), args.repeat)),
            ("put (same key again)", _times(lambda: cache.put(keys[0], value), args.repeat)),
            ("get (hit, as BigSlice)", _times(lambda: cache.get(keys[0], BigSlice), args.repeat)),
            ("get (miss)", _times(lambda: cache.get("0" * 64), args.repeat)),
            ("get_or_compute (hit)", _times(lambda: cache.get_or_compute(keys[1], lambda: value), args.repeat)),
        ]
        entry_mb = cache.path_for(keys[0]).stat().st_size / 2**20
        for k in keys:
            cache.delete(k)

    print(
        f"disk cache, {SIZE}x{SIZE} float32 tensor + int64 array per entry ({entry_mb:.2f} MiB on disk), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.repeat} runs\n"
    )
    print("| operation | median (ms) | best (ms) | MiB/s (median) |")
    print("|---|---:|---:|---:|")
    for name, ts in rows:
        med, best = statistics.median(ts), min(ts)
        rate = f"{entry_mb / med:,.0f}" if name.startswith(("put", "get (hit", "get_or")) else ""
        print(f"| {name} | {med * 1e3:.2f} | {best * 1e3:.2f} | {rate} |")


if __name__ == "__main__":
    main()

"""A memoized function for the concurrency tests: it counts its own runs in a file (one line per run), so calls
from threads and separate processes can be counted, and sleeps to stay "in flight" long enough to be joined."""

from __future__ import annotations

import os
import time

import numpy as np

from geometry.runtime.cache import DiskCache
from geometry.runtime.memo import memoize


@memoize(ignore=("seconds",))  # how long it sleeps does not change the result
def slow_square(x: int, *, count_file: str, seconds: float = 0.5, progress=None, cancel=None) -> dict:
    """``{"y": x * x}`` after ``seconds``; appends this process's id to ``count_file`` when it starts."""
    with open(count_file, "a") as f:
        f.write(f"{os.getpid()}\n")
    steps = 10
    for i in range(steps):
        time.sleep(seconds / steps)
        if progress is not None:
            progress((i + 1) / steps, f"step {i + 1} of {steps}")
    return {"y": np.array(x * x)}


def runs(count_file: str) -> int:
    """How many times `slow_square` started."""
    try:
        with open(count_file) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def call_in_process(root: str, x: int, count_file: str, seconds: float, out_file: str | None = None) -> None:
    """Entry point of a separate process: call `slow_square` on the cache at ``root``; write the result to
    ``out_file``."""
    value = slow_square(x, count_file=count_file, seconds=seconds, cache=DiskCache(root))
    if out_file is not None:
        with open(out_file, "w") as f:
            f.write(str(int(value["y"])))

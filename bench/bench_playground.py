"""Benchmark the Playground's live redraw: one epoch of training plus a 100 x 100 region map drawn and encoded.

A redraw is what the live panel does on each tick of its timer, minus the network round trip: train ``speed``
epochs (`Playground.step`), evaluate the map (`Playground.probabilities` on the 100 x 100 grid), draw it with the
boundary and the points (`geometry.figures.playground.live_image`, 400 x 400 pixels), optionally the linear regions'
mesh (ReLU), and encode it as PNG (what Streamlit sends). Target (issue 15): >= 5 redraws per second for a
2-hidden-layer MLP of 8 units on the 2-core CPU. Each setting runs ``--redraws`` redraws, ``--repeat`` times; the
table gives the median rate and the spread (min-max) over the repeats.

Run: ``python bench/bench_playground.py`` (``--threads 1`` to pin torch to one thread). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import statistics
import time

import torch
from PIL import Image

from geometry.figures.playground import digits_image, live_image
from geometry.playground import DigitsConfig, DigitsPlayground, Playground, PlaygroundConfig

SETTINGS = [
    ("moons, 2 classes", PlaygroundConfig(dataset="moons", hidden=(8, 8), activation="relu"), False),
    ("moons, 2 classes + region mesh", PlaygroundConfig(dataset="moons", hidden=(8, 8), activation="relu"), True),
    ("spirals, 3 classes", PlaygroundConfig(dataset="spirals", classes=3, noise=0.1, hidden=(8, 8)), False),
    (
        "spirals, 3 classes, tanh",
        PlaygroundConfig(dataset="spirals", classes=3, hidden=(8, 8), activation="tanh"),
        False,
    ),
    ("blobs, 6 classes, 3 x 32 + mesh", PlaygroundConfig(dataset="blobs", classes=6, hidden=(32, 32, 32)), True),
]


def redraw(pg: Playground, regions: bool, speed: int) -> int:
    pg.step(speed)
    image, _ = live_image(pg, scale=4, regions=regions)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return len(buf.getvalue())


DIGITS_SETTINGS = [
    ("digits CNN 8-16-32, relu, 64 x 64 slice", DigitsConfig()),
    ("digits CNN 8-16-32, silu + avg, 64 x 64 slice", DigitsConfig(activation="silu", pool="avg")),
    ("digits CNN 8-16-32, relu, 96 x 96 slice", DigitsConfig(resolution=96)),
]


def digits_redraw(pg: DigitsPlayground, speed: int) -> int:
    """The digits mode's redraw: ``speed`` epochs on the 1,347 training digits, the slice evaluated densely, drawn
    6 x larger and encoded."""
    pg.step(speed)
    buf = io.BytesIO()
    Image.fromarray(digits_image(pg, scale=6)).save(buf, format="PNG")
    return len(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redraws", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--speed", type=int, default=1, help="epochs per redraw")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"date {datetime.date.today().isoformat()}; {args.redraws} redraws x {args.repeat} repeats, "
        f"{args.speed} epoch(s) per redraw, 280 training points, batch 16, Adam, 100 x 100 map drawn 400 x 400\n"
    )
    print("| setting | redraws / s (median) | spread over repeats | ms per redraw | PNG kB |")
    print("|---|---|---|---|---|")
    for label, config, regions in SETTINGS:
        rates, size = [], 0
        for _ in range(args.repeat):
            pg = Playground(config)
            redraw(pg, regions, args.speed)  # warm-up
            start = time.perf_counter()
            for _ in range(args.redraws):
                size = redraw(pg, regions, args.speed)
            rates.append(args.redraws / (time.perf_counter() - start))
        median = statistics.median(rates)
        print(
            f"| {label} | {median:.1f} | {min(rates):.1f}-{max(rates):.1f} | {1000 / median:.0f} | {size / 1024:.0f} |"
        )
    for label, digits_config in DIGITS_SETTINGS:
        rates, size = [], 0
        redraws = max(1, args.redraws // 4)  # an epoch of digits is a few times one of 280 points
        for _ in range(args.repeat):
            dpg = DigitsPlayground(digits_config)
            start = time.perf_counter()
            for _ in range(redraws):
                size = digits_redraw(dpg, args.speed)
            rates.append(redraws / (time.perf_counter() - start))
        median = statistics.median(rates)
        print(
            f"| {label} | {median:.1f} | {min(rates):.1f}-{max(rates):.1f} | {1000 / median:.0f} | {size / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()

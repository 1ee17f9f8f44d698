"""``python -m geometry atlas``: every image of a data set measured in batch, one row per image, as Parquet
(`geometry.atlas.build_atlas`).

python -m geometry atlas --model digits-cnn-silu --data digits [--split test] [--limit N]
    [--analyses margin,curvature,frequency,detection] [--engine local|ray] [--address ADDR] [--workers W]
    [--shard-size S] [--out atlas.parquet]

Finished shards are kept in the disk cache: a rerun (also after Ctrl-C) computes only the missing ones, and the app's
Atlas view reads the same entries. --engine ray starts a local Ray cluster with W CPUs, or joins --address (e.g.
auto, ray://head:10001); each shard is one Ray task (one GPU per task on a cluster with GPUs).
"""

from __future__ import annotations

import argparse
import time

from geometry.atlas.options import ANALYSES
from geometry.atlas.shards import DEFAULT_SHARD_SIZE
from geometry.cli.inputs import load_options, model_and_dataset
from geometry.cli.progress import ProgressBar

HELP = "measure every image of a data set (margin, curvature, frequency, detection) into a Parquet table"
DESCRIPTION = __doc__


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a built-in model name (e.g. digits-cnn-silu) or a model file")
    p.add_argument("--arch", help="architecture of a state-dict model file (e.g. resnet18, cnn)")
    p.add_argument("--input-shape", help="input shape of a model file, e.g. 3,32,32")
    p.add_argument("--data", "--dataset", dest="data", help="data set name (default: the model's own)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"), help="data set split (default test)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--analyses", default="margin", help=f"comma-separated, among {','.join(ANALYSES)} (default margin)")
    p.add_argument("--engine", default="local", choices=("local", "ray"), help="where shards run (default local)")
    p.add_argument("--address", default=None, help="a Ray cluster to join (default: start a local one)")
    p.add_argument("--workers", type=int, default=None, help="Ray: CPUs of a local cluster; local: torch threads")
    p.add_argument(
        "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help=f"images per shard ({DEFAULT_SHARD_SIZE})"
    )
    p.add_argument("--out", default="atlas.parquet", help="the Parquet file to write (default atlas.parquet)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from geometry.atlas import build_atlas, write_atlas

    if args.address and args.engine != "ray":
        raise ValueError("expected --address only with --engine ray")
    handle, dataset = model_and_dataset(args, args.data, "--data")
    bar = None if args.no_progress else ProgressBar()
    start = time.perf_counter()
    try:
        df = build_atlas(
            handle,
            dataset,
            analyses=args.analyses,
            engine=args.engine,
            address=args.address,
            workers=args.workers,
            shard_size=args.shard_size,
            limit=args.limit,
            source=args.model,
            load_options=load_options(args),
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    write_atlas(df, args.out)
    seconds = time.perf_counter() - start
    accuracy = float(df["correct"].mean())
    line = f"wrote {args.out}: {len(df)} images of {dataset.name} ({dataset.split}) on {handle.name}, "
    line += f"{len(df.columns)} columns, accuracy {accuracy:.1%}"
    if "margin" in df.columns:
        line += f", median margin {df['margin'].median():.3g}"
    print(f"{line}, {seconds:.1f} s ({args.engine})")
    return 0

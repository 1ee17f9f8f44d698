"""The atlas on Ray: a local 2-CPU cluster (started once for the module) gives the local engine's rows bit for bit,
retries a task whose worker died, sends a model that has no name or file, and stops cleanly when cancelled."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

import geometry
from geometry.atlas import AtlasOptions, LocalEngine, RayEngine, atlas_status, build_atlas, model_recipe
from geometry.boundary.options import CurvatureOptions
from geometry.inspection.options import DetectionOptions
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import Cancelled, CancelToken
from tests.geometry.analytic import ball_handle

ray = pytest.importorskip("ray")

N, SHARD = 24, 6
OPTIONS = AtlasOptions(
    analyses=("margin", "curvature", "frequency", "detection"),
    curvature=CurvatureOptions(k=2, num_random=8),
    detection=DetectionOptions(num_directions=8),
)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def digits() -> geometry.Dataset:
    return geometry.load_dataset("digits", "test")


@pytest.fixture(scope="module")
def local(silu, digits) -> pd.DataFrame:
    """The local engine's rows with one torch thread, as a Ray task with one CPU runs."""
    return build_atlas(
        silu, digits, options=OPTIONS, limit=N, shard_size=SHARD, engine=LocalEngine(threads=1), cache=False
    )


def test_ray_rows_equal_local_rows_bit_for_bit(silu, digits, local, tmp_path):
    store = DiskCache(tmp_path / "cache")
    seen: list[str] = []
    df = build_atlas(
        silu,
        digits,
        options=OPTIONS,
        limit=N,
        shard_size=SHARD,
        engine="ray",
        cache=store,
        progress=lambda f, t: seen.append(t),
    )
    pd.testing.assert_frame_equal(df, local, check_exact=True)
    assert seen[-1].startswith("4/4 shards")
    # the driver stored every shard: the app (or a rerun) finds the atlas without computing
    assert atlas_status(silu, digits, options=OPTIONS, limit=N, shard_size=SHARD, cache=store) == (4, 4)


def _kill_first_attempt(marker: Path):
    """A hook that ends the worker process on the first shard it sees (once, across all workers: the marker file)."""

    def hook(shard) -> None:
        if shard.start == SHARD and not marker.exists():
            marker.write_text("killed")
            os._exit(1)  # the worker dies as if the machine went away

    return hook


def test_a_killed_worker_is_retried_and_every_row_comes_once(silu, digits, local, tmp_path):
    marker = tmp_path / "killed"
    engine = RayEngine(hook=_kill_first_attempt(marker), max_retries=2)
    df = build_atlas(silu, digits, options=OPTIONS, limit=N, shard_size=SHARD, engine=engine, cache=False)
    assert marker.read_text() == "killed"  # a worker did die
    assert df["index"].tolist() == list(range(N))  # every row once, in order
    pd.testing.assert_frame_equal(df, local, check_exact=True)


def test_a_model_without_a_name_travels_as_the_handle(tmp_path):
    center = torch.full((1, 3, 3), 0.5)
    handle = ball_handle(center, 0.3)
    recipe = model_recipe(handle)
    assert recipe.source is None and recipe.handle is not None
    gen = torch.Generator().manual_seed(1)
    images = (center + 0.1 * torch.randn(8, 1, 3, 3, generator=gen)).clamp(0, 1)
    data = geometry.Dataset("ball", "test", images, torch.ones(8, dtype=torch.int64), ("out", "in"), (0.0, 1.0))
    on_ray = build_atlas(handle, data, shard_size=3, engine="ray", cache=False)
    here = build_atlas(handle, data, shard_size=3, engine=LocalEngine(threads=1), cache=False)
    pd.testing.assert_frame_equal(on_ray, here, check_exact=True)
    built = model_recipe(geometry.load_model("digits-cnn-silu", device="cpu"))
    assert built.source == "digits-cnn-silu" and built.handle is None  # a built-in model goes by name


def test_cancel_stops_the_tasks_and_keeps_finished_shards(silu, digits, tmp_path):
    store = DiskCache(tmp_path / "cache")
    cancel = CancelToken()

    def progress(fraction: float, text: str) -> None:
        if text.startswith("1/"):
            cancel.cancel()  # Stop (or Ctrl-C) once the first shard is in

    with pytest.raises(Cancelled):
        build_atlas(
            silu,
            digits,
            options=OPTIONS,
            limit=4 * N,
            shard_size=SHARD,
            engine=RayEngine(workers=1),
            cache=store,
            progress=progress,
            cancel=cancel,
        )
    done, total = atlas_status(silu, digits, options=OPTIONS, limit=4 * N, shard_size=SHARD, cache=store)
    assert 1 <= done < total == 16

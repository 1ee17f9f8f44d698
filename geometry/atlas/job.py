"""The atlas job: every image of a data set measured by the analyses of `AtlasOptions`, one row per image.

    df = build_atlas(handle, dataset, analyses=("margin", "curvature"), engine="ray", workers=4)

The data set is cut into shards (`geometry.atlas.shards`); shards already in the disk cache are read, the others go
to an engine (`geometry.atlas.engines`: in-process or Ray tasks), which stores each one as it finishes. The result is
a pandas DataFrame in data set order with the columns of `geometry.atlas.rows` plus ``correct`` and the provenance of
every row: ``model``, ``model_fingerprint``, ``dataset``, ``split``, ``data_fingerprint``, ``parameters`` (JSON of
the options) and ``code_version`` (of the shard computation). `cached_atlas` assembles the same frame from the cache
alone (the app's "load").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from geometry.atlas.engines import Engine, make_engine
from geometry.atlas.options import AtlasOptions
from geometry.atlas.rows import column_order
from geometry.atlas.shards import DEFAULT_SHARD_SIZE, Shard, atlas_shard, make_shard, plan_shards
from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.runtime.cache import DiskCache, default_cache
from geometry.runtime.compute import CancelToken
from geometry.runtime.validate import check_int

__all__ = ["PROVENANCE_COLUMNS", "AtlasProgress", "atlas_status", "build_atlas", "cached_atlas"]

Progress = Callable[[float, str], None]
PROVENANCE_COLUMNS = (
    "model",
    "model_fingerprint",
    "dataset",
    "split",
    "data_fingerprint",
    "parameters",
    "code_version",
)


class AtlasProgress:
    """Turns shards finishing into ``progress(fraction, "12/40 shards · 830 images/s · 9 s left")``.

    Images read from the cache count as done but not in the rate; the time left is the images still to compute at
    the rate measured so far.
    """

    def __init__(self, progress: Progress | None, total_images: int, total_shards: int) -> None:
        self.progress = progress
        self.total_images = max(total_images, 1)
        self.total_shards = total_shards
        self.done_images = 0
        self.done_shards = 0
        self.computed_images = 0
        self.start = time.perf_counter()

    def cached(self, images: int) -> None:
        self.done_images += images
        self.done_shards += 1

    def computed(self, images: int) -> None:
        self.done_images += images
        self.done_shards += 1
        self.computed_images += images
        self.report()

    @property
    def rate(self) -> float:
        """Images computed per second since the job started (NaN before the first shard)."""
        elapsed = time.perf_counter() - self.start
        return self.computed_images / elapsed if self.computed_images and elapsed > 0 else float("nan")

    def text(self) -> str:
        line = f"{self.done_shards}/{self.total_shards} shards"
        rate = self.rate
        if np.isfinite(rate):
            left = (self.total_images - self.done_images) / rate
            line += f" · {rate:,.0f} images/s · {left:,.0f} s left"
        return line

    def report(self) -> None:
        if self.progress is not None:
            self.progress(min(self.done_shards / max(self.total_shards, 1), 1.0), self.text())


def _options(options: AtlasOptions | None, analyses: Iterable[str] | str | None) -> AtlasOptions:
    if options is not None:
        if not isinstance(options, AtlasOptions):
            raise TypeError(f"expected options to be an AtlasOptions, got {type(options).__name__}")
        if analyses is not None and AtlasOptions(analyses=analyses).analyses != options.analyses:
            raise ValueError("expected the analyses in options or as analyses=, not both")
        return options
    return AtlasOptions(analyses=("margin",) if analyses is None else analyses)


def _check(handle: ModelHandle, dataset: Dataset) -> None:
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a Dataset, got {type(dataset).__name__}")
    if tuple(dataset.input_shape) != tuple(handle.input_shape):
        raise ValueError(
            f"{handle.name} expects inputs of shape {tuple(handle.input_shape)}; {dataset.name} has "
            f"{tuple(dataset.input_shape)}"
        )


def _spans(dataset: Dataset, shard_size: int, limit: int | None) -> list[tuple[int, int]]:
    n = len(dataset) if limit is None else min(check_int("limit", limit, 1), len(dataset))
    return plan_shards(n, shard_size)


def _store(cache: DiskCache | bool | None) -> DiskCache | None:
    if cache is False:
        return None
    return default_cache() if cache is None or cache is True else cache


def build_atlas(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    analyses: Iterable[str] | str | None = None,
    options: AtlasOptions | None = None,
    engine: str | Engine = "local",
    address: str | None = None,
    workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    limit: int | None = None,
    source: str | None = None,
    load_options: Mapping[str, Any] | None = None,
    cache: DiskCache | bool | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """The atlas of the first ``limit`` (default all) images of ``dataset`` on ``handle``: one row per image.

    ``analyses``: names from `geometry.atlas.options.ANALYSES` (default ``("margin",)``), or ``options`` (an
    `AtlasOptions`) for their settings. ``engine``: ``"local"`` (this process), ``"ray"`` (tasks on a cluster:
    ``address`` joins one, else a local one is started with ``workers`` CPUs) or an engine object. ``shard_size``:
    images per shard (the unit of caching, resuming and Ray tasks). ``source`` / ``load_options``: what
    ``load_model`` was given for ``handle``, so Ray workers load the model themselves (built-in and trained models
    are found by name without it). ``cache``: a `DiskCache`, None for the default one, False for none.
    ``progress(fraction, text)`` reports shards done, images/s and the time left; ``cancel`` (or Ctrl-C) stops
    between shards (Ray: cancels its tasks), keeping the finished shards.
    """
    _check(handle, dataset)
    opts = _options(options, analyses)
    store = _store(cache)
    runner = make_engine(engine, address=address, workers=workers, source=source, load_options=load_options)
    spans = _spans(dataset, shard_size, limit)
    parts: dict[int, dict[str, np.ndarray]] = {}
    missing: list[Shard] = []
    tracker = AtlasProgress(progress, spans[-1][1] if spans else 0, len(spans))
    for start, stop in spans:
        hit = (
            atlas_shard.cached(handle, make_shard(dataset, start, stop, copy=False), opts, cache=store)
            if store
            else None
        )
        if hit is not None:
            parts[start] = hit
            tracker.cached(stop - start)
        else:
            missing.append(make_shard(dataset, start, stop))
    tracker.report()

    n_cached = len(spans) - len(missing)

    def inner(fraction: float, _text: str) -> None:  # the local engine's progress over the missing shards
        if progress is not None:
            progress(min((n_cached + fraction * len(missing)) / len(spans), 1.0), tracker.text())

    for shard, rows in runner.map(
        handle, missing, opts, store=store, progress=inner if progress is not None else None, cancel=cancel
    ):
        parts[shard.start] = rows
        tracker.computed(len(shard))
    return _frame(handle, dataset, opts, [parts[start] for start, _ in spans])


def cached_atlas(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    analyses: Iterable[str] | str | None = None,
    options: AtlasOptions | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    limit: int | None = None,
    cache: DiskCache | None = None,
) -> pd.DataFrame | None:
    """The atlas `build_atlas` would return, from the disk cache alone; None unless every shard is there."""
    _check(handle, dataset)
    opts = _options(options, analyses)
    store = _store(cache)
    parts = []
    for start, stop in _spans(dataset, shard_size, limit):
        hit = atlas_shard.cached(handle, make_shard(dataset, start, stop, copy=False), opts, cache=store)
        if hit is None:
            return None
        parts.append(hit)
    return _frame(handle, dataset, opts, parts)


def atlas_status(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    analyses: Iterable[str] | str | None = None,
    options: AtlasOptions | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    limit: int | None = None,
    cache: DiskCache | None = None,
) -> tuple[int, int]:
    """``(shards in the cache, shards in all)`` of that atlas, without computing anything."""
    _check(handle, dataset)
    opts = _options(options, analyses)
    store = _store(cache)
    spans = _spans(dataset, shard_size, limit)
    done = sum(
        atlas_shard.is_cached(handle, make_shard(dataset, a, b, copy=False), opts, cache=store) for a, b in spans
    )
    return int(done), len(spans)


def _frame(
    handle: ModelHandle, dataset: Dataset, options: AtlasOptions, parts: list[dict[str, np.ndarray]]
) -> pd.DataFrame:
    """The shards' columns stacked in data set order, plus ``correct`` and the provenance columns."""
    if not parts:
        raise ValueError(f"{dataset.name} has no images to make an atlas of")
    names = column_order(list(parts[0]))
    df = pd.DataFrame({name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in names})
    df.insert(df.columns.get_loc("prediction") + 1, "correct", df["prediction"].to_numpy() == df["label"].to_numpy())
    provenance = {
        "model": handle.name,
        "model_fingerprint": handle.fingerprint,
        "dataset": dataset.name,
        "split": dataset.split,
        "data_fingerprint": dataset.fingerprint,
        "parameters": options.parameters(),
        "code_version": atlas_shard.version,
    }
    for name, value in provenance.items():
        df[name] = pd.Series([value] * len(df), dtype="string")
    df.attrs.update(provenance)
    df.attrs["class_names"] = list(dataset.class_names)
    return df

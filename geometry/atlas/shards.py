"""Shards of a data set and their cached rows: the unit of work, of caching and of resuming an atlas.

A data set of N images is cut into consecutive shards of ``shard_size`` images, ``[0, s), [s, 2s), ...``
(`plan_shards`). `atlas_shard` computes one shard's rows (`geometry.atlas.rows.shard_rows`) through the disk cache:
its key is the model's fingerprint, the shard's fingerprint (the data set's fingerprint and the shard's range), the
`AtlasOptions` and the code version, so a finished shard is an entry that every later run (the command line, a Ray
worker's result stored by the driver, the app) finds and skips, and an interrupted run resumes with the missing
shards only. Shards are always cut from index 0 with the same size, so ``--limit`` runs share the shards they have
in common with full runs.

A `Shard` carries its own images (a contiguous copy, not a view of the data set: a view would carry the whole data
set's storage when it is sent to a worker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from geometry.atlas.options import AtlasOptions
from geometry.atlas.rows import shard_rows
from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.runtime.compute import CancelToken
from geometry.runtime.memo import memoize
from geometry.runtime.validate import check_int

__all__ = ["DEFAULT_SHARD_SIZE", "Shard", "atlas_shard", "make_shard", "plan_shards"]

Progress = Callable[[float, str], None]

# Images per shard: large enough that a shard's fixed costs (a Ray task's scheduling and transfer, about 10 ms, and
# the first batch's warm-up) are a few percent of its compute, small enough that a data set of a few thousand images
# makes many more shards than workers (load balance) and an interruption loses little. bench/bench_atlas.py measures it.
DEFAULT_SHARD_SIZE = 64


@dataclass(frozen=True, eq=False)
class Shard:
    """Images ``start .. stop - 1`` of a data set: the unit an engine computes and the cache stores."""

    data_fingerprint: str  # the whole data set's `Dataset.fingerprint`
    start: int
    stop: int
    images: torch.Tensor  # (stop - start, *input_shape) float32, contiguous
    labels: torch.Tensor  # (stop - start,) int64

    @property
    def fingerprint(self) -> str:
        """What the cache keys the shard by: its data set and its range (not its bytes, which they determine)."""
        return f"{self.data_fingerprint}[{self.start}:{self.stop}]"

    @property
    def indices(self) -> torch.Tensor:
        """(n,) int64 positions of the shard's images in the data set."""
        return torch.arange(self.start, self.stop, dtype=torch.int64)

    def __len__(self) -> int:
        return self.stop - self.start


def plan_shards(n: int, shard_size: int = DEFAULT_SHARD_SIZE) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``0 .. n - 1`` in shards of ``shard_size`` (the last may be shorter)."""
    n = check_int("n", n, 0)
    size = check_int("shard_size", shard_size, 1)
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def make_shard(dataset: Dataset, start: int, stop: int, *, copy: bool = True) -> Shard:
    """The `Shard` of ``dataset``'s images ``start .. stop - 1``: copies of them (``copy=False``: views, enough to
    look the shard up in the cache, not to send it anywhere)."""
    if not 0 <= start < stop <= len(dataset):
        raise ValueError(f"expected 0 <= start < stop <= {len(dataset)}, got {start}, {stop}")
    return Shard(
        data_fingerprint=dataset.fingerprint,
        start=int(start),
        stop=int(stop),
        images=dataset.images[start:stop].clone() if copy else dataset.images[start:stop],
        labels=dataset.labels[start:stop].clone() if copy else dataset.labels[start:stop],
    )


@memoize(name="geometry.atlas.shard")
def atlas_shard(
    handle: ModelHandle,
    shard: Shard,
    options: AtlasOptions = AtlasOptions(),  # noqa: B008 (frozen: a shared default is safe)
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, np.ndarray]:
    """The rows of one shard (`shard_rows`): ``{column: (len(shard),) array}``, through the disk cache."""
    return shard_rows(handle, shard.images, shard.labels, shard.indices, options, progress=progress, cancel=cancel)

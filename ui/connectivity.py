"""Streamlit glue of the Connectivity view: one path between two inputs, the success rate of random pairs.

Both come from geometry's memoized path search (`geometry.inspection.connectivity`), with a progress bar and a Stop
button only while something computes.
"""

from __future__ import annotations

import numpy as np
import torch

from geometry.data.datasets import Dataset
from geometry.inspection.connectivity import (
    PathResult,
    cached_connectivity_batch,
    cached_find_path,
    sample_same_class_pairs,
)
from geometry.inspection.options import PathOptions
from geometry.models.handle import ModelHandle
from ui.progress import run_cached


def path(handle: ModelHandle, x1: torch.Tensor, x2: torch.Tensor, **options: object) -> PathResult:
    """The path from ``x1`` to ``x2`` inside their class; ``options``: fields of `PathOptions`."""
    opts = PathOptions(**options)  # type: ignore[arg-type]
    return run_cached(cached_find_path, handle, x1, x2, options=opts, label="Searching a path inside the class")


def connectivity(handle: ModelHandle, data: Dataset, *, num_pairs: int, seed: int, **options: object) -> PathResult:
    """Paths between ``num_pairs`` random same-class pairs of ``data`` (correctly classified ones when every input
    is labelled); ``options``: fields of `PathOptions`."""
    labels = data.labels if bool((data.labels >= 0).all()) else None
    opts = PathOptions(**options)  # type: ignore[arg-type]
    label = f"Joining {num_pairs} random same-class pairs"
    return run_cached(
        cached_connectivity_batch,
        handle,
        data.images,
        labels,
        num_pairs=num_pairs,
        seed=seed,
        options=opts,
        label=label,
    )


def has_same_class_pair(handle: ModelHandle, data: Dataset) -> bool:
    """Whether ``data`` holds two inputs the model predicts as the same class (and, when every input is labelled,
    classifies correctly): what the random-pairs mode of the connectivity view needs."""
    if len(data) < 2:
        return False
    pred = handle.predict(data.images)
    eligible = pred == data.labels if bool((data.labels >= 0).all()) else None
    try:
        sample_same_class_pairs(pred, 1, eligible=eligible)
    except ValueError:
        return False
    return True


def class_members(handle: ModelHandle, data: Dataset, c: int, limit: int = 300) -> list[int]:
    """Indices of inputs labelled ``c`` that the model also predicts as ``c`` (the first ``limit``)."""
    idx = data.indices_of_class(c)[:limit] if bool((data.labels >= 0).any()) else np.arange(min(len(data), limit))
    if len(idx) == 0:
        return []
    pred = handle.predict(data.images[torch.from_numpy(idx)])
    return [int(i) for i, p in zip(idx, pred.tolist(), strict=True) if p == c]

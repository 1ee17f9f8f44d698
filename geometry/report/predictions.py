"""A model's predictions on a data set, memoized (the report's accuracy section reads them).

A module of its own so that the cache entry's code version is the prediction code only: editing the report's
sentences does not predict again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geometry.models.handle import ModelHandle
from geometry.runtime.compute import CancelToken, Progress
from geometry.runtime.memo import memoize

__all__ = ["Predictions", "cached_predictions"]


@dataclass(frozen=True)
class Predictions:
    predicted: torch.Tensor  # (N,) int64: the class the model predicts for each input


@memoize
def cached_predictions(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Predictions:
    """The predicted class of each input of ``x`` (N, *input_shape), through the disk cache."""
    return Predictions(handle.predict(x, progress=progress, cancel=cancel))

"""The per-image measurements of a batch of images, as columns of one table (`shard_rows`).

Every column is a 1-D numpy array with one value per image, so a shard is a plain dict that the disk cache stores
as ``.npz`` and pandas turns into rows. Distances are L2 in the handle's input space ([0, 1] pixels), curvatures in
1 / input units, logits as the model returns them.

Columns, by analysis (always: ``index``, ``label``, ``prediction``, ``confidence``, ``logit_margin``):

- ``margin``: ``margin`` (DeepFool's boundary distance ||z - x||, NaN where it did not converge), ``deepfool_norm``
  (||r|| with overshoot), ``boundary_class`` (the class across, -1 if none), ``converged``, ``deepfool_iterations``.
- ``curvature``: ``curvature_top_1..k`` (largest first), ``curvature_bottom_1..k`` (most negative first),
  ``curvature_max_abs`` (the largest |principal curvature|), ``curvature_random_mean`` / ``_std`` / ``_min`` /
  ``_max`` over the random tangent directions, ``curvature_converged`` (every principal pair converged).
- ``frequency``: ``freq_margin_<s>-<e>`` and ``freq_converged_<s>-<e>`` per DCT band (frequencies s..e).
- ``detection``: ``detection_score`` (max_i -rho_i, larger = more likely perturbed) and ``detection_recovered``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import torch

from geometry.atlas.options import AtlasOptions
from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.deepfool import deepfool
from geometry.inspection.detection import curvature_statistic
from geometry.inspection.margins import frequency_margins
from geometry.models.handle import ModelHandle
from geometry.runtime.compute import CancelToken, scaled_progress

__all__ = ["BASE_COLUMNS", "column_order", "shard_rows"]

Progress = Callable[[float, str], None]
BASE_COLUMNS = ("index", "label", "prediction", "confidence", "logit_margin")

# columns in the order of the module's docstring (the cache keeps a shard's columns by name, not in order)
_FIXED = (
    *BASE_COLUMNS,
    "margin",
    "deepfool_norm",
    "boundary_class",
    "converged",
    "deepfool_iterations",
    "curvature_*",
    "curvature_max_abs",
    "curvature_random_mean",
    "curvature_random_std",
    "curvature_random_min",
    "curvature_random_max",
    "curvature_converged",
    "freq_*",
    "detection_score",
    "detection_recovered",
)
_PRINCIPAL = re.compile(r"curvature_(top|bottom)_(\d+)$")
_BAND = re.compile(r"freq_(margin|converged)_(\d+)-(\d+)$")


def column_order(names: list[str]) -> list[str]:
    """``names`` in the atlas's column order: base, margin, principal curvatures (top_1, bottom_1, top_2, ...), the
    curvature summary, the bands low to high (margin, converged), detection; unknown names last, alphabetically."""

    def rank(name: str) -> tuple[int, int, str]:
        if name in _FIXED:
            return _FIXED.index(name), 0, ""
        if m := _PRINCIPAL.match(name):
            return _FIXED.index("curvature_*"), 2 * int(m[2]) + (m[1] == "bottom"), ""
        if m := _BAND.match(name):
            return _FIXED.index("freq_*"), 2 * int(m[2]) + (m[1] == "converged"), ""
        return len(_FIXED), 0, name

    return sorted(names, key=rank)


# the share of a shard's time each analysis takes, roughly (for the progress bar only)
_WEIGHTS = {"margin": 1.0, "curvature": 4.0, "frequency": 3.0, "detection": 1.0}


def shard_rows(
    handle: ModelHandle,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor,
    options: AtlasOptions,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, np.ndarray]:
    """The atlas columns of N images ``images`` (N, *input_shape) with true ``labels`` (N,) and data set
    ``indices`` (N,); the analyses of ``options`` run batched over all N at once.

    Returns ``{column: (N,) array}`` (see the module's docstring). The model runs in eval mode; nothing is cached
    here (`geometry.atlas.shards.atlas_shard` is the cached form).
    """
    x = handle.check_inputs(images.detach() if isinstance(images, torch.Tensor) else images)
    n = len(x)
    if labels.shape != (n,) or indices.shape != (n,):
        raise ValueError(f"expected labels and indices of shape ({n},), got {tuple(labels.shape)}, {indices.shape}")
    logits = handle.logits(x, cancel=cancel).double()
    top2 = logits.topk(min(2, logits.shape[1]), dim=1).values
    cols: dict[str, np.ndarray] = {
        "index": indices.to(torch.int64).numpy().copy(),
        "label": labels.to(torch.int64).numpy().copy(),
        "prediction": logits.argmax(dim=1).numpy(),
        "confidence": logits.softmax(dim=1).max(dim=1).values.float().numpy(),
        "logit_margin": (top2[:, 0] - top2[:, -1]).float().numpy(),
    }
    todo = [a for a in options.analyses]
    total = sum(_WEIGHTS[a] for a in todo) or 1.0
    done = 0.0

    def part(analysis: str) -> Progress | None:
        nonlocal done
        start = done / total
        done += _WEIGHTS[analysis]
        return scaled_progress(progress, start, done / total)

    df = None
    if "margin" in todo:
        df = deepfool(handle, x, options=options.deepfool, progress=part("margin"), cancel=cancel)
        cols["margin"] = df.boundary_distance.numpy()
        cols["deepfool_norm"] = df.norm.numpy()
        cols["boundary_class"] = df.boundary_class.numpy()
        cols["converged"] = df.converged.numpy()
        cols["deepfool_iterations"] = df.iterations.numpy()
    if "curvature" in todo:
        cols.update(_curvature_columns(handle, x, options, df, part("curvature"), cancel))
    if "frequency" in todo:
        fm = frequency_margins(handle, x, options=options.frequency, progress=part("frequency"), cancel=cancel)
        for b, name in enumerate(fm.band_labels()):
            cols[f"freq_margin_{name}"] = fm.margins[:, b].numpy()
            cols[f"freq_converged_{name}"] = fm.converged[:, b].numpy()
    if "detection" in todo:
        stat = curvature_statistic(handle, x, options=options.detection, progress=part("detection"), cancel=cancel)
        cols["detection_score"] = stat.score.numpy()
        cols["detection_recovered"] = stat.recovered.numpy()
    if progress is not None:
        progress(1.0, f"{n} images measured")
    return {name: np.ascontiguousarray(values) for name, values in cols.items()}


def _curvature_columns(
    handle: ModelHandle,
    x: torch.Tensor,
    options: AtlasOptions,
    df: object,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> dict[str, np.ndarray]:
    """Principal curvatures from each end of the spectrum and a summary of the random-direction curvatures."""
    res = boundary_curvature(handle, x, options=options.curvature, deepfool_result=df, progress=progress, cancel=cancel)
    n, m = res.curvatures.shape
    k = options.curvature.k
    curv = res.curvatures.numpy()  # (N, m) decreasing
    out: dict[str, np.ndarray] = {}
    for i in range(k):  # m = min(2k, D - 1): with fewer, the two ends share pairs
        out[f"curvature_top_{i + 1}"] = curv[:, i] if i < m else np.full(n, math.nan)
        out[f"curvature_bottom_{i + 1}"] = curv[:, m - 1 - i] if i < m else np.full(n, math.nan)
    with np.errstate(invalid="ignore"):
        out["curvature_max_abs"] = np.abs(curv).max(axis=1) if m else np.full(n, math.nan)
    rand = res.random_curvatures.double().numpy()
    empty = rand.shape[1] == 0 or not np.isfinite(rand).any()
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "all-NaN slice": rows where DeepFool failed, by design
        out["curvature_random_mean"] = np.full(n, math.nan) if empty else np.nanmean(rand, axis=1)
        out["curvature_random_std"] = np.full(n, math.nan) if empty else np.nanstd(rand, axis=1)
        out["curvature_random_min"] = np.full(n, math.nan) if empty else np.nanmin(rand, axis=1)
        out["curvature_random_max"] = np.full(n, math.nan) if empty else np.nanmax(rand, axis=1)
    out["curvature_converged"] = res.converged.all(dim=1).numpy() & np.isfinite(curv).all(axis=1)
    return out

"""Streamlit glue of the Robustness view: the image and generated-shapes sweeps, and strips of transformed images.

Each sweep comes from geometry's memoized sweeps (`geometry.inspection.robustness`), with a progress bar and a Stop
button only while it computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from geometry.data.datasets import Dataset
from geometry.data.shapes import render_shapes, sample_factors, with_factor
from geometry.inspection.robustness import (
    SweepResult,
    cached_image_sweep,
    cached_shapes_rotation_sweeps,
    cached_shapes_sweep,
    transform_images,
)
from geometry.models.handle import ModelHandle
from ui.progress import progress_bar, run_cached
from ui.samples import spread


def image_sweep(handle: ModelHandle, data: Dataset, kind: str, *, fill: float | str, grid: int = 7) -> SweepResult:
    """The model's predictions on ``data`` as the transform ``kind`` varies over ``grid`` values."""
    labels = data.labels if bool((data.labels >= 0).all()) else None
    label = f"{kind.capitalize()} sweep on {len(data)} images"
    return run_cached(cached_image_sweep, handle, data.images, kind, labels=labels, fill=fill, grid=grid, label=label)


def shapes_sweep(handle: ModelHandle, factor: str, *, n: int, seed: int, grid: int) -> SweepResult:
    """The model's predictions on ``n`` generated shapes as ``factor`` varies."""
    label = f"{factor.capitalize()} sweep on generated shapes"
    return run_cached(cached_shapes_sweep, handle, factor, n=n, seed=seed, grid=grid, label=label)


def rotation_sweeps(handle: ModelHandle, sizes: Sequence[float], *, n: int, seed: int) -> dict[float, SweepResult]:
    """Rotation sweeps of generated shapes at each area in ``sizes`` (one cache entry per size)."""
    with progress_bar(f"Rotation sweeps of generated shapes at {len(sizes)} sizes") as cb:
        return cached_shapes_rotation_sweeps(handle, sizes=sizes, n=n, seed=seed, progress=cb)


def preview_values(sweep: SweepResult, count: int = 7) -> list[int]:
    """Indices of ``count`` sweep values spread over the range (for a strip of transformed images)."""
    return spread(len(sweep.values), count)


def transform_strip(
    handle: ModelHandle, image: torch.Tensor, sweep: SweepResult, fill: float | str, count: int = 7
) -> tuple[np.ndarray, list[str], list[bool]]:
    """One image (1, C, H, W) under ``count`` of the sweep's values: images, captions ("value: class") and whether
    each keeps the untouched image's class."""
    chosen = preview_values(sweep, count)
    values = [sweep.values[i] if sweep.values.ndim == 2 else float(sweep.values[i]) for i in chosen]
    images = torch.cat([transform_images(image, sweep.factor, v, fill=fill) for v in values])
    pred = handle.predict(images).tolist()
    ref = int(handle.predict(image)[0])
    names = handle.class_names
    caps = [
        (f"({v[0]:+.2f}, {v[1]:+.2f})" if sweep.factor == "shift" else f"{v:g}") + f": {names[k]}"
        for v, k in zip(values, pred, strict=True)
    ]
    return images.numpy(), caps, [k == ref for k in pred]


def shapes_strip(handle: ModelHandle, sweep: SweepResult, count: int = 6) -> tuple[np.ndarray, list[str]]:
    """One generated shape under ``count`` of a shapes sweep's values: images and captions."""
    base = sample_factors(1, seed=0, area=0.2, center=(0.5, 0.5))
    factors, caps = [], []
    for i in preview_values(sweep, count):
        v = sweep.values[i]
        if sweep.factor == "area":
            factors += with_factor(base, area=float(v))
            caps.append(f"area {float(v):g}")
        elif sweep.factor == "position":
            factors += with_factor(base, center=(float(v[0]), float(v[1])))
            caps.append(f"({v[0]:.2f}, {v[1]:.2f})")
        else:
            factors += with_factor(base, rotation=float(v))
            caps.append(f"{float(v):g}°")
    return render_shapes(factors, size=handle.input_shape[1]).numpy(), caps

"""Streamlit glue of the inspection pages (frequency margins, connectivity, detection, robustness, report).

Every result comes from geometry's disk cache (keys: model and input fingerprints and every option), so a repeated
view, or the same view after a restart, is instant; the pages draw an `st.progress` bar fed by the library's
``progress(fraction, text)`` callback while something computes. The pages' samples are the report's samples
(`geometry.report.build.report_images`), so a report after browsing reuses what the pages computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st
import torch

from geometry.boundary.deepfool import deepfool
from geometry.data.datasets import Dataset
from geometry.data.dct import dct_flip, low_pass
from geometry.data.shapes import render_shapes, sample_factors, with_factor
from geometry.inspection.connectivity import (
    PathResult,
    cached_connectivity_batch,
    cached_find_path,
    sample_same_class_pairs,
)
from geometry.inspection.detection import DetectionResult, DetectionVerdict, cached_evaluate_detection, detect
from geometry.inspection.margins import FrequencyBands, FrequencyMargins, cached_frequency_margins, frequency_bands
from geometry.inspection.robustness import (
    SweepResult,
    cached_image_sweep,
    cached_shapes_rotation_sweeps,
    cached_shapes_sweep,
    transform_images,
)
from geometry.models.handle import ModelHandle
from geometry.report.build import Report, ReportConfig, build_report, report_html, report_images
from ui.progress import progress_bar

ERRORS = (ValueError, TypeError, RuntimeError)
NONE = "none"


def sample(data: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` inputs of ``data`` in a seeded random choice (the report's own sample for the same n and seed)."""
    return report_images(data, n, seed)


def count_slider(
    where: Any, label: str, *, low: int, high: int, default: int, key: str, help: str | None = None, step: int = 1
) -> int:
    """A slider for how many inputs to use, from ``low`` to ``high`` (the data set's size or a cap), starting at
    ``default`` (clamped). Streamlit refuses a slider whose ends are equal, so when the data allow only one value
    (``high <= low``) there is no slider and ``high`` comes back: the page says why (`too_few`)."""
    if high <= low:
        st.session_state.pop(key, None)
        return max(high, 0)
    if not low <= st.session_state.get(key, -1) <= high:
        st.session_state[key] = min(max(default, low), high)
    return int(where.slider(label, min_value=low, max_value=high, step=step, key=key, help=help))


def too_few(where: Any, data: Dataset, used: int, what: str) -> None:
    """The note shown instead of a count slider when the data set is that small; ``what``: e.g. "the margins are
    computed"."""
    count = f"{len(data)} input{'s' if len(data) != 1 else ''}"
    where.info(
        f"Only {count} in {data.name}: {what} on {'it' if used == 1 else f'all {used}'} (upload or pick more "
        "inputs for a distribution)."
    )


def clean_reference(handle: ModelHandle, data: Dataset) -> Dataset | None:
    """The clean inputs a detection threshold is set on: the sidebar's data set itself, except for uploaded images,
    where it is the data set the sidebar would use for this model (the one its model card names, else the first
    built-in data set with its input shape). None when there is no such data set."""
    if data.split != "upload":
        return data
    from ui import state

    names = state.compatible_datasets(handle)
    return state.dataset(names[0]) if names else None


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


def is_image_model(handle: ModelHandle) -> bool:
    return len(handle.input_shape) == 3


def compatible_models(handle: ModelHandle) -> list[str]:
    """The models the inspection views can compare ``handle`` with (see `ui.state.comparable_models`)."""
    from ui import state

    return state.comparable_models(handle)


def other_handle(name: str) -> ModelHandle:
    """A built-in model for comparison, from the app's model cache (same device as the sidebar's choice)."""
    from ui import state

    return state.builtin_handle(name, st.session_state.get("device", "cpu"))


# -- frequency margins -------------------------------------------------------------------------------------------------


def bands_of(handle: ModelHandle, block: int | None = None, stride: int | None = None) -> FrequencyBands:
    return frequency_bands(handle.input_shape, block=block, stride=stride)


def spread(total: int, count: int) -> list[int]:
    """``count`` band indices spread evenly from the lowest to the highest of ``total`` (all when count >= total)."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, max(count, 1))})


def frequency_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    bands: Sequence[int],
    *,
    block: int | None,
    stride: int | None,
    random: bool,
    label: str = "",
) -> FrequencyMargins:
    with progress_bar(f"Frequency margins{label}") as cb:
        return cached_frequency_margins(
            handle,
            x,
            bands=list(bands),
            block=block,
            stride=stride,
            num_random=1 if random else 0,
            full=True,
            progress=cb,
        )


def transforms_preview(handle: ModelHandle, images: torch.Tensor, keep: int) -> tuple[torch.Tensor, list[list[int]]]:
    """(n, 3, C, H, W) original / dct_flip / low-pass images (clipped to [0, 1]) and their predictions."""
    flipped = dct_flip(images).clamp(0, 1)
    low = low_pass(images, keep).clamp(0, 1)
    grid = torch.stack([images, flipped, low], dim=1)
    pred = handle.predict(grid.reshape(-1, *handle.input_shape)).reshape(len(images), 3)
    return grid, pred.tolist()


# -- connectivity ------------------------------------------------------------------------------------------------------


def path(handle: ModelHandle, x1: torch.Tensor, x2: torch.Tensor, **options: Any) -> PathResult:
    with progress_bar("Searching a path inside the class") as cb:
        return cached_find_path(handle, x1, x2, progress=cb, **options)


def connectivity(handle: ModelHandle, data: Dataset, *, num_pairs: int, seed: int, **options: Any) -> PathResult:
    labels = data.labels if bool((data.labels >= 0).all()) else None
    with progress_bar(f"Joining {num_pairs} random same-class pairs") as cb:
        return cached_connectivity_batch(
            handle, data.images, labels, num_pairs=num_pairs, seed=seed, progress=cb, **options
        )


def class_members(handle: ModelHandle, data: Dataset, c: int, limit: int = 300) -> list[int]:
    """Indices of inputs labelled ``c`` that the model also predicts as ``c`` (the first ``limit``)."""
    idx = data.indices_of_class(c)[:limit] if bool((data.labels >= 0).any()) else np.arange(min(len(data), limit))
    if len(idx) == 0:
        return []
    pred = handle.predict(data.images[torch.from_numpy(idx)])
    return [int(i) for i, p in zip(idx, pred.tolist(), strict=True) if p == c]


# -- detection ---------------------------------------------------------------------------------------------------------


def detection(
    handle: ModelHandle, x: torch.Tensor, *, fpr: float, num_directions: int, h: float, seed: int
) -> DetectionResult:
    with progress_bar(f"Detection on {len(x)} clean inputs and their DeepFool perturbations") as cb:
        return cached_evaluate_detection(handle, x, fpr=fpr, num_directions=num_directions, h=h, seed=seed, progress=cb)


def perturbed(handle: ModelHandle, x: torch.Tensor) -> tuple[torch.Tensor, bool, float]:
    """The DeepFool-perturbed version of one input (clipped to its range), whether it flipped, and ||r||."""
    res = deepfool(handle, x, clip=handle.input_range is not None)
    return x + res.perturbation, bool(res.converged[0]), float(res.norm[0])


def verdict(
    handle: ModelHandle, x: torch.Tensor, threshold: float, *, num_directions: int, h: float, seed: int
) -> DetectionVerdict:
    return detect(handle, x, threshold, num_directions=num_directions, h=h, seed=seed)


# -- robustness --------------------------------------------------------------------------------------------------------


def image_sweep(handle: ModelHandle, data: Dataset, kind: str, *, fill: float | str, grid: int = 7) -> SweepResult:
    labels = data.labels if bool((data.labels >= 0).all()) else None
    with progress_bar(f"{kind.capitalize()} sweep on {len(data)} images") as cb:
        return cached_image_sweep(handle, data.images, kind, labels=labels, fill=fill, grid=grid, progress=cb)


def shapes_sweep(handle: ModelHandle, factor: str, *, n: int, seed: int, grid: int) -> SweepResult:
    with progress_bar(f"{factor.capitalize()} sweep on generated shapes") as cb:
        return cached_shapes_sweep(handle, factor, n=n, seed=seed, grid=grid, progress=cb)


def rotation_sweeps(handle: ModelHandle, sizes: Sequence[float], *, n: int, seed: int) -> dict[float, SweepResult]:
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


# -- report ------------------------------------------------------------------------------------------------------------


def report_config(n: int, bands: int | None) -> ReportConfig:
    return ReportConfig.with_images(n, bands=bands)


def report_key(handle: ModelHandle, data: Dataset, config: ReportConfig) -> str:
    text = f"{handle.fingerprint}|{data.fingerprint}|{config!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate_report(handle: ModelHandle, data: Dataset, config: ReportConfig) -> tuple[Report, str]:
    """Build the report (each analysis from the disk cache when it is there) and its HTML."""
    with progress_bar("Building the report") as cb:
        rep = build_report(handle, data, config, progress=cb)
        cb(1.0, "writing the HTML")
        return rep, report_html(rep)

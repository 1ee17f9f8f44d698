"""Robustness to object size, position, rotation and input resolution (SI-Score style, Djolonga et al. CVPR 2021).

Two kinds of sweep, both varying one factor at a time and reporting, per factor value, the share of inputs whose
prediction is kept, the accuracy and the mean logit margin ``f_y - max_{k != y} f_k``:

- `shapes_sweep`: for models trained on the built-in ``shapes`` data, fresh images from the generator with one factor
  set to each value — object size (area fraction), position (a 2D grid of object centres) or rotation (degrees);
  y is the true shape. `shapes_rotation_sweeps` runs the rotation sweep at several object sizes (SI-Score's
  rotation set is likewise made at several sizes), one `SweepResult` per size.
- `image_sweep`: for any image model and its own images, the image itself transformed — scaled about its centre on a
  neutral background, shifted (a 2D grid), rotated, or its resolution changed (down- then up-sampled, or the
  reverse); y is the model's prediction on the untouched image, so the identity keeps every prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from geometry.data.shapes import SHAPE_NAMES, ShapeFactors, render_shapes, sample_factors, with_factor
from geometry.models.handle import ModelHandle
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress
from geometry.runtime.memo import memoize

__all__ = [
    "IMAGE_TRANSFORMS",
    "ROTATION_SIZES",
    "SHAPE_FACTORS",
    "SweepResult",
    "cached_image_sweep",
    "cached_shapes_rotation_sweeps",
    "cached_shapes_sweep",
    "default_values",
    "image_sweep",
    "is_shapes_model",
    "logit_margin",
    "shapes_rotation_sweeps",
    "shapes_sweep",
    "transform_images",
]

ImageTransform = Literal["scale", "shift", "rotate", "resolution"]
ShapeFactor = Literal["area", "position", "rotation"]
IMAGE_TRANSFORMS: tuple[str, ...] = ("scale", "shift", "rotate", "resolution")
SHAPE_FACTORS: tuple[str, ...] = ("area", "position", "rotation")
ROTATION_SIZES: tuple[float, ...] = (0.1, 0.2, 0.4)  # object areas (fractions of the image) of the rotation sweeps

_UNITS = {
    "scale": "scale factor (1 = original size)",
    "shift": "shift (fraction of the image size)",
    "rotate": "rotation (degrees, counter-clockwise)",
    "resolution": "resolution factor (1 = the model's input size)",
    "area": "object area (fraction of the image)",
    "position": "object centre (fraction of the image)",
    "rotation": "object rotation (degrees, counter-clockwise)",
}


@dataclass(frozen=True)
class SweepResult:
    """Predictions of N inputs at V values of one factor."""

    factor: str  # "scale" | "shift" | "rotate" | "resolution" (own images) or "area" | "position" | "rotation" (shapes)
    values: np.ndarray  # (V,) float64, or (V, 2) for "shift"/"position": (x, y) in fractions of the image
    kept: np.ndarray  # (V,) float64: share of inputs predicted as their reference class y
    accuracy: np.ndarray  # (V,) float64: share predicted as their true label (NaN where labels are unknown)
    margin: np.ndarray  # (V,) float64: mean over inputs of f_y - max_{k != y} f_k (logits; < 0 means y is lost)
    predictions: np.ndarray  # (V, N) int64
    reference: np.ndarray  # (N,) int64: y, the class each input should keep
    labels: np.ndarray  # (N,) int64: true labels, -1 where unknown
    reference_kind: str  # "prediction" (y = the model's prediction at the identity) or "label" (y = the true label)
    grid_shape: tuple[int, ...]  # (G_y, G_x) when the values form a 2D grid (row-major, y outer), else ()
    unit: str  # what the values measure, for axis titles

    def __len__(self) -> int:
        return len(self.values)

    def heatmap(self, what: str = "kept") -> np.ndarray:
        """``kept``/``accuracy``/``margin`` reshaped to the 2D grid (G_y, G_x) of a position or shift sweep."""
        if len(self.grid_shape) != 2:
            raise ValueError(f"expected a 2D sweep (position or shift), got a {self.factor!r} sweep")
        if what not in ("kept", "accuracy", "margin"):
            raise ValueError(f"expected what in ('kept', 'accuracy', 'margin'), got {what!r}")
        return np.asarray(getattr(self, what)).reshape(self.grid_shape)


def logit_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``f_y - max_{k != y} f_k`` per row of ``logits`` (N, K) for classes ``y`` (N,): positive iff y wins."""
    fy = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], -math.inf)
    return fy - others.max(dim=1).values


def default_values(factor: str, *, grid: int = 7) -> np.ndarray:
    """The default factor values of a sweep (2D ``grid`` x ``grid`` for "shift" and "position")."""
    if factor == "scale":
        return np.array([0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5])
    if factor == "shift":
        return _grid_values(np.linspace(-0.3, 0.3, grid))
    if factor == "rotate":
        return np.arange(-180.0, 181.0, 20.0)
    if factor == "resolution":
        return np.array([0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.5, 2.0])
    if factor == "area":
        return np.array([0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0])
    if factor == "position":
        return _grid_values(np.linspace(0.0, 1.0, grid))
    if factor == "rotation":
        return np.arange(1.0, 342.0, 20.0)  # SI-Score's angles 1..341 step 20
    raise ValueError(f"expected a factor among {IMAGE_TRANSFORMS + SHAPE_FACTORS}, got {factor!r}")


def _grid_values(axis: np.ndarray) -> np.ndarray:
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


# -- transforms of the images themselves -----------------------------------------------------------------------------


def _fill_values(x: torch.Tensor, fill: float | str) -> torch.Tensor:
    """(N, C, 1, 1): the background each image is padded with."""
    if isinstance(fill, str):
        if fill != "border":
            raise ValueError(f"expected fill as a number in [0, 1] or 'border', got {fill!r}")
        border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], dim=-1)
        return border.mean(dim=-1)[..., None, None]
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0 <= fill <= 1:
        raise ValueError(f"expected fill as a number in [0, 1] or 'border', got {fill!r}")
    return torch.full((x.shape[0], x.shape[1], 1, 1), float(fill), dtype=x.dtype)


def _is_identity(kind: str, value: float | Sequence[float]) -> bool:
    if kind == "shift":
        return all(float(v) == 0.0 for v in value)  # type: ignore[union-attr]
    v = float(value)  # type: ignore[arg-type]
    return v % 360.0 == 0.0 if kind == "rotate" else v == 1.0


def transform_images(
    x: torch.Tensor, kind: str, value: float | Sequence[float], *, fill: float | str = "border"
) -> torch.Tensor:
    """Images ``x`` (N, C, H, W) in [0, 1] transformed by one factor value; the identity returns an exact copy.

    ``"scale"`` s > 0: the content shrinks (s < 1, the margin filled with ``fill``) or zooms in (s > 1) about the
    centre. ``"shift"`` (dx, dy): the content moves right/down by that fraction of the width/height.
    ``"rotate"`` degrees: counter-clockwise on screen about the centre. ``"resolution"`` r > 0: resampled to
    round(r H) x round(r W) and back to H x W (bilinear, antialiased when shrinking).
    ``fill``: a grey level in [0, 1], or ``"border"`` (each image's mean border colour: black stays black).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected images of shape (N, C, H, W), got {got}")
    if kind not in IMAGE_TRANSFORMS:
        raise ValueError(f"expected a transform among {IMAGE_TRANSFORMS}, got {kind!r}")
    x = x.float()
    if kind == "shift":
        try:
            dx, dy = (float(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"expected a shift as (dx, dy), got {value!r}") from None
        if not (math.isfinite(dx) and math.isfinite(dy)):
            raise ValueError(f"expected a finite shift, got {value!r}")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"expected a number for {kind}, got {value!r}")
        if not math.isfinite(float(value)) or (kind in ("scale", "resolution") and float(value) <= 0):
            raise ValueError(f"expected a {'positive' if kind != 'rotate' else 'finite'} {kind} value, got {value!r}")
    if _is_identity(kind, value):
        return x.clone()
    n, c, h, w = x.shape
    if kind == "resolution":
        r = float(value)  # type: ignore[arg-type]
        size = (max(1, round(r * h)), max(1, round(r * w)))
        mid = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=r < 1)
        return F.interpolate(mid, size=(h, w), mode="bilinear", align_corners=False, antialias=r > 1).clamp(0, 1)
    fill_v = _fill_values(x, fill)
    if kind == "scale":
        s = float(value)  # type: ignore[arg-type]
        theta = torch.tensor([[1 / s, 0.0, 0.0], [0.0, 1 / s, 0.0]])
    elif kind == "shift":
        theta = torch.tensor([[1.0, 0.0, -2 * dx], [0.0, 1.0, -2 * dy]])
    else:
        a = math.radians(float(value))  # type: ignore[arg-type]
        cos, sin = math.cos(a), math.sin(a)
        # CCW on screen (y down) in pixel units, mapped to normalised coordinates of each axis
        theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]])
    grid = F.affine_grid(theta[None].expand(n, -1, -1).to(x.dtype), [n, c, h, w], align_corners=False)
    out = F.grid_sample(x - fill_v, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill_v
    return out.clamp(0, 1)


def _evaluate(
    handle: ModelHandle,
    batches: Callable[[int], torch.Tensor],
    n_values: int,
    reference: torch.Tensor,
    labels: torch.Tensor,
    progress: Progress | None,
    cancel: CancelToken | None,
    what: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    kept, acc, margin, preds = [], [], [], []
    known = labels >= 0
    for v in range(n_values):
        if cancel is not None:
            cancel.raise_if_cancelled(what)
        logits = handle.logits(batches(v))
        p = logits.argmax(dim=1)
        preds.append(p.numpy())
        kept.append(float((p == reference).float().mean()))
        acc.append(float((p[known] == labels[known]).float().mean()) if bool(known.any()) else math.nan)
        margin.append(float(logit_margin(logits, reference).double().mean()))
        if progress is not None:
            progress((v + 1) / n_values, f"{what}: value {v + 1} of {n_values}")
    return np.array(kept), np.array(acc), np.array(margin), np.stack(preds).astype(np.int64)


def _sweep_result(
    factor: str,
    vals: np.ndarray,
    measured: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    reference: torch.Tensor,
    labels: torch.Tensor,
    reference_kind: str,
    grid_shape: tuple[int, ...],
) -> SweepResult:
    """A `SweepResult` from `_evaluate`'s (kept, accuracy, margin, predictions) arrays: one place that names the
    fields, for the own-image sweeps (reference: the predictions) and the generated-shape sweeps (the labels)."""
    kept, acc, margin, preds = measured
    return SweepResult(
        factor=factor,
        values=vals,
        kept=kept,
        accuracy=acc,
        margin=margin,
        predictions=preds,
        reference=reference.numpy(),
        labels=labels.numpy(),
        reference_kind=reference_kind,
        grid_shape=grid_shape,
        unit=_UNITS[factor],
    )


def image_sweep(
    handle: ModelHandle,
    images: torch.Tensor,
    kind: str,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    labels: torch.Tensor | None = None,
    fill: float | str = "border",
    grid: int = 7,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SweepResult:
    """Predictions of an image model on its own ``images`` (N, C, H, W) as one transform varies.

    ``kind``: "scale" | "shift" | "rotate" | "resolution" (see `transform_images`); ``values`` default to
    `default_values` (``grid`` x ``grid`` shifts). The reference y of each image is the model's prediction on the
    untouched image; ``labels`` (optional) give the accuracy too.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if len(handle.input_shape) != 3:
        raise ValueError(f"image sweeps need image inputs (C, H, W), but {handle.name} takes {handle.input_shape}")
    if kind not in IMAGE_TRANSFORMS:
        raise ValueError(f"expected a transform among {IMAGE_TRANSFORMS}, got {kind!r}")
    x = handle.check_inputs(images.detach() if isinstance(images, torch.Tensor) else images, check_range=True)
    if len(x) == 0:
        raise ValueError("expected at least one image, got an empty batch")
    vals = _values(kind, values, grid)
    reference = handle.predict(x)
    lab = _labels(labels, len(x))
    measured = _evaluate(
        handle,
        lambda v: transform_images(x, kind, vals[v] if vals.ndim == 2 else float(vals[v]), fill=fill),
        len(vals),
        reference,
        lab,
        progress,
        cancel,
        f"{kind} sweep",
    )
    grid_shape = (grid, grid) if kind == "shift" and values is None else ()
    return _sweep_result(kind, vals, measured, reference, lab, "prediction", grid_shape)


def is_shapes_model(handle: ModelHandle) -> bool:
    """True when the model takes square RGB images (>= 8 px) and has one output per shape class."""
    shape = handle.input_shape
    return (
        len(shape) == 3
        and shape[0] == 3
        and shape[1] == shape[2]
        and shape[1] >= 8
        and handle.num_classes == len(SHAPE_NAMES)
    )


def shapes_sweep(
    handle: ModelHandle,
    factor: str,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    n: int = 60,
    seed: int = 0,
    grid: int = 7,
    area: float = 0.2,
    base: Sequence[ShapeFactors] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SweepResult:
    """Accuracy of a shapes model on generated images with one factor set to each value (SI-Score style).

    ``factor``: "area" (fraction of the image, object centred), "position" (object centres (x, y) on a ``grid`` x
    ``grid`` grid over the image, area ``area``), "rotation" (degrees, centred, area ``area``). ``n`` base images
    (balanced shapes, random colours/backgrounds/rotations, seeded) or your own ``base`` factors.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if not is_shapes_model(handle):
        raise ValueError(
            f"expected a model trained on shapes (input 3xSxS, {len(SHAPE_NAMES)} classes: {', '.join(SHAPE_NAMES)}); "
            f"{handle.name} takes {'x'.join(map(str, handle.input_shape))} and has {handle.num_classes} classes"
        )
    if factor not in SHAPE_FACTORS:
        raise ValueError(f"expected a shapes factor among {SHAPE_FACTORS}, got {factor!r}")
    if base is None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"expected n as an int >= 1, got {n!r}")
        base = sample_factors(n, seed=seed, area=area, center=(0.5, 0.5))
    base = list(base)
    if not base or not all(isinstance(f, ShapeFactors) for f in base):
        raise ValueError("expected base as a non-empty sequence of ShapeFactors")
    vals = _values(factor, values, grid)
    size = handle.input_shape[1]
    labels = torch.tensor([f.shape for f in base], dtype=torch.int64)

    def batch(v: int) -> torch.Tensor:
        if factor == "area":
            changed = with_factor(base, area=float(vals[v]), center=(0.5, 0.5))
        elif factor == "position":
            changed = with_factor(base, center=(float(vals[v, 0]), float(vals[v, 1])))
        else:
            changed = with_factor(base, rotation=float(vals[v]), center=(0.5, 0.5))
        return render_shapes(changed, size=size)

    measured = _evaluate(handle, batch, len(vals), labels, labels, progress, cancel, f"{factor} sweep")
    grid_shape = (grid, grid) if factor == "position" and values is None else ()
    return _sweep_result(factor, vals, measured, labels, labels, "label", grid_shape)


def shapes_rotation_sweeps(
    handle: ModelHandle,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    sizes: Sequence[float] = ROTATION_SIZES,
    n: int = 60,
    seed: int = 0,
    base: Sequence[ShapeFactors] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[float, SweepResult]:
    """The rotation sweep of `shapes_sweep` at each object size of ``sizes`` (area fractions, default 0.1, 0.2, 0.4):
    ``{area: SweepResult}`` in the order given.

    Every size uses the same base images (shape, colour, background; ``n`` seeded ones or your ``base``), centred,
    with only their area set to that size, so the curves differ by size alone.
    """
    areas = _sizes(sizes)
    if base is None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"expected n as an int >= 1, got {n!r}")
        base = sample_factors(n, seed=seed, area=areas[0], center=(0.5, 0.5))
    base = list(base)
    out: dict[float, SweepResult] = {}
    for i, a in enumerate(areas):
        out[a] = shapes_sweep(
            handle,
            "rotation",
            values,
            base=with_factor(base, area=a),
            cancel=cancel,
            progress=_part(progress, i, len(areas), f"area {a:g}"),
        )
    return out


def _sizes(sizes: Sequence[float]) -> list[float]:
    try:
        areas = [float(a) for a in sizes]
    except (TypeError, ValueError):
        raise ValueError(f"expected sizes as a sequence of areas in [0.01, 1], got {sizes!r}") from None
    if not areas or any(not (math.isfinite(a) and 0.01 <= a <= 1.0) for a in areas) or len(set(areas)) != len(areas):
        raise ValueError(f"expected sizes as distinct areas in [0.01, 1], got {list(sizes)}")
    return areas


def _part(progress: Progress | None, i: int, count: int, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda f, text: progress((i + f) / count, f"{label}: {text}")


def _values(kind: str, values: Sequence[float] | np.ndarray | None, grid: int) -> np.ndarray:
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"expected grid as an int >= 2, got {grid!r}")
    if values is None:
        return default_values(kind, grid=grid).astype(np.float64)
    vals = np.asarray(values, dtype=np.float64)
    two_d = kind in ("shift", "position")
    if (two_d and (vals.ndim != 2 or vals.shape[1] != 2)) or (not two_d and vals.ndim != 1) or len(vals) == 0:
        want = "(V, 2) (x, y) pairs" if two_d else "a non-empty 1-D sequence of numbers"
        raise ValueError(f"expected {kind} values as {want}, got shape {vals.shape}")
    if not np.isfinite(vals).all():
        raise ValueError(f"expected finite {kind} values, got {vals.tolist()}")
    if kind in ("scale", "resolution") and (vals <= 0).any():
        raise ValueError(f"expected positive {kind} values, got {vals.tolist()}")
    if kind == "area" and ((vals < 0.01) | (vals > 1.0)).any():
        raise ValueError(f"expected areas in [0.01, 1], got {vals.tolist()}")
    return vals


def _labels(labels: torch.Tensor | None, n: int) -> torch.Tensor:
    if labels is None:
        return torch.full((n,), -1, dtype=torch.int64)
    lab = torch.as_tensor(labels).to(torch.int64).reshape(-1)
    if len(lab) != n:
        raise ValueError(f"expected one label per image ({n}), got {len(lab)}")
    return lab


# `image_sweep` through the disk cache (``cache=`` picks a `DiskCache`, False bypasses it): the function itself
# wrapped, so the two signatures cannot drift apart.
cached_image_sweep = memoize(name="geometry.inspection.robustness.image_sweep")(image_sweep)


@memoize(name="geometry.inspection.robustness.shapes_sweep")
def cached_shapes_sweep(
    handle: ModelHandle,
    factor: str,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    n: int = 60,
    seed: int = 0,
    grid: int = 7,
    area: float = 0.2,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SweepResult:
    """`shapes_sweep` (generated base images) through the disk cache (``cache=`` as in `cached_image_sweep`)."""
    return shapes_sweep(handle, factor, values, n=n, seed=seed, grid=grid, area=area, progress=progress, cancel=cancel)


def cached_shapes_rotation_sweeps(
    handle: ModelHandle,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    sizes: Sequence[float] = ROTATION_SIZES,
    n: int = 60,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
) -> dict[float, SweepResult]:
    """`shapes_rotation_sweeps` (generated base images) through the disk cache: one `cached_shapes_sweep` entry per
    size (the same base images as `shapes_rotation_sweeps`, since only the seeded area differs)."""
    areas = _sizes(sizes)
    return {
        a: cached_shapes_sweep(
            handle,
            "rotation",
            values,
            n=n,
            seed=seed,
            area=a,
            cancel=cancel,
            cache=cache,
            progress=_part(progress, i, len(areas), f"area {a:g}"),
        )
        for i, a in enumerate(areas)
    }

"""Statistics of the class regions on a slice: area shares, fragmentation, boundary distance, IoU.

All functions take label maps ``(nb, na)`` of class indices (a `SliceResult`'s ``labels``); an
optional boolean ``mask`` of the same shape restricts them to some grid points (e.g. ``valid``:
inputs inside [0, 1]). Distances are in the slice's L2 pixel units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from geometry.slices.evaluate import SliceResult

__all__ = [
    "RegionIoU",
    "SliceStats",
    "area_shares",
    "boundary_distance",
    "region_components",
    "region_iou",
    "slice_statistics",
]


def _labels(labels: Any, what: str = "labels") -> np.ndarray:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array (nb, na) of class indices, got {type(labels).__name__}")
    if labels.ndim != 2 or min(labels.shape) < 1:
        raise ValueError(f"{what}: expected a 2D label map (nb, na), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{what}: expected integer class indices, got dtype {labels.dtype}")
    return labels


def _classes(num_classes: Any, labels: np.ndarray) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels: expected class indices in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return int(num_classes)


def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != bool:
        raise TypeError(f"mask: expected a boolean numpy array, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != shape:
        raise ValueError(f"mask: expected shape {shape} like the labels, got {mask.shape}")
    return mask


def area_shares(labels: np.ndarray, num_classes: int, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Share ``(K,)`` float64 of the (masked) grid points predicted as each class; sums to 1 (0s if empty)."""
    labels = _labels(labels)
    k = _classes(num_classes, labels)
    m = _mask(mask, labels.shape)
    values = labels[m] if m is not None else labels.ravel()
    counts = np.bincount(values.astype(np.int64), minlength=k).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def region_components(
    labels: np.ndarray, num_classes: int, *, connectivity: int = 4, mask: np.ndarray | None = None
) -> np.ndarray:
    """Number of connected regions ``(K,)`` int64 of each class on the slice (0 where absent).

    ``connectivity`` 4 (edge neighbours) or 8 (also diagonal). More than one region of a class
    on a slice means the class is fragmented there (at least within this view).
    """
    labels = _labels(labels)
    k = _classes(num_classes, labels)
    m = _mask(mask, labels.shape)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity: expected 4 or 8, got {connectivity!r}")
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    out = np.zeros(k, dtype=np.int64)
    for c in np.unique(labels if m is None else labels[m]):
        region = labels == c
        if m is not None:
            region &= m
        out[int(c)] = ndimage.label(region, structure=structure)[1]
    return out


def boundary_distance(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    point: tuple[float, float] = (0.0, 0.0),
    *,
    mask: np.ndarray | None = None,
) -> tuple[float, tuple[float, float] | None]:
    """Distance from ``point`` (plane coordinates) to the nearest label change on the grid, and where.

    Boundary locations are the midpoints between neighbouring grid points of different labels, so the
    answer is exact to half a grid cell. With ``mask``, only changes between two neighbours that are both
    in the mask count (e.g. ``valid``: boundaries between inputs inside [0, 1]). Returns ``(inf, None)``
    when there is no such change in view.
    """
    labels = _labels(labels)
    m = _mask(mask, labels.shape)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != (labels.shape[1],) or b.shape != (labels.shape[0],):
        raise ValueError(
            f"a, b: expected coordinates of shapes ({labels.shape[1]},) and ({labels.shape[0]},), "
            f"got {a.shape} and {b.shape}"
        )
    try:
        pa, pb = (float(p) for p in point)
    except (TypeError, ValueError):
        raise ValueError(f"point: expected plane coordinates (a, b), got {point!r}") from None
    best, where = np.inf, None
    horizontal = labels[:, 1:] != labels[:, :-1]  # neighbours along a
    vertical = labels[1:, :] != labels[:-1, :]  # neighbours along b
    if m is not None:
        horizontal &= m[:, 1:] & m[:, :-1]
        vertical &= m[1:, :] & m[:-1, :]
    rows, cols = np.nonzero(horizontal)
    if len(rows):
        xs, ys = 0.5 * (a[cols] + a[cols + 1]), b[rows]
        d = np.hypot(xs - pa, ys - pb)
        i = int(d.argmin())
        best, where = float(d[i]), (float(xs[i]), float(ys[i]))
    rows, cols = np.nonzero(vertical)
    if len(rows):
        xs, ys = a[cols], 0.5 * (b[rows] + b[rows + 1])
        d = np.hypot(xs - pa, ys - pb)
        i = int(d.argmin())
        if d[i] < best:
            best, where = float(d[i]), (float(xs[i]), float(ys[i]))
    return best, where


@dataclass(frozen=True)
class RegionIoU:
    """Agreement of two region maps on the same grid."""

    per_class: np.ndarray  # (K,) float64: |A=c and B=c| / |A=c or B=c|; NaN where neither map has class c
    mean_iou: float  # mean of per_class over the classes present in either map
    agreement: float  # share of grid points with the same label in both maps


def region_iou(
    labels1: np.ndarray, labels2: np.ndarray, num_classes: int, *, mask: np.ndarray | None = None
) -> RegionIoU:
    """IoU per class of two label maps of the same plane and grid (e.g. two models), and their mean."""
    l1, l2 = _labels(labels1, "labels1"), _labels(labels2, "labels2")
    if l1.shape != l2.shape:
        raise ValueError(f"expected two label maps of the same shape, got {l1.shape} and {l2.shape}")
    k = _classes(num_classes, l1)
    _classes(k, l2)
    m = _mask(mask, l1.shape)
    x, y = (l1[m], l2[m]) if m is not None else (l1.ravel(), l2.ravel())
    x, y = x.astype(np.int64), y.astype(np.int64)
    inter = np.bincount(x[x == y], minlength=k).astype(np.float64)
    union = np.bincount(x, minlength=k) + np.bincount(y, minlength=k) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    present = union > 0
    mean = float(per[present].mean()) if present.any() else float("nan")
    agree = float((x == y).mean()) if len(x) else float("nan")
    return RegionIoU(per_class=per, mean_iou=mean, agreement=agree)


@dataclass(frozen=True)
class SliceStats:
    """Region statistics of one slice."""

    area_share: np.ndarray  # (K,) float64: share of grid points per class (sums to 1)
    components: np.ndarray  # (K,) int64: connected regions per class (0 where absent)
    point: tuple[float, float]  # (a, b) the statistics refer to (default x0 = (0, 0))
    point_label: int  # predicted class at the grid point nearest to `point`
    boundary_distance: float  # L2 pixel units from `point` to the nearest label change (between valid inputs
    #   when valid_only); inf if none in view
    nearest_boundary: tuple[float, float] | None  # (a, b) of that boundary point, None if none in view
    connectivity: int  # 4 or 8
    valid_only: bool  # True: every statistic is computed over inputs inside the input range only

    @property
    def fragmented(self) -> np.ndarray:
        """Class indices with more than one region on the slice."""
        return np.flatnonzero(self.components > 1)


def slice_statistics(
    result: SliceResult,
    *,
    point: tuple[float, float] = (0.0, 0.0),
    connectivity: int = 4,
    valid_only: bool = False,
) -> SliceStats:
    """Area share and fragmentation per class, and the distance from ``point`` to the nearest boundary.

    ``valid_only``: every statistic (shares, components, boundary distance) counts only grid points whose
    input lies inside the model's input range (``result.valid``).
    """
    if not isinstance(result, SliceResult):
        raise TypeError(f"result: expected a SliceResult, got {type(result).__name__}")
    if not isinstance(valid_only, (bool, np.bool_)):
        raise TypeError(f"valid_only: expected a bool, got {type(valid_only).__name__}")
    mask = result.valid if valid_only else None
    shares = area_shares(result.labels, result.num_classes, mask=mask)
    comps = region_components(result.labels, result.num_classes, connectivity=connectivity, mask=mask)
    dist, where = boundary_distance(result.labels, result.a, result.b, point, mask=mask)
    pa, pb = (float(p) for p in point)
    return SliceStats(
        area_share=shares,
        components=comps,
        point=(pa, pb),
        point_label=result.label_at(pa, pb),
        boundary_distance=dist,
        nearest_boundary=where,
        connectivity=connectivity,
        valid_only=bool(valid_only),
    )

"""Evaluate a classifier on a 2D grid of a plane through input space: dense, or adaptive (quadtree).

The grid has ``na`` columns along u (coordinate a) and ``nb`` rows along v (coordinate b), spaced
evenly over ``extent = (a_min, a_max, b_min, b_max)`` in L2 pixel units; arrays are indexed
``[row, column] = [b, a]`` (the layout of a plotly heatmap). Grid inputs ``origin + a u + b v`` are
built on the device batch by batch, so a 1024 x 1024 slice never holds more than one batch of images.

Adaptive refinement evaluates a coarse grid, then repeatedly splits only the cells whose four corners
disagree on the label (and, with a ``target_pair`` (i, j), on the sign of f_i - f_j, so the pair's line
is evaluated too where the pair is not the top two), plus a guard band of neighbouring cells (so thin
regions next to a boundary are not missed). A cell that is not split gets its corners' label, and its
top-1 probability and margins are interpolated bilinearly from the corners: only the points marked in
``evaluated`` were run through the model, the others are interpolated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from geometry.models.handle import ModelHandle
from geometry.runtime.budget import check_budget
from geometry.runtime.compute import CancelToken, Progress, scaled_progress
from geometry.runtime.memo import memoize
from geometry.runtime.options import KeywordOptions, options_with
from geometry.runtime.validate import check_int
from geometry.slices.grid import GridEvaluator, default_batch_size
from geometry.slices.options import (
    MAX_RESOLUTION,
    SliceOptions,
    normalize_extent,
    normalize_resolution,
    normalize_target_pair,
)
from geometry.slices.planes import Plane

__all__ = [
    "MAX_RESOLUTION",
    "SLICE_NOTES",
    "SliceOptions",
    "SliceResult",
    "cached_slice",
    "default_batch_size",
    "evaluate_slice",
    "normalize_extent",
    "normalize_resolution",
]

SLICE_NOTES = (
    "Arrays are [row = b index, column = a index]; a, b are plane coordinates in L2 pixel units "
    "(input = origin + a u + b v). labels, probability (top-1 softmax), margin (top-1 minus top-2 logit) and "
    "pair_margin (f_i - f_j for target_pair) come from the model where `evaluated` is True. Elsewhere (adaptive "
    "slices) they are not model outputs: labels are the common label of the surrounding cell's evaluated corners, "
    "probability and margins are bilinear interpolations between them. `valid`: every pixel of the input is "
    "inside the model's input range."
)


@dataclass(frozen=True)
class SliceResult:
    """A classifier evaluated on a grid of a plane; arrays are ``[row = b index, column = a index]``."""

    a: np.ndarray  # (na,) float64: coordinate along u of each column, L2 pixel units
    b: np.ndarray  # (nb,) float64: coordinate along v of each row, L2 pixel units
    labels: np.ndarray  # (nb, na) int16 (int32 beyond 32767 classes): predicted class
    probability: np.ndarray  # (nb, na) float32 in [0, 1]: top-1 softmax probability
    margin: np.ndarray  # (nb, na) float32 >= 0: top-1 minus top-2 logit
    pair_margin: np.ndarray | None  # (nb, na) float32: f_i - f_j for target_pair (i, j); None without a pair
    target_pair: tuple[int, int] | None  # (i, j) class indices of pair_margin
    valid: np.ndarray  # (nb, na) bool: every pixel of the grid input lies in the model's input range
    evaluated: np.ndarray  # (nb, na) bool: the model was run here (all True for dense slices); elsewhere the
    #   label is the cell corners' common label and probability / margins are bilinear interpolations
    evaluations: int  # number of model evaluations spent (= evaluated.sum())
    adaptive: bool  # True: quadtree refinement; False: dense
    num_classes: int  # K
    extent: tuple[float, float, float, float]  # (a_min, a_max, b_min, b_max), L2 pixel units
    seconds: float  # wall time of the computation (not of a cache hit)

    @property
    def shape(self) -> tuple[int, int]:
        """(nb, na): rows, columns."""
        return tuple(self.labels.shape)  # type: ignore[return-value]

    @property
    def cell(self) -> tuple[float, float]:
        """Grid spacing (da, db) in L2 pixel units."""
        da = (self.a[-1] - self.a[0]) / max(len(self.a) - 1, 1)
        db = (self.b[-1] - self.b[0]) / max(len(self.b) - 1, 1)
        return float(da), float(db)

    def index_of(self, a: float, b: float) -> tuple[int, int]:
        """(row, column) of the grid point nearest to plane coordinates (a, b) (clipped to the grid)."""
        da, db = self.cell
        col = int(np.clip(round((a - self.a[0]) / da) if da > 0 else 0, 0, len(self.a) - 1))
        row = int(np.clip(round((b - self.b[0]) / db) if db > 0 else 0, 0, len(self.b) - 1))
        return row, col

    def label_at(self, a: float, b: float) -> int:
        """Predicted class at the grid point nearest to (a, b)."""
        return int(self.labels[self.index_of(a, b)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as a numpy array (for an .npz download)."""
        out = {
            "a": self.a,
            "b": self.b,
            "labels": self.labels,
            "probability": self.probability,
            "margin": self.margin,
            "valid": self.valid,
            "evaluated": self.evaluated,
            "evaluations": np.array(self.evaluations),
            "adaptive": np.array(self.adaptive),
            "num_classes": np.array(self.num_classes),
            "extent": np.array(self.extent, dtype=np.float64),
            "notes": np.array(SLICE_NOTES),
        }
        if self.pair_margin is not None and self.target_pair is not None:
            out["pair_margin"] = self.pair_margin
            out["target_pair"] = np.array(self.target_pair, dtype=np.int64)
        return out


def _valid_mask(plane: Plane, a: np.ndarray, b: np.ndarray, input_range: tuple[float, float] | None) -> np.ndarray:
    """Exact mask of grid points whose every pixel is in ``input_range`` (per row, an interval in a)."""
    nb, na = len(b), len(a)
    if input_range is None:
        return np.ones((nb, na), dtype=bool)
    lo, hi = float(input_range[0]) - 1e-6, float(input_range[1]) + 1e-6
    o = plane.origin.double().flatten().numpy()
    u = plane.u.double().flatten().numpy()
    v = plane.v.double().flatten().numpy()
    pos, neg, zero = u > 0, u < 0, u == 0
    a_lo = np.full(nb, -np.inf)
    a_hi = np.full(nb, np.inf)
    chunk = max(1, 2**22 // max(1, len(o)))
    for s in range(0, nb, chunk):
        c = o[None, :] + b[s : s + chunk, None] * v[None, :]  # (R, D): pixel values at a = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            low = np.where(pos, (lo - c) / np.where(pos, u, 1), np.where(neg, (hi - c) / np.where(neg, u, 1), -np.inf))
            high = np.where(pos, (hi - c) / np.where(pos, u, 1), np.where(neg, (lo - c) / np.where(neg, u, 1), np.inf))
        a_lo[s : s + chunk] = low.max(axis=1)
        a_hi[s : s + chunk] = high.min(axis=1)
        if zero.any():
            cz = c[:, zero]
            bad = ((cz < lo) | (cz > hi)).any(axis=1)
            a_lo[s : s + chunk][bad] = np.inf
    return (a[None, :] >= a_lo[:, None]) & (a[None, :] <= a_hi[:, None])


def _breakpoints(n: int, step: int) -> np.ndarray:
    pts = np.arange(0, n, step)
    return pts if pts[-1] == n - 1 else np.append(pts, n - 1)


def _refine_breakpoints(bp: np.ndarray) -> np.ndarray:
    gaps = np.diff(bp)
    mids = (bp[:-1] + bp[1:]) // 2
    return np.union1d(bp, mids[gaps > 1])


def _coarse_step(n: int, coarse: int) -> int:
    cells = (n - 1) / coarse
    return 2 ** int(math.floor(math.log2(cells))) if cells >= 2 else 1


def _adaptive(ev: GridEvaluator, na: int, nb: int, coarse: int, guard: int, progress: Progress | None) -> None:
    step = _coarse_step(max(na, nb), coarse)
    levels = max(1, int(math.log2(step)) + 1)
    bx, by = _breakpoints(na, step), _breakpoints(nb, step)
    rr, cc = np.meshgrid(by, bx, indexing="ij")
    ev.run(rr.ravel(), cc.ravel(), scaled_progress(progress, 0.0, 1.0 / levels))
    active = np.ones((len(by) - 1, len(bx) - 1), dtype=bool)
    structure = ndimage.generate_binary_structure(2, 2)  # 8-neighbourhood
    level = 0
    while True:
        final = bool((np.diff(bx) <= 1).all() and (np.diff(by) <= 1).all())
        for _ in range(64):  # expand the guard band until every refined cell has evaluated corners
            _evaluate_corners(ev, active, bx, by, scaled_progress(progress, level / levels, (level + 1) / levels))
            disagree = active & ~_corners_agree(ev.labels[np.ix_(by, bx)])
            if ev.pair_margin is not None:  # also refine where f_i - f_j changes sign: the pair's line
                disagree |= active & ~_corners_agree(ev.pair_margin[np.ix_(by, bx)] > 0)
            if final:
                refine = disagree
                break
            refine = ndimage.binary_dilation(disagree, structure, iterations=guard) if guard else disagree
            new = refine & ~active
            if not new.any():
                break
            active |= new
        _fill(ev, active & ~refine, bx, by, na, nb)
        if final:
            break
        nbx, nby = _refine_breakpoints(bx), _refine_breakpoints(by)
        px = np.searchsorted(bx, nbx[:-1], side="right") - 1
        py = np.searchsorted(by, nby[:-1], side="right") - 1
        active = refine[np.ix_(py, px)]
        bx, by = nbx, nby
        level += 1
        if progress is not None:
            progress(
                min(1.0, level / levels), f"slice: refining level {level} ({int(ev.evaluated.sum()):,} evaluations)"
            )
    if (ev.labels < 0).any():  # pragma: no cover - a bug guard, not a user error
        raise RuntimeError("adaptive slice left grid points without a label")


def _corners_agree(values: np.ndarray) -> np.ndarray:
    """(rows - 1, cols - 1) bool: the four corners of each cell of a grid of values are equal."""
    c = values[:-1, :-1]
    return (c == values[:-1, 1:]) & (c == values[1:, :-1]) & (c == values[1:, 1:])


def _evaluate_corners(
    ev: GridEvaluator, active: np.ndarray, bx: np.ndarray, by: np.ndarray, progress: Progress | None
) -> None:
    need = np.zeros((len(by), len(bx)), dtype=bool)
    need[:-1, :-1] |= active
    need[1:, :-1] |= active
    need[:-1, 1:] |= active
    need[1:, 1:] |= active
    need &= ~ev.evaluated[np.ix_(by, bx)]
    j, i = np.nonzero(need)
    ev.run(by[j], bx[i], progress)


def _fill(ev: GridEvaluator, cells: np.ndarray, bx: np.ndarray, by: np.ndarray, na: int, nb: int) -> None:
    """Give the not-evaluated points of uniform ``cells`` their corners' label and interpolated values."""
    if not cells.any():
        return
    cx = np.clip(np.searchsorted(bx, np.arange(na), side="right") - 1, 0, len(bx) - 2)
    cy = np.clip(np.searchsorted(by, np.arange(nb), side="right") - 1, 0, len(by) - 2)
    # only rows/columns that touch a cell to fill
    rows = np.nonzero(cells.any(axis=1)[cy])[0]
    cols = np.nonzero(cells.any(axis=0)[cx])[0]
    sub = cells[np.ix_(cy[rows], cx[cols])] & ~ev.evaluated[np.ix_(rows, cols)]
    ry, rx = np.nonzero(sub)
    y, x = rows[ry], cols[rx]
    y0, y1 = by[cy[y]], by[cy[y] + 1]
    x0, x1 = bx[cx[x]], bx[cx[x] + 1]
    ty = ((y - y0) / np.maximum(y1 - y0, 1)).astype(np.float32)
    tx = ((x - x0) / np.maximum(x1 - x0, 1)).astype(np.float32)
    ev.labels[y, x] = ev.labels[y0, x0]
    for arr in (ev.probability, ev.margin, ev.pair_margin):
        if arr is None:
            continue
        arr[y, x] = (1 - ty) * ((1 - tx) * arr[y0, x0] + tx * arr[y0, x1]) + ty * (
            (1 - tx) * arr[y1, x0] + tx * arr[y1, x1]
        )


# ---------------------------------------------------------------------------------------------
# public API


def evaluate_slice(
    handle: ModelHandle,
    plane: Plane,
    *,
    options: SliceOptions | None = None,
    extent: float | tuple[float, float] | tuple[float, float, float, float] | None = None,
    resolution: int | tuple[int, int] | None = None,
    adaptive: bool | None = None,
    target_pair: tuple[int, int] | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
    coarse: int | None = None,
    guard: int | None = None,
    batch_size: int | None = None,
) -> SliceResult:
    """Evaluate ``handle`` on a ``resolution`` grid of ``plane`` over ``extent`` (L2 pixel units).

    extent: a half-width e (square [-e, e]^2), half-widths (ea, eb), or (a_min, a_max, b_min, b_max).
    resolution: points per axis n, or (na, nb); 2..4096 each.
    adaptive: quadtree refinement from a coarse grid of about ``coarse`` cells per side, splitting
        cells whose corners disagree on the label (or on the sign of ``pair_margin``) plus ``guard`` rings
        of neighbours (False: every grid point). Values at points not ``evaluated`` are interpolated.
    target_pair: (i, j) to also return ``pair_margin = f_i - f_j``.
    progress(fraction, text) is called as batches finish; ``cancel`` stops between batches (Cancelled).
    batch_size: grid points per model call (default: `default_batch_size`; results do not depend on it).
    ``options``: a `SliceOptions` holding these settings (its defaults are this function's); a keyword that is not
    None overrides the option of the same name. Without ``options``, ``extent`` and ``resolution`` are required.
    Raises TypeError/ValueError on bad arguments, `OverBudgetError` (a ValueError) for a dense slice over the budget of
    `geometry.runtime.budget`, NonFiniteOutputError when the model returns NaN or +-inf.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"handle: expected a geometry.ModelHandle, got {type(handle).__name__}")
    if not isinstance(plane, Plane):
        raise TypeError(f"plane: expected a geometry.slices.planes.Plane, got {type(plane).__name__}")
    if plane.input_shape != tuple(handle.input_shape):
        raise ValueError(
            f"plane: expected a plane in the model's input space {tuple(handle.input_shape)}, "
            f"got one of shape {plane.input_shape}"
        )
    if handle.num_classes < 2:
        raise ValueError(f"handle: expected a classifier with at least 2 classes, got {handle.num_classes}")
    if not isinstance(adaptive, (bool, np.bool_, type(None))):
        raise TypeError(f"adaptive: expected a bool, got {type(adaptive).__name__}")
    if options is None and (extent is None or resolution is None):
        raise TypeError("evaluate_slice: expected extent= and resolution= (or options=SliceOptions(...))")
    fields = {"extent": extent, "resolution": resolution, "adaptive": adaptive, "target_pair": target_pair}
    opts = options_with(SliceOptions, options, {**fields, "coarse": coarse, "guard": guard})
    ext = opts.extent
    na, nb = opts.resolution
    pair = normalize_target_pair(opts.target_pair, handle.num_classes)
    adaptive, coarse, guard = opts.adaptive, opts.coarse, opts.guard
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable (fraction, text) or None, got {type(progress).__name__}")
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel: expected a geometry.runtime.compute.CancelToken or None, got {type(cancel).__name__}")
    if not adaptive:  # a dense slice's size is known: refuse one that would run for an hour (adaptive ones stop early)
        check_budget(
            f"a dense slice of {na} x {nb} points",
            evaluations=na * nb,
            handle=handle,
            lower="lower the resolution or turn on adaptive refinement",
        )

    start = time.perf_counter()
    a = np.linspace(ext[0], ext[1], na)
    b = np.linspace(ext[2], ext[3], nb)
    ev = GridEvaluator(handle, plane, a, b, pair, batch_size, cancel)
    if adaptive:
        _adaptive(ev, na, nb, coarse, guard, progress)
    else:
        ev.run(None, None, progress)
    valid = _valid_mask(plane, a, b, handle.input_range)
    if progress is not None:
        progress(1.0, f"slice: done, {int(ev.evaluated.sum()):,} evaluations")
    return SliceResult(
        a=a,
        b=b,
        labels=ev.labels,
        probability=ev.probability,
        margin=ev.margin,
        pair_margin=ev.pair_margin,
        target_pair=pair,
        valid=valid,
        evaluated=ev.evaluated,
        evaluations=int(ev.evaluated.sum()),
        adaptive=bool(adaptive),
        num_classes=handle.num_classes,
        extent=ext,
        seconds=time.perf_counter() - start,
    )


@memoize(name="geometry.slices.evaluate.evaluate_slice")
def _memoized_slice(
    handle: ModelHandle,
    plane: Plane,
    *,
    options: SliceOptions,
    input_range: tuple[float, float] | None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> SliceResult:
    """`evaluate_slice` as the cache keys it: ``input_range`` is the handle's, part of the key because the `valid`
    mask depends on it and a handle's fingerprint does not."""
    del input_range  # read from the handle; only here for the key
    return evaluate_slice(handle, plane, options=options, progress=progress, cancel=cancel)


def _input_range(handle: ModelHandle, *args: object, **kwargs: object) -> dict[str, object]:
    return {"input_range": getattr(handle, "input_range", None)}


cached_slice = KeywordOptions(
    _memoized_slice,
    SliceOptions,
    extra=_input_range,
    doc="""`evaluate_slice` through the disk cache: ``cached_slice(handle, plane, extent=..., resolution=..., ...)`` or
    ``cached_slice(handle, plane, options=SliceOptions(...))``; ``cache=`` picks a `DiskCache` (False: bypass);
    ``.is_cached(...)`` / ``.cached(...)`` answer without computing.""",
)

"""The options of a slice, in one place.

`SliceOptions` is what `evaluate_slice` is asked to compute: a frozen dataclass, checked and normalised once when it
is made (``extent=2`` becomes ``(-2.0, 2.0, -2.0, 2.0)``, ``resolution=65`` becomes ``(65, 65)``), so equal slices
give equal cache keys (`geometry.runtime.memo` keys dataclasses field by field). Its defaults are THE defaults of
`evaluate_slice` and `cached_slice`.

The keyword form shared by the cached functions (``cached_slice(handle, plane, extent=2)``) is
`geometry.runtime.options.KeywordOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from geometry.runtime.options import set_field
from geometry.runtime.validate import check_int

__all__ = [
    "MAX_RESOLUTION",
    "SliceOptions",
    "normalize_extent",
    "normalize_resolution",
    "normalize_target_pair",
]

MAX_RESOLUTION = 4096  # points per axis

Opts = TypeVar("Opts")
R = TypeVar("R")


def normalize_extent(extent: Any) -> tuple[float, float, float, float]:
    """``e`` -> (-e, e, -e, e); ``(ea, eb)`` -> (-ea, ea, -eb, eb); ``(a_min, a_max, b_min, b_max)`` as is."""
    if isinstance(extent, bool):
        raise TypeError(f"extent: expected a number or a tuple of 2 or 4 numbers, got {extent!r}")
    if isinstance(extent, (int, float, np.integer, np.floating)):
        e = float(extent)
        if not (math.isfinite(e) and e > 0):
            raise ValueError(f"extent: expected a positive finite half-width, got {extent!r}")
        return (-e, e, -e, e)
    if not isinstance(extent, (tuple, list, np.ndarray)):
        raise TypeError(f"extent: expected a number or a tuple of 2 or 4 numbers, got {type(extent).__name__}")
    try:
        vals = [float(v) for v in extent]
    except (TypeError, ValueError):
        raise TypeError(f"extent: expected numbers, got {extent!r}") from None
    if len(vals) == 2:
        if not all(math.isfinite(v) and v > 0 for v in vals):
            raise ValueError(f"extent: expected two positive finite half-widths (a, b), got {extent!r}")
        return (-vals[0], vals[0], -vals[1], vals[1])
    if len(vals) != 4:
        raise ValueError(f"extent: expected 1, 2 or 4 numbers, got {len(vals)}")
    if not all(math.isfinite(v) for v in vals) or not (vals[0] < vals[1] and vals[2] < vals[3]):
        raise ValueError(
            f"extent: expected finite (a_min, a_max, b_min, b_max) with a_min < a_max and b_min < b_max, "
            f"got {tuple(vals)}"
        )
    return (vals[0], vals[1], vals[2], vals[3])


def normalize_resolution(resolution: Any) -> tuple[int, int]:
    """``n`` -> (n, n); ``(na, nb)`` as is: points along a (columns) and b (rows), each in [2, 4096]."""

    def one(r: Any) -> int:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
            raise TypeError(f"resolution: expected an int or a pair of ints, got {r!r}")
        if not 2 <= int(r) <= MAX_RESOLUTION:
            raise ValueError(f"resolution: expected between 2 and {MAX_RESOLUTION} points per axis, got {int(r)}")
        return int(r)

    if isinstance(resolution, (tuple, list)):
        if len(resolution) != 2:
            raise ValueError(f"resolution: expected (na, nb), got {len(resolution)} values")
        return one(resolution[0]), one(resolution[1])
    return one(resolution), one(resolution)


def normalize_target_pair(target_pair: Any, k: int | None = None) -> tuple[int, int] | None:
    """None, or (i, j) as two different int class indices (in [0, k) when the class count ``k`` is given)."""
    if target_pair is None:
        return None
    if not isinstance(target_pair, (tuple, list)) or len(target_pair) != 2:
        raise TypeError(f"target_pair: expected None or a pair of class indices (i, j), got {target_pair!r}")
    out = []
    for c in target_pair:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise TypeError(f"target_pair: expected int class indices, got {c!r}")
        if int(c) < 0 or (k is not None and int(c) >= k):
            bound = f"in [0, {k})" if k is not None else ">= 0"
            raise ValueError(f"target_pair: expected class indices {bound}, got {int(c)}")
        out.append(int(c))
    if out[0] == out[1]:
        raise ValueError(f"target_pair: expected two different classes, got {out[0]} twice")
    return out[0], out[1]


@dataclass(frozen=True)
class SliceOptions:
    """What `evaluate_slice` is asked to compute (see its docstring for the algorithm).

    ``extent``: a half-width e, half-widths (ea, eb) or (a_min, a_max, b_min, b_max) in L2 pixel units (stored as
    the 4-tuple). ``resolution``: points per axis n or (na, nb), 2..4096 each (stored as the pair).
    ``adaptive``: quadtree refinement (False: every grid point). ``target_pair``: (i, j) to also return
    ``f_i - f_j``. ``coarse``: cells per side of the first adaptive grid. ``guard``: rings of neighbours refined
    around a disagreeing cell.
    """

    extent: tuple[float, float, float, float]
    resolution: tuple[int, int]
    adaptive: bool = True
    target_pair: tuple[int, int] | None = None
    coarse: int = 32
    guard: int = 1

    def __post_init__(self) -> None:
        set_field(self, "extent", normalize_extent(self.extent))
        set_field(self, "resolution", normalize_resolution(self.resolution))
        if not isinstance(self.adaptive, (bool, np.bool_)):
            raise TypeError(f"expected adaptive to be True or False, got {self.adaptive!r}")
        set_field(self, "adaptive", bool(self.adaptive))
        set_field(self, "target_pair", normalize_target_pair(self.target_pair))
        set_field(self, "coarse", check_int("coarse", self.coarse, 1))
        set_field(self, "guard", check_int("guard", self.guard, 0))

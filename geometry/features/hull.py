"""Is a test sample's feature vector inside the convex hull of the training features? How far outside?

Inside the hull the model interpolates between training examples; outside it extrapolates (docs/SCIENCE.md §11).
In high dimensions almost every test point is outside (the hull of N points in D > log N dimensions is
"thin"), which is the point of showing it.

Two exact tools, used together:
- the **distance** to the hull is a quadratic program, ``min ||T^T lam - z||`` over the simplex; solved by
  Wolfe's minimum-norm-point algorithm (finite, active-set, float64). A positive distance comes with a
  certificate: the plane through the nearest point, normal to ``z - x*``, separates z from every training
  point, and that is checked explicitly.
- **membership** of points whose distance is (numerically) zero is decided by a linear program:
  ``T^T lam = z, 1^T lam = 1, lam >= 0`` feasible (scipy.optimize.linprog, HiGHS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress
from geometry.runtime.memo import memoize

__all__ = ["HullDistance", "HullReport", "hull_distance", "hull_membership_lp", "hull_report", "min_norm_point"]


def _matrix(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected {what} as an (N, D) array with N >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return a


def min_norm_point(
    points: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> tuple[np.ndarray, np.ndarray, int]:
    """Wolfe's algorithm: the point of smallest norm in the convex hull of ``points`` (M, D).

    Returns (x (D,), weights (M,) on the simplex with x = weights @ points, iterations). ``tol`` is relative
    to the largest squared norm of the points.
    """
    p = np.asarray(points, dtype=np.float64)
    m = len(p)
    sq = np.einsum("ij,ij->i", p, p)
    scale = max(float(sq.max()), 1e-300)
    s = [int(np.argmin(sq))]
    lam = np.array([1.0])
    x = p[s[0]].copy()
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iterations are reported
        dots = p @ x
        j = int(np.argmin(dots))
        xx = float(x @ x)
        if xx - dots[j] <= tol * scale or j in s:
            break
        s.append(j)
        lam = np.append(lam, 0.0)
        while True:  # minor cycle: the affine minimiser of the corral, kept inside the simplex
            ps = p[s]
            g = ps @ ps.T
            k = len(s)
            kkt = np.zeros((k + 1, k + 1))
            kkt[:k, :k] = g
            kkt[:k, k] = 1.0
            kkt[k, :k] = 1.0
            rhs = np.zeros(k + 1)
            rhs[k] = 1.0
            alpha = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]
            if (alpha > 1e-14).all():
                lam = alpha
                break
            mask = (alpha <= 1e-14) & (lam - alpha > 0)
            theta = float(np.min(lam[mask] / (lam[mask] - alpha[mask]))) if mask.any() else 0.0
            theta = min(max(theta, 0.0), 1.0)
            lam = theta * alpha + (1.0 - theta) * lam
            keep = lam > 1e-14
            if keep.all():  # numerical corner: drop the smallest weight to make progress
                keep[int(np.argmin(lam))] = False
            s = [i for i, kk in zip(s, keep, strict=True) if kk]
            lam = lam[keep]
            lam = lam / lam.sum()
        x = lam @ p[s]
    weights = np.zeros(m)
    weights[s] = lam
    return x, weights, it


@dataclass(frozen=True)
class HullDistance:
    """Distance of one point to the convex hull of a point set."""

    distance: float  # L2 distance to the hull, feature units (0 inside)
    nearest: np.ndarray  # (D,) the nearest point of the hull
    certified_outside: bool  # True: the plane normal to z - nearest separates z from every hull point
    iterations: int


def hull_distance(hull_points: Any, z: Any, *, tol: float = 1e-12) -> HullDistance:
    """Distance from ``z`` (D,) to the convex hull of ``hull_points`` (M, D), by Wolfe's algorithm."""
    t = _matrix(hull_points, "hull points")
    zz = np.asarray(z, dtype=np.float64).ravel()
    if zz.shape != (t.shape[1],):
        raise ValueError(f"expected a point of dimension {t.shape[1]}, got shape {np.shape(z)}")
    x, _, it = min_norm_point(t - zz, tol=tol)
    nearest = x + zz
    d = float(np.linalg.norm(x))
    n = zz - nearest
    # certificate: every hull point lies on the far side of the plane through `nearest` normal to n
    certified = d > 0 and float((t @ n).max()) < float(zz @ n) - 1e-9 * max(1.0, float(np.abs(zz @ n)))
    return HullDistance(distance=d, nearest=nearest, certified_outside=bool(certified), iterations=it)


def hull_membership_lp(hull_points: Any, z: Any) -> bool:
    """True when ``z`` (D,) is a convex combination of the rows of ``hull_points`` (M, D): an LP feasibility test."""
    from scipy.optimize import linprog

    t = _matrix(hull_points, "hull points")
    zz = np.asarray(z, dtype=np.float64).ravel()
    if zz.shape != (t.shape[1],):
        raise ValueError(f"expected a point of dimension {t.shape[1]}, got shape {np.shape(z)}")
    lo, hi = t.min(axis=0), t.max(axis=0)
    span = np.maximum(hi - lo, 1e-12)
    if ((zz < lo - 1e-9 * span) | (zz > hi + 1e-9 * span)).any():
        return False  # outside the bounding box
    a_eq = np.vstack([t.T, np.ones(len(t))])
    res = linprog(np.zeros(len(t)), A_eq=a_eq, b_eq=np.append(zz, 1.0), bounds=(0, None), method="highs")
    return bool(res.status == 0)


def _inside(t: np.ndarray, z: np.ndarray, scale: float) -> tuple[bool, float]:
    """(inside, distance) using the certified QP first and the LP for (numerically) zero distances."""
    hd = hull_distance(t, z)
    if hd.certified_outside and hd.distance > 1e-7 * scale:
        return False, hd.distance
    inside = hull_membership_lp(t, z)
    return inside, 0.0 if inside else hd.distance


@dataclass(frozen=True, eq=False)
class HullReport:
    """Convex-hull membership of test features in the training features, overall and per class."""

    inside: np.ndarray  # (N,) bool: inside the hull of all training features
    distance: np.ndarray  # (N,) float64 distance to that hull, feature units (0 inside)
    inside_class: np.ndarray  # (N,) bool: inside the hull of the training features of the sample's class
    distance_class: np.ndarray  # (N,) float64 distance to that class hull
    classes: np.ndarray  # (N,) int64 the class used per sample (its label, or its prediction when unlabelled)
    share_outside: float  # share of test samples outside the overall hull (the model extrapolates there)
    share_outside_class: float  # share outside their own class's hull
    per_class_outside: np.ndarray  # (K,) float64 share outside their class hull, per class (NaN: no samples)
    per_class_count: np.ndarray  # (K,) int64 test samples per class
    train_count: np.ndarray  # (K,) int64 training samples per class
    scale: float  # median distance of the training features to their mean (for relative distances)
    seconds: float


def hull_report(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_classes: Any,
    *,
    num_classes: int | None = None,
    fingerprint: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> HullReport | None:
    """Hull tests of each test feature vector against all training features and those of its class.

    ``test_classes`` (N,): the class whose hull a sample is tested against (its true label; pass the
    prediction for unlabelled samples). With ``fingerprint`` (naming both feature sets) the result is cached;
    ``cached_only=True`` then returns the cached report or None, computing nothing.
    """
    t = _matrix(train_features, "training features")
    z = _matrix(test_features, "test features")
    yt = np.asarray(train_labels, dtype=np.int64).ravel()
    yc = np.asarray(test_classes, dtype=np.int64).ravel()
    if t.shape[1] != z.shape[1]:
        raise ValueError(f"expected test features of dimension {t.shape[1]}, got {z.shape[1]}")
    if yt.shape != (len(t),) or yc.shape != (len(z),):
        raise ValueError(f"expected {len(t)} training labels and {len(z)} test classes, got {yt.shape} and {yc.shape}")
    k = int(num_classes if num_classes is not None else max(int(yt.max()), int(yc.max())) + 1)
    if yc.min() < 0 or yc.max() >= k or yt.min() < 0 or yt.max() >= k:
        raise ValueError(f"expected classes in [0, {k}), got test {yc.min()}..{yc.max()}, train {yt.min()}..{yt.max()}")

    call = dict(features=fingerprint, k=k, n=len(z), m=len(t), cache=cache)
    if fingerprint is None:
        if cached_only:
            raise ValueError("expected a fingerprint with cached_only=True (nothing can be looked up without one)")
        return _hull_tests(t, yt, z, yc, k, progress, cancel)
    if cached_only:
        return _cached_hull_tests.cached(t, yt, z, yc, **call)
    return _cached_hull_tests(t, yt, z, yc, progress=progress, cancel=cancel, **call)


def _hull_tests(
    t: np.ndarray,
    yt: np.ndarray,
    z: np.ndarray,
    yc: np.ndarray,
    k: int,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> HullReport:
    """The hull tests of `hull_report` on checked arrays: training features t (M, D) with labels yt (M,), test
    features z (N, D) with classes yc (N,), K = k classes."""
    t0 = time.perf_counter()
    scale = float(np.median(np.linalg.norm(t - t.mean(axis=0), axis=1))) or 1.0
    n = len(z)
    inside, dist = np.zeros(n, bool), np.zeros(n)
    inside_c, dist_c = np.zeros(n, bool), np.full(n, np.nan)
    for i in range(n):
        if cancel is not None:
            cancel.raise_if_cancelled("hull test")
        inside[i], dist[i] = _inside(t, z[i], scale)
        members = t[yt == yc[i]]
        if len(members):
            inside_c[i], dist_c[i] = _inside(members, z[i], scale)
        if progress is not None and (i % 5 == 4 or i == n - 1):
            progress((i + 1) / n, f"hull tests: {i + 1}/{n} samples")
    count = np.bincount(yc, minlength=k)
    outside_c = np.bincount(yc, weights=(~inside_c).astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(count > 0, outside_c / np.maximum(count, 1), np.nan)
    return HullReport(
        inside=inside,
        distance=dist,
        inside_class=inside_c,
        distance_class=dist_c,
        classes=yc,
        share_outside=float((~inside).mean()),
        share_outside_class=float((~inside_c).mean()),
        per_class_outside=per_class,
        per_class_count=count.astype(np.int64),
        train_count=np.bincount(yt, minlength=k).astype(np.int64),
        scale=scale,
        seconds=time.perf_counter() - t0,
    )


@memoize(name="geometry.features.hull.hull_report", ignore=("t", "yt", "z", "yc"))
def _cached_hull_tests(
    t: np.ndarray,
    yt: np.ndarray,
    z: np.ndarray,
    yc: np.ndarray,
    *,
    features: str,
    k: int,
    n: int,
    m: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> HullReport:
    """`_hull_tests` keyed by the caller's ``features`` fingerprint (naming both feature sets) and the sizes, not
    by hashing the arrays."""
    return _hull_tests(t, yt, z, yc, k, progress, cancel)

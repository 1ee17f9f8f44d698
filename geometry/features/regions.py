"""Class regions in feature space: exact maps on affine planes, and painted backgrounds behind 2D embeddings.

Exact. After the last hidden layer the classifier is affine, ``logits = W z + b``, so on any affine plane
``z = o + a u + b v`` every logit is an affine function of (a, b): the class regions on the plane are convex
polygons, computed here exactly by clipping the view rectangle with the half-planes
``(l_k - l_j)(a, b) >= 0`` (docs/SCIENCE.md §11), and the label of every grid point is the head's own argmax there.

Approximate. A 2D embedding (UMAP, t-SNE) has no exact inverse, so to paint regions behind it we map each
grid point back to feature space by Gaussian-weighted k nearest neighbours ("knn") or by a local thin-plate
RBF interpolant ("rbf") of the samples' features, then apply the head. Both are linear in the features
and reproduce constants, so ``head(back_map(p)) = back_map of the samples' logits``: painting interpolates
logits, never feature vectors (fast, same answer).

Held out. Agreement at the samples the map was painted from says little: a back-map reproduces its own samples, so
an embedding with random positions scores high that way. The samples are therefore split into seeded folds, and
each sample is also classified by a map painted from the *other* folds only (`fold_assignment`,
`BackMap.heldout`): the held-out agreement is how often that class is the model's prediction, against the chance
level of painting every point with the most common predicted class (no map unrelated to the positions does better
in expectation). A grid point is trusted only when a sample lies near it and most of the nearby samples, weighted
as in the back-map, are predicted as the painted class *and* were classified correctly when held out.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree

from geometry.features.extract import Head
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import Progress
from geometry.runtime.memo import memoize

__all__ = [
    "BackMap",
    "FeaturePlane",
    "FeatureRegionMap",
    "PaintedRegions",
    "exact_region_map",
    "fold_assignment",
    "paint_regions",
    "pca_plane",
    "plane_logit_coefficients",
    "plane_through_features",
]

BackMapMethod = Literal["knn", "rbf"]
RADIUS_FACTOR = 1.5  # default trust radius: this many times the typical distance from a sample to its k-th neighbour
DEFAULT_FOLDS = 5  # held-out folds: each sample is scored by a map painted from the other 80%


def _array(x: Any, what: str, ndim: int) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"expected {what} with {ndim} dimension(s), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return a


# ---------------------------------------------------------------------------------------------
# planes in feature space


@dataclass(frozen=True, eq=False)
class FeaturePlane:
    """The affine plane ``z = origin + a * basis[0] + b * basis[1]`` in feature space."""

    origin: np.ndarray  # (D,) float64, feature units
    basis: np.ndarray  # (2, D) float64, orthonormal rows
    kind: str  # "three points" | "pca"
    anchors: np.ndarray  # (M, 2) float64 plane coordinates of the points that define it ((0, 2) for PCA)

    @property
    def dim(self) -> int:
        return int(self.origin.shape[0])

    def coords(self, z: Any) -> np.ndarray:
        """Plane coordinates ``(N, 2)`` of the orthogonal projection of features ``(N, D)``."""
        a = _array(z, "features", 2)
        if a.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (N, {self.dim}), got {a.shape}")
        return (a - self.origin) @ self.basis.T

    def offsets(self, z: Any) -> np.ndarray:
        """Distance ``(N,)`` of each feature vector from the plane (feature units)."""
        a = _array(z, "features", 2)
        return np.linalg.norm(a - self.points(self.coords(a)), axis=1)

    def points(self, ab: Any) -> np.ndarray:
        """Feature vectors ``(N, D)`` at plane coordinates ``(N, 2)``."""
        c = _array(ab, "plane coordinates", 2)
        if c.shape[1] != 2:
            raise ValueError(f"expected plane coordinates of shape (N, 2), got {c.shape}")
        return self.origin + c @ self.basis


def plane_through_features(z0: Any, z1: Any, z2: Any) -> FeaturePlane:
    """The plane through three feature vectors: origin z0, u along z1 - z0, v the rest of z2 - z0 (Gram–Schmidt).

    The anchors are at (0, 0), (|z1 - z0|, 0) and (⟨z2 - z0, u⟩, ⟨z2 - z0, v⟩). Raises ValueError when the
    three are (nearly) collinear.
    """
    p = [_array(z, f"feature vector z{i}", 1) for i, z in enumerate((z0, z1, z2))]
    if not p[0].shape == p[1].shape == p[2].shape or p[0].shape[0] < 2:
        raise ValueError(f"expected three feature vectors of one length D >= 2, got {[q.shape for q in p]}")
    d1, d2 = p[1] - p[0], p[2] - p[0]
    n1 = np.linalg.norm(d1)
    scale = max(n1, np.linalg.norm(d2), 1e-300)
    if n1 <= 1e-9 * max(scale, 1.0):
        raise ValueError("expected three distinct feature vectors, got z1 equal to z0")
    u = d1 / n1
    w = d2 - (d2 @ u) * u
    nw = np.linalg.norm(w)
    if nw <= 1e-6 * scale:
        raise ValueError("expected three feature vectors that span a plane, got three (nearly) collinear ones")
    v = w / nw
    basis = np.stack([u, v])
    anchors = np.array([[0.0, 0.0], [n1, 0.0], [d2 @ u, d2 @ v]])
    return FeaturePlane(origin=p[0], basis=basis, kind="three points", anchors=anchors)


def pca_plane(features: Any) -> FeaturePlane:
    """The plane of the top two principal axes of ``features`` (N, D), through their mean."""
    from geometry.features.embedding import PCAEmbedding

    a = _array(features, "features", 2)
    emb = PCAEmbedding().fit(a)
    return FeaturePlane(
        origin=emb.mean_.astype(np.float64),
        basis=emb.components_.astype(np.float64),
        kind="pca",
        anchors=np.zeros((0, 2)),
    )


def plane_logit_coefficients(head: Head, plane: FeaturePlane) -> tuple[np.ndarray, np.ndarray]:
    """``(c, P)`` with ``logits(a, b) = c + P @ (a, b)`` on the plane: c (K,), P (K, 2), float64, exact."""
    if not isinstance(head, Head):
        raise TypeError(f"expected a geometry.features.extract.Head, got {type(head).__name__}")
    if not isinstance(plane, FeaturePlane):
        raise TypeError(f"expected a FeaturePlane, got {type(plane).__name__}")
    if head.dim != plane.dim:
        raise ValueError(f"expected a plane in the head's {head.dim}-d feature space, got a {plane.dim}-d plane")
    return head.weight @ plane.origin + head.bias, head.weight @ plane.basis.T


# ---------------------------------------------------------------------------------------------
# exact region polygons


def _clip(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Sutherland–Hodgman: the part of a convex polygon (n, 2) where ``normal · x + offset >= 0``."""
    if len(poly) == 0:
        return poly
    s = poly @ normal + offset
    out: list[np.ndarray] = []
    n = len(poly)
    for i in range(n):
        p, q, sp, sq = poly[i], poly[(i + 1) % n], s[i], s[(i + 1) % n]
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append(p + t * (q - p))
    return np.array(out) if len(out) >= 3 else np.zeros((0, 2))


def _polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x @ np.roll(y, -1) - y @ np.roll(x, -1))


def _region_polygons(c: np.ndarray, p: np.ndarray, extent: tuple[float, float, float, float]) -> list[np.ndarray]:
    a0, a1, b0, b1 = extent
    rect = np.array([[a0, b0], [a1, b0], [a1, b1], [a0, b1]], dtype=np.float64)
    polys = []
    for k in range(len(c)):
        poly = rect
        for j in range(len(c)):
            if j != k and len(poly):
                poly = _clip(poly, p[k] - p[j], float(c[k] - c[j]))
        if len(poly) and abs(_polygon_area(poly)) <= 1e-12 * (a1 - a0) * (b1 - b0):
            poly = np.zeros((0, 2))
        polys.append(poly)
    return polys


def _boundary_segments(
    polys: list[np.ndarray], c: np.ndarray, p: np.ndarray, extent: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Edges shared by two regions: (S, 2, 2) segments and (S, 2) class pairs (k < j)."""
    a0, a1, b0, b1 = extent
    tol = 1e-9 * max(a1 - a0, b1 - b0)
    segs, pairs = [], []
    for k, poly in enumerate(polys):
        for i in range(len(poly)):
            s, e = poly[i], poly[(i + 1) % len(poly)]
            if np.linalg.norm(e - s) <= tol:
                continue
            m = 0.5 * (s + e)
            if min(m[0] - a0, a1 - m[0], m[1] - b0, b1 - m[1]) <= tol:
                continue  # on the view rectangle
            diff = p[k] - p  # (K, 2)
            norms = np.linalg.norm(diff, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                dist = np.abs(diff @ m + (c[k] - c)) / norms
            dist[k] = np.inf
            dist[~(norms > 0)] = np.inf
            j = int(np.argmin(dist))
            if k < j:
                segs.append(np.stack([s, e]))
                pairs.append((k, j))
    if not segs:
        return np.zeros((0, 2, 2)), np.zeros((0, 2), dtype=np.int64)
    return np.array(segs), np.array(pairs, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class FeatureRegionMap:
    """The exact class map of the head on a plane in feature space."""

    a: np.ndarray  # (R,) float64 grid coordinates along basis[0], feature units
    b: np.ndarray  # (R,) float64 grid coordinates along basis[1]
    labels: np.ndarray  # (R, R) int16 head's class at (a[j], b[i]) as labels[i, j] (rows = b, as an image)
    margin: np.ndarray  # (R, R) float32 top-1 minus top-2 logit there (0 on a boundary)
    polygons: tuple[np.ndarray, ...]  # K convex polygons (n_k, 2) in (a, b): class k's exact region in the view
    segments: np.ndarray  # (S, 2, 2) the region boundaries in the view, each a segment [start, end] in (a, b)
    segment_classes: np.ndarray  # (S, 2) int64 the two classes on either side of each segment
    extent: tuple[float, float, float, float]  # (a_min, a_max, b_min, b_max)
    anchors: np.ndarray  # (M, 2) plane coordinates of the defining points
    anchor_classes: np.ndarray  # (M,) int64 the head's class at each anchor
    point_coords: np.ndarray  # (P, 2) projections of the `points` passed in (may be (0, 2))
    point_offsets: np.ndarray  # (P,) their distance from the plane (feature units)
    area_share: np.ndarray  # (K,) float64 share of the view each class covers (from the polygons)
    origin: np.ndarray  # (D,) the plane's origin
    basis: np.ndarray  # (2, D) the plane's orthonormal directions
    kind: str  # the plane's kind


def _default_extent(pts: np.ndarray, pad: float) -> tuple[float, float, float, float]:
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = max(float((hi - lo).max()), 1e-6)
    centre = 0.5 * (lo + hi)
    half = 0.5 * span * (1.0 + 2.0 * pad)
    return (float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half))


def exact_region_map(
    head: Head,
    plane: FeaturePlane,
    *,
    extent: tuple[float, float, float, float] | None = None,
    resolution: int = 300,
    points: Any = None,
    pad: float = 0.35,
) -> FeatureRegionMap:
    """The class of every point of a ``resolution`` x ``resolution`` grid on ``plane``, from the head alone.

    ``extent`` (a_min, a_max, b_min, b_max) in feature units; by default a square around the anchors and
    the projected ``points`` (N, D), padded by ``pad`` of its span on each side. The polygons and segments
    are the exact regions and boundaries (not traced from the grid).
    """
    c, p = plane_logit_coefficients(head, plane)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 2 <= resolution <= 4096:
        raise ValueError(f"expected resolution as an int in [2, 4096], got {resolution!r}")
    pc = plane.coords(points) if points is not None else np.zeros((0, 2))
    po = plane.offsets(points) if points is not None else np.zeros(0)
    if extent is None:
        pts = np.concatenate([plane.anchors, pc]) if len(plane.anchors) + len(pc) else np.zeros((1, 2))
        extent = _default_extent(pts, pad)
    else:
        if len(extent) != 4:
            raise ValueError(f"expected extent (a_min, a_max, b_min, b_max), got {extent!r}")
        extent = tuple(float(v) for v in extent)  # type: ignore[assignment]
        if not (extent[0] < extent[1] and extent[2] < extent[3]) or not np.isfinite(extent).all():
            raise ValueError(f"expected extent with a_min < a_max and b_min < b_max, got {extent}")
    a = np.linspace(extent[0], extent[1], resolution)
    b = np.linspace(extent[2], extent[3], resolution)
    logits = c[None, None, :] + b[:, None, None] * p[None, None, :, 1] + a[None, :, None] * p[None, None, :, 0]
    top2 = np.partition(logits, -2, axis=2)[:, :, -2:]
    labels = logits.argmax(axis=2).astype(np.int16)
    polys = _region_polygons(c, p, extent)  # type: ignore[arg-type]
    segs, pairs = _boundary_segments(polys, c, p, extent)  # type: ignore[arg-type]
    total = (extent[1] - extent[0]) * (extent[3] - extent[2])
    anchor_logits = c[None, :] + plane.anchors @ p.T if len(plane.anchors) else np.zeros((0, len(c)))
    return FeatureRegionMap(
        a=a,
        b=b,
        labels=labels,
        margin=(top2[:, :, 1] - top2[:, :, 0]).astype(np.float32),
        polygons=tuple(polys),
        segments=segs,
        segment_classes=pairs,
        extent=extent,  # type: ignore[arg-type]
        anchors=plane.anchors.copy(),
        anchor_classes=anchor_logits.argmax(axis=1).astype(np.int64),
        point_coords=pc,
        point_offsets=po,
        area_share=np.array([abs(_polygon_area(q)) / total for q in polys]),
        origin=plane.origin,
        basis=plane.basis,
        kind=plane.kind,
    )


# ---------------------------------------------------------------------------------------------
# back-map from a 2D embedding to feature space


class BackMap:
    """A map from 2D embedding coordinates back to feature space, fitted on the samples (coords, features).

    ``method="knn"``: Gaussian-weighted mean of the ``k`` nearest samples' values (bandwidth by default half
    the median distance from a sample to its k-th neighbour). ``method="rbf"``: scipy's thin-plate-spline
    RBF interpolant on the ``k`` nearest samples, with degree-1 polynomial and ``smoothing``. Both are linear
    in the values and reproduce constants, so mapping logits equals mapping features then applying the head.
    """

    def __init__(
        self, *, method: BackMapMethod = "knn", k: int = 10, bandwidth: float | None = None, smoothing: float = 1e-3
    ) -> None:
        if method not in ("knn", "rbf"):
            raise ValueError(f"expected method 'knn' or 'rbf', got {method!r}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"expected k as an int >= 1, got {k!r}")
        if bandwidth is not None and not (isinstance(bandwidth, numbers.Real) and bandwidth > 0):
            raise ValueError(f"expected bandwidth > 0 or None, got {bandwidth!r}")
        self.method, self.k, self.bandwidth, self.smoothing = method, int(k), bandwidth, float(smoothing)

    def fit(self, coords: Any, values: Any) -> BackMap:
        """``coords`` (N, 2) embedding positions, ``values`` (N, V) what to map back (features or logits)."""
        xy = _array(coords, "embedding coordinates", 2)
        val = _array(values, "values", 2)
        if xy.shape[1] != 2 or len(xy) != len(val) or len(xy) < 3:
            raise ValueError(f"expected coords (N, 2) and values (N, V) with N >= 3, got {xy.shape} and {val.shape}")
        self.coords_, self.values_ = xy, val
        self.k_ = min(self.k, len(xy) - 1)
        self.tree_ = cKDTree(xy)
        d, _ = self.tree_.query(xy, k=self.k_ + 1)
        self.spacing_ = float(np.median(d[:, -1])) or 1e-12  # typical distance to the k-th neighbour
        self.bandwidth_ = float(self.bandwidth) if self.bandwidth is not None else 0.5 * self.spacing_
        if self.method == "rbf":
            from scipy.interpolate import RBFInterpolator

            nb = max(self.k_, 4)
            self.rbf_ = RBFInterpolator(
                xy,
                val,
                neighbors=min(nb, len(xy)),
                kernel="thin_plate_spline",
                smoothing=self.smoothing * self.spacing_**2,
                degree=1,
            )
        return self

    def neighbours(self, xy: np.ndarray, *, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices ``(M, k)`` of the k nearest samples (without the query sample itself)."""
        if exclude_self:
            d, i = self.tree_.query(xy, k=self.k_ + 1)
            return d[:, 1:], i[:, 1:]
        d, i = self.tree_.query(xy, k=self.k_)
        return d.reshape(len(xy), -1), i.reshape(len(xy), -1)

    def weights(self, d: np.ndarray) -> np.ndarray:
        """Normalised Gaussian weights for neighbour distances ``(M, k)`` (stable far from the samples)."""
        z = -(d**2 - d[:, :1] ** 2) / (2.0 * self.bandwidth_**2)
        w = np.exp(z)
        return w / w.sum(axis=1, keepdims=True)

    def __call__(self, xy: Any, *, chunk: int = 8192) -> np.ndarray:
        """Mapped values ``(M, V)`` at coordinates ``(M, 2)``."""
        q = _array(xy, "coordinates", 2)
        if not hasattr(self, "tree_"):
            raise ValueError("BackMap is not fitted yet: call fit(coords, values) first")
        out = np.empty((len(q), self.values_.shape[1]))
        for s in range(0, len(q), chunk):
            part = q[s : s + chunk]
            if self.method == "rbf":
                out[s : s + chunk] = self.rbf_(part)
            else:
                d, i = self.neighbours(part)
                out[s : s + chunk] = np.einsum("mk,mkv->mv", self.weights(d), self.values_[i])
        return out

    def heldout(self, fold: np.ndarray) -> np.ndarray:
        """Values ``(N, V)`` at each sample's own coordinates from a map fitted *without that sample's fold*:
        ``fold`` (N,) int labels the folds (`fold_assignment`); for every fold a BackMap with this one's settings is
        fitted on the other folds' samples alone (its own bandwidth and spacing, as painting from them would)."""
        if not hasattr(self, "tree_"):
            raise ValueError("BackMap is not fitted yet: call fit(coords, values) first")
        fold = np.asarray(fold)
        if fold.shape != (len(self.coords_),):
            raise ValueError(f"expected fold of shape ({len(self.coords_)},), got {fold.shape}")
        out = np.empty_like(self.values_)
        for f in np.unique(fold):
            train, test = fold != f, fold == f
            if train.sum() < 3:
                raise ValueError(f"expected at least 3 samples outside fold {f} to paint from, got {int(train.sum())}")
            other = BackMap(method=self.method, k=self.k, bandwidth=self.bandwidth, smoothing=self.smoothing)  # type: ignore[arg-type]
            out[test] = other.fit(self.coords_[train], self.values_[train])(self.coords_[test])
        return out


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold ``(n,)`` int64 of each of n samples: a seeded random permutation dealt into ``folds`` folds whose
    sizes differ by at most one (folds = n: leave one out)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"expected n as an int >= 0, got {n!r}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not folds >= 2:
        raise ValueError(f"expected folds as an int >= 2, got {folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"expected seed as an int, got {seed!r}")
    out = np.empty(n, dtype=np.int64)
    out[np.random.default_rng(int(seed)).permutation(n)] = np.arange(n) % int(folds)
    return out


@dataclass(frozen=True, eq=False)
class PaintedRegions:
    """Approximate class regions painted behind a 2D embedding, with where they can be trusted."""

    x: np.ndarray  # (R,) float64 grid coordinates along embedding axis 1
    y: np.ndarray  # (R,) float64 grid coordinates along embedding axis 2
    labels: np.ndarray  # (R, R) int16 painted class at (x[j], y[i]) as labels[i, j]
    confidence: np.ndarray  # (R, R) float32 softmax top-1 of the back-mapped logits
    support: np.ndarray  # (R, R) float32 weighted share of nearby samples predicted as the painted class *and*
    # classified as the model does by the map painted without their fold (held-out evidence)
    distance: np.ndarray  # (R, R) float32 distance to the nearest sample (embedding units)
    trusted: np.ndarray  # (R, R) bool: near a sample (distance <= radius) and support >= min_support
    sample_painted: np.ndarray  # (N,) int64 painted class at each sample's own grid cell (in-sample)
    sample_fold: np.ndarray  # (N,) int64 the held-out fold of each sample (fold_assignment)
    sample_heldout: np.ndarray  # (N,) int64 class at each sample from the map painted without its fold
    agreement: float  # in-sample: share of samples whose painted class equals the model's prediction (optimistic)
    heldout_agreement: float  # the same for the held-out classes: the number to quote
    chance_agreement: float  # share of the most common predicted class: what a map unrelated to positions reaches
    heldout_better_than_chance: bool  # heldout_agreement > chance + 2 binomial standard errors at N samples
    folds: int  # number of folds (each sample is scored by a map painted from the other folds' samples)
    trusted_share: float  # share of grid points that are trusted
    radius: float  # trust radius (embedding units)
    method: str  # back-map method, "knn" or "rbf"
    k: int  # neighbours used
    bandwidth: float  # Gaussian bandwidth (knn), embedding units
    seconds: float  # wall time of the painting

    def reading(self) -> str:
        """One sentence on what the held-out agreement says (false when the map predicts nothing between samples)."""
        n = len(self.sample_fold)
        held = (
            f"held out (each sample scored by a map painted from the other {self.folds - 1} of {self.folds} folds), "
            f"the painted regions agree with the model at {self.heldout_agreement:.1%} of the {n:,} samples"
        )
        chance = f"{self.chance_agreement:.1%} for painting the most common class everywhere"
        if not self.heldout_better_than_chance:
            return (
                f"The painted regions predict the model no better than chance between samples: {held}, against "
                f"{chance} ({self.agreement:.1%} at the samples the map was painted from, which only says it "
                "reproduces them). Do not read classes off the background."
            )
        return (
            f"{held[0].upper()}{held[1:]}, against {chance}; at the samples it was painted from, {self.agreement:.1%}."
        )


def paint_regions(
    coords: Any,
    features: Any,
    head: Head,
    *,
    predictions: Any = None,
    resolution: int = 200,
    method: BackMapMethod = "knn",
    k: int = 10,
    bandwidth: float | None = None,
    radius: float | None = None,
    min_support: float = 0.7,
    pad: float = 0.05,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    fingerprint: str | None = None,
    progress: Progress | None = None,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> PaintedRegions | None:
    """Paint the head's class regions behind an embedding ``coords`` (N, 2) of ``features`` (N, D).

    Each grid point is mapped back to feature space by a `BackMap` and classified by ``head``. Every sample is also
    classified by a map painted without its fold (``folds`` seeded folds, ``seed``): the held-out agreement. A grid
    point is trusted when a sample lies within ``radius`` (default: 1.5 times the typical distance from a sample to
    its k-th neighbour) and at least ``min_support`` of the weighted nearby samples are predicted (from their real
    features) as the painted class and were classified so when held out. ``predictions`` (N,) default to
    ``head.predict(features)``.
    With ``fingerprint`` (naming the coords and features, e.g. the embedding's and feature set's keys)
    the result is cached on disk; ``cached_only=True`` then returns the cached result or None.
    """
    kwargs = dict(
        predictions=predictions,
        resolution=resolution,
        method=method,
        k=k,
        bandwidth=bandwidth,
        radius=radius,
        min_support=min_support,
        pad=pad,
        folds=folds,
        seed=seed,
        progress=progress,
    )
    if fingerprint is None:
        if cached_only:
            raise ValueError("expected a fingerprint with cached_only=True (nothing can be looked up without one)")
        return _paint(coords, features, head, **kwargs)  # type: ignore[arg-type]
    head_id = {"weight": np.ascontiguousarray(head.weight), "bias": np.ascontiguousarray(head.bias)}
    call = {k_: v for k_, v in kwargs.items() if k_ not in ("predictions", "progress")}
    call.update(
        features_id=fingerprint,
        head_id=head_id,
        predictions=None if predictions is None else np.asarray(predictions, dtype=np.int64),
        cache=cache,
    )
    if cached_only:
        return _cached_paint.cached(coords, features, head, **call)
    result = _cached_paint(coords, features, head, progress=progress, **call)
    if progress is not None:
        progress(1.0, f"painted: {result.heldout_agreement:.1%} held-out agreement")
    return result


@memoize(name="geometry.features.regions.paint_regions", ignore=("coords", "features", "head"))
def _cached_paint(
    coords: Any,
    features: Any,
    head: Head,
    *,
    features_id: str,
    head_id: dict[str, np.ndarray],
    predictions: np.ndarray | None,
    resolution: int,
    method: BackMapMethod,
    k: int,
    bandwidth: float | None,
    radius: float | None,
    min_support: float,
    pad: float,
    folds: int,
    seed: int,
    progress: Progress | None = None,
) -> PaintedRegions:
    """`_paint` keyed by the caller's ``features_id`` (naming the coords and features), the head's parameters
    (``head_id``), the predictions and every option, not by hashing the coords and features."""
    return _paint(
        coords,
        features,
        head,
        predictions=predictions,
        resolution=resolution,
        method=method,
        k=k,
        bandwidth=bandwidth,
        radius=radius,
        min_support=min_support,
        pad=pad,
        folds=folds,
        seed=seed,
        progress=progress,
    )


def _paint(
    coords: Any,
    features: Any,
    head: Head,
    *,
    predictions: Any,
    resolution: int,
    method: BackMapMethod,
    k: int,
    bandwidth: float | None,
    radius: float | None,
    min_support: float,
    pad: float,
    folds: int,
    seed: int,
    progress: Progress | None,
) -> PaintedRegions:
    t0 = time.perf_counter()
    xy = _array(coords, "embedding coordinates", 2)
    z = _array(features, "features", 2)
    if not isinstance(head, Head):
        raise TypeError(f"expected a geometry.features.extract.Head, got {type(head).__name__}")
    if xy.shape != (len(z), 2):
        raise ValueError(f"expected coords of shape ({len(z)}, 2) for {len(z)} feature vectors, got {xy.shape}")
    if z.shape[1] != head.dim:
        raise ValueError(f"expected features of shape (N, {head.dim}) for this head, got {z.shape}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 4 <= resolution <= 2048:
        raise ValueError(f"expected resolution as an int in [4, 2048], got {resolution!r}")
    if not 0.0 <= min_support <= 1.0:
        raise ValueError(f"expected min_support in [0, 1], got {min_support!r}")
    logits = head.logits(z)
    pred = logits.argmax(axis=1) if predictions is None else np.asarray(predictions, dtype=np.int64)
    if pred.shape != (len(z),):
        raise ValueError(f"expected predictions of shape ({len(z)},), got {pred.shape}")
    fold = fold_assignment(len(z), folds, seed)
    if progress is not None:
        progress(0.1, f"fitting the {method} back-map on {len(z):,} samples")
    bm = BackMap(method=method, k=k, bandwidth=bandwidth).fit(xy, logits)
    r = float(radius) if radius is not None else RADIUS_FACTOR * bm.spacing_
    if not r > 0:
        raise ValueError(f"expected radius > 0, got {radius!r}")

    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    gx = np.linspace(lo[0] - pad * span[0], hi[0] + pad * span[0], resolution)
    gy = np.linspace(lo[1] - pad * span[1], hi[1] + pad * span[1], resolution)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # row-major: (y, x)
    if progress is not None:
        progress(0.3, f"painting a {resolution}x{resolution} grid")
    glog = bm(grid)
    glabels = glog.argmax(axis=1)
    gl = glog - glog.max(axis=1, keepdims=True)
    conf = 1.0 / np.exp(gl).sum(axis=1)
    if progress is not None:
        progress(0.7, f"painting from {folds - 1} of {folds} folds to score the held-out samples")
    heldout = bm.heldout(fold).argmax(axis=1).astype(np.int64)
    # trust needs held-out evidence: nearby samples that the map reproduced when they were not used to paint it
    heldout_ok = heldout == pred
    d, i = bm.neighbours(grid)
    w = bm.weights(d)
    support = (w * ((pred[i] == glabels[:, None]) & heldout_ok[i])).sum(axis=1)
    dist = d[:, 0]
    trusted = (dist <= r) & (support >= min_support)
    if progress is not None:
        progress(0.9, "scoring agreement at the samples")
    # painted class at each sample's own grid cell (in-sample)
    cx = np.clip(np.rint((xy[:, 0] - gx[0]) / (gx[1] - gx[0])).astype(int), 0, resolution - 1)
    cy = np.clip(np.rint((xy[:, 1] - gy[0]) / (gy[1] - gy[0])).astype(int), 0, resolution - 1)
    labels2d = glabels.reshape(resolution, resolution)
    painted = labels2d[cy, cx].astype(np.int64)
    heldout_agreement = float(heldout_ok.mean())
    # best expected agreement of a map unrelated to the positions: the most common predicted class everywhere
    chance = float(np.bincount(pred).max() / len(pred))
    shape = (resolution, resolution)
    result = PaintedRegions(
        x=gx,
        y=gy,
        labels=labels2d.astype(np.int16),
        confidence=conf.reshape(shape).astype(np.float32),
        support=support.reshape(shape).astype(np.float32),
        distance=dist.reshape(shape).astype(np.float32),
        trusted=trusted.reshape(shape),
        sample_painted=painted,
        sample_fold=fold,
        sample_heldout=heldout,
        agreement=float((painted == pred).mean()),
        heldout_agreement=heldout_agreement,
        chance_agreement=chance,
        heldout_better_than_chance=bool(heldout_agreement > chance + 2.0 * np.sqrt(chance * (1 - chance) / len(pred))),
        folds=int(folds),
        trusted_share=float(trusted.mean()),
        radius=r,
        method=method,
        k=bm.k_,
        bandwidth=bm.bandwidth_,
        seconds=time.perf_counter() - t0,
    )
    if progress is not None:
        progress(1.0, f"painted: {result.heldout_agreement:.1%} held-out agreement")
    return result

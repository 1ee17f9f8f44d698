"""2D toy data sets for teaching: moons, circles, spirals and blobs.

In 2D the slice *is* the whole input space, so these show decision boundaries exactly. Every set
has a fixed geometry (blob centres, spiral arms, scale) independent of the seed; the seed only
draws the points, so a train set and a test set drawn with different seeds come from the same
distribution. Points are scaled into about [-3, 3] x [-3, 3].
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons

__all__ = [
    "TOY2D_ANY_CLASSES",
    "TOY2D_CLASSES",
    "TOY2D_DEFAULT_CLASSES",
    "TOY2D_DEFAULT_NOISE",
    "TOY2D_NAMES",
    "make_toy2d",
    "make_toy2d_any",
]

TOY2D_NAMES: tuple[str, ...] = ("moons", "circles", "spirals", "blobs")
TOY2D_CLASSES: dict[str, tuple[int, int]] = {
    "moons": (2, 2),
    "circles": (2, 2),
    "spirals": (2, 5),
    "blobs": (2, 5),
}
"""Allowed class counts (low, high), inclusive."""
TOY2D_DEFAULT_CLASSES: dict[str, int] = {"moons": 2, "circles": 2, "spirals": 2, "blobs": 3}
TOY2D_DEFAULT_NOISE: dict[str, float] = {"moons": 0.2, "circles": 0.15, "spirals": 0.15, "blobs": 0.5}
"""Default standard deviation of the Gaussian noise, in output units (spirals: for 2 arms, and
scaled by 2 / arms for more, since the arms get closer)."""

TOY2D_ANY_CLASSES: tuple[int, int] = (2, 6)
"""Class counts `make_toy2d_any` draws for every set (the Playground's range), inclusive."""

_MOONS_SHIFT = np.array([0.5, 0.25])
_MOONS_SCALE = 2.0
_CIRCLES_SCALE = 2.5
_CIRCLES_FACTOR = 0.5
_BLOBS_RADIUS = 2.0
_SPIRAL_TURNS = 1.0
_SPIRAL_RADIUS = (0.3, 2.8)


def _points_and_noise(name: str, n: object, k: int, noise: object) -> tuple[int, float]:
    """``n`` checked (an int >= ``k``, one point per class) and the noise's standard deviation (``noise``, or the
    set's default, scaled by 2/k for spirals), shared by `make_toy2d` and its many-class variant so both check the
    same way."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < k:
        raise ValueError(f"expected n as an int >= {k} (one point per class) for {name!r}, got {n!r}")
    if noise is None:
        sigma = TOY2D_DEFAULT_NOISE[name] * (2.0 / k if name == "spirals" else 1.0)
    else:
        try:
            sigma = float(noise)
        except (TypeError, ValueError):
            raise TypeError(f"expected noise as a number, got {noise!r}") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"expected noise as a finite number >= 0, got {noise!r}")
    return int(n), sigma


def make_toy2d(
    name: str,
    n: int,
    *,
    seed: int,
    noise: float | None = None,
    classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` labelled points of toy set ``name``.

    Returns (points float32 (n, 2) in about [-3, 3], labels int64 (n,) in 0..classes-1); classes
    are balanced (counts differ by at most one) and the order is shuffled. ``noise`` is the
    standard deviation of Gaussian noise in output units (default: TOY2D_DEFAULT_NOISE);
    ``classes`` is the class count (moons, circles: 2; spirals: 2..5 arms; blobs: 2..5).
    """
    if name not in TOY2D_NAMES:
        raise ValueError(f"expected a toy 2D set among {TOY2D_NAMES}, got {name!r}")
    k = TOY2D_DEFAULT_CLASSES[name] if classes is None else classes
    lo, hi = TOY2D_CLASSES[name]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not lo <= k <= hi:
        expected = f"{lo}" if lo == hi else f"{lo}..{hi}"
        raise ValueError(f"expected {expected} classes for {name!r}, got {k!r}")
    k = int(k)
    n, sigma = _points_and_noise(name, n, k, noise)

    if name == "moons":
        x, y = make_moons(n, noise=sigma / _MOONS_SCALE, random_state=seed)
        x = (x - _MOONS_SHIFT) * _MOONS_SCALE
    elif name == "circles":
        x, y = make_circles(n, noise=sigma / _CIRCLES_SCALE, factor=_CIRCLES_FACTOR, random_state=seed)
        x = x * _CIRCLES_SCALE
    elif name == "blobs":
        angles = 2.0 * np.pi * np.arange(k) / k + np.pi / 2.0
        centers = _BLOBS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        x, y = make_blobs(n, centers=centers, cluster_std=sigma, random_state=seed)
    else:
        x, y = _spirals(n, k, sigma, seed)
    return x.astype(np.float32), y.astype(np.int64)


def _spirals(n: int, arms: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``arms`` interleaved Archimedean spiral arms, arm j rotated by 2 pi j / arms."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % arms)
    t = np.sqrt(rng.random(n))  # sqrt: roughly uniform density along the arm
    r0, r1 = _SPIRAL_RADIUS
    radius = r0 + (r1 - r0) * t
    angle = 2.0 * np.pi * (_SPIRAL_TURNS * t + labels / arms)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    points = points + sigma * rng.standard_normal((n, 2))
    return points, labels


def make_toy2d_any(
    name: str,
    n: int,
    *,
    seed: int,
    noise: float | None = None,
    classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`make_toy2d` for any class count in `TOY2D_ANY_CLASSES` (2..6) on every set (the Playground's data).

    Within `TOY2D_CLASSES` it *is* `make_toy2d` (same points). Beyond: moons become a chain of ``classes``
    interleaved half circles (each the next one's mirror, as scikit-learn's two moons are), circles become
    ``classes`` concentric rings of radii 2.5 j / classes (j = 1..classes, class 0 the outermost), spirals and blobs
    get more arms and blobs. Same returns and noise unit as `make_toy2d`.
    """
    if name not in TOY2D_NAMES:
        raise ValueError(f"expected a toy 2D set among {TOY2D_NAMES}, got {name!r}")
    k = TOY2D_DEFAULT_CLASSES[name] if classes is None else classes
    lo, hi = TOY2D_ANY_CLASSES
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not lo <= k <= hi:
        raise ValueError(f"expected {lo}..{hi} classes for {name!r}, got {k!r}")
    k = int(k)
    own_lo, own_hi = TOY2D_CLASSES[name]
    if own_lo <= k <= own_hi:
        return make_toy2d(name, n, seed=seed, noise=noise, classes=k)
    n, sigma = _points_and_noise(name, n, k, noise)
    rng = np.random.default_rng(seed)
    if name == "spirals":
        x, y = _spirals(n, k, sigma, seed)
    elif name == "blobs":
        angles = 2.0 * np.pi * np.arange(k) / k + np.pi / 2.0
        centers = _BLOBS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        x, y = make_blobs(n, centers=centers, cluster_std=sigma, random_state=seed)
    elif name == "circles":
        y = rng.permutation(np.arange(n) % k)
        radius = _CIRCLES_SCALE * (k - y) / k
        angle = 2.0 * np.pi * rng.random(n)
        x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1) + sigma * rng.standard_normal((n, 2))
    else:  # moons: half circle j centred at (j, 0.5 (j mod 2)), upper for even j, lower for odd j
        y = rng.permutation(np.arange(n) % k)
        t = np.pi * rng.random(n)
        up = y % 2 == 0
        points = np.stack([y + np.where(up, np.cos(t), -np.cos(t)), np.where(up, np.sin(t), 0.5 - np.sin(t))], 1)
        scale = min(_MOONS_SCALE, 6.0 / (k + 1))  # the chain is k + 1 units wide: keep it inside about [-3, 3]
        x = (points - np.array([(k - 1) / 2.0, 0.25])) * scale + sigma * rng.standard_normal((n, 2))
    return x.astype(np.float32), y.astype(np.int64)

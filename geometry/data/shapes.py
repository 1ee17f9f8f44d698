"""Procedural RGB shape images, in the style of SI-Score.

One object (a filled shape) is pasted on a background; every image is described by a
:class:`ShapeFactors` (shape class, colour, area, centre, rotation, background), so that
robustness sweeps can fix all factors but one and vary that one.

Rendering is vectorised numpy: each shape is a signed-distance function (SDF) evaluated on the
pixel grid of a batch of images at once, and its anti-aliased coverage is the signed distance in
pixels clipped over one pixel. Everything is resolution independent (any ``size >= 8``).

Coordinates: ``center = (x, y)`` in [0, 1] x [0, 1], x to the right, y downwards (image
coordinates), (0.5, 0.5) is the middle of the image. ``rotation`` is in degrees, counter-clockwise
as seen on screen; at rotation 0 the triangle and the star point up.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from geometry.runtime.budget import check_budget

__all__ = [
    "BACKGROUNDS",
    "SHAPE_NAMES",
    "Background",
    "ShapeFactors",
    "render_shapes",
    "sample_factors",
    "shape_unit_area",
    "with_factor",
]

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
"""Class names of the shapes dataset, index = class label."""

Background = Literal["plain", "gradient", "noise", "texture"]
BACKGROUNDS: tuple[str, ...] = get_args(Background)

MIN_AREA = 0.01
MAX_AREA = 1.0
MIN_CONTRAST = 0.4
"""Least RGB (Euclidean) distance between the object colour and any background colour."""

# Shape geometry, in units of the object's scale r (see _SHAPE_UNIT_AREA).
_STAR_INNER = 0.5  # inner / outer radius of the five-pointed star
_CROSS_ARM = 1.0 / 3.0  # half-width of a cross arm / half-length
_RING_INNER = 0.55  # inner / outer radius of the ring

# Area of each shape at scale r = 1 (image units: the image is the unit square), so that
# r = sqrt(area / unit_area). circle: radius r; square: half-side r; triangle: equilateral with
# half-side r; star: outer radius r; cross: arms of half-length r; ring: outer radius r.
_SHAPE_UNIT_AREA: tuple[float, ...] = (
    math.pi,
    4.0,
    math.sqrt(3.0),
    5.0 * _STAR_INNER * math.sin(math.radians(36.0)),
    8.0 * _CROSS_ARM - 4.0 * _CROSS_ARM**2,
    math.pi * (1.0 - _RING_INNER**2),
)

# Uniforms drawn per background: [0] angle, [1] texture frequency, [2:18] noise grid,
# [18] stripes or checker, [24:72] colour candidates.
_N_UNIFORMS = 72
_N_COLOUR_CANDIDATES = 8
_NOISE_GRID = 4
_CHUNK_PIXELS = 1 << 21  # pixels per vectorised batch, bounds peak memory (~100 MB)
_FACTOR_BYTES = 600  # memory of one ShapeFactors (measured about 550 bytes), for the budget of sample_factors


def shape_unit_area(shape: int) -> float:
    """Area (fraction of the unit square) of shape class ``shape`` at scale 1."""
    return _SHAPE_UNIT_AREA[shape]


@dataclass(frozen=True)
class ShapeFactors:
    """The factors of one shapes image.

    shape: class index into SHAPE_NAMES.
    color: object colour, RGB floats in [0, 1].
    area: area of the (whole, unclipped) object as a fraction of the image, in [0.01, 1.0].
    center: object centre (x, y) in image coordinates normalised to [0, 1]; values outside [0, 1]
        are allowed (the object is then partly or wholly outside the image).
    rotation: degrees, counter-clockwise on screen, about the object's centre.
    background: "plain" | "gradient" | "noise" | "texture".
    background_seed: int >= 0; with the object colour it fixes the background's colours and
        pattern.
    """

    shape: int
    color: tuple[float, float, float]
    area: float
    center: tuple[float, float]
    rotation: float
    background: Background
    background_seed: int

    def __post_init__(self) -> None:
        if isinstance(self.shape, bool) or not isinstance(self.shape, (int, np.integer)):
            raise TypeError(f"expected shape to be an int class index, got {self.shape!r}")
        if not 0 <= int(self.shape) < len(SHAPE_NAMES):
            raise ValueError(
                f"expected shape in 0..{len(SHAPE_NAMES) - 1} ({', '.join(SHAPE_NAMES)}), got {self.shape}"
            )
        object.__setattr__(self, "shape", int(self.shape))
        color = _float_tuple(self.color, 3, "color")
        if not all(0.0 <= c <= 1.0 for c in color):
            raise ValueError(f"expected color as RGB in [0, 1], got {color}")
        object.__setattr__(self, "color", color)
        area = _finite_float(self.area, "area")
        if not MIN_AREA <= area <= MAX_AREA:
            raise ValueError(f"expected area in [{MIN_AREA}, {MAX_AREA}], got {area}")
        object.__setattr__(self, "area", area)
        object.__setattr__(self, "center", _float_tuple(self.center, 2, "center"))
        object.__setattr__(self, "rotation", _finite_float(self.rotation, "rotation"))
        if self.background not in BACKGROUNDS:
            raise ValueError(f"expected background in {BACKGROUNDS}, got {self.background!r}")
        seed = self.background_seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"expected background_seed as an int >= 0, got {seed!r}")
        object.__setattr__(self, "background_seed", int(seed))

    @property
    def shape_name(self) -> str:
        """The class name, e.g. "circle"."""
        return SHAPE_NAMES[self.shape]


def _finite_float(value: object, what: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"expected {what} to be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"expected {what} to be finite, got {out}")
    return out


def _float_tuple(value: object, n: int, what: str) -> tuple[float, ...]:
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"expected {what} as {n} numbers, got {value!r}") from None
    if len(items) != n:
        raise ValueError(f"expected {what} as {n} numbers, got {len(items)}: {value!r}")
    return tuple(_finite_float(v, what) for v in items)


def with_factor(factors: Sequence[ShapeFactors], **changes: object) -> list[ShapeFactors]:
    """Copies of ``factors`` with the given fields replaced, e.g. ``with_factor(f, area=0.2)``."""
    names = {f.name for f in dataclasses.fields(ShapeFactors)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"expected factor names among {sorted(names)}, got {unknown}")
    return [dataclasses.replace(f, **changes) for f in factors]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Sampling


def _range(value: float | tuple[float, float], what: str) -> tuple[float, float]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = _finite_float(value, what)
        return v, v
    lo, hi = _float_tuple(value, 2, what)
    if lo > hi:
        raise ValueError(f"expected {what} as (low, high) with low <= high, got {(lo, hi)}")
    return lo, hi


def sample_factors(
    n: int,
    *,
    seed: int,
    area: float | tuple[float, float] = (0.08, 0.35),
    rotation: float | tuple[float, float] = (0.0, 360.0),
    center: tuple[float, float] | tuple[tuple[float, float], tuple[float, float]] = (
        (0.3, 0.7),
        (0.3, 0.7),
    ),
    backgrounds: Sequence[str] = BACKGROUNDS,
    shapes: Sequence[int | str] | None = None,
) -> list[ShapeFactors]:
    """``n`` random factors, deterministic from ``seed``.

    Shape classes are balanced (counts differ by at most one) and shuffled. Each range is
    ``(low, high)`` sampled uniformly, or one number to fix that factor; ``center`` is
    ``((x_low, x_high), (y_low, y_high))`` or a fixed ``(x, y)``. Object colours are uniform in
    the RGB cube; ``backgrounds`` are drawn uniformly from the given kinds; ``shapes`` restricts
    the classes (indices or names, default all of SHAPE_NAMES).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"expected n as an int >= 0, got {n!r}")
    check_budget(f"{int(n):,} shape factors", bytes=int(n) * _FACTOR_BYTES, lower="ask for fewer images")
    area_lo, area_hi = _range(area, "area")
    if area_lo < MIN_AREA or area_hi > MAX_AREA:
        raise ValueError(f"expected area within [{MIN_AREA}, {MAX_AREA}], got {(area_lo, area_hi)}")
    rot_lo, rot_hi = _range(rotation, "rotation")
    try:
        cx, cy = center
    except (TypeError, ValueError):
        raise ValueError(f"expected center as ((x_lo, x_hi), (y_lo, y_hi)) or (x, y), got {center!r}") from None
    x_lo, x_hi = _range(cx, "center x")
    y_lo, y_hi = _range(cy, "center y")
    kinds = tuple(backgrounds)
    if not kinds or any(b not in BACKGROUNDS for b in kinds):
        raise ValueError(f"expected backgrounds as a non-empty subset of {BACKGROUNDS}, got {kinds}")
    classes = _class_indices(shapes)

    rng = np.random.default_rng(seed)
    n = int(n)
    labels = np.asarray(classes)[rng.permutation(np.arange(n) % len(classes))]
    areas = rng.uniform(area_lo, area_hi, n)
    rotations = rng.uniform(rot_lo, rot_hi, n)
    xs = rng.uniform(x_lo, x_hi, n)
    ys = rng.uniform(y_lo, y_hi, n)
    colors = rng.random((n, 3))
    bg = rng.integers(0, len(kinds), n)
    bg_seeds = rng.integers(0, 2**31 - 1, n)
    return [
        ShapeFactors(
            shape=int(labels[i]),
            color=(float(colors[i, 0]), float(colors[i, 1]), float(colors[i, 2])),
            area=float(areas[i]),
            center=(float(xs[i]), float(ys[i])),
            rotation=float(rotations[i]),
            background=kinds[bg[i]],  # type: ignore[arg-type]
            background_seed=int(bg_seeds[i]),
        )
        for i in range(n)
    ]


def _class_indices(shapes: Sequence[int | str] | None) -> list[int]:
    if shapes is None:
        return list(range(len(SHAPE_NAMES)))
    if isinstance(shapes, str):
        shapes = [shapes]
    out: list[int] = []
    for s in shapes:
        if isinstance(s, str):
            if s not in SHAPE_NAMES:
                raise ValueError(f"expected shape names among {SHAPE_NAMES}, got {s!r}")
            out.append(SHAPE_NAMES.index(s))
        elif isinstance(s, (int, np.integer)) and 0 <= s < len(SHAPE_NAMES):
            out.append(int(s))
        else:
            raise ValueError(f"expected shape indices in 0..{len(SHAPE_NAMES) - 1}, got {s!r}")
    if not out:
        raise ValueError("expected at least one shape class, got an empty sequence")
    return out


# --------------------------------------------------------------------------------------------
# Signed-distance functions: p = (px, py) in units of the object's scale, y up; negative inside.


def _sd_circle(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return np.hypot(px, py) - 1.0


def _sd_box(px: np.ndarray, py: np.ndarray, bx: float, by: float) -> np.ndarray:
    dx = np.abs(px) - bx
    dy = np.abs(py) - by
    outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
    return outside + np.minimum(np.maximum(dx, dy), 0.0)


def _sd_square(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return _sd_box(px, py, 1.0, 1.0)


def _sd_triangle(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    # Equilateral triangle of half-side 1, centroid at the origin, pointing up (after iq).
    k = math.sqrt(3.0)
    x = np.abs(px) - 1.0
    y = py + 1.0 / k
    fold = x + k * y > 0.0
    x, y = np.where(fold, (x - k * y) / 2.0, x), np.where(fold, (-k * x - y) / 2.0, y)
    x = x - np.clip(x, -2.0, 0.0)
    return -np.hypot(x, y) * np.sign(y)


def _sd_star(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    # Five-pointed star of outer radius 1, inner radius _STAR_INNER, pointing up (after iq).
    k1x, k1y = 0.809016994375, -0.587785252292
    k2x, k2y = -k1x, k1y
    x = np.abs(px)
    y = py
    d = 2.0 * np.maximum(k1x * x + k1y * y, 0.0)
    x, y = x - d * k1x, y - d * k1y
    d = 2.0 * np.maximum(k2x * x + k2y * y, 0.0)
    x, y = x - d * k2x, y - d * k2y
    x = np.abs(x)
    y = y - 1.0
    bax, bay = _STAR_INNER * -k1y, _STAR_INNER * k1x - 1.0
    h = np.clip((x * bax + y * bay) / (bax * bax + bay * bay), 0.0, 1.0)
    return np.hypot(x - bax * h, y - bay * h) * np.sign(y * bax - x * bay)


def _sd_cross(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return np.minimum(_sd_box(px, py, 1.0, _CROSS_ARM), _sd_box(px, py, _CROSS_ARM, 1.0))


def _sd_ring(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    mid = (1.0 + _RING_INNER) / 2.0
    half = (1.0 - _RING_INNER) / 2.0
    return np.abs(np.hypot(px, py) - mid) - half


_SDFS = (_sd_circle, _sd_square, _sd_triangle, _sd_star, _sd_cross, _sd_ring)


# --------------------------------------------------------------------------------------------
# Rendering


def render_shapes(factors: Sequence[ShapeFactors], *, size: int = 32) -> torch.Tensor:
    """Render images from factors: (N, 3, size, size) float32 in [0, 1].

    The object's anti-aliased coverage alpha blends its colour over the background. Objects may
    lie partly outside the image. Deterministic: the same factors give the same pixels. Raises `OverBudgetError`
    (a ValueError) before allocating when the images would not fit the memory budget (`geometry.runtime.budget`).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"expected size as an int >= 8, got {size!r}")
    if isinstance(factors, ShapeFactors):
        raise TypeError("expected a sequence of ShapeFactors, got a single ShapeFactors")
    factors = list(factors)
    for i, f in enumerate(factors):
        if not isinstance(f, ShapeFactors):
            raise TypeError(f"expected ShapeFactors, got {type(f).__name__} at index {i}")
    size = int(size)
    check_budget(  # the images are allocated at once: 4096 px for 2,000 images would be 375 GiB
        f"{len(factors):,} shape images of {size} x {size} pixels",
        bytes=len(factors) * 3 * size * size * 4,
        lower="lower the image size or ask for fewer images",
    )
    out = np.empty((len(factors), 3, size, size), dtype=np.float32)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, len(factors), chunk):
        part = factors[start : start + chunk]
        out[start : start + len(part)] = _render_chunk(part, size)
    return torch.from_numpy(out)


def _render_chunk(factors: list[ShapeFactors], size: int) -> np.ndarray:
    n = len(factors)
    shape = np.fromiter((f.shape for f in factors), dtype=np.int64, count=n)
    color = np.array([f.color for f in factors], dtype=np.float32).reshape(n, 3)
    area = np.fromiter((f.area for f in factors), dtype=np.float64, count=n)
    center = np.array([f.center for f in factors], dtype=np.float64).reshape(n, 2)
    theta = np.radians(np.fromiter((f.rotation for f in factors), dtype=np.float64, count=n))

    img = _render_backgrounds(factors, color, size)  # (n, 3, size, size)

    # Pixel centres in image units, y downwards.
    coords = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    for c in np.unique(shape):
        idx = np.flatnonzero(shape == c)
        scale = np.sqrt(area[idx] / _SHAPE_UNIT_AREA[c])  # object scale r, image units
        cos = (np.cos(theta[idx]) / scale).astype(np.float32)[:, None, None]
        sin = (np.sin(theta[idx]) / scale).astype(np.float32)[:, None, None]
        dx = coords[None, None, :] - center[idx, 0].astype(np.float32)[:, None, None]
        dy = center[idx, 1].astype(np.float32)[:, None, None] - coords[None, :, None]  # y up
        # Rotate the pixel by -theta into the shape's frame, in units of the scale.
        px = cos * dx + sin * dy
        py = cos * dy - sin * dx
        sd = _SDFS[c](px, py)  # (k, size, size), units of the scale
        pixels = (scale * size).astype(np.float32)[:, None, None]
        alpha = np.clip(0.5 - sd * pixels, 0.0, 1.0).astype(np.float32)[:, None]
        obj = color[idx][:, :, None, None]
        img[idx] = img[idx] + alpha * (obj - img[idx])
    return np.clip(img, 0.0, 1.0, out=img)


def _background_params(factors: list[ShapeFactors]) -> np.ndarray:
    """Per image, _N_UNIFORMS uniforms in [0, 1) from its own background_seed: (n, K) float64."""
    u = np.empty((len(factors), _N_UNIFORMS))
    for i, f in enumerate(factors):
        u[i] = np.random.default_rng(f.background_seed).random(_N_UNIFORMS)
    return u


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p to segments [a, b]; all (..., 3); returns (...)."""
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(a + t[..., None] * ab - p, axis=-1)


def _background_colours(u: np.ndarray, color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two background colours per image, every mix of them >= MIN_CONTRAST from ``color``."""
    n = len(color)
    cand = u[:, 24 : 24 + 6 * _N_COLOUR_CANDIDATES].reshape(n, _N_COLOUR_CANDIDATES, 6)
    c1 = cand[..., :3]
    c2 = np.clip(c1 + 0.8 * (cand[..., 3:] - 0.5), 0.0, 1.0)
    ok = _segment_distance(color[:, None, :].astype(np.float64), c1, c2) >= MIN_CONTRAST
    first = np.argmax(ok, axis=1)
    rows = np.arange(n)
    b1, b2 = c1[rows, first], c2[rows, first]
    # Fallback (rare): the RGB corner farthest from the object colour, >= sqrt(3)/2 away.
    corner = (color < 0.5).astype(np.float64)
    none = ~ok.any(axis=1)
    b1[none] = corner[none]
    b2[none] = corner[none]
    return b1.astype(np.float32), b2.astype(np.float32)


def _render_backgrounds(factors: list[ShapeFactors], color: np.ndarray, size: int) -> np.ndarray:
    """Backgrounds (n, 3, size, size) float32 in [0, 1] as mixes c1 + t (c2 - c1), t in [0, 1]."""
    n = len(factors)
    u = _background_params(factors)
    c1, c2 = _background_colours(u, color)
    kind = np.array([BACKGROUNDS.index(f.background) for f in factors])
    t = np.zeros((n, size, size), dtype=np.float32)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    xx = coords[None, None, :]
    yy = coords[None, :, None]
    angle = (2.0 * np.pi * u[:, 0]).astype(np.float32)[:, None, None]
    along = np.cos(angle) * xx + np.sin(angle) * yy  # (n, size, size), |along| <= ~0.71

    grad = np.flatnonzero(kind == BACKGROUNDS.index("gradient"))
    if grad.size:
        a = angle[grad]
        half = 0.5 * (np.abs(np.cos(a)) + np.abs(np.sin(a)))
        t[grad] = np.clip(along[grad] / (2.0 * half) + 0.5, 0.0, 1.0)

    noise = np.flatnonzero(kind == BACKGROUNDS.index("noise"))
    if noise.size:
        g = _NOISE_GRID
        grid = u[noise, 2 : 2 + g * g].reshape(-1, g, g).astype(np.float32)
        knots = np.linspace(-0.6, 0.6, g, dtype=np.float32)
        w = np.exp(-0.5 * ((coords[:, None] - knots[None, :]) / 0.3) ** 2)
        w = (w / w.sum(axis=1, keepdims=True)).astype(np.float32)  # (size, g)
        field = np.einsum("yi,nij,xj->nyx", w, grid, w, optimize=True)
        lo = field.min(axis=(1, 2), keepdims=True)
        hi = field.max(axis=(1, 2), keepdims=True)
        t[noise] = (field - lo) / np.maximum(hi - lo, 1e-6)

    tex = np.flatnonzero(kind == BACKGROUNDS.index("texture"))
    if tex.size:
        freq = (2.0 + 4.0 * u[tex, 1]).astype(np.float32)[:, None, None]  # cycles per image
        checker = (u[tex, 18] < 0.5)[:, None, None]
        a = angle[tex]
        across = np.cos(a) * yy - np.sin(a) * xx
        wave = np.sin(2.0 * np.pi * freq * along[tex])
        wave = np.where(checker, wave * np.sin(2.0 * np.pi * freq * across), wave)
        t[tex] = np.clip(0.5 + 2.0 * wave, 0.0, 1.0)

    t4 = t[:, None]
    return c1[:, :, None, None] + t4 * (c2 - c1)[:, :, None, None]

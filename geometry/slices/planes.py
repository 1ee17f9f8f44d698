"""Planes through input space: an origin image x0 and two orthonormal directions (u, v).

A point of the plane at coordinates (a, b) is ``origin + a * u + b * v``; since u and v have unit L2
norm, a and b are L2 distances in [0, 1] pixel space, the unit of every view. Each constructor builds
one kind of plane and records named anchor points (x0, the DeepFool point, the other images) at their
plane coordinates, so figures can mark them.

Kinds: ``"random"`` (seeded Gaussian pair), ``"normal + random"`` (the DeepFool boundary normal plus a
random tangent direction), ``"two normals"`` (the DeepFool directions towards two chosen classes),
``"three images"`` (Gram-Schmidt on the two differences), ``"dct"`` (a low- and a high-frequency DCT
direction), ``"custom"`` (a user-supplied pair), ``"input space"`` (2D toy models: the plane *is* the
input space). The planes that ask the model where its boundary is (``"normal + random"``, ``"normal +
curvature"``, ``"two normals"``: DeepFool and the curvature engine) are built in `geometry.slices.boundary_planes`;
this module needs no model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geometry.runtime.fingerprint import tensor_fingerprint

if TYPE_CHECKING:
    pass

__all__ = [
    "PLANE_KINDS",
    "Plane",
    "custom_plane",
    "dct_plane",
    "input_space_plane",
    "load_directions",
    "orthonormal_pair",
    "plane_from_directions",
    "random_plane",
    "three_image_plane",
]

PLANE_KINDS: tuple[str, ...] = (
    "normal + random",
    "normal + curvature",
    "two normals",
    "random",
    "three images",
    "dct",
    "custom",
    "input space",
)
"""Every kind a `Plane` can have (``Plane.kind``)."""

_ORTHO_TOL = 1e-4  # |u|, |v| within 1 +- tol and |<u, v>| < tol (float32 storage)
_DEGENERATE = 1e-6  # relative norm below which a direction counts as zero / linearly dependent


@dataclass(frozen=True, eq=False)
class Plane:
    """An affine 2D plane in input space: ``origin + a * u + b * v``.

    ``u`` and ``v`` are orthonormal (checked on construction), so plane coordinates (a, b) are L2
    distances in [0, 1] pixel space. Tensors are stored float32, contiguous, on the CPU.
    """

    origin: torch.Tensor  # (*input_shape) float32: the point at (0, 0), usually an image x0 in [0, 1]
    u: torch.Tensor  # (*input_shape) float32, unit L2 norm: the horizontal axis
    v: torch.Tensor  # (*input_shape) float32, unit L2 norm, orthogonal to u: the vertical axis
    kind: str  # one of PLANE_KINDS
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (a, b), L2 pixel units
    extent_hint: tuple[float, float, float, float] | None = None  # (a_min, a_max, b_min, b_max): a good view
    description: str = ""  # one line for captions, e.g. "DeepFool normal towards 3 + random (seed 0)"

    def __post_init__(self) -> None:
        tensors = {}
        for name in ("origin", "u", "v"):
            t = getattr(self, name)
            if isinstance(t, np.ndarray):
                t = torch.from_numpy(np.asarray(t))
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"Plane.{name}: expected a torch.Tensor, got {type(t).__name__}")
            if not (t.is_floating_point() or t.dtype in (torch.int64, torch.int32, torch.uint8)):
                raise TypeError(f"Plane.{name}: expected a real tensor, got dtype {t.dtype}")
            t = t.detach().to("cpu", torch.float32).contiguous()
            if t.numel() == 0:
                raise ValueError(f"Plane.{name}: expected a non-empty tensor, got shape {tuple(t.shape)}")
            if not torch.isfinite(t).all():
                raise ValueError(f"Plane.{name}: expected finite values, got NaN or infinity")
            tensors[name] = t
        shape = tuple(tensors["origin"].shape)
        for name in ("u", "v"):
            if tuple(tensors[name].shape) != shape:
                raise ValueError(
                    f"Plane.{name}: expected shape {shape} like the origin, got {tuple(tensors[name].shape)}"
                )
        u64, v64 = tensors["u"].double().flatten(), tensors["v"].double().flatten()
        nu, nv, uv = float(u64.norm()), float(v64.norm()), float(u64 @ v64)
        if abs(nu - 1) > _ORTHO_TOL or abs(nv - 1) > _ORTHO_TOL or abs(uv) > _ORTHO_TOL:
            raise ValueError(
                f"Plane: expected orthonormal u and v, got |u|={nu:.6g}, |v|={nv:.6g}, <u,v>={uv:.3g}; "
                "use plane_from_directions() to orthonormalise two directions"
            )
        if not isinstance(self.kind, str) or self.kind not in PLANE_KINDS:
            raise ValueError(f"Plane.kind: expected one of {list(PLANE_KINDS)}, got {self.kind!r}")
        if not isinstance(self.anchors, Mapping):
            raise TypeError(f"Plane.anchors: expected a dict name -> (a, b), got {type(self.anchors).__name__}")
        anchors = {}
        for k, ab in self.anchors.items():
            if not isinstance(k, str):
                raise TypeError(f"Plane.anchors: expected str names, got {k!r}")
            try:
                a, b = (float(c) for c in ab)
            except (TypeError, ValueError):
                raise ValueError(f"Plane.anchors[{k!r}]: expected a pair of numbers (a, b), got {ab!r}") from None
            anchors[k] = (a, b)
        hint = self.extent_hint
        if hint is not None:
            hint = _check_extent_tuple(hint, "Plane.extent_hint")
        if not isinstance(self.description, str):
            raise TypeError(f"Plane.description: expected a str, got {type(self.description).__name__}")
        for name, t in tensors.items():
            object.__setattr__(self, name, t)
        object.__setattr__(self, "anchors", anchors)
        object.__setattr__(self, "extent_hint", hint)

    # -- geometry -----------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. (1, 8, 8) or (2,)."""
        return tuple(self.origin.shape)

    @property
    def dim(self) -> int:
        """Number of input dimensions D."""
        return self.origin.numel()

    def basis(self) -> torch.Tensor:
        """``(2, D)`` float32: u and v flattened, as rows."""
        return torch.stack([self.u.flatten(), self.v.flatten()])

    def points(
        self, a: torch.Tensor | np.ndarray | Sequence[float], b: torch.Tensor | np.ndarray | Sequence[float]
    ) -> torch.Tensor:
        """Inputs ``(N, *input_shape)`` float32 at plane coordinates a (N,), b (N,) (L2 pixel units)."""
        a_t = torch.as_tensor(np.asarray(a, dtype=np.float64)).flatten()
        b_t = torch.as_tensor(np.asarray(b, dtype=np.float64)).flatten()
        if a_t.shape != b_t.shape:
            raise ValueError(f"expected a and b of the same length, got {a_t.numel()} and {b_t.numel()}")
        if not (torch.isfinite(a_t).all() and torch.isfinite(b_t).all()):
            raise ValueError("expected finite plane coordinates, got NaN or infinity")
        coords = torch.stack([a_t, b_t], dim=1).float()
        flat = torch.addmm(self.origin.flatten().unsqueeze(0), coords, self.basis())
        return flat.view(-1, *self.input_shape)

    def point(self, a: float, b: float) -> torch.Tensor:
        """The input ``(*input_shape)`` at plane coordinates (a, b)."""
        return self.points([a], [b])[0]

    def coordinates(self, x: torch.Tensor) -> np.ndarray:
        """Plane coordinates ``(N, 2)`` float64 of the orthogonal projection of inputs ``(N, *input_shape)``."""
        x = _as_batch(x, self.input_shape, "x")
        d = x.double().flatten(1) - self.origin.double().flatten()
        return (d @ self.basis().double().T).numpy()

    def distance_to_plane(self, x: torch.Tensor) -> np.ndarray:
        """L2 distance ``(N,)`` float64 of inputs ``(N, *input_shape)`` from the plane."""
        x = _as_batch(x, self.input_shape, "x")
        d = x.double().flatten(1) - self.origin.double().flatten()
        proj = (d @ self.basis().double().T) @ self.basis().double()
        return (d - proj).norm(dim=1).numpy()

    @cached_property
    def fingerprint(self) -> str:
        """Sha256 of origin, u and v (the plane's content; kind and anchors do not change a slice)."""
        return tensor_fingerprint(self.origin, self.u, self.v)

    def default_extent(self, fallback: float | None = None) -> tuple[float, float, float, float]:
        """``extent_hint`` if set, else a square ``+-fallback`` (default: a quarter of sqrt(D), i.e. a change of
        0.25 per pixel in RMS), widened to show every anchor."""
        if self.extent_hint is not None:
            return self.extent_hint
        r = float(fallback) if fallback is not None else 0.25 * math.sqrt(self.dim)
        if not (math.isfinite(r) and r > 0):
            raise ValueError(f"expected a positive fallback extent, got {fallback!r}")
        for a, b in self.anchors.values():
            r = max(r, 1.2 * abs(a), 1.2 * abs(b))
        return (-r, r, -r, r)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The plane as plain arrays for an .npz download: origin, u, v, anchor names and coordinates."""
        names = list(self.anchors)
        return {
            "origin": self.origin.numpy(),
            "u": self.u.numpy(),
            "v": self.v.numpy(),
            "anchor_names": np.array(names, dtype=np.str_),
            "anchor_coords": np.array([self.anchors[n] for n in names], dtype=np.float64).reshape(-1, 2),
            "kind": np.array(self.kind),
        }

    def __repr__(self) -> str:
        return f"Plane(kind={self.kind!r}, input_shape={self.input_shape}, anchors={list(self.anchors)})"


# ---------------------------------------------------------------------------------------------
# helpers


def _check_extent_tuple(extent: Any, what: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(e) for e in extent)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected (a_min, a_max, b_min, b_max), got {extent!r}") from None
    if len(vals) != 4 or not all(math.isfinite(e) for e in vals) or not (vals[0] < vals[1] and vals[2] < vals[3]):
        raise ValueError(
            f"{what}: expected finite (a_min, a_max, b_min, b_max) with a_min < a_max and b_min < b_max, got {extent!r}"
        )
    return vals  # type: ignore[return-value]


def _as_image(x: Any, what: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """One input as a float32 CPU tensor; a leading batch dimension of 1 is dropped."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.asarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor image, got {type(x).__name__}")
    if shape is not None and x.dim() == len(shape) + 1 and x.shape[0] == 1:
        x = x[0]
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{what}: expected an input of shape {tuple(shape)}, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{what}: expected a non-empty input, got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: expected finite values, got NaN or infinity")
    return x.contiguous()


def _as_batch(x: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{what}: expected a torch.Tensor of shape (N, {', '.join(map(str, shape))}), got {type(x).__name__}"
        )
    if tuple(x.shape) == tuple(shape):
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{what}: expected shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    return x.detach().cpu()


def orthonormal_pair(d1: torch.Tensor, d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram-Schmidt in float64: ``u = d1/|d1|``, ``v`` = the part of d2 orthogonal to u, normalised.

    Raises ValueError when d1 is zero or d2 is (numerically) parallel to d1.
    """
    shape = tuple(d1.shape)
    a = d1.detach().cpu().double().flatten()
    b = d2.detach().cpu().double().flatten()
    if a.shape != b.shape:
        raise ValueError(f"expected two directions of the same shape, got {tuple(d1.shape)} and {tuple(d2.shape)}")
    na = float(a.norm())
    if not na > 0 or not math.isfinite(na):
        raise ValueError("expected a non-zero first direction, got a zero (or non-finite) vector")
    u = a / na
    nb = float(b.norm())
    # two passes of Gram-Schmidt for accuracy
    w = b - (b @ u) * u
    w = w - (w @ u) * u
    nw = float(w.norm())
    if not nb > 0 or nw <= _DEGENERATE * max(nb, 1e-300):
        raise ValueError("expected two linearly independent directions, got parallel (or zero) vectors")
    v = w / nw
    return u.float().view(shape), v.float().view(shape)


def plane_from_directions(
    origin: torch.Tensor,
    d1: torch.Tensor,
    d2: torch.Tensor,
    *,
    kind: str = "custom",
    anchors: Mapping[str, tuple[float, float]] | None = None,
    extent_hint: tuple[float, float, float, float] | None = None,
    description: str = "",
    origin_name: str = "x0",
) -> Plane:
    """The plane through ``origin`` spanned by two directions (orthonormalised by Gram-Schmidt).

    ``anchors`` are added to ``{origin_name: (0, 0)}``.
    """
    origin = _as_image(origin, "origin")
    d1 = _as_image(d1, "first direction", origin.shape)
    d2 = _as_image(d2, "second direction", origin.shape)
    u, v = orthonormal_pair(d1, d2)
    marks = {origin_name: (0.0, 0.0), **dict(anchors or {})}
    return Plane(origin, u, v, kind, marks, extent_hint, description)


def _gaussian(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    g = torch.Generator().manual_seed(int(seed))
    return g


def _symmetric_hint(r: float) -> tuple[float, float, float, float]:
    return (-r, r, -r, r)


# ---------------------------------------------------------------------------------------------
# constructors that need no model


def random_plane(origin: torch.Tensor, *, seed: int = 0) -> Plane:
    """Two seeded Gaussian directions, orthonormalised; the same seed gives the same plane."""
    origin = _as_image(origin, "origin")
    if origin.numel() < 2:
        raise ValueError(f"origin: a plane needs at least 2 input dimensions, got {origin.numel()}")
    g = _generator(seed)
    d1, d2 = _gaussian(tuple(origin.shape), g), _gaussian(tuple(origin.shape), g)
    return plane_from_directions(origin, d1, d2, kind="random", description=f"random Gaussian pair (seed {seed})")


def three_image_plane(
    x0: torch.Tensor,
    x1: torch.Tensor,
    x2: torch.Tensor,
    *,
    names: Sequence[str] = ("image 1", "image 2", "image 3"),
    margin: float = 0.25,
) -> Plane:
    """The plane through three images: origin x0, ``u ~ x1 - x0``, ``v`` = Gram-Schmidt of ``x2 - x0``.

    Anchors: the three images at their exact coordinates ((0, 0), (|x1-x0|, 0), (<x2-x0,u>, <x2-x0,v>)).
    ``extent_hint`` is their bounding box widened by ``margin`` times its size on each side.
    """
    x0 = _as_image(x0, "x0")
    x1 = _as_image(x1, "x1", x0.shape)
    x2 = _as_image(x2, "x2", x0.shape)
    if (
        isinstance(names, str)
        or not isinstance(names, Sequence)
        or len(names) != 3
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != 3
    ):
        raise ValueError(f"names: expected three distinct non-empty strings, got {names!r}")
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float, np.integer, np.floating))
        or not 0 <= margin <= 10  # also False for NaN
    ):
        raise ValueError(f"margin: expected a number in [0, 10], got {margin!r}")
    margin = float(margin)
    d1, d2 = x1 - x0, x2 - x0
    try:
        u, v = orthonormal_pair(d1, d2)
    except ValueError:
        raise ValueError("expected three distinct images not on one line, got collinear (or repeated) images") from None
    c1 = (float(d1.double().flatten() @ u.double().flatten()), 0.0)
    c2 = (float(d2.double().flatten() @ u.double().flatten()), float(d2.double().flatten() @ v.double().flatten()))
    anchors = {names[0]: (0.0, 0.0), names[1]: c1, names[2]: c2}
    xs, ys = [0.0, c1[0], c2[0]], [0.0, c1[1], c2[1]]
    span = max(max(xs) - min(xs), max(ys) - min(ys))
    pad = margin * span
    hint = (min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad)
    return Plane(x0, u, v, "three images", anchors, hint, "plane through three images")


def custom_plane(origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, orthonormalise: bool = True) -> Plane:
    """A user-supplied pair of directions (e.g. from an uploaded .npy of shape (2, *input_shape)).

    With ``orthonormalise=True`` (default) Gram-Schmidt is applied; otherwise u, v must already be
    orthonormal.
    """
    origin = _as_image(origin, "origin")
    u = _as_image(u, "u", origin.shape)
    v = _as_image(v, "v", origin.shape)
    if orthonormalise:
        return plane_from_directions(origin, u, v, kind="custom", description="user-supplied directions")
    return Plane(origin, u, v, "custom", {"x0": (0.0, 0.0)}, None, "user-supplied directions")


def input_space_plane(
    points: torch.Tensor | np.ndarray | None = None,
    *,
    pad: float = 0.1,
    anchors: Mapping[str, tuple[float, float]] | None = None,
) -> Plane:
    """For 2D inputs (toy models): origin 0, u = e1, v = e2, so the slice is the whole input space.

    ``points`` (N, 2), e.g. the data set, set ``extent_hint`` to their bounding box widened by ``pad``
    times its size on each side. ``anchors`` name points by their (x1, x2) coordinates.
    """
    if (
        isinstance(pad, bool)
        or not isinstance(pad, (int, float, np.integer, np.floating))
        or not (math.isfinite(pad) and pad >= 0)
    ):
        raise ValueError(f"pad: expected a finite number >= 0, got {pad!r}")
    hint = None
    if points is not None:
        if isinstance(points, torch.Tensor):
            points = points.detach().cpu().numpy()
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"points: expected a (N, 2) array of 2D inputs, got {type(points).__name__}") from None
        p = torch.as_tensor(arr)
        if p.dim() != 2 or p.shape[1] != 2 or len(p) == 0:
            raise ValueError(f"points: expected a (N, 2) array of 2D inputs, got shape {tuple(p.shape)}")
        if not torch.isfinite(p).all():
            raise ValueError("points: expected finite values, got NaN or infinity")
        lo, hi = p.min(0).values, p.max(0).values
        size = float((hi - lo).max()) or 1.0
        hint = (
            float(lo[0]) - pad * size,
            float(hi[0]) + pad * size,
            float(lo[1]) - pad * size,
            float(hi[1]) + pad * size,
        )
    zero = torch.zeros(2)
    return Plane(
        zero,
        torch.tensor([1.0, 0.0]),
        torch.tensor([0.0, 1.0]),
        "input space",
        dict(anchors or {}),
        hint,
        "the whole 2D input space (x1, x2)",
    )


def _check_band(band: Any, what: str, size: int) -> tuple[int, int]:
    """A DCT band ``(start, size)``: ints with start >= 0, size >= 1 and start + size <= ``size``."""
    expected = f"expected {what} as a pair of ints (start, size) with start >= 0, size >= 1, start + size <= {size}"
    if isinstance(band, (str, bytes)) or not isinstance(band, Sequence) or len(band) != 2:
        raise ValueError(f"{expected}, got {band!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in band):
        raise ValueError(f"{expected}, got {band!r}")
    start, k = int(band[0]), int(band[1])
    if start < 0 or k < 1 or start + k > size:
        raise ValueError(f"{expected}, got {band!r}")
    return start, k


def dct_plane(
    origin: torch.Tensor,
    *,
    low: tuple[int, int] = (0, 4),
    high: tuple[int, int] | None = None,
    seed: int = 0,
) -> Plane:
    """A low-frequency and a high-frequency DCT direction through ``origin`` (an image (C, H, W)).

    ``low = (start, size)`` is the diagonal block ``[start, start+size)^2`` of 2D DCT-II frequencies;
    u is a seeded random unit combination of its basis images (every colour channel); ``high``
    likewise for v (default: the block of the same size at the highest frequencies). Blocks of size 1
    give single frequency directions. Overlapping blocks are allowed (v is orthogonalised to u).
    Each block must fit in ``min(H, W)`` frequencies; ValueError otherwise.
    """
    from geometry.data.dct import dct_basis_block

    origin = _as_image(origin, "origin")
    if origin.dim() != 3:
        raise ValueError(f"origin: expected an image (C, H, W) for DCT directions, got shape {tuple(origin.shape)}")
    size = min(origin.shape[1:])
    low = _check_band(low, "low", size)
    high = _check_band(high, "high", size) if high is not None else (size - low[1], low[1])
    g = _generator(seed)
    dirs = []
    for start, k in (low, high):
        block = range(start, start + k)
        basis = dct_basis_block(tuple(origin.shape), block, block).double()  # (m, C, H, W), orthonormal
        coeff = (
            torch.randn(len(basis), generator=g, dtype=torch.float64)
            if len(basis) > 1
            else torch.ones(1, dtype=torch.float64)
        )
        dirs.append(torch.einsum("m,m...->...", coeff, basis))
    bands = [f"{start}..{start + k - 1}" for start, k in (low, high)]
    desc = f"DCT directions: low band {bands[0]}, high band {bands[1]} (seed {seed})"
    return plane_from_directions(origin, dirs[0], dirs[1], kind="dct", description=desc)


def load_directions(data: bytes | np.ndarray, input_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two directions from an .npy file's bytes (or an array) of shape (2, *input_shape) or (2, D).

    Never unpickles (``allow_pickle=False``). Raises ValueError for other shapes or non-finite values.
    """
    shape = tuple(int(s) for s in input_shape)
    if isinstance(data, (bytes, bytearray)):
        import io

        try:
            arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(
                f"expected an .npy file of shape (2, {', '.join(map(str, shape))}), could not read it: {err}"
            ) from None
        if isinstance(arr, np.lib.npyio.NpzFile):
            names = list(arr.files)
            arr.close()
            raise ValueError(
                f"expected a single .npy array of shape (2, {', '.join(map(str, shape))}), got an .npz archive "
                f"(arrays {names}); save one array with np.save"
            )
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        raise TypeError(f"expected the bytes of an .npy file or a numpy array, got {type(data).__name__}")
    if isinstance(arr, np.lib.npyio.NpzFile) or not isinstance(arr, np.ndarray):
        raise ValueError("expected a single .npy array, got an .npz archive")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"expected a real numeric array, got dtype {arr.dtype}")
    d = math.prod(shape)
    if arr.shape not in ((2, *shape), (2, d)):
        raise ValueError(f"expected an array of shape (2, {', '.join(map(str, shape))}) or (2, {d}), got {arr.shape}")
    arr = arr.astype(np.float64).reshape(2, *shape)
    if not np.isfinite(arr).all():
        raise ValueError("expected finite directions, got NaN or infinity")
    return torch.from_numpy(arr[0].copy()).float(), torch.from_numpy(arr[1].copy()).float()

"""Margins along frequency subspaces ("Hold me tight!", Ortiz-Jimenez et al., NeurIPS 2020).

The distance to the decision boundary *inside* a subspace tells how much the model relies on the features in it:
small margins along discriminative directions, large ones (invariance) along the others. The subspaces are K x K
blocks of the orthonormal 2D DCT basis slid along the diagonal from low to high frequency, the same block in every
colour channel (`geometry.data.dct.default_dct_blocks` gives the authors' block/stride per image size and a rule for
others). Each margin is subspace-constrained DeepFool's ``||(1 + overshoot) r||_2`` (`subspace_deepfool`, max_iter
100); a run that does not cross the boundary reports its accumulated norm (a lower bound) with ``converged=False``.
A random subspace of the same dimension is the baseline.

`frequency_margins` never builds a dense basis of a band: DeepFool restricted to span(S) at x is plain DeepFool on
``c -> f(x + S c)`` over the coefficients c (S has orthonormal columns, so ``||S c|| = ||c||``, the gradient is
``S^T grad f`` and the step ``S S^T grad f``), and for a DCT block ``S c`` is two small matrix products (the block's
rows of the DCT matrices), so a 224 x 224 x 3 band costs no more memory than the image. The random baseline keeps one
dense (D, m) basis per subspace, shared by all images. `subspace_margins` is the same computation for any dense bases.

All margins are L2 distances in the handle's input space ([0, 1] pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from geometry.boundary.deepfool import deepfool, subspace_deepfool
from geometry.data.dct import dct_basis_block, dct_diagonal_blocks, dct_matrix, default_dct_blocks
from geometry.inspection.options import MarginOptions
from geometry.models.handle import ModelHandle
from geometry.runtime.budget import check_budget
from geometry.runtime.cache import DiskCache, default_cache
from geometry.runtime.compute import CancelToken, Progress, scaled_progress
from geometry.runtime.memo import memoize
from geometry.runtime.options import options_with

__all__ = [
    "FrequencyBands",
    "FrequencyMargins",
    "MarginOptions",
    "band_basis",
    "band_image",
    "cached_frequency_margins",
    "frequency_bands",
    "frequency_margins",
    "random_subspace",
    "subspace_margins",
]


_BASIS_BUDGET = 128 * 2**20  # bytes of per-row bases per subspace-DeepFool call (rows x D x m float32)
_ROW_BUDGET = 2**24  # values of (image, subspace) rows per coefficient-space DeepFool call (64 MB per float32 copy)
_TYPICAL_STEPS = 3  # DeepFool steps a margin usually takes (max_iter is a bound), for the budget's estimate
_ROUND_OFF = 1e-5  # a projected gradient below this share of the full one is round-off (as in subspace_deepfool)


@dataclass(frozen=True)
class FrequencyBands:
    """The DCT diagonal blocks of an image shape: band b spans rows == cols == range(starts[b], starts[b] + block)."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    block: int  # K: the block is K x K frequencies
    stride: int  # offset between consecutive blocks along the diagonal
    starts: tuple[int, ...]  # first frequency of each band, low to high

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def subspace_dim(self) -> int:
        """m = K * K * C: each frequency of the block in each channel."""
        return self.block * self.block * self.input_shape[0]

    def label(self, b: int) -> str:
        """A short name of band ``b``: its frequency range, e.g. ``"0-7"``."""
        s = self.starts[b]
        return f"{s}-{s + self.block - 1}"


def frequency_bands(
    input_shape: Sequence[int], *, block: int | None = None, stride: int | None = None
) -> FrequencyBands:
    """The diagonal DCT blocks for images of ``input_shape`` (C, H, W); defaults by size (`default_dct_blocks`).

    For non-square images the diagonal of the shorter side is used (rows and columns share the block's range).
    """
    shape = _image_shape(input_shape)
    size = min(shape[1], shape[2])
    default_block, default_stride = default_dct_blocks(size)
    block = default_block if block is None else block
    stride = default_stride if stride is None else stride
    blocks = dct_diagonal_blocks(size, block, stride)
    return FrequencyBands(
        input_shape=shape, block=int(block), stride=int(stride), starts=tuple(r.start for r, _ in blocks)
    )


def band_basis(input_shape: Sequence[int], start: int, block: int) -> torch.Tensor:
    """Orthonormal basis ``(D, m)`` of the DCT block rows == cols == range(start, start + block), every channel."""
    shape = _image_shape(input_shape)
    rng = range(int(start), int(start) + int(block))
    images = dct_basis_block(shape, rng, rng, per_channel=True)  # (m, C, H, W), orthonormal rows
    return images.reshape(len(images), -1).T.contiguous()


def random_subspace(dim: int, m: int, *, seed: int = 0) -> torch.Tensor:
    """A uniformly random m-dimensional subspace of R^dim: orthonormal columns ``(dim, m)`` (seeded)."""
    for name, v in (("dim", dim), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"expected {name} as a positive int, got {v!r}")
    if m > dim:
        raise ValueError(f"expected m <= dim, got m={m} > dim={dim}")
    gen = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(int(dim), int(m), generator=gen, dtype=torch.float64))
    signs = torch.diagonal(r).sign()
    q = q * torch.where(signs == 0, 1.0, signs)  # sign-fixed QR of a Gaussian: Haar-distributed
    return q.float().contiguous()


@dataclass(frozen=True)
class FrequencyMargins:
    """Subspace-DeepFool margins of N images in B frequency bands and R random subspaces (L2 input units)."""

    margins: torch.Tensor  # (N, B) float32: ||(1 + overshoot) r|| in each band; accumulated norm where not converged
    converged: torch.Tensor  # (N, B) bool: the band's perturbation changed the prediction
    iterations: torch.Tensor  # (N, B) int64: DeepFool steps taken
    random_margins: torch.Tensor  # (N, R) float32: the same in R random subspaces of dimension m (the baseline)
    random_converged: torch.Tensor  # (N, R) bool
    full_margins: torch.Tensor  # (N,) float32: unconstrained DeepFool norm (NaN if not computed)
    full_converged: torch.Tensor  # (N,) bool
    original_label: torch.Tensor  # (N,) int64: the prediction at x
    band_starts: torch.Tensor  # (B,) int64: first DCT frequency of each band (rows == cols == [s, s + block))
    block: int  # K
    stride: int
    subspace_dim: int  # m = K * K * C
    input_shape: tuple[int, ...]  # (C, H, W)
    overshoot: float
    max_iter: int
    seed: int  # seed of the random subspaces

    def __len__(self) -> int:
        return len(self.margins)

    @property
    def num_bands(self) -> int:
        return int(self.margins.shape[1])

    def band_labels(self) -> list[str]:
        """``"s-e"`` frequency ranges of the bands, low to high."""
        return [f"{int(s)}-{int(s) + self.block - 1}" for s in self.band_starts]

    def band_median(self) -> np.ndarray:
        """(B,) median margin per band over all images (not-converged norms count as the lower bounds they are)."""
        return np.median(self.margins.numpy(), axis=0) if len(self) else np.full(self.num_bands, np.nan)

    def converged_share(self) -> np.ndarray:
        """(B,) share of images whose band perturbation crossed the boundary."""
        return self.converged.float().mean(dim=0).numpy() if len(self) else np.full(self.num_bands, np.nan)


def subspace_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    bases: torch.Tensor,
    *,
    overshoot: float = MarginOptions.overshoot,
    max_iter: int = MarginOptions.max_iter,
    candidates: int = MarginOptions.candidates,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Subspace-DeepFool norms of N images in each of B subspaces ``bases`` (B, D, m) orthonormal columns.

    Returns ``(margins (N, B) float32, converged (N, B) bool, iterations (N, B) int64)``. All (image, subspace) pairs
    run as rows of a few batched DeepFool calls (each row with its own basis), sized so that the stacked bases stay
    within a memory budget.
    """
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    if not isinstance(bases, torch.Tensor) or bases.dim() != 3:
        got = tuple(bases.shape) if isinstance(bases, torch.Tensor) else type(bases).__name__
        raise ValueError(f"expected bases of shape (B, D, m), got {got}")
    n, b = len(x), len(bases)
    dim = math.prod(handle.input_shape)
    if bases.shape[1] != dim:
        raise ValueError(
            f"expected bases of shape (B, {dim}, m) for inputs {handle.input_shape}, got {tuple(bases.shape)}"
        )
    margins = torch.full((n, b), math.nan)
    converged = torch.zeros((n, b), dtype=torch.bool)
    iterations = torch.zeros((n, b), dtype=torch.int64)
    if n == 0 or b == 0:
        return margins, converged, iterations
    rows_per_call = max(1, _BASIS_BUDGET // (dim * bases.shape[2] * 4))
    # rows ordered band-major: row = band * n + image
    total = n * b
    done = 0
    for start in range(0, total, rows_per_call):
        stop = min(total, start + rows_per_call)
        idx = torch.arange(start, stop)
        band, image = idx // n, idx % n
        res = subspace_deepfool(
            handle,
            x[image],
            bases[band],
            overshoot=overshoot,
            max_iter=max_iter,
            candidates=candidates,
            tol=1e-2,  # the margin is ||r||; the boundary point found by bisection is not used, a coarse one is enough
            progress=scaled_progress(progress, done / total, stop / total),
            cancel=cancel,
        )
        margins[image, band] = res.norm
        converged[image, band] = res.converged
        iterations[image, band] = res.iterations
        done = stop
    return margins, converged, iterations


def frequency_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    bands: Sequence[int] | None = None,
    options: MarginOptions | None = None,
    block: int | None = None,
    stride: int | None = None,
    num_random: int | None = None,
    full: bool | None = None,
    seed: int | None = None,
    overshoot: float | None = None,
    max_iter: int | None = None,
    candidates: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> FrequencyMargins:
    """Margins of images ``x`` (N, C, H, W) along the DCT diagonal bands, plus random-subspace and full baselines.

    ``bands``: indices of the bands to compute (default all, low to high). ``options``: a `MarginOptions` (its
    defaults are this function's; a keyword that is not None overrides the option of the same name): ``block`` /
    ``stride`` the band layout (default by image size, see `frequency_bands`); ``num_random`` random subspaces of the
    same dimension (seeded by ``seed``); ``full`` also the unconstrained DeepFool norm. Non-convergence is reported,
    not hidden.
    """
    opts = _options(options, locals())
    block, stride, num_random, full, seed = opts.block, opts.stride, opts.num_random, opts.full, opts.seed
    overshoot, max_iter, candidates = opts.overshoot, opts.max_iter, opts.candidates
    layout, chosen = _layout_and_bands(handle, block, stride, bands, num_random)
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    n = len(x)
    dim = math.prod(handle.input_shape)
    m = layout.subspace_dim
    if m >= dim:
        raise ValueError(f"a band of {m} dimensions spans the whole input ({dim}); choose a smaller block")
    end_sub = 0.9 if full else 1.0
    margins, conv, iters = _margins_of(
        handle,
        x,
        layout,
        [layout.starts[i] for i in chosen],
        [seed + r for r in range(num_random)],
        overshoot=overshoot,
        max_iter=max_iter,
        candidates=candidates,
        progress=scaled_progress(progress, 0.0, end_sub),
        cancel=cancel,
    )
    nb = len(chosen)
    if full and n:
        res = deepfool(
            handle,
            x,
            overshoot=overshoot,
            candidates=candidates,
            progress=scaled_progress(progress, end_sub, 1.0),
            cancel=cancel,
        )
        full_m, full_c = res.norm, res.converged
    else:
        full_m, full_c = torch.full((n,), math.nan), torch.zeros(n, dtype=torch.bool)
    labels = handle.predict(x) if n else torch.zeros(0, dtype=torch.int64)
    if progress is not None:
        progress(1.0, f"frequency margins: {n} images x {nb} bands done")
    return FrequencyMargins(
        margins=margins[:, :nb].contiguous(),
        converged=conv[:, :nb].contiguous(),
        iterations=iters[:, :nb].contiguous(),
        random_margins=margins[:, nb:].contiguous(),
        random_converged=conv[:, nb:].contiguous(),
        full_margins=full_m,
        full_converged=full_c,
        original_label=labels,
        band_starts=torch.tensor([layout.starts[i] for i in chosen], dtype=torch.int64),
        block=layout.block,
        stride=layout.stride,
        subspace_dim=m,
        input_shape=tuple(handle.input_shape),
        overshoot=float(overshoot),
        max_iter=int(max_iter),
        seed=int(seed),
    )


def band_image(input_shape: Sequence[int], start: int, block: int, *, seed: int = 0) -> torch.Tensor:
    """A random unit-norm image ``(C, H, W)`` in the band's subspace, rescaled to [0, 1] for display."""
    q = band_basis(input_shape, start, block)
    gen = torch.Generator().manual_seed(int(seed))
    v = (q @ torch.randn(q.shape[1], generator=gen)).reshape(_image_shape(input_shape))
    scale = float(v.abs().max()) or 1.0
    return (0.5 + 0.5 * v / scale).clamp(0, 1)


def _layout_and_bands(
    handle: ModelHandle, block: int | None, stride: int | None, bands: Sequence[int] | None, num_random: int
) -> tuple[FrequencyBands, list[int]]:
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if len(handle.input_shape) != 3:
        raise ValueError(
            f"frequency margins need image inputs (C, H, W), but {handle.name} takes inputs of shape "
            f"{handle.input_shape}"
        )
    if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
        raise ValueError(f"expected num_random as an int >= 0, got {num_random!r}")
    layout = frequency_bands(handle.input_shape, block=block, stride=stride)
    chosen = list(range(len(layout))) if bands is None else [int(i) for i in bands]
    if not chosen or any(not 0 <= i < len(layout) for i in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"expected distinct band indices in [0, {len(layout)}), got {list(bands or [])}")
    return layout, chosen


def _image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"expected an image shape (C, H, W), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"expected an image shape (C, H, W) with positive sizes, got {input_shape!r}")
    return shape  # type: ignore[return-value]


def _options(options: MarginOptions | None, call: dict[str, object]) -> MarginOptions:
    """``options`` with the keywords of a call (its ``locals()``) that name a field and are not None."""
    fields = ("block", "stride", "num_random", "full", "seed", "overshoot", "max_iter", "candidates")
    return options_with(MarginOptions, options, {name: call[name] for name in fields})


@memoize(name="geometry.inspection.margins.band")
def band_margins(
    handle: ModelHandle, x: torch.Tensor, *, start: int, block: int, overshoot: float, max_iter: int, candidates: int
) -> dict[str, torch.Tensor]:
    """Margins of images ``x`` (N, C, H, W) in one DCT band (rows == cols == [start, start + block)), cached one band
    per entry: ``{"margins": (N,) float32, "converged": (N,) bool, "iterations": (N,) int64}``."""
    found = _margins_of(handle, x, _blocks(handle, block), [start], [], **_settings(overshoot, max_iter, candidates))
    return _columns(found)


@memoize(name="geometry.inspection.margins.random")
def random_margins(
    handle: ModelHandle, x: torch.Tensor, *, block: int, seed: int, overshoot: float, max_iter: int, candidates: int
) -> dict[str, torch.Tensor]:
    """Margins of images ``x`` in one random subspace (`random_subspace` of ``seed``) of a band's dimension
    ``block * block * C``, cached one subspace per entry, as in `band_margins`."""
    found = _margins_of(handle, x, _blocks(handle, block), [], [seed], **_settings(overshoot, max_iter, candidates))
    return _columns(found)


@memoize(name="geometry.inspection.margins.full")
def full_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    overshoot: float,
    candidates: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, torch.Tensor]:
    """The unconstrained DeepFool norms of ``x``: ``{"margins": (N,) float32, "converged": (N,) bool}``."""
    res = deepfool(handle, x, overshoot=overshoot, candidates=candidates, progress=progress, cancel=cancel)
    return {"margins": res.norm, "converged": res.converged}


def _settings(overshoot: float, max_iter: int, candidates: int) -> dict:
    return {"overshoot": overshoot, "max_iter": max_iter, "candidates": candidates, "progress": None, "cancel": None}


def _columns(found: tuple[torch.Tensor, torch.Tensor, torch.Tensor], col: int = 0) -> dict[str, torch.Tensor]:
    margins, converged, iterations = found
    return {
        "margins": margins[:, col].contiguous(),
        "converged": converged[:, col].contiguous(),
        "iterations": iterations[:, col].contiguous(),
    }


def _blocks(handle: ModelHandle, block: int) -> FrequencyBands:
    """The band geometry `_margins_of` needs for blocks of ``block`` x ``block`` frequencies (the starts are given
    to it apart)."""
    return FrequencyBands(input_shape=_image_shape(handle.input_shape), block=int(block), stride=int(block), starts=())


def cached_frequency_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    bands: Sequence[int] | None = None,
    options: MarginOptions | None = None,
    block: int | None = None,
    stride: int | None = None,
    num_random: int | None = None,
    full: bool | None = None,
    seed: int | None = None,
    overshoot: float | None = None,
    max_iter: int | None = None,
    candidates: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
) -> FrequencyMargins:
    """`frequency_margins` through the disk cache, one entry per band (`band_margins`), per random subspace
    (`random_margins`) and for the full run (`full_margins`).

    Adding bands later computes only the new ones; all missing bands run together in one batched call (and are then
    stored under their own entries' keys).
    """
    opts = _options(options, locals())
    layout, chosen = _layout_and_bands(handle, opts.block, opts.stride, bands, opts.num_random)
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    store = cache if cache is not None else default_cache()
    settings = {"overshoot": opts.overshoot, "max_iter": opts.max_iter, "candidates": opts.candidates}
    m = layout.subspace_dim
    starts = [layout.starts[i] for i in chosen]
    seeds = [opts.seed + r for r in range(opts.num_random)]
    keys = [band_margins.key(handle, x, start=s, block=layout.block, **settings) for s in starts]
    keys += [random_margins.key(handle, x, block=layout.block, seed=s, **settings) for s in seeds]
    entries: list[dict | None] = [store.get(k) for k in keys]
    missing = [i for i, e in enumerate(entries) if e is None]
    end = 0.9 if opts.full else 1.0
    if missing:
        found = _margins_of(
            handle,
            x,
            layout,
            [starts[i] for i in missing if i < len(starts)],
            [seeds[i - len(starts)] for i in missing if i >= len(starts)],
            **settings,
            progress=scaled_progress(progress, 0.0, end),
            cancel=cancel,
        )
        for col, i in enumerate(missing):  # each column under its own entry, as band_margins / random_margins key it
            entries[i] = _columns(found, col)
            store.put(keys[i], entries[i])
    n = len(x)
    if opts.full:
        whole = full_margins(
            handle,
            x,
            overshoot=opts.overshoot,
            candidates=opts.candidates,
            progress=scaled_progress(progress, end, 1.0),
            cancel=cancel,
            cache=store,
        )
        full_m, full_c = whole["margins"], whole["converged"]
    else:
        full_m, full_c = torch.full((n,), math.nan), torch.zeros(n, dtype=torch.bool)
    if progress is not None:
        progress(1.0, f"frequency margins: {n} images x {len(chosen)} bands")

    def stack(part: list, field: str, dtype: torch.dtype) -> torch.Tensor:
        if not part:
            return torch.zeros((n, 0), dtype=dtype)
        return torch.stack([torch.as_tensor(e[field]).to(dtype) for e in part], dim=1)

    bands_part, rand_part = entries[: len(chosen)], entries[len(chosen) :]
    return FrequencyMargins(
        margins=stack(bands_part, "margins", torch.float32),
        converged=stack(bands_part, "converged", torch.bool),
        iterations=stack(bands_part, "iterations", torch.int64),
        random_margins=stack(rand_part, "margins", torch.float32),
        random_converged=stack(rand_part, "converged", torch.bool),
        full_margins=torch.as_tensor(full_m).float(),
        full_converged=torch.as_tensor(full_c).bool(),
        original_label=handle.predict(x) if n else torch.zeros(0, dtype=torch.int64),
        band_starts=torch.tensor(starts, dtype=torch.int64),
        block=layout.block,
        stride=layout.stride,
        subspace_dim=m,
        input_shape=tuple(handle.input_shape),
        overshoot=float(opts.overshoot),
        max_iter=int(opts.max_iter),
        seed=int(opts.seed),
    )


class _Subspaces:
    """A group of m-dimensional subspaces of the images (C, H, W), each given by an isometry S_k: ``synth`` maps the
    coefficients (n, m) of rows in subspaces ``k`` (n,) to flat perturbations ``S_k c`` (n, D), ``adjoint`` maps flat
    gradients (n, D) to ``S_k^T g`` (n, m)."""

    count: int  # subspaces in the group
    m: int

    def to(self, device: torch.device) -> _Subspaces:
        raise NotImplementedError

    def synth(self, c: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, g: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _DctBlocks(_Subspaces):
    """Diagonal DCT blocks rows == cols == [s_k, s_k + K) in every channel: ``S_k c = C_H[b_k]^T c C_W[b_k]`` per
    channel, two small matrix products (no dense basis)."""

    def __init__(self, shape: tuple[int, ...], starts: Sequence[int], block: int) -> None:
        c, h, w = shape
        self.shape, self.block, self.count, self.m = (c, h, w), block, len(starts), c * block * block
        ch, cw = dct_matrix(h, dtype=torch.float32), dct_matrix(w, dtype=torch.float32)
        self.left = torch.stack([ch[s : s + block].T for s in starts])  # (B, H, K)
        self.right = torch.stack([cw[s : s + block] for s in starts])  # (B, K, W)

    def to(self, device: torch.device) -> _DctBlocks:
        self.left, self.right = self.left.to(device), self.right.to(device)
        return self

    def synth(self, c: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        b = self.block
        out = self.left[k][:, None] @ c.reshape(len(c), -1, b, b) @ self.right[k][:, None]
        return out.reshape(len(c), -1)

    def adjoint(self, g: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        left_t, right_t = self.left[k].transpose(1, 2), self.right[k].transpose(1, 2)
        return (left_t[:, None] @ g.reshape(len(g), *self.shape) @ right_t[:, None]).reshape(len(g), -1)


class _Dense(_Subspaces):
    """One subspace given by orthonormal columns ``q`` (D, m), held once for all images."""

    def __init__(self, q: torch.Tensor) -> None:
        self.q, self.count, self.m = q.float(), 1, int(q.shape[1])

    def to(self, device: torch.device) -> _Dense:
        self.q = self.q.to(device)
        return self

    def synth(self, c: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return c @ self.q.T

    def adjoint(self, g: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return g @ self.q


class _Synthesis(torch.autograd.Function):
    """``S_k c`` for each row's subspace k; the backward is ``S_k^T g`` with subspace DeepFool's round-off rule: a row
    whose projected gradient is below 1e-5 of its full gradient gets 0 (it cannot move the point)."""

    @staticmethod
    def forward(
        ctx,
        c: torch.Tensor,
        which: torch.Tensor,
        groups: list[_Subspaces],
        dim: int,  # type: ignore[override]
    ) -> torch.Tensor:
        ctx.which, ctx.groups = which, groups
        out = c.new_zeros(len(c), dim)
        for rows, k, group in _group_rows(which, groups):
            out[rows] = group.synth(c[rows], k)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        gc = g.new_zeros(len(g), ctx.groups[0].m)
        for rows, k, group in _group_rows(ctx.which, ctx.groups):
            gc[rows] = group.adjoint(g[rows], k)
        small = gc.norm(dim=1) <= _ROUND_OFF * g.norm(dim=1)
        return torch.where(small[:, None], 0.0, gc), None, None, None


def _group_rows(which: torch.Tensor, groups: list[_Subspaces]):
    """(rows mask, index within the group, group) for each group some row belongs to."""
    first = 0
    for group in groups:
        rows = (which >= first) & (which < first + group.count)
        if bool(rows.any()):
            yield rows, which[rows] - first, group
        first += group.count


class _InSubspaces(nn.Module):
    """The model as a function of rows ``z = (c, x, k)`` (n, m + D + 1): ``f(x + S_k c)``. Only c gets a gradient, so
    DeepFool on it, from c = 0, is subspace DeepFool at x in span(S_k); the other parts of z never move."""

    def __init__(self, module: nn.Module, shape: tuple[int, ...], groups: list[_Subspaces]) -> None:
        super().__init__()
        self.module = module
        self.shape = shape
        self.groups = groups
        self.m = groups[0].m
        self.dim = math.prod(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = z[:, : self.m]
        x = z[:, self.m : self.m + self.dim].detach()
        which = z[:, -1].detach().round().long()
        return self.module((x + _Synthesis.apply(c, which, self.groups, self.dim)).reshape(len(z), *self.shape))


def _margins_of(
    handle: ModelHandle,
    x: torch.Tensor,
    layout: FrequencyBands,
    starts: Sequence[int],
    seeds: Sequence[int],
    *,
    overshoot: float,
    max_iter: int,
    candidates: int,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Subspace-DeepFool margins of images ``x`` in the DCT bands starting at ``starts`` and then in the random
    subspaces of ``seeds``: (N, S) margins, converged, iterations (S = bands + random subspaces).

    Every (image, subspace) pair is a row ``(0, x, k)`` of plain DeepFool on `_InSubspaces` (rows of all subspaces
    together, in calls of at most `_ROW_BUDGET` values), so no per-row basis is ever stacked.
    """
    n, count = len(x), len(starts) + len(seeds)
    margins = torch.full((n, count), math.nan)
    converged = torch.zeros((n, count), dtype=torch.bool)
    iterations = torch.zeros((n, count), dtype=torch.int64)
    if n == 0 or count == 0:
        return margins, converged, iterations
    dim, m = math.prod(handle.input_shape), layout.subspace_dim
    check_budget(  # a step runs the model forward and back for the candidate classes; random bases are dense D x m
        f"frequency margins of {n:,} image{'s' * (n != 1)} in {count:,} subspaces "
        f"({len(starts)} bands, {len(seeds)} random)",
        evaluations=n * count * _TYPICAL_STEPS * (1 + candidates),
        bytes=len(seeds) * dim * m * 4,
        handle=handle,
        lower="use fewer images, bands or random subspaces",
    )
    groups: list[_Subspaces] = [_DctBlocks(layout.input_shape, starts, layout.block)] if starts else []
    groups += [_Dense(random_subspace(dim, m, seed=s)) for s in seeds]
    model = _InSubspaces(handle.module, tuple(handle.input_shape), [g.to(handle.device) for g in groups])
    inner = ModelHandle(
        module=model,
        name=f"{handle.name} in a subspace",
        input_shape=(m + dim + 1,),
        class_names=handle.class_names,
        fingerprint=f"{handle.fingerprint}|subspaces",
        device=handle.device,
        input_range=None,
        smooth=handle.smooth,
    )
    flat = x.reshape(n, dim)
    total = n * count
    rows_per_call = max(1, _ROW_BUDGET // (m + dim + 1))
    for start in range(0, total, rows_per_call):  # rows subspace-major: row = k * n + image
        stop = min(total, start + rows_per_call)
        idx = torch.arange(start, stop)
        k, image = idx // n, idx % n
        z = torch.cat([torch.zeros(len(idx), m), flat[image], k[:, None].float()], dim=1)
        res = deepfool(
            inner,
            z,
            overshoot=overshoot,
            max_iter=max_iter,
            candidates=candidates,
            tol=1e-2,  # the margin is ||r||; the boundary point is not used, a coarse one is enough
            progress=scaled_progress(progress, start / total, stop / total),
            cancel=cancel,
        )
        margins[image, k] = res.norm
        converged[image, k] = res.converged
        iterations[image, k] = res.iterations
    return margins, converged, iterations

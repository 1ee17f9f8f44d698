"""The orthonormal 2D DCT-II of images, and DCT frequency directions as images.

``dct2(x)`` transforms the last two dimensions (H, W) of a tensor with the orthonormal DCT-II
(``C_H @ x @ C_W^T``, the same as ``scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))``), so it
preserves L2 norms and ``idct2(dct2(x)) == x``. It works on any leading shape (N, C, ...), on any
device, and is differentiable (plain matrix products).

A frequency direction (row k, column l) is the image whose DCT is 1 at (k, l) and 0 elsewhere:
``C_H[k][:, None] * C_W[l][None, :]``. ``dct_basis_block`` stacks such images for a block of
frequencies, either in every channel separately (an orthonormal basis of the block's subspace in
colour images, as "Hold me tight!" uses) or the same pattern in all channels (grey directions).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "dct2",
    "dct_basis_block",
    "dct_basis_image",
    "dct_diagonal_blocks",
    "dct_flip",
    "dct_matrix",
    "default_dct_blocks",
    "idct2",
    "low_pass",
    "target_dct_block",
]


@functools.lru_cache(maxsize=32)
def _dct_matrix_np(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    m.setflags(write=False)
    return m


def dct_matrix(n: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``(n, n)``: row k is frequency k, ``C @ C.T == I``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    return torch.tensor(_dct_matrix_np(int(n)), dtype=dtype, device=device)


def _check_image_tensor(x: torch.Tensor, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor (..., H, W), got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{what}: expected at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    return x


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2D DCT-II over the last two dimensions; same shape and dtype as ``x``."""
    x = _check_image_tensor(x, "x")
    ch = dct_matrix(x.shape[-2], dtype=x.dtype, device=x.device)
    cw = dct_matrix(x.shape[-1], dtype=x.dtype, device=x.device)
    return ch @ x @ cw.T


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2` (the orthonormal DCT-III): ``C_H^T @ X @ C_W``."""
    coeffs = _check_image_tensor(coeffs, "coeffs")
    ch = dct_matrix(coeffs.shape[-2], dtype=coeffs.dtype, device=coeffs.device)
    cw = dct_matrix(coeffs.shape[-1], dtype=coeffs.dtype, device=coeffs.device)
    return ch.T @ coeffs @ cw


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        s = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape: expected (C, H, W), got {shape!r}") from None
    if len(s) != 3 or min(s) < 1:
        raise ValueError(f"shape: expected (C, H, W) with positive sizes, got {shape!r}")
    return s  # type: ignore[return-value]


def _freqs(values: Iterable[int] | slice | int, n: int, what: str) -> list[int]:
    if isinstance(values, slice):
        out = list(range(n))[values]
    elif isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        out = [int(values)]
    else:
        out = [int(v) for v in values]
    if not out:
        raise ValueError(f"{what}: expected at least one frequency, got none")
    bad = [v for v in out if not 0 <= v < n]
    if bad:
        raise ValueError(f"{what}: expected frequencies in [0, {n}), got {bad}")
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: expected distinct frequencies, got {out}")
    return out


def dct_basis_image(
    shape: Sequence[int], row: int, col: int, *, channel: int | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The unit-norm image ``(C, H, W)`` of DCT frequency (row, col).

    ``channel=None``: the same pattern in every channel, scaled by 1/sqrt(C) (unit norm overall);
    otherwise the pattern only in that channel.
    """
    c, h, w = _check_shape(shape)
    (r,) = _freqs(row, h, "row")
    (k,) = _freqs(col, w, "col")
    pattern = torch.outer(dct_matrix(h)[r], dct_matrix(w)[k])
    img = torch.zeros((c, h, w), dtype=torch.float64)
    if channel is None:
        img[:] = pattern / math.sqrt(c)
    else:
        if not 0 <= int(channel) < c:
            raise ValueError(f"channel: expected an index in [0, {c}), got {channel}")
        img[int(channel)] = pattern
    return img.to(dtype)


def dct_basis_block(
    shape: Sequence[int],
    rows: Iterable[int] | slice | int,
    cols: Iterable[int] | slice | int,
    *,
    per_channel: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """An orthonormal set of DCT direction images ``(M, C, H, W)`` for the frequencies rows x cols.

    ``per_channel=True``: each frequency in each channel separately (M = len(rows) * len(cols) * C),
    spanning "the same block in every colour channel"; ``per_channel=False``: the same pattern in all
    channels (M = len(rows) * len(cols)). Order: channel-major, then row, then column.
    Rows of the flattened result are orthonormal.
    """
    c, h, w = _check_shape(shape)
    rs = _freqs(rows, h, "rows")
    cs = _freqs(cols, w, "cols")
    ch, cw = dct_matrix(h), dct_matrix(w)
    patterns = torch.einsum("ri,cj->rcij", ch[rs], cw[cs]).reshape(len(rs) * len(cs), h, w)  # (m, H, W)
    if per_channel:
        out = torch.zeros((c, len(patterns), c, h, w), dtype=torch.float64)
        for k in range(c):
            out[k, :, k] = patterns
        out = out.reshape(c * len(patterns), c, h, w)
    else:
        out = patterns.unsqueeze(1).expand(-1, c, -1, -1) / math.sqrt(c)
    return out.to(dtype).contiguous()


def dct_diagonal_blocks(size: int, block: int, stride: int) -> list[tuple[range, range]]:
    """The K x K frequency blocks slid along the DCT diagonal from low to high frequency.

    Returns ``[(rows, cols), ...]`` with ``rows == cols == range(s, s + block)`` for
    ``s = 0, stride, 2*stride, ...`` while ``s + block <= size`` (the last block ends at the highest
    frequency when (size - block) is a multiple of stride).
    """
    for name, val in (("size", size), ("block", block), ("stride", stride)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name}: expected a positive int, got {val!r}")
    if block > size:
        raise ValueError(f"block: expected at most size={size}, got {block}")
    return [(range(s, s + block), range(s, s + block)) for s in range(0, size - block + 1, stride)]


_KNOWN_BLOCKS = {28: (8, 1), 32: (8, 2), 224: (16, 16)}  # the "Hold me tight!" authors' settings
_BAND_COUNTS = range(10, 26)  # band counts the rule for other sizes chooses from
_PREFERRED_BANDS = 13  # like 32 px (13) and 224 px (14)


def target_dct_block(size: int) -> int:
    """K0, the block the rule of `default_dct_blocks` aims at for images of side ``size``: a quarter of the image up to
    16 frequencies (28 and 32 px: 8), and from there about ``size / 14`` (14 tiles across, as at 224 px)."""
    size = _check_size(size)
    return min(size, max(2, min(size // 4, 16), math.ceil(size / 14)))


def default_dct_blocks(size: int) -> tuple[int, int]:
    """(block K, stride s) of the diagonal DCT bands for images of side ``size``.

    28, 32 and 224 px: the "Hold me tight!" authors' settings (K8 s1: 21 bands; K8 s2: 13; K16 s16: 14). Other sizes,
    by the same spirit: the bands start at frequency 0, step by a constant stride s <= K (no frequency of the diagonal
    is skipped), and the last band ends at the highest frequency ``size - 1``; among the layouts with 10 to 25 bands
    (t = 9..24 steps, ``K = size - t * s``) the one whose block is closest to `target_dct_block` wins (ties: the count
    closest to 13, then the smaller count). Images too small for 10 bands of the target block get stride 1 (e.g. 8 px:
    K2 s1, 7 bands). Use `dct_diagonal_blocks` to list the bands.
    """
    size = _check_size(size)
    if size in _KNOWN_BLOCKS:
        return _KNOWN_BLOCKS[size]
    k0 = target_dct_block(size)
    if size - k0 < _BAND_COUNTS[0] - 1:
        return k0, 1
    best: tuple[tuple[int, int, int], tuple[int, int]] | None = None
    for count in _BAND_COUNTS:
        steps = count - 1
        for stride in {max(1, (size - k0) // steps), max(1, -(-(size - k0) // steps))}:
            block = size - steps * stride
            if not 1 <= stride <= block <= size:
                continue
            rank = (abs(block - k0), abs(count - _PREFERRED_BANDS), count)
            if best is None or rank < best[0]:
                best = (rank, (block, stride))
    assert best is not None  # 25 bands, stride (size - K0) // 24: K >= K0 >= stride since size <= 14 K0 + 3
    return best[1]


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    return int(size)


def dct_flip(x: torch.Tensor) -> torch.Tensor:
    """``IDCT(flip(DCT(x)))``: swaps low and high frequencies (flips both frequency axes)."""
    return idct2(torch.flip(dct2(x), dims=(-2, -1)))


def low_pass(x: torch.Tensor, keep: int) -> torch.Tensor:
    """Keep only the top-left ``keep x keep`` block of DCT frequencies of ``x`` (..., H, W)."""
    x = _check_image_tensor(x, "x")
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 0:
        raise ValueError(f"keep: expected a non-negative int, got {keep!r}")
    coeffs = dct2(x)
    mask = torch.zeros(coeffs.shape[-2:], dtype=coeffs.dtype, device=coeffs.device)
    mask[:keep, :keep] = 1
    return idct2(coeffs * mask)

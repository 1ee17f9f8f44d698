"""Running a classifier on the points of a 2D grid of a plane: batch sizes, point construction, per-point statistics.

`GridEvaluator` holds the result arrays of a slice (label, top-1 probability, top-1 minus top-2 logit, a class
pair's logit difference, evaluated mask) and fills them for any set of grid points, the whole grid in order (dense
slices) or scattered cells (adaptive refinement in `geometry.slices.evaluate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geometry.models.handle import ModelHandle, NonFiniteOutputError
from geometry.runtime.compute import CancelToken, Progress, map_batches
from geometry.slices.planes import Plane

__all__ = ["GridEvaluator", "default_batch_size", "point_stats", "point_stats_torch"]

_ACCEL_BATCH_BYTES = 256 * 2**20  # grid inputs per batch on an accelerator (bytes of float32 inputs)
# On the CPU the batch is sized by the model's largest activation: a batch whose largest layer output fits in
# about 4 MB stays in the caches, which makes small models 1.5-3x faster per point than one huge batch.
_CPU_ACTIVATION_BYTES = 4 * 2**20
_CPU_BATCH_RANGE = (32, 16384)  # points per CPU batch, at least / at most
_CPU_INPUT_BYTES = 32 * 2**20  # fallback when the activations cannot be measured: bytes of inputs per batch
_GRID_TABLE_BYTES = 64 * 2**20  # most memory for the per-row / per-column tables of dense point construction
_COLUMN_STATS_MAX_K = 64  # up to this many classes the logits' statistics run column by column

_activation_sizes: dict[str, int] = {}  # model fingerprint -> floats per input of its largest layer output


def _largest_activation(handle: ModelHandle, probe: torch.Tensor) -> int | None:
    """Floats per input of the largest output of any leaf module of ``handle.module`` (None if unknown).

    Runs the model once on two copies of ``probe`` with forward hooks (removed again); remembered per model.
    """
    if handle.fingerprint in _activation_sizes:
        return _activation_sizes[handle.fingerprint]
    largest = [0]

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.dim() > 0 and len(output) == 2:
            largest[0] = max(largest[0], output[0].numel())

    hooks = []
    try:
        for m in handle.module.modules():
            if not any(True for _ in m.children()):
                hooks.append(m.register_forward_hook(hook))
        with torch.inference_mode():
            handle.module(probe.to(handle.device).unsqueeze(0).expand(2, *probe.shape).contiguous())
    except Exception:  # noqa: BLE001 - e.g. a TorchScript module without hooks: size batches by the inputs
        return None
    finally:
        for h in hooks:
            h.remove()
    if len(_activation_sizes) > 256:
        _activation_sizes.clear()
    _activation_sizes[handle.fingerprint] = largest[0] or None  # type: ignore[assignment]
    return largest[0] or None


def _cpu_batch_size(handle: ModelHandle, plane: Plane) -> int:
    lo, hi = _CPU_BATCH_RANGE
    act = _largest_activation(handle, plane.origin)
    size = _CPU_ACTIVATION_BYTES // (4 * act) if act else _CPU_INPUT_BYTES // (4 * plane.dim)
    return int(min(hi, max(lo, size)))


def default_batch_size(handle: ModelHandle, plane: Plane) -> int:
    """Grid points per model call that `evaluate_slice` uses by default for ``handle`` on ``plane``.

    CPU: as many points as keep the model's largest layer output near 4 MB (in cache), 32 to 16384;
    accelerator: about 256 MB of inputs.
    """
    if handle.device.type == "cpu":
        return _cpu_batch_size(handle, plane)
    return max(1, _ACCEL_BATCH_BYTES // max(1, plane.dim * 4))


class GridEvaluator:
    """Runs the model on grid points given by flat indices ``row * na + column``, writing into the result arrays.

    A grid input is ``(origin + b v) + a u``: one row table ``origin + b v`` (nb, D) and one column table ``a u``
    (na, D) are built once, so a batch of whole rows is a single broadcast add and any other batch two gathers
    (dense and adaptive slices thus compute bit-identical inputs). Each batch runs the model once and writes
    label, probability and margins straight into the (flat) result arrays; only a (B,) finiteness flag is
    gathered across batches. For very large inputs the tables would not fit: then ``addmm`` on (a, b) pairs.
    """

    def __init__(
        self,
        handle: ModelHandle,
        plane: Plane,
        a: np.ndarray,
        b: np.ndarray,
        pair: tuple[int, int] | None,
        batch_size: int | None,
        cancel: CancelToken | None,
    ) -> None:
        self.handle, self.a, self.b, self.pair, self.cancel = handle, a, b, pair, cancel
        dev = handle.device
        self.shape = plane.input_shape
        nb, na = len(b), len(a)
        self.na, self.dim = na, plane.dim
        a32 = torch.from_numpy(a.astype(np.float32)).to(dev)
        b32 = torch.from_numpy(b.astype(np.float32)).to(dev)
        origin = plane.origin.flatten().to(dev)
        u, v = plane.u.flatten().to(dev), plane.v.flatten().to(dev)
        if (na + nb) * plane.dim * 4 <= _GRID_TABLE_BYTES:
            self.rows_table: torch.Tensor | None = origin + b32[:, None] * v  # (nb, D)
            self.cols_table: torch.Tensor | None = a32[:, None] * u  # (na, D)
        else:
            self.rows_table = self.cols_table = None
            self.a_dev, self.b_dev = a32, b32
            self.origin, self.basis = origin.unsqueeze(0), torch.stack([u, v])
        k = handle.num_classes
        self.labels = np.full((nb, na), -1, dtype=np.int16 if k <= 32767 else np.int32)
        self.probability = np.zeros((nb, na), dtype=np.float32)
        self.margin = np.zeros((nb, na), dtype=np.float32)
        self.pair_margin = np.zeros((nb, na), dtype=np.float32) if pair is not None else None
        self.evaluated = np.zeros((nb, na), dtype=bool)
        self._dense = False  # True while run() evaluates the whole grid in order (batches are contiguous)
        # flat views of the same memory, written batch by batch
        self._flat = [
            arr.reshape(-1) for arr in (self.labels, self.probability, self.margin, self.pair_margin) if arr is not None
        ]
        self.batch_size = batch_size if batch_size is not None else default_batch_size(handle, plane)

    def _dense_points(self, start: int, n: int) -> torch.Tensor:
        """Inputs (n, D) of the grid points start .. start + n - 1 in row-major order."""
        rt, ct, na = self.rows_table, self.cols_table, self.na
        assert rt is not None and ct is not None
        out = torch.empty((n, self.dim), dtype=rt.dtype, device=rt.device)
        row, col = divmod(start, na)
        pos = 0
        while pos < n:
            if col == 0 and n - pos >= na:  # whole rows: one broadcast add
                r = (n - pos) // na
                torch.add(rt[row : row + r, None, :], ct[None, :, :], out=out[pos : pos + r * na].view(r, na, -1))
                pos, row = pos + r * na, row + r
            else:  # the rest of a row
                m = min(na - col, n - pos)
                torch.add(rt[row], ct[col : col + m], out=out[pos : pos + m])
                pos, col = pos + m, col + m
                if col == na:
                    row, col = row + 1, 0
        return out

    def _points(self, idx: torch.Tensor, start: int | None) -> torch.Tensor:
        if self.rows_table is not None and self.cols_table is not None:
            if start is not None:
                return self._dense_points(start, len(idx))
            rows = torch.div(idx, self.na, rounding_mode="floor")
            return self.rows_table[rows] + self.cols_table[idx - rows * self.na]
        rows = torch.div(idx, self.na, rounding_mode="floor")
        coords = torch.stack([self.a_dev[idx - rows * self.na], self.b_dev[rows]], dim=1)
        return torch.addmm(self.origin, coords, self.basis)

    def _forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Evaluate the grid points of flat indices ``idx`` (B,); store their values; return (B,) all-finite flags."""
        n = len(idx)
        start = int(idx[0]) if self._dense and n else None  # dense batches are consecutive indices
        x = self._points(idx, start).view(-1, *self.shape)
        logits = self.handle.module(x).float()
        if logits.device.type == "cpu":
            stats = point_stats(logits.numpy(), self.pair)
            finite = torch.from_numpy(stats[3])
        else:  # on the accelerator: only (B,) results travel
            out = point_stats_torch(logits, self.pair)
            finite = out[3]
            stats = tuple(t.cpu().numpy() for t in out)
        where: slice | np.ndarray = slice(start, start + n) if start is not None else idx.cpu().numpy()
        for flat, value in zip(self._flat, (stats[0], stats[1], stats[2], *stats[4:]), strict=True):
            flat[where] = value
        return finite

    def run(self, rows: np.ndarray | None, cols: np.ndarray | None, progress: Progress | None) -> None:
        """Evaluate the grid points (rows[i], cols[i]) and store their values; None, None: the whole grid."""
        nb, na = self.labels.shape
        dense = rows is None or cols is None
        if dense:  # every point in row-major order
            idx = torch.arange(nb * na, dtype=torch.int64)
        elif len(rows) == 0:
            return
        else:
            idx = torch.from_numpy(np.asarray(rows, dtype=np.int64) * na + np.asarray(cols, dtype=np.int64))
        self._dense = dense
        try:
            finite = map_batches(
                self._forward,
                idx,
                batch_size=self.batch_size,
                device=self.handle.device,
                progress=progress,
                cancel=self.cancel,
                desc="slice",
                key=("slice", self.handle.fingerprint, self.shape),
            )
        finally:
            self._dense = False
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise NonFiniteOutputError(
                f"model {self.handle.name!r} returned NaN or infinite logits at {bad} of {len(finite)} slice points; "
                "try a smaller extent"
            )
        if dense:
            self.evaluated[...] = True
        else:
            self.evaluated[rows, cols] = True


def point_stats(logits: np.ndarray, pair: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """(label, top-1 probability, top-1 minus top-2 logit, all finite[, f_i - f_j]) of logits (B, K), numpy.

    Up to 64 classes the work runs on the K columns (contiguous after one transpose) with vectorised (B,)
    operations: one pass per class keeps the running maximum, its first index and the runner-up; then
    exp(f - max) is summed over classes. Row-wise reductions over a short K axis are several times slower.
    Ties give the first class and margin 0. "All finite" is the finiteness of the sum of a row's logits
    (NaN and +-inf all make it non-finite).
    """
    k = logits.shape[1]
    if k > _COLUMN_STATS_MAX_K:
        return _point_stats_by_rows(logits, pair)
    t = np.ascontiguousarray(logits.T, dtype=np.float32)  # (K, B)
    n = t.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        if k == 2:
            top1, top2 = np.maximum(t[0], t[1]), np.minimum(t[0], t[1])
            label = np.greater(t[1], t[0]).view(np.uint8)
            margin = top1 - top2
            prob = np.exp(-margin)
            prob += 1.0
            np.reciprocal(prob, out=prob)
        else:
            label = np.zeros(n, dtype=np.uint8)
            top1, top2 = t[0].copy(), np.full(n, -np.inf, dtype=np.float32)
            tmp, win = np.empty(n, dtype=np.float32), np.empty(n, dtype=bool)
            for c in range(1, k):
                x = t[c]
                np.greater(x, top1, out=win)
                np.putmask(label, win, c)
                np.minimum(top1, x, out=tmp)
                np.maximum(top2, tmp, out=top2)
                np.maximum(top1, x, out=top1)
            e = np.subtract(t, top1)
            np.exp(e, out=e)
            prob = np.reciprocal(np.add.reduce(e, axis=0))  # 1 / sum_c exp(f_c - max), in (0, 1]
            margin = top1 - top2
        finite = np.isfinite(np.add.reduce(t, axis=0))
    out = (label, prob, margin, finite)
    if pair is not None:
        out = out + (t[pair[0]] - t[pair[1]],)
    return out


def _point_stats_by_rows(logits: np.ndarray, pair: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """`point_stats` for many classes, by row-wise reductions (a partition finds the runner-up)."""
    k = logits.shape[1]
    label = logits.argmax(axis=1)
    top = np.partition(logits, k - 2, axis=1)[:, k - 2 :]  # [:, 0] = 2nd largest, [:, 1] = largest
    top1, top2 = top[:, 1], top[:, 0]
    with np.errstate(over="ignore", invalid="ignore"):
        prob = (1.0 / np.exp(logits - top1[:, None]).sum(axis=1)).astype(np.float32)
        margin = (top1 - top2).astype(np.float32)
        finite = np.isfinite(logits.sum(axis=1))
    out = (label, prob, margin, finite)
    if pair is not None:
        out = out + ((logits[:, pair[0]] - logits[:, pair[1]]).astype(np.float32),)
    return out


def point_stats_torch(logits: torch.Tensor, pair: tuple[int, int] | None) -> tuple[torch.Tensor, ...]:
    """The same as `point_stats`, computed by torch on the logits' device."""
    top = logits.topk(2, dim=1)
    lse = torch.logsumexp(logits, dim=1)
    prob = torch.exp(top.values[:, 0] - lse)
    finite = torch.isfinite(logits).all(dim=1)
    out = (top.indices[:, 0], prob, top.values[:, 0] - top.values[:, 1], finite)
    if pair is not None:
        out = out + (logits[:, pair[0]] - logits[:, pair[1]],)
    return out

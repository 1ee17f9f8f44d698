"""Device choice, cancellation and batched evaluation with out-of-memory back-off.

`map_batches` is the one loop every long computation goes through: it moves batches to the
device, gathers results on the CPU in order, reports progress, stops between batches when a
`CancelToken` is set, and halves the batch size when the device runs out of memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Sequence

import torch

__all__ = [
    "CancelToken",
    "Cancelled",
    "Progress",
    "default_device",
    "forget_batch_sizes",
    "is_out_of_memory",
    "map_batches",
    "scaled_progress",
]

Progress = Callable[[float, str], None]
BatchOutput = torch.Tensor | Sequence[torch.Tensor]

DEVICE_ENV = "BOUNDARY_ATLAS_DEVICE"
_CPU_BATCH_BYTES = 64 * 2**20  # input bytes per automatic batch on the CPU
_ACCEL_BATCH_BYTES = 256 * 2**20  # ... and on CUDA / MPS

_learned_lock = threading.Lock()
_learned_batch: dict[Hashable, int] = {}  # key -> largest batch size known to fit


class Cancelled(Exception):
    """Raised between batches when the user asked to stop."""


class CancelToken:
    """Thread-safe stop flag: the UI thread calls `cancel()`, the worker checks between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the computation to stop at its next check."""
        self._event.set()

    def reset(self) -> None:
        """Clear the flag so the token can be reused."""
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "computation") -> None:
        """Raise `Cancelled` if `cancel()` was called."""
        if self._event.is_set():
            raise Cancelled(f"{what} cancelled")

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def _mps_works() -> bool:
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return False
    try:
        return bool((torch.ones(2, device="mps") * 2).sum().item() == 4.0)
    except Exception:  # noqa: BLE001 - any failure means "MPS does not work here"
        return False


def default_device() -> torch.device:
    """CUDA if available, else MPS if it works, else CPU; env `BOUNDARY_ATLAS_DEVICE` overrides.

    Raises ValueError when the environment variable names an unknown or unavailable device.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        try:
            dev = torch.device(requested)
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"{DEVICE_ENV}={requested!r} is not a device; expected e.g. 'cpu', 'cuda', 'cuda:1', 'mps'"
            ) from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={requested!r} but CUDA is not available on this machine")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{DEVICE_ENV}={requested!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
        if dev.type == "mps" and not _mps_works():
            raise ValueError(f"{DEVICE_ENV}={requested!r} but MPS is not available or not working")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_works():
        return torch.device("mps")
    return torch.device("cpu")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA's OutOfMemoryError or an 'out of memory' RuntimeError)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def scaled_progress(progress: Progress | None, start: float, end: float) -> Progress | None:
    """A callback mapping [0, 1] onto [start, end] of `progress`, for nested steps (None stays None)."""
    if progress is None:
        return None
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"expected 0 <= start <= end <= 1, got start={start}, end={end}")

    def _scaled(fraction: float, text: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), text)

    return _scaled


def _auto_batch_size(x: torch.Tensor, device: torch.device) -> int:
    per_sample = max(1, x[0].numel() * x.element_size()) if len(x) else 1
    budget = _CPU_BATCH_BYTES if device.type == "cpu" else _ACCEL_BATCH_BYTES
    return max(1, min(len(x), budget // per_sample))


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps":
        empty = getattr(getattr(torch, "mps", None), "empty_cache", None)
        if empty is not None:
            empty()


def _to_cpu_parts(out: object, n: int, desc: str) -> tuple[torch.Tensor, ...] | torch.Tensor:
    """Check one batch's output (a tensor or a sequence of tensors of length n) and move it to CPU."""
    if isinstance(out, torch.Tensor):
        parts: Sequence[object] = (out,)
    elif isinstance(out, (tuple, list)):
        parts = out
    else:
        raise TypeError(f"{desc}: fn must return a tensor or a tuple of tensors, got {type(out).__name__}")
    moved = []
    for i, p in enumerate(parts):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{desc}: output {i} of fn is {type(p).__name__}, expected a torch.Tensor")
        if p.dim() == 0 or p.shape[0] != n:
            raise ValueError(
                f"{desc}: fn must return one row per input along dim 0; a batch of {n} gave "
                f"output {i} of shape {tuple(p.shape)}"
            )
        moved.append(p.detach().to("cpu"))
    return moved[0] if isinstance(out, torch.Tensor) else tuple(moved)


def map_batches(
    fn: Callable[[torch.Tensor], BatchOutput],
    x: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    desc: str = "evaluating",
    key: Hashable | None = None,
    inference: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Apply `fn` to `x` (N, ...) in order, batch by batch, and concatenate the results on the CPU.

    `fn` gets a batch (B, ...) on `device` (default: `x`'s own device) and returns a tensor or a
    tuple of tensors with B rows each; the result has the same structure with N rows (a named
    tuple is rebuilt as itself). `batch_size=None` picks one from the per-sample size (~64 MB of
    input on the CPU, ~256 MB on an accelerator), capped by the size remembered under `key`.
    On out-of-memory the batch size is halved and the batch retried; at size 1 a RuntimeError is
    raised. `progress(fraction, text)` is called after each batch; `cancel` is checked before
    each batch (raises `Cancelled`). With `inference=True` `fn` runs under `torch.inference_mode()`;
    pass False when `fn` needs autograd.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x must have a batch dimension (N, ...), got a 0-d tensor")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    dev = x.device if device is None else torch.device(device)
    n = len(x)
    grad_ctx = torch.inference_mode if inference else torch.enable_grad

    if n == 0:
        if cancel is not None:
            cancel.raise_if_cancelled(desc)
        try:
            with grad_ctx():
                out = fn(x.to(dev))
            result = _to_cpu_parts(out, 0, desc)
        except Exception as e:
            raise ValueError(
                f"{desc}: x is empty (shape {tuple(x.shape)}) and fn cannot run on an empty batch "
                f"to give the output shape"
            ) from e
        if progress is not None:
            progress(1.0, f"{desc}: 0/0")
        return _rebuild(type(out), result)

    size = _auto_batch_size(x, dev) if batch_size is None else min(batch_size, n)
    if key is not None:
        with _learned_lock:
            learned = _learned_batch.get(key)
        if learned is not None:
            size = min(size, learned)

    chunks: list[torch.Tensor | tuple[torch.Tensor, ...]] = []
    template: type | None = None  # type of fn's output, to rebuild a named tuple at the end
    start = 0
    while start < n:
        if cancel is not None:
            cancel.raise_if_cancelled(desc)
        stop = min(n, start + size)
        oom = False
        try:
            with grad_ctx():
                out = fn(x[start:stop].to(dev))
            part = _to_cpu_parts(out, stop - start, desc)
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            if size == 1:
                raise RuntimeError(
                    f"{desc}: out of memory on {dev} even with a batch of 1 sample of shape "
                    f"{tuple(x.shape[1:])}; free device memory or use a smaller model/input"
                ) from e
            oom = True
        if oom:  # outside the except block, so the traceback's device tensors are already freed
            out = None
            _free_device_memory(dev)
            size = max(1, size // 2)
            if key is not None:
                with _learned_lock:
                    _learned_batch[key] = min(size, _learned_batch.get(key, size))
            continue
        if template is None:
            template = type(out)
        elif isinstance(part, tuple) != isinstance(chunks[0], tuple) or (
            isinstance(part, tuple) and len(part) != len(chunks[0])  # type: ignore[arg-type]
        ):
            raise TypeError(f"{desc}: fn returned a different structure for rows {start}:{stop}")
        out = None  # release device tensors before the next batch
        chunks.append(part)
        start = stop
        if progress is not None:
            progress(start / n, f"{desc}: {start}/{n}")

    if isinstance(chunks[0], tuple):
        k = len(chunks[0])
        cat = tuple(torch.cat([c[i] for c in chunks], dim=0) for i in range(k))  # type: ignore[index]
        return _rebuild(template, cat)
    return torch.cat(chunks, dim=0)  # type: ignore[arg-type]


def _rebuild(
    template: type | None, result: torch.Tensor | tuple[torch.Tensor, ...]
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Return `result` as `template` when that is a named tuple type, else as is."""
    if isinstance(result, torch.Tensor):
        return result
    if template is not None and issubclass(template, tuple) and hasattr(template, "_fields"):
        return template(*result)
    return tuple(result)


def forget_batch_sizes() -> None:
    """Forget every batch size learned from out-of-memory errors (e.g. after freeing a model)."""
    with _learned_lock:
        _learned_batch.clear()

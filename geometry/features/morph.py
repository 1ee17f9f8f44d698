"""Morphing one input into another: the straight path in pixel space vs the straight path in feature space.

Along the pixel path ``x(t) = (1 - t) x_a + t x_b`` the model's class can change many times and come back.
Along the feature path ``z(t) = (1 - t) z_a + t z_b`` (z = the input of the final affine layer) the logits are
exactly ``(1 - t) l_a + t l_b``: class regions there are convex, so each class occupies at most one interval
of t, and the class changes are computed exactly as the breakpoints of the upper envelope of K lines
(docs/SCIENCE.md §11). `cached_morph` is the same through the disk cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geometry.features.extract import Head, extract_features, find_head
from geometry.models.handle import ModelHandle
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress
from geometry.runtime.memo import memoize

__all__ = ["MorphResult", "cached_morph", "envelope_breakpoints", "morph"]


@dataclass(frozen=True, eq=False)
class MorphResult:
    """The two straight paths between inputs a and b, and the model's class along each."""

    t: np.ndarray  # (S,) float64 path parameter in [0, 1]
    pixel_logits: np.ndarray  # (S, K) float32 the model's logits at x(t) = (1 - t) x_a + t x_b
    pixel_pred: np.ndarray  # (S,) int64 class along the pixel path
    pixel_features: np.ndarray  # (S, D) float32 features of x(t): the pixel path seen in feature space
    feature_logits: np.ndarray  # (S, K) float64 head logits at z(t) = (1 - t) z_a + t z_b (exact)
    feature_pred: np.ndarray  # (S,) int64 class along the feature path
    feature_breaks: np.ndarray  # (C,) float64 exact t of each class change along the feature path
    feature_classes: np.ndarray  # (C + 1,) int64 the classes along the feature path, in order
    pixel_breaks: np.ndarray  # (C',) float64 t of each class change along the pixel path (bisection, +-tol)
    pixel_classes: np.ndarray  # (C' + 1,) int64 the classes along the pixel path, in order (may repeat)
    pixel_distance: float  # ||x_b - x_a|| (L2 in [0, 1] pixel units)
    feature_distance: float  # ||z_b - z_a|| (feature units)
    pixel_path_length: float  # length of the curve {features(x(t))} in feature space (>= feature_distance)


def envelope_breakpoints(l_a: np.ndarray, l_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class changes of ``argmax_k (1 - t) l_a[k] + t l_b[k]`` on [0, 1]: (breaks (C,), classes (C + 1,)).

    Exact up to float64 rounding: the upper envelope of K lines, walked from t = 0 (ties go to the class
    that rises fastest, i.e. the one that wins just after the tie).
    """
    a = np.asarray(l_a, dtype=np.float64).ravel()
    b = np.asarray(l_b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"expected two logit vectors of one length K >= 2, got {a.shape} and {b.shape}")
    slope = b - a
    best = a.max()
    ties = np.flatnonzero(a >= best - 1e-12 * max(1.0, abs(best)))
    c = int(ties[np.argmax(slope[ties])])
    t, breaks, classes = 0.0, [], [c]
    while True:
        # line j overtakes c at t_j = (a_c - a_j) / (slope_j - slope_c) when it rises faster
        rising = slope > slope[c] + 1e-15
        if not rising.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            tj = np.where(rising, (a[c] - a) / (slope - slope[c]), np.inf)
        tj[tj < t] = np.inf  # only ahead of the current position
        t_next = float(tj.min())
        if not t_next < 1.0:
            break
        cands = np.flatnonzero(tj <= t_next + 1e-14)
        c = int(cands[np.argmax(slope[cands])])
        t = t_next
        breaks.append(t)
        classes.append(c)
    return np.asarray(breaks, dtype=np.float64), np.asarray(classes, dtype=np.int64)


def _pixel_breaks(
    handle: ModelHandle,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    t: np.ndarray,
    pred: np.ndarray,
    steps: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine each class change between grid neighbours by ``steps`` bisections (a batch per step)."""
    change = np.flatnonzero(pred[1:] != pred[:-1])
    if not len(change):
        return np.zeros(0), pred[:1].astype(np.int64)
    lo, hi = t[change].copy(), t[change + 1].copy()
    left = pred[change]
    for step in range(steps):
        if cancel is not None:
            cancel.raise_if_cancelled("morphing")
        if progress is not None:
            progress(0.5 + 0.5 * step / max(steps, 1), f"locating {len(change)} class changes on the pixel path")
        mid = 0.5 * (lo + hi)
        tt = torch.from_numpy(mid).float().view(-1, *([1] * x_a.dim()))
        p = handle.predict((1 - tt) * x_a + tt * x_b).numpy()
        same = p == left
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    return 0.5 * (lo + hi), np.concatenate([pred[:1], pred[change + 1]]).astype(np.int64)


def morph(
    handle: ModelHandle,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    *,
    steps: int = 33,
    bisection_steps: int = 12,
    head: Head | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> MorphResult:
    """Walk from ``x_a`` to ``x_b`` (each of ``input_shape``) in ``steps`` equal steps, in pixel and in feature space.

    Features are read where ``head`` reads them (the input of ``head.layer``, or its output when
    ``head.position == "output"``); by default ``head`` is the model's final affine layer (`find_head`), and a
    head with no layer name reads the default features too.
    """
    _check_steps(steps, bisection_steps)
    xa, xb = _check_pair(handle, x_a, x_b)
    if head is not None and not isinstance(head, Head):
        raise TypeError(f"expected head as a geometry.features.extract.Head or None, got {type(head).__name__}")
    head = head if head is not None else find_head(handle)
    t = np.linspace(0.0, 1.0, int(steps))
    tt = torch.from_numpy(t).float().view(-1, *([1] * xa.dim()))
    path = (1 - tt) * xa + tt * xb

    def features_progress(fraction: float, text: str) -> None:
        if progress is not None:
            progress(0.5 * fraction, text)

    layer = head.layer or None
    feats, logits = extract_features(
        handle, path, layer=layer, position=head.position if layer else None, progress=features_progress, cancel=cancel
    )
    if feats.shape[1] != head.dim:
        raise ValueError(f"expected features of dimension {head.dim} for this head, got {feats.shape[1]}")
    f = feats.double().numpy()
    za, zb = f[0], f[-1]
    feature_logits = (1 - t)[:, None] * head.logits(za[None]) + t[:, None] * head.logits(zb[None])
    breaks, classes = envelope_breakpoints(head.logits(za[None])[0], head.logits(zb[None])[0])
    pixel_pred = logits.argmax(dim=1).numpy().astype(np.int64)
    pbreaks, pclasses = _pixel_breaks(handle, xa, xb, t, pixel_pred, bisection_steps, progress, cancel)
    if progress is not None:
        progress(1.0, f"{len(pbreaks)} class changes on the pixel path, {len(breaks)} on the feature path")
    return MorphResult(
        t=t,
        pixel_logits=logits.numpy(),
        pixel_pred=pixel_pred,
        pixel_features=feats.numpy(),
        feature_logits=feature_logits,
        feature_pred=feature_logits.argmax(axis=1).astype(np.int64),
        feature_breaks=breaks,
        feature_classes=classes,
        pixel_breaks=pbreaks,
        pixel_classes=pclasses,
        pixel_distance=float(torch.linalg.vector_norm(xb - xa)),
        feature_distance=float(np.linalg.norm(zb - za)),
        pixel_path_length=float(np.linalg.norm(np.diff(f, axis=0), axis=1).sum()),
    )


def _check_steps(steps: int, bisection_steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 2 <= steps <= 10_000:
        raise ValueError(f"expected steps as an int in [2, 10000], got {steps!r}")
    if (
        isinstance(bisection_steps, bool)
        or not isinstance(bisection_steps, (int, np.integer))
        or not 0 <= bisection_steps <= 60
    ):
        raise ValueError(f"expected bisection_steps as an int in [0, 60], got {bisection_steps!r}")


def _check_pair(handle: ModelHandle, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xa = handle.check_inputs(x_a)
    xb = handle.check_inputs(x_b)
    if len(xa) != 1 or len(xb) != 1:
        raise ValueError(f"expected one input each for x_a and x_b, got batches of {len(xa)} and {len(xb)}")
    return xa[0].cpu(), xb[0].cpu()


@memoize(name="geometry.features.morph.morph")
def _memoized_morph(
    handle: ModelHandle,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    *,
    steps: int,
    bisection_steps: int,
    head: Head | None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> MorphResult:
    """`morph` as the cache keys it: the model's fingerprint, the two (checked, flattened-batch) inputs' bytes, the
    step counts and the head (its weights, bias, layer and position: a dataclass, keyed field by field)."""
    return morph(
        handle, x_a, x_b, steps=steps, bisection_steps=bisection_steps, head=head, progress=progress, cancel=cancel
    )


def cached_morph(
    handle: ModelHandle,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    *,
    steps: int = 33,
    bisection_steps: int = 12,
    head: Head | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
    cached_only: bool = False,
) -> MorphResult | None:
    """`morph` through the disk cache (``default_cache()`` unless ``cache`` is given).

    ``cached_only=True`` returns the cached result or None, computing nothing.
    """
    _check_steps(steps, bisection_steps)
    xa, xb = _check_pair(handle, x_a, x_b)  # one key for (D,) and (1, D) inputs
    if head is not None and not isinstance(head, Head):
        raise TypeError(f"expected head as a geometry.features.extract.Head or None, got {type(head).__name__}")
    call = dict(steps=int(steps), bisection_steps=int(bisection_steps), head=head, cache=cache)
    if cached_only:
        return _memoized_morph.cached(handle, xa, xb, **call)
    return _memoized_morph(handle, xa, xb, progress=progress, cancel=cancel, **call)

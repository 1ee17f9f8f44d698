"""Curvature-based detection of small adversarial perturbations, and label recovery (Fawzi et al., CVPR 2018).

For an input x predicted as class j and every other class i, the statistic estimates the mean curvature of
``F_i = f_i - f_j`` at x from M random unit directions v_m and a step h (input units):

    rho_i = mean_m [F_i(x + h v_m) + F_i(x - h v_m) - 2 F_i(x)] / h^2

(for a quadratic F with Hessian H it is the mean of v^T H v over the directions, ``tr(H) / D`` in expectation; the
directions come in groups of orthonormal vectors, so a full group of D gives exactly ``tr(H) / D``).

Sign. With DESIGN.md's ``F_i = f_i - f_j`` (x's region is ``{F_i < 0}``) a clean input sits in a locally convex
region: every rho_i is positive, like ``||x - c|| - R`` inside a ball. An input pushed just across the boundary by a
small perturbation sees its original class's region as a convex blob next to it, so rho at the original class is
strongly *negative*. The detection score is therefore ``max_i (-rho_i)`` and the recovered label
``argmin_i rho_i`` — Fawzi et al.'s rule "perturbed if max_i rho_i > t, label argmax_i rho_i" written for
``f_j - f_i``. (Measured on the built-in digits models: the other sign gives an AUC below 0.5.) x is flagged as
perturbed when its score exceeds t, with t chosen on clean inputs for a target false-positive rate.

Finite differences only: works on any model (smooth or ReLU). Units: logits per squared input unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from geometry.boundary.deepfool import deepfool
from geometry.models.handle import ModelHandle
from geometry.runtime.cache import DiskCache, cache_key, default_cache
from geometry.runtime.compute import CancelToken, map_batches, scaled_progress
from geometry.runtime.fingerprint import tensor_fingerprint

__all__ = [
    "CurvatureStatistic",
    "DetectionResult",
    "DetectionVerdict",
    "cached_evaluate_detection",
    "curvature_statistic",
    "detect",
    "evaluate_detection",
    "random_directions",
    "threshold_for_fpr",
]

Progress = Callable[[float, str], None]

DETECTION_VERSION = "1"
DEFAULT_DIRECTIONS = 32
DEFAULT_STEP = 0.5  # h in L2 input units: about a DeepFool margin of the built-in digits models (ReLU models need
# a step that spans several linear pieces; smooth ones give the same statistic for any h up to about 1)


@dataclass(frozen=True)
class CurvatureStatistic:
    """The curvature statistic of N inputs: rho_i for every class i other than the prediction j."""

    rho: torch.Tensor  # (N, K) float32: rho_i (logits / input unit^2); NaN in column j (the predicted class)
    predicted: torch.Tensor  # (N,) int64: j, the model's prediction at x
    score: torch.Tensor  # (N,) float32: max_i (-rho_i), the detection score (large: looks perturbed)
    recovered: torch.Tensor  # (N,) int64: argmin_i rho_i, the label recovered if x was perturbed
    h: float  # finite-difference step (input units)
    num_directions: int  # M
    seed: int

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class DetectionResult:
    """Detection of DeepFool perturbations of N clean inputs by the curvature statistic."""

    clean_score: torch.Tensor  # (N,) float32: max_i (-rho_i) at the clean inputs
    perturbed_score: torch.Tensor  # (N,) float32: ... at their DeepFool-perturbed versions (NaN where it failed)
    clean_rho: torch.Tensor  # (N, K) float32
    perturbed_rho: torch.Tensor  # (N, K) float32
    clean_label: torch.Tensor  # (N,) int64: prediction at x
    perturbed_label: torch.Tensor  # (N,) int64: prediction at x + r
    recovered: torch.Tensor  # (N,) int64: argmin_i rho_i at x + r (-1 where the attack failed)
    attack_norm: torch.Tensor  # (N,) float32: ||r|| (L2 input units)
    attack_converged: torch.Tensor  # (N,) bool: x + r is classified otherwise than x
    perturbed: torch.Tensor  # (N, *S) float32: x + r
    threshold: float  # t: flag inputs with score > t
    target_fpr: float  # the false-positive rate t was chosen for, on the clean inputs
    fpr_at_threshold: float  # share of clean inputs with score > t
    tpr_at_threshold: float  # share of (successfully) perturbed inputs with score > t
    roc_fpr: np.ndarray  # (T,) float64: ROC curve, clean = negative, perturbed = positive
    roc_tpr: np.ndarray  # (T,) float64
    roc_thresholds: np.ndarray  # (T,) float64
    auc: float  # area under the ROC curve (NaN with fewer than one input of either kind)
    recovery_accuracy: float  # share of perturbed inputs whose recovered label is the clean prediction
    h: float
    num_directions: int
    seed: int
    overshoot: float

    def __len__(self) -> int:
        return len(self.clean_score)


@dataclass(frozen=True)
class DetectionVerdict:
    """The detector's verdict on N inputs."""

    score: torch.Tensor  # (N,) float32: max_i (-rho_i)
    flagged: torch.Tensor  # (N,) bool: score > threshold ("perturbed")
    predicted: torch.Tensor  # (N,) int64: the model's prediction
    recovered: torch.Tensor  # (N,) int64: argmin_i rho_i, the label the detector would restore
    threshold: float
    rho: torch.Tensor  # (N, K) float32


def random_directions(dim: int, num: int, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``num`` random unit directions ``(num, dim)`` in groups of up to ``dim`` orthonormal vectors (seeded).

    Each group is a Haar-random orthonormal frame (QR of a Gaussian matrix), so the directions are uniform on the
    sphere and a full group averages a quadratic form exactly to ``tr(H) / dim``.
    """
    for name, v in (("dim", dim), ("num", num)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"expected {name} as a positive int, got {v!r}")
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    left = int(num)
    while left > 0:
        k = min(left, int(dim))
        q, r = torch.linalg.qr(torch.randn(int(dim), k, generator=gen, dtype=torch.float64))
        signs = torch.diagonal(r).sign()
        out.append((q * torch.where(signs == 0, 1.0, signs)).T)
        left -= k
    return torch.cat(out).to(dtype).contiguous()


def _check_number(name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = True) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if open_low else v >= low) and v <= high
    if not ok:
        bound = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
        raise ValueError(f"expected {name} as a number in {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def curvature_statistic(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    num_directions: int = DEFAULT_DIRECTIONS,
    h: float = DEFAULT_STEP,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CurvatureStatistic:
    """rho_i of every input of ``x`` (N, *input_shape) from ``num_directions`` random directions and step ``h``.

    The same seeded directions serve every input; each input costs 2M + 1 model evaluations, batched.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if isinstance(num_directions, bool) or not isinstance(num_directions, int) or num_directions < 1:
        raise ValueError(f"expected num_directions as an int >= 1, got {num_directions!r}")
    h = _check_number("h", h, low=0.0)
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    if not torch.isfinite(x).all():
        raise ValueError("expected finite inputs, got NaN or infinite values")
    n, k = len(x), handle.num_classes
    if k < 2:
        raise ValueError(f"the curvature statistic needs at least 2 classes, got a model with {k}")
    dim = math.prod(handle.input_shape)
    dirs = random_directions(dim, num_directions, seed=seed).to(handle.device)
    m = num_directions
    per_input = 2 * m + 1
    module = handle.module
    shape = handle.input_shape
    # images per forward batch: about 4096 evaluated points, at least one image
    images_per_batch = batch_size or max(1, 4096 // per_input)

    def run(xb: torch.Tensor) -> torch.Tensor:
        flat = xb.reshape(len(xb), 1, dim)
        pts = torch.cat([flat, flat + h * dirs[None], flat - h * dirs[None]], dim=1)  # (B, 2M+1, D)
        logits = module(pts.reshape(-1, *shape)).reshape(len(xb), per_input, -1).double()
        f0, fp, fm = logits[:, 0], logits[:, 1 : m + 1], logits[:, m + 1 :]
        j = f0.argmax(dim=1)
        second = (fp + fm - 2 * f0[:, None]).mean(dim=1) / (h * h)  # (B, K): mean second difference of each f_i
        rho = second - second.gather(1, j[:, None])  # of F_i = f_i - f_j
        rho.scatter_(1, j[:, None], math.nan)
        return torch.cat([rho.float(), j[:, None].float()], dim=1)

    out = map_batches(
        run,
        x,
        batch_size=images_per_batch,
        device=handle.device,
        progress=progress,
        cancel=cancel,
        desc="curvature statistic",
    )
    if not torch.isfinite(out[:, :k].nan_to_num(0.0)).all():
        raise ValueError(f"model {handle.name!r} returned NaN or infinite logits near the inputs")
    rho = out[:, :k].contiguous()
    predicted = out[:, k].round().to(torch.int64)
    if k == 1 or n == 0:
        score = torch.full((n,), math.nan)
        recovered = torch.full((n,), -1, dtype=torch.int64)
    else:
        score, recovered = (-rho).nan_to_num(-math.inf).max(dim=1)
    return CurvatureStatistic(
        rho=rho,
        predicted=predicted,
        score=score.float(),
        recovered=recovered,
        h=h,
        num_directions=int(num_directions),
        seed=int(seed),
    )


def threshold_for_fpr(clean_scores: torch.Tensor | np.ndarray, fpr: float) -> float:
    """The smallest clean score t with at most ``floor(fpr * N)`` clean scores strictly above it.

    Flagging ``score > t`` then has a false-positive rate <= ``fpr`` on these clean inputs (NaN scores ignored).
    """
    fpr = _check_number("fpr", fpr, low=0.0, high=1.0, open_low=False)
    s = np.asarray(clean_scores.numpy() if isinstance(clean_scores, torch.Tensor) else clean_scores, dtype=np.float64)
    s = np.sort(s[np.isfinite(s)])
    if len(s) == 0:
        raise ValueError("expected at least one finite clean score to set a threshold, got none")
    allowed = int(math.floor(fpr * len(s) + 1e-9))
    if allowed >= len(s):
        return -math.inf
    return float(s[len(s) - 1 - allowed])


def detect(
    handle: ModelHandle,
    x: torch.Tensor,
    threshold: float,
    *,
    num_directions: int = DEFAULT_DIRECTIONS,
    h: float = DEFAULT_STEP,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DetectionVerdict:
    """The verdict for inputs ``x`` (one input or a batch): flagged as perturbed when ``max_i (-rho_i) > threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or math.isnan(threshold):
        raise ValueError(f"expected threshold as a number, got {threshold!r}")
    stat = curvature_statistic(
        handle, x, num_directions=num_directions, h=h, seed=seed, progress=progress, cancel=cancel
    )
    return DetectionVerdict(
        score=stat.score,
        flagged=stat.score > float(threshold),
        predicted=stat.predicted,
        recovered=stat.recovered,
        threshold=float(threshold),
        rho=stat.rho,
    )


def evaluate_detection(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    fpr: float = 0.05,
    num_directions: int = DEFAULT_DIRECTIONS,
    h: float = DEFAULT_STEP,
    seed: int = 0,
    overshoot: float = 0.02,
    clip: bool | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    """Detection on clean inputs ``x`` vs their DeepFool-perturbed versions: threshold, ROC, AUC, label recovery.

    The threshold is set on the clean inputs for the false-positive rate ``fpr``. Inputs whose attack fails are
    left out of the perturbed set. ``clip``: keep the perturbed inputs in the input range (default: when bounded).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    fpr = _check_number("fpr", fpr, low=0.0, high=1.0, open_low=False)
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    if len(x) == 0:
        raise ValueError("expected at least one clean input, got an empty batch")
    clip = handle.input_range is not None if clip is None else clip
    attack = deepfool(
        handle, x, overshoot=overshoot, clip=clip, progress=scaled_progress(progress, 0.0, 0.3), cancel=cancel
    )
    xp = x + attack.perturbation
    stat_opts = {"num_directions": num_directions, "h": h, "seed": seed, "cancel": cancel}
    clean = curvature_statistic(handle, x, progress=scaled_progress(progress, 0.3, 0.65), **stat_opts)
    ok = attack.converged
    pert = curvature_statistic(handle, xp, progress=scaled_progress(progress, 0.65, 1.0), **stat_opts)
    pert_score = torch.where(ok, pert.score, torch.full_like(pert.score, math.nan))
    recovered = torch.where(ok, pert.recovered, torch.full_like(pert.recovered, -1))
    threshold = threshold_for_fpr(clean.score, fpr)
    cs = clean.score.double().numpy()
    ps = pert_score[ok].double().numpy()
    fpr_at = float((cs > threshold).mean())
    tpr_at = float((ps > threshold).mean()) if len(ps) else math.nan
    if len(ps) and len(cs):
        y = np.r_[np.zeros(len(cs)), np.ones(len(ps))]
        s = np.r_[cs, ps]
        roc_f, roc_t, roc_th = roc_curve(y, s)
        auc = float(roc_auc_score(y, s))
    else:
        roc_f = roc_t = roc_th = np.zeros(0)
        auc = math.nan
    recovery = float((recovered[ok] == clean.predicted[ok]).float().mean()) if bool(ok.any()) else math.nan
    if progress is not None:
        progress(1.0, f"detection: AUC {auc:.3f} on {len(cs)} clean / {len(ps)} perturbed inputs")
    return DetectionResult(
        clean_score=clean.score,
        perturbed_score=pert_score,
        clean_rho=clean.rho,
        perturbed_rho=pert.rho,
        clean_label=clean.predicted,
        perturbed_label=pert.predicted,
        recovered=recovered,
        attack_norm=attack.norm,
        attack_converged=ok,
        perturbed=xp,
        threshold=threshold,
        target_fpr=fpr,
        fpr_at_threshold=fpr_at,
        tpr_at_threshold=tpr_at,
        roc_fpr=np.asarray(roc_f, dtype=np.float64),
        roc_tpr=np.asarray(roc_t, dtype=np.float64),
        roc_thresholds=np.asarray(roc_th, dtype=np.float64),
        auc=auc,
        recovery_accuracy=recovery,
        h=float(h),
        num_directions=int(num_directions),
        seed=int(seed),
        overshoot=float(overshoot),
    )


def cached_evaluate_detection(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    fpr: float = 0.05,
    num_directions: int = DEFAULT_DIRECTIONS,
    h: float = DEFAULT_STEP,
    seed: int = 0,
    overshoot: float = 0.02,
    clip: bool | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: DiskCache | None = None,
) -> DetectionResult:
    """`evaluate_detection` through the disk cache (key: model and input fingerprints, every option)."""
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    params = {"fpr": fpr, "num_directions": num_directions, "h": h, "seed": seed, "overshoot": overshoot, "clip": clip}
    key = cache_key(
        "detection.evaluate_detection",
        DETECTION_VERSION,
        model=handle.fingerprint,
        inputs=tensor_fingerprint(x),
        params=params,
    )
    store = cache if cache is not None else default_cache()
    return store.get_or_compute(
        key, lambda: evaluate_detection(handle, x, progress=progress, cancel=cancel, **params), cls=DetectionResult
    )

"""Curvature-based detection of small adversarial perturbations, and label recovery (Fawzi et al., CVPR 2018).

For an input x predicted as class j and every other class i, the statistic estimates the mean curvature of
``F_i = f_i - f_j`` at x from M random unit directions v_m and a step h (input units):

    rho_i = mean_m [F_i(x + h v_m) + F_i(x - h v_m) - 2 F_i(x)] / h^2

(for a quadratic F with Hessian H it is the mean of v^T H v over the directions, ``tr(H) / D`` in expectation; the
directions come in groups of orthonormal vectors, so a full group of D gives exactly ``tr(H) / D``).

Sign. With docs/DESIGN.md §3's ``F_i = f_i - f_j`` (x's region is ``{F_i < 0}``) a clean input sits in a locally convex
region: every rho_i is positive, like ``||x - c|| - R`` inside a ball. An input pushed just across the boundary by a
small perturbation sees its original class's region as a convex blob next to it, so rho at the original class is
strongly *negative*. The detection score is therefore ``max_i (-rho_i)`` and the recovered label
``argmin_i rho_i`` — Fawzi et al.'s rule "perturbed if max_i rho_i > t, label argmax_i rho_i" written for
``f_j - f_i``. (Measured on the built-in digits models: the other sign gives an AUC below 0.5.) x is flagged as
perturbed when its score exceeds t, with t chosen on clean inputs for a target false-positive rate.

Held out. `evaluate_detection` splits the clean inputs (seeded): t is set on the *calibration* part, and the
false-positive rate, ROC, AUC and label recovery are measured on the *held-out* part and its DeepFool perturbations
only. On the calibration inputs the false-positive rate is <= the target by construction, so it says nothing; on
held-out inputs it can exceed the target, and the AUC can fall below 0.5 (the detector then does not work on this
model: perturbed inputs look *less* perturbed than clean ones).

Finite differences only: works on any model (smooth or ReLU). Units: logits per squared input unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geometry.boundary.deepfool import deepfool
from geometry.inspection.options import DetectionOptions
from geometry.models.handle import ModelHandle
from geometry.runtime.compute import CancelToken, Progress, map_batches, scaled_progress
from geometry.runtime.memo import memoize
from geometry.runtime.options import KeywordOptions, options_with
from geometry.runtime.validate import check_int, check_number

__all__ = [
    "CurvatureStatistic",
    "DetectionOptions",
    "DetectionResult",
    "DetectionVerdict",
    "cached_evaluate_detection",
    "calibration_split",
    "curvature_statistic",
    "detect",
    "evaluate_detection",
    "random_directions",
    "threshold_for_fpr",
]


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
    """Detection of DeepFool perturbations by the curvature statistic, calibrated on some clean inputs and measured on
    others.

    The N clean inputs are split (seeded, `calibration_split`): the threshold comes from the ``calibration_*`` part
    alone; every other field (``clean_*``, ``perturbed*``, the rates, the ROC, the AUC, the recovery) is measured on
    the H held-out clean inputs and their DeepFool perturbations. Indices refer to the rows of the ``x`` given.
    """

    calibration_index: torch.Tensor  # (C,) int64: rows of x the threshold is set on
    held_out_index: torch.Tensor  # (H,) int64: rows of x everything else is measured on (disjoint, C + H = N)
    calibration_score: torch.Tensor  # (C,) float32: max_i (-rho_i) at the calibration inputs
    clean_score: torch.Tensor  # (H,) float32: max_i (-rho_i) at the held-out clean inputs
    perturbed_score: torch.Tensor  # (H,) float32: ... at their DeepFool-perturbed versions (NaN where it failed)
    clean_rho: torch.Tensor  # (H, K) float32
    perturbed_rho: torch.Tensor  # (H, K) float32
    clean_label: torch.Tensor  # (H,) int64: prediction at x
    perturbed_label: torch.Tensor  # (H,) int64: prediction at x + r
    recovered: torch.Tensor  # (H,) int64: argmin_i rho_i at x + r (-1 where the attack failed)
    attack_norm: torch.Tensor  # (H,) float32: ||r|| (L2 input units)
    attack_converged: torch.Tensor  # (H,) bool: x + r is classified otherwise than x
    perturbed: torch.Tensor  # (H, *S) float32: x + r
    threshold: float  # t: flag inputs with score > t (set on the calibration inputs)
    target_fpr: float  # the false-positive rate t was chosen for, on the calibration inputs
    calibration_fpr: float  # share of calibration inputs with score > t: <= target_fpr by construction (in-sample)
    fpr_at_threshold: float  # share of held-out clean inputs with score > t (the false-positive rate to quote)
    tpr_at_threshold: float  # share of (successfully) perturbed held-out inputs with score > t
    roc_fpr: np.ndarray  # (T,) float64: ROC curve on the held-out part, clean = negative, perturbed = positive
    roc_tpr: np.ndarray  # (T,) float64
    roc_thresholds: np.ndarray  # (T,) float64
    auc: float  # held-out area under the ROC curve (NaN without a held-out input of either kind)
    worse_than_chance: bool  # auc < 0.5: perturbed inputs score lower than clean ones, the detector fails here
    recovery_accuracy: float  # share of perturbed held-out inputs whose recovered label is the clean prediction
    h: float
    num_directions: int
    seed: int
    overshoot: float

    def __len__(self) -> int:
        return len(self.clean_score)

    @property
    def n_calibration(self) -> int:
        """Clean inputs the threshold was set on."""
        return len(self.calibration_index)

    @property
    def n_held_out(self) -> int:
        """Held-out clean inputs (the negatives of the ROC)."""
        return len(self.held_out_index)

    @property
    def n_perturbed(self) -> int:
        """Held-out inputs whose DeepFool perturbation flipped the prediction (the positives of the ROC)."""
        return int(self.attack_converged.sum())

    def reading(self, model: str) -> str:
        """One sentence on whether the detector works on ``model``, from the held-out AUC (false when it is not)."""
        counts = f"{self.n_held_out} held-out clean inputs and {self.n_perturbed} perturbed ones"
        if not math.isfinite(self.auc):
            return f"No held-out AUC on {model}: it needs at least one input of each kind, got {counts}."
        if self.worse_than_chance:
            return (
                f"The detector does not work on {model}: its held-out AUC {self.auc:.3f} is below 0.5, i.e. "
                f"perturbed inputs score lower than clean ones ({counts})."
            )
        if self.auc == 0.5:
            return f"The detector is no better than chance on {model}: held-out AUC 0.5 ({counts})."
        return (
            f"The detector separates perturbed from clean inputs on {model} better than chance: held-out AUC "
            f"{self.auc:.3f} ({counts})."
        )


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


def curvature_statistic(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    options: DetectionOptions | None = None,
    num_directions: int | None = None,
    h: float | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CurvatureStatistic:
    """rho_i of every input of ``x`` (N, *input_shape) from ``num_directions`` random directions and step ``h``.

    The same seeded directions serve every input; each input costs 2M + 1 model evaluations, batched.
    ``options``: a `DetectionOptions` (its defaults are this function's); a keyword that is not None overrides it.
    """
    opts = options_with(DetectionOptions, options, {"num_directions": num_directions, "h": h, "seed": seed})
    num_directions, h, seed = opts.num_directions, opts.h, opts.seed
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
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
    fpr = check_number("fpr", fpr, low=0.0, high=1.0, open_low=False)
    s = np.asarray(clean_scores.numpy() if isinstance(clean_scores, torch.Tensor) else clean_scores, dtype=np.float64)
    s = np.sort(s[np.isfinite(s)])
    if len(s) == 0:
        raise ValueError("expected at least one finite clean score to set a threshold, got none")
    allowed = int(math.floor(fpr * len(s) + 1e-9))
    if allowed >= len(s):
        return -math.inf
    return float(s[len(s) - 1 - allowed])


def calibration_split(n: int, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``(calibration, held_out)`` of N clean inputs, each sorted int64, disjoint, together ``0 .. N - 1``.

    A seeded random permutation: ``round(share * N)`` rows calibrate (at least one, at most N - 1), the rest are
    held out. Needs N >= 2.
    """
    n = check_int("n", n, 2)
    share = check_number("share", share, low=0.0, high=1.0)
    n_cal = min(max(int(round(share * n)), 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return order[:n_cal].sort().values, order[n_cal:].sort().values


def detect(
    handle: ModelHandle,
    x: torch.Tensor,
    threshold: float,
    *,
    options: DetectionOptions | None = None,
    num_directions: int | None = None,
    h: float | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DetectionVerdict:
    """The verdict for inputs ``x`` (one input or a batch): flagged as perturbed when ``max_i (-rho_i) > threshold``.

    ``options`` and the keywords after it: as in `curvature_statistic`."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or math.isnan(threshold):
        raise ValueError(f"expected threshold as a number, got {threshold!r}")
    opts = options_with(DetectionOptions, options, {"num_directions": num_directions, "h": h, "seed": seed})
    stat = curvature_statistic(handle, x, options=opts, progress=progress, cancel=cancel)
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
    options: DetectionOptions | None = None,
    fpr: float | None = None,
    num_directions: int | None = None,
    h: float | None = None,
    seed: int | None = None,
    overshoot: float | None = None,
    clip: bool | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    """Detection on clean inputs ``x`` (N, *input_shape) vs DeepFool perturbations: threshold, ROC, AUC, recovery.

    ``x`` is split (seeded by ``seed``, `calibration_split`): the threshold is set for the false-positive rate ``fpr``
    on the calibration part; the held-out part and its DeepFool perturbations give every reported rate, the ROC and
    the AUC (N >= 2). Held-out inputs whose attack fails are left out of the perturbed set. ``clip``: keep the
    perturbed inputs in the input range (default: when bounded). ``options``: a `DetectionOptions` holding these
    settings (its defaults are this function's); a keyword that is not None overrides the option of the same name.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fields = {"fpr": fpr, "num_directions": num_directions, "h": h, "seed": seed, "overshoot": overshoot}
    opts = options_with(DetectionOptions, options, {**fields, "clip": clip})
    fpr, h, num_directions, seed = opts.fpr, opts.h, opts.num_directions, opts.seed
    overshoot, clip = opts.overshoot, opts.clip
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    if len(x) == 0:
        raise ValueError("expected at least one clean input, got an empty batch")
    if len(x) < 2:
        raise ValueError("expected at least 2 clean inputs (one to set the threshold on, one held out), got 1")
    clip = handle.input_range is not None if clip is None else clip
    cal_index, held_index = calibration_split(len(x), opts.calibration_share, seed)
    stat_opts = {"options": opts, "cancel": cancel}
    calibration = curvature_statistic(handle, x[cal_index], progress=scaled_progress(progress, 0.0, 0.25), **stat_opts)
    threshold = threshold_for_fpr(calibration.score, fpr)
    xh = x[held_index]
    attack = deepfool(
        handle, xh, overshoot=overshoot, clip=clip, progress=scaled_progress(progress, 0.25, 0.45), cancel=cancel
    )
    xp = xh + attack.perturbation
    clean = curvature_statistic(handle, xh, progress=scaled_progress(progress, 0.45, 0.7), **stat_opts)
    ok = attack.converged
    pert = curvature_statistic(handle, xp, progress=scaled_progress(progress, 0.7, 1.0), **stat_opts)
    pert_score = torch.where(ok, pert.score, torch.full_like(pert.score, math.nan))
    recovered = torch.where(ok, pert.recovered, torch.full_like(pert.recovered, -1))
    cal_scores = calibration.score.double().numpy()
    cs = clean.score.double().numpy()
    ps = pert_score[ok].double().numpy()
    calibration_fpr = float((cal_scores > threshold).mean())
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
        progress(1.0, f"detection: held-out AUC {auc:.3f} on {len(cs)} clean / {len(ps)} perturbed inputs")
    return DetectionResult(
        calibration_index=cal_index,
        held_out_index=held_index,
        calibration_score=calibration.score,
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
        calibration_fpr=calibration_fpr,
        fpr_at_threshold=fpr_at,
        tpr_at_threshold=tpr_at,
        roc_fpr=np.asarray(roc_f, dtype=np.float64),
        roc_tpr=np.asarray(roc_t, dtype=np.float64),
        roc_thresholds=np.asarray(roc_th, dtype=np.float64),
        auc=auc,
        worse_than_chance=bool(auc < 0.5),
        recovery_accuracy=recovery,
        h=float(h),
        num_directions=int(num_directions),
        seed=int(seed),
        overshoot=float(overshoot),
    )


@memoize(name="geometry.inspection.detection.evaluate_detection")
def _memoized_evaluate_detection(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    options: DetectionOptions = DetectionOptions(),  # noqa: B008 (frozen: a shared default is safe)
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    return evaluate_detection(handle, x, options=options, progress=progress, cancel=cancel)


cached_evaluate_detection = KeywordOptions(
    _memoized_evaluate_detection,
    DetectionOptions,
    doc="""`evaluate_detection` through the disk cache (key: model and input fingerprints, every option):
    ``options=DetectionOptions(...)`` or its fields as keywords; ``cache=`` picks a `DiskCache` (False: bypass);
    ``.is_cached(...)`` answers without computing.""",
)

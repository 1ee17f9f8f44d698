"""The report's sections, computed: each section's numbers as a frozen dataclass, and its one-line reading.

No plotly and no HTML here (`geometry.report.html` draws and writes them). Every analysis goes through the library's
memoized functions (`cached_deepfool`, `cached_curvature`, `cached_frequency_margins`, ...), so the report reads the
very cache entries the pages write, and a second report is quick.

    results = compute_sections(handle, dataset, ReportConfig.quick())
    results.curvature.summary      # "Along random directions the boundary is nearly flat ..."
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import numpy as np
import torch

from geometry.boundary.curvature import CurvatureResult, cached_curvature
from geometry.boundary.deepfool import cached_deepfool
from geometry.boundary.spectrum import FEW_RULE, CurvatureConcentration, concentration
from geometry.data.datasets import Dataset
from geometry.inspection.connectivity import PathResult, cached_connectivity_batch
from geometry.inspection.detection import DetectionResult, cached_evaluate_detection
from geometry.inspection.margins import FrequencyMargins, cached_frequency_margins, frequency_bands
from geometry.inspection.robustness import (
    ROTATION_SIZES,
    SweepResult,
    cached_image_sweep,
    cached_shapes_rotation_sweeps,
    cached_shapes_sweep,
    is_shapes_model,
)
from geometry.models.handle import ModelHandle, parameter_count
from geometry.report.config import SECTION_KEYS, SECTION_TITLES, ReportConfig
from geometry.report.predictions import cached_predictions
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress, scaled_progress

__all__ = [
    "AccuracySection",
    "ConnectivitySection",
    "CurvatureSection",
    "DeepFoolSection",
    "DetectionSection",
    "FrequencySection",
    "ModelSection",
    "ReportResults",
    "RobustnessSection",
    "STRESS_POINTS",
    "SectionResult",
    "compute_sections",
    "report_images",
]

# The model card entries the report lists, in this order.
CARD_KEYS = (
    "architecture",
    "activation",
    "smooth",
    "dataset",
    "train_size",
    "test_accuracy",
    "seed",
    "training_command",
    "description",
)
# Progress weights of the computed sections (roughly their cost).
STEP_WEIGHTS = {
    "accuracy": 1,
    "deepfool": 2,
    "frequency": 8,
    "curvature": 3,
    "connectivity": 3,
    "detection": 4,
    "robustness": 3,
}
IMAGE_SWEEPS = ("scale", "shift", "rotate", "resolution")
# Each own-image sweep's stress point (what the robustness reading quotes and the go / no-go checks): its words and
# its swept value (the shift sweep: (x, y) in fractions of the image, i.e. 30% to the left and up).
STRESS_POINTS: dict[str, tuple[str, float | tuple[float, float]]] = {
    "scale": ("at half size", 0.5),
    "rotate": ("rotated by 40 degrees", 40.0),
    "resolution": ("at half resolution", 0.5),
    "shift": ("shifted by 30% in x and y", (-0.3, -0.3)),
}


def report_images(dataset: Dataset, n: int, seed: int) -> Dataset:
    """The report's sample: ``n`` images of ``dataset`` in a seeded random order (all of them if fewer)."""
    order = np.random.default_rng(seed).permutation(len(dataset))[: min(n, len(dataset))]
    return dataset.subset(np.sort(order))


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _value_at(sweep: SweepResult, value: float | tuple[float, float], what: str = "kept") -> float:
    """``what`` of ``sweep`` at the swept value nearest ``value`` (a point (x, y) for a 2D sweep)."""
    values = np.asarray(sweep.values, dtype=float)
    distance = np.abs(values - np.asarray(value, dtype=float))
    i = int(np.argmin(distance if values.ndim == 1 else distance.max(axis=1)))
    return float(getattr(sweep, what)[i])


# -- the sections' results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionResult:
    """What every section has: ``key`` (one of SECTION_KEYS), whether it applies to this model, and the reason when
    it does not (``note``: the one-line reading then)."""

    key: str
    applicable: bool
    note: str

    @property
    def title(self) -> str:
        return SECTION_TITLES[self.key]

    @property
    def summary(self) -> str:
        """The section's one-line reading."""
        return self.note

    @property
    def caveats(self) -> tuple[str, ...]:
        """What qualifies the section's numbers (the warnings the pages show beside them); empty when nothing does."""
        return ()


@dataclass(frozen=True)
class ModelSection(SectionResult):
    name: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    parameters: int
    device: str
    fingerprint: str
    card: tuple[tuple[str, str], ...]  # (entry, value) of the model card entries in CARD_KEYS
    architecture: str
    activation: str | None
    smooth: bool | None  # None: unknown
    trained_on: str | None  # the data set named by the model card
    data_name: str
    data_split: str
    data_size: int

    @property
    def rows(self) -> list[tuple[str, str]]:
        """The model card as (entry, value) rows."""
        return [
            ("name", self.name),
            ("input", "x".join(map(str, self.input_shape))),
            ("classes", f"{len(self.class_names)}: {', '.join(self.class_names)}"),
            ("parameters", f"{self.parameters:,}"),
            ("device", self.device),
            ("fingerprint", self.fingerprint[:16]),
            *((key.replace("_", " "), value) for key, value in self.card),
        ]

    @property
    def summary(self) -> str:
        act = f" with {self.activation} activations" if self.activation is not None else ""
        trained = f", trained on {self.trained_on}" if self.trained_on is not None else ""
        smooth = {True: "smooth", False: "piecewise linear", None: "of unknown smoothness"}[self.smooth]
        return (
            f"{self.name}: {self.architecture}{act} ({smooth}), {self.parameters:,} parameters{trained}; "
            f"input {'x'.join(map(str, self.input_shape))}, {len(self.class_names)} classes; analysed on "
            f"{self.data_name} ({self.data_split}, {self.data_size:,} inputs)."
        )


@dataclass(frozen=True)
class AccuracySection(SectionResult):
    accuracy: float  # share of labelled inputs predicted right
    labelled: int  # inputs with a label
    per_class: np.ndarray  # (K,) float: accuracy per true class, NaN for a class without inputs
    counts: np.ndarray  # (K,) int: inputs per true class
    class_names: tuple[str, ...]
    data_name: str
    data_split: str

    @property
    def summary(self) -> str:
        if not self.applicable:
            return self.note
        worst = int(np.nanargmin(self.per_class)) if np.isfinite(self.per_class).any() else 0
        return (
            f"Accuracy {self.accuracy:.1%} on {self.labelled:,} {self.data_split} inputs of {self.data_name}; the "
            f"weakest class is {self.class_names[worst]!r} ({_fmt(self.per_class[worst], '.0%')})."
        )


@dataclass(frozen=True)
class DeepFoolSection(SectionResult):
    norm: torch.Tensor  # (N,) float32: DeepFool's ||r|| per input (L2, [0, 1] pixels)
    converged: torch.Tensor  # (N,) bool
    typical_norm: float  # median ||x|| of the inputs (for scale)

    @property
    def ok(self) -> np.ndarray:
        """(N,) bool: the runs that crossed the boundary (their norm is a distance to it)."""
        return self.converged.numpy() & np.isfinite(self.norm.numpy())

    @property
    def median_margin(self) -> float:
        """Median ||r|| over the converged runs (NaN when none converged)."""
        ok = self.ok
        return float(np.median(self.norm.numpy()[ok])) if ok.any() else math.nan

    @property
    def low_margin(self) -> float:
        """10th percentile of ||r|| over the converged runs (NaN when none converged)."""
        ok = self.ok
        return float(np.quantile(self.norm.numpy()[ok], 0.1)) if ok.any() else math.nan

    @property
    def summary(self) -> str:
        ok = self.ok
        if not ok.any():
            return f"DeepFool did not cross the boundary for any of {len(ok)} inputs."
        med, q10 = self.median_margin, self.low_margin
        rel = f" ({med / self.typical_norm:.1%} of a typical input's norm)" if self.typical_norm > 0 else ""
        return (
            f"Median distance to the nearest boundary {med:.3g}{rel}; 10% of inputs are within {q10:.3g} "
            f"({int((~ok).sum())} of {len(ok)} runs did not converge)."
        )

    @property
    def caveats(self) -> tuple[str, ...]:
        failed = int((~self.ok).sum())
        if not failed:
            return ()
        return (
            f"{failed} of {len(self.ok)} DeepFool runs did not reach the boundary: they are left out of the median "
            "and the percentile, which describe the other inputs only.",
        )


@dataclass(frozen=True)
class FrequencySection(SectionResult):
    margins: FrequencyMargins | None  # None when not applicable
    input_shape: tuple[int, ...]

    @staticmethod
    def crossed_median(margins: torch.Tensor, converged: torch.Tensor) -> np.ndarray:
        """Median over the images (axis 0) with a run that did not cross the boundary counted as infinitely far: its
        norm is only a lower bound (0 when the subspace holds no gradient at all). inf: most runs did not cross."""
        values = np.where(converged.numpy(), margins.numpy(), np.inf)
        return np.median(values, axis=0) if len(values) else np.full(values.shape[1:], np.nan)

    @property
    def summary(self) -> str:
        """The margins of the lowest and the highest band, and which end is closer to the boundary (the smaller
        median; a band whose runs mostly do not cross counts as farther than any that does)."""
        res = self.margins
        if res is None:
            return self.note
        med = self.crossed_median(res.margins, res.converged)
        labels = res.band_labels()
        rand = (
            float(self.crossed_median(res.random_margins.reshape(-1, 1), res.random_converged.reshape(-1, 1))[0])
            if res.random_margins.numel()
            else math.nan
        )
        nc = int((~res.converged).sum())
        low, high = float(med[0]), float(med[-1])
        if low < high:
            lean = "the model is more sensitive to its lowest frequencies than to its highest (smaller margin)"
        elif high < low:
            lean = "the model is more sensitive to its highest frequencies than to its lowest (smaller margin)"
        elif math.isinf(low):
            lean = "most runs cross the boundary in neither band"
        else:
            lean = "the two ends of the spectrum are equally close to the boundary"

        def margin(v: float) -> str:
            return "not reached (most runs did not cross)" if math.isinf(v) else _fmt(v)

        return (
            f"Median margin {margin(low)} in the lowest band ({labels[0]}) and {margin(high)} in the highest "
            f"({labels[-1]}): {lean}; a random subspace of the same dimension ({res.subspace_dim}) gives "
            f"{margin(rand)}. {nc} of {res.margins.numel()} runs did not converge (drawn as crosses, lower bounds; "
            "counted as not reached in the medians)."
        )


@dataclass(frozen=True)
class CurvatureSection(SectionResult):
    curvature: CurvatureResult  # every image's result, one row each

    @property
    def measured(self) -> np.ndarray:
        """(N,) bool: the images whose principal curvatures are all finite (DeepFool found a boundary point)."""
        return np.isfinite(self.curvature.curvatures.numpy()).all(axis=1)

    @property
    def most_curved(self) -> float:
        """Median over the measured images of the largest principal |kappa| (1 / input units)."""
        rows = self.measured
        return float(np.median(np.abs(self.curvature.curvatures.numpy()[rows]).max(axis=1))) if rows.any() else math.nan

    @property
    def random_median(self) -> float:
        """Median |kappa| along the random tangent directions of the measured images."""
        rand = self.curvature.random_curvatures.numpy()[self.measured]
        return float(np.nanmedian(np.abs(rand))) if np.isfinite(rand).any() else math.nan

    @property
    def concentration(self) -> CurvatureConcentration:
        """The share of the curvature energy sum kappa^2 in the most curved directions at each point
        (`geometry.boundary.spectrum`)."""
        return concentration(self.curvature)

    @property
    def summary(self) -> str:
        """How concentrated the curvature is: the share of sum kappa^2 in the m = FEW_FRACTION * D' most curved of the
        D' tangent directions, against m / D' (what m random directions carry). "Curved in a few directions" needs at
        least FEW_SHARE of it there (an unstructured random Hessian: about 31%); "spread" less; neither when the share
        is bracketed across FEW_SHARE (`geometry.boundary.spectrum`)."""
        rows = self.measured
        if not rows.any():
            return "DeepFool found no boundary point to measure the curvature at."
        top, flat = self.most_curved, self.random_median
        conc = self.concentration
        where = f"measured at {int(rows.sum())} boundary points, method {self.curvature.method}"
        sizes = f"largest principal |kappa| {_fmt(top)}, median |kappa| along random tangent directions {_fmt(flat)}"
        concentrated = conc.reading(self.curvature.k)
        if not top > 0:
            reading = f"every principal curvature is 0: the boundary is flat at these points ({sizes})"
        elif not concentrated:
            reading = (
                f"{sizes}; with {conc.tangent_dims} tangent direction{'s' if conc.tangent_dims != 1 else ''} there "
                "is no spectrum to be concentrated in a few directions or spread over many"
            )
        else:
            reading = f"{concentrated} ({FEW_RULE}); {sizes}"
        return f"{reading[0].upper()}{reading[1:]} ({where})."

    @property
    def caveats(self) -> tuple[str, ...]:
        res = self.curvature
        rows = self.measured
        out = []
        if res.method == "softplus":
            shift = res.smoothing_shift.numpy()[rows]
            moved = f"{float(np.nanmax(shift)):.1e}" if rows.any() and np.isfinite(shift).any() else "n/a"
            out.append(
                f"Measured on a softplus copy (beta = {res.beta:g}) of this piecewise-linear network, not on the "
                "network itself (whose exact Hessian is zero almost everywhere); each boundary point was moved onto "
                f"the smoothed boundary, by at most {moved}."
            )
        elif res.method == "finite-difference":
            asym = res.asymmetry.numpy()[rows]
            worst = float(np.nanmax(asym)) if rows.any() and np.isfinite(asym).any() else math.nan
            out.append(
                f"Measured by finite differences of gradients at scale h = {res.h:g}: on a piecewise-linear network "
                "this is the bend at that scale, kinks included, not a smooth curvature"
                + (f" (the assembled Hessian is {worst:.0%} asymmetric at worst)." if math.isfinite(worst) else ".")
            )
        elif rows.any() and not self.most_curved > 0:
            out.append(
                "Every principal curvature is exactly 0: either the boundary is flat here or the network is piecewise "
                "linear (ReLU, max-pooling), whose exact Hessian is zero almost everywhere."
            )
        missing = int((~rows).sum())
        if missing:
            out.append(f"{missing} of {len(rows)} images had no boundary point (DeepFool did not converge): left out.")
        conv = res.converged.numpy()[rows]
        if conv.size and not conv.all():
            out.append(
                f"{int((~conv).sum())} of {conv.size} principal curvatures did not converge (Lanczos residual above "
                f"its tolerance; largest {float(np.nanmax(res.residuals.numpy()[rows])):.1e})."
            )
        return tuple(out)


@dataclass(frozen=True)
class ConnectivitySection(SectionResult):
    paths: PathResult | None  # None when not measured
    class_names: tuple[str, ...]

    @property
    def example(self) -> int:
        """The pair whose path the report draws: the first one that needed anchors (else the first)."""
        assert self.paths is not None
        bent = [p for p in range(len(self.paths)) if int(self.paths.num_anchors[p]) > 0]
        return bent[0] if bent else 0

    @property
    def summary(self) -> str:
        res = self.paths
        if res is None:
            return self.note
        return (
            f"{res.success_rate:.0%} of {len(res)} random same-class pairs are joined by a path that stays in "
            f"their class ({res.straight_rate:.0%} by the straight segment); the largest detour is "
            f"{float(res.max_deviation.max()):.1%} of the distance between the two inputs."
        )


@dataclass(frozen=True)
class DetectionSection(SectionResult):
    detection: DetectionResult
    smooth: bool | None  # the model's smoothness (None: unknown): the score is a finite-difference curvature

    @property
    def works(self) -> bool | None:
        """False when the held-out AUC is below 0.5 (the detector fails on this model), None when there is none."""
        auc = float(self.detection.auc)
        return None if not math.isfinite(auc) else auc > 0.5

    @property
    def summary(self) -> str:
        res = self.detection
        auc = float(res.auc)
        counts = f"{res.n_held_out} held-out clean inputs, {res.n_perturbed} perturbed"
        if not math.isfinite(auc):
            head = f"No held-out AUC: it needs a held-out input of each kind ({counts})"
        elif auc < 0.5:
            head = (
                f"The detector does not work on this model: its held-out AUC {auc:.2f} is below 0.5 (chance), "
                f"perturbed inputs score lower than clean ones ({counts})"
            )
        elif auc == 0.5:
            head = f"The detector is no better than chance on this model: held-out AUC 0.5 ({counts})"
        else:
            head = (
                f"The curvature statistic separates held-out clean from DeepFool-perturbed inputs with AUC "
                f"{auc:.2f} (0.5 = chance; {counts})"
            )
        return (
            f"{head}. At the threshold set for {res.target_fpr:.0%} false positives on {res.n_calibration} other clean "
            f"inputs, {_fmt(res.fpr_at_threshold, '.0%')} of held-out clean inputs are flagged and "
            f"{_fmt(res.tpr_at_threshold, '.0%')} of perturbed ones; the original label of "
            f"{_fmt(res.recovery_accuracy, '.0%')} of these is recovered."
        )

    @property
    def caveats(self) -> tuple[str, ...]:
        if self.smooth is True:
            return ()
        return (
            f"The score is a finite-difference curvature at scale h = {self.detection.h:g} on a network that is "
            f"{'piecewise linear' if self.smooth is False else 'of unknown smoothness'}: it measures the bend at that "
            "scale, kinks included, and depends on h.",
        )


@dataclass(frozen=True)
class RobustnessSection(SectionResult):
    sweeps: dict[str, SweepResult]  # the own images: "scale", "shift", "rotate", "resolution" (empty: not applicable)
    images: int  # own images swept
    shapes_area: SweepResult | None  # generated shapes (models trained on shapes only): accuracy by object size
    shapes_rotation: dict[float, SweepResult]  # ... by rotation, one sweep per object size (area fraction)
    shapes_position: SweepResult | None  # ... by the object's position

    def stress(self, kind: str) -> tuple[float, str]:
        """``(value, what)`` of the own-image sweep ``kind`` at its stress point (STRESS_POINTS): the accuracy when
        the images are labelled, else the share of predictions kept."""
        sweep = self.sweeps[kind]
        point = STRESS_POINTS[kind][1]
        accuracy = _value_at(sweep, point, "accuracy")
        if math.isfinite(accuracy):
            return accuracy, "accuracy"
        return _value_at(sweep, point, "kept"), "predictions kept"

    @property
    def summary(self) -> str:
        if not self.applicable:
            return self.note
        s = self.sweeps
        kept = ", ".join(f"{label} {_value_at(s[kind], point):.0%}" for kind, (label, point) in STRESS_POINTS.items())
        text = f"Prediction kept {kept} (own images, {self.images} of them)."
        if self.shapes_area is not None:
            area = self.shapes_area
            by_size = ", ".join(
                f"{float(np.mean(r.accuracy)):.0%} at area {a:g}" for a, r in self.shapes_rotation.items()
            )
            text += (
                f" On generated shapes, accuracy is {_value_at(area, 0.02, 'accuracy'):.0%} at 2% of the image, "
                f"{_value_at(area, 0.2, 'accuracy'):.0%} at 20%; averaged over rotations it is {by_size}."
            )
        return text


@dataclass(frozen=True)
class ReportResults:
    """Every section's results, in the report's order (SECTION_KEYS)."""

    model: ModelSection
    accuracy: AccuracySection
    deepfool: DeepFoolSection
    frequency: FrequencySection
    curvature: CurvatureSection
    connectivity: ConnectivitySection
    detection: DetectionSection
    robustness: RobustnessSection

    def __iter__(self) -> Iterator[SectionResult]:
        return (getattr(self, key) for key in SECTION_KEYS)


# -- computing each section --------------------------------------------------------------------------------------------


class SectionRun(TypedDict, total=False):
    """How a section runs its computation: the disk cache (None: the app's), the progress callback and the stop token.
    Every section takes these three keywords and passes them on to its memoized calls; one declaration keeps the
    seven section signatures from repeating them."""

    cache: DiskCache | None
    progress: Progress | None
    cancel: CancelToken | None


def model_section(handle: ModelHandle, dataset: Dataset) -> ModelSection:
    card = handle.card
    return ModelSection(
        key="model",
        applicable=True,
        note="",
        name=handle.name,
        input_shape=tuple(handle.input_shape),
        class_names=tuple(handle.class_names),
        parameters=parameter_count(handle.module),
        device=str(handle.device),
        fingerprint=handle.fingerprint,
        card=tuple((key, str(card[key])) for key in CARD_KEYS if key in card),
        architecture=str(card.get("architecture", type(handle.network).__name__)),
        activation=str(card["activation"]) if "activation" in card else None,
        smooth=handle.smooth,
        trained_on=str(card["dataset"]) if "dataset" in card else None,
        data_name=dataset.name,
        data_split=dataset.split,
        data_size=len(dataset),
    )


def accuracy_section(
    handle: ModelHandle,
    dataset: Dataset,
    **run: Unpack[SectionRun],
) -> AccuracySection:
    labels = dataset.labels
    known = labels >= 0
    k = handle.num_classes
    names = tuple(handle.class_names)
    if not bool(known.any()):
        return AccuracySection(
            key="accuracy",
            applicable=False,
            note="Not applicable: the inputs have no labels.",
            accuracy=math.nan,
            labelled=0,
            per_class=np.full(k, np.nan),
            counts=np.zeros(k, dtype=int),
            class_names=names,
            data_name=dataset.name,
            data_split=dataset.split,
        )
    pred = cached_predictions(handle, dataset.images, **run).predicted
    per = np.full(k, np.nan)
    counts = np.zeros(k, dtype=int)
    for c in range(k):
        m = labels == c
        counts[c] = int(m.sum())
        if counts[c]:
            per[c] = float((pred[m] == c).float().mean())
    return AccuracySection(
        key="accuracy",
        applicable=True,
        note="",
        accuracy=float((pred[known] == labels[known]).float().mean()),
        labelled=int(known.sum()),
        per_class=per,
        counts=counts,
        class_names=names,
        data_name=dataset.name,
        data_split=dataset.split,
    )


def deepfool_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> DeepFoolSection:
    r = cached_deepfool(handle, x, config.deepfool, **run)
    return DeepFoolSection(
        key="deepfool",
        applicable=True,
        note="",
        norm=r.norm,
        converged=r.converged,
        typical_norm=float(x.reshape(len(x), -1).norm(dim=1).median()),
    )


def band_choice(handle: ModelHandle, bands: int | None) -> list[int] | None:
    """``bands`` DCT bands spread evenly from the lowest to the highest (None: all of them)."""
    total = len(frequency_bands(handle.input_shape))
    if bands is None or bands >= total:
        return None
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, bands)})


def frequency_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> FrequencySection:
    shape = tuple(handle.input_shape)
    if len(shape) != 3:
        note = f"Not applicable: frequency bands need image inputs, this model takes inputs of shape {shape}."
        return FrequencySection(key="frequency", applicable=False, note=note, margins=None, input_shape=shape)
    res = cached_frequency_margins(
        handle,
        x,
        bands=band_choice(handle, config.bands),
        full=False,
        seed=config.seed,
        **run,
    )
    return FrequencySection(key="frequency", applicable=True, note="", margins=res, input_shape=shape)


def curvature_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> CurvatureSection:
    """Curvature at each image's DeepFool boundary point, one image per call: the Curvature page measures one image
    at a time, so with the page's options (`PAGE_CURVATURE`) each image is the page's own cache entry."""
    options = config.curvature
    tangent_dims = max(1, math.prod(handle.input_shape) - 1)
    if options.k > tangent_dims:  # as the page does: k clipped to the tangent space (the same result, the same key)
        options = dataclasses.replace(options, k=tangent_dims)
    n = len(x)
    results = [
        cached_curvature(
            handle,
            x[i : i + 1],
            options,
            progress=scaled_progress(run.get("progress"), i / n, (i + 1) / n),
            cancel=run.get("cancel"),
            cache=run.get("cache"),
        )
        for i in range(n)
    ]
    return CurvatureSection(key="curvature", applicable=True, note="", curvature=concatenate_curvatures(results))


def concatenate_curvatures(results: list[CurvatureResult]) -> CurvatureResult:
    """One `CurvatureResult` of the images of ``results`` (same model and options): per-image tensors stacked,
    settings from the first, ``seconds`` summed."""
    if not results:
        raise ValueError("expected at least one curvature result, got none")
    first = results[0]
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(first):
        value = getattr(first, f.name)
        if isinstance(value, torch.Tensor):
            fields[f.name] = torch.cat([getattr(r, f.name) for r in results])
        elif f.name == "seconds":
            fields[f.name] = float(sum(r.seconds for r in results))
        else:
            fields[f.name] = value
    return CurvatureResult(**fields)


def connectivity_section(
    handle: ModelHandle,
    data: Dataset,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> ConnectivitySection:
    labels = data.labels if bool((data.labels >= 0).all()) else None
    names = tuple(handle.class_names)
    try:
        res = cached_connectivity_batch(
            handle,
            data.images,
            labels,
            num_pairs=config.connectivity_pairs,
            seed=config.seed,
            **run,
        )
    except ValueError as err:  # e.g. no class with two inputs: the section says so instead of failing the report
        return ConnectivitySection(
            key="connectivity", applicable=False, note=f"Not measured: {err}.", paths=None, class_names=names
        )
    return ConnectivitySection(key="connectivity", applicable=True, note="", paths=res, class_names=names)


def detection_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> DetectionSection:
    res = cached_evaluate_detection(
        handle,
        x,
        fpr=config.detection_fpr,
        num_directions=config.detection_directions,
        seed=config.seed,
        **run,
    )
    return DetectionSection(key="detection", applicable=True, note="", detection=res, smooth=handle.smooth)


def robustness_section(
    handle: ModelHandle,
    data: Dataset,
    config: ReportConfig,
    **run: Unpack[SectionRun],
) -> RobustnessSection:
    """The own images scaled, shifted, rotated and re-sampled; for a model trained on shapes also generated shapes by
    size, rotation (at several sizes) and position."""
    if len(handle.input_shape) != 3:
        note = (
            "Not applicable: these sweeps transform images, this model takes inputs of shape "
            f"{tuple(handle.input_shape)}."
        )
        return RobustnessSection(
            key="robustness",
            applicable=False,
            note=note,
            sweeps={},
            images=len(data),
            shapes_area=None,
            shapes_rotation={},
            shapes_position=None,
        )
    shapes = is_shapes_model(handle)
    steps = len(IMAGE_SWEEPS) + (3 if shapes else 0)

    def part(i: int) -> Progress | None:
        return scaled_progress(run.get("progress"), i / steps, (i + 1) / steps)

    cache, cancel = run.get("cache"), run.get("cancel")
    labels = data.labels if bool((data.labels >= 0).all()) else None
    sweeps = {
        kind: cached_image_sweep(handle, data.images, kind, labels=labels, cache=cache, cancel=cancel, progress=part(i))
        for i, kind in enumerate(IMAGE_SWEEPS)
    }
    area, rotation, position = None, {}, None
    if shapes:
        i = len(IMAGE_SWEEPS)
        opts = {"n": config.shapes_images, "seed": config.seed, "cache": cache, "cancel": cancel}
        area = cached_shapes_sweep(handle, "area", progress=part(i), **opts)
        rotation = cached_shapes_rotation_sweeps(handle, sizes=ROTATION_SIZES, progress=part(i + 1), **opts)
        position = cached_shapes_sweep(handle, "position", progress=part(i + 2), **opts)
    return RobustnessSection(
        key="robustness",
        applicable=True,
        note="",
        sweeps=sweeps,
        images=len(data),
        shapes_area=area,
        shapes_rotation=dict(rotation),
        shapes_position=position,
    )


# -- every section -----------------------------------------------------------------------------------------------------


def compute_sections(
    handle: ModelHandle,
    dataset: Dataset,
    config: ReportConfig,
    *,
    cache: DiskCache | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> ReportResults:
    """Run every analysis of the report (through the disk cache ``cache``, default: the app's) on its sample of
    ``dataset``; ``progress`` goes from 0 to 1 over the sections, weighted by their usual cost."""
    total = sum(STEP_WEIGHTS.values())
    bounds, done = {}, 0
    for name, weight in STEP_WEIGHTS.items():
        bounds[name] = (done / total, (done + weight) / total)
        done += weight

    def step(name: str) -> dict[str, Any]:
        """The keywords of one section's computation: its share of the progress bar, titled."""
        inner = scaled_progress(progress, *bounds[name])
        if inner is None:
            return {"cache": cache, "cancel": cancel, "progress": None}
        title = SECTION_TITLES[name]
        inner(0.0, title)
        return {"cache": cache, "cancel": cancel, "progress": lambda f, text: inner(f, f"{title}: {text}")}

    seed = config.seed
    sample = report_images(dataset, config.n_images, seed).images
    return ReportResults(
        model=model_section(handle, dataset),
        accuracy=accuracy_section(handle, dataset, **step("accuracy")),
        deepfool=deepfool_section(handle, sample, config, **step("deepfool")),
        frequency=frequency_section(handle, sample, config, **step("frequency")),
        curvature=curvature_section(
            handle, report_images(dataset, config.curvature_images, seed).images, config, **step("curvature")
        ),
        connectivity=connectivity_section(
            handle, report_images(dataset, config.connectivity_pool, seed), config, **step("connectivity")
        ),
        detection=detection_section(
            handle, report_images(dataset, config.detection_images, seed).images, config, **step("detection")
        ),
        robustness=robustness_section(
            handle, report_images(dataset, config.robustness_images, seed), config, **step("robustness")
        ),
    )

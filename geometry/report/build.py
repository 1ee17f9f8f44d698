"""The pre-deployment report: one self-contained HTML file about a model on a data set.

Sections (each figure with a one-line reading of what it shows): model card, accuracy, DeepFool margin
distribution, frequency-margin profile, curvature spectrum summary, connectivity rate, detection ROC, robustness
curves. plotly.js is embedded once, inline, so the file opens offline. Every computation goes through the disk cache
(the same entries the app's pages use), so a report after browsing, or a second report, is quick.

    report = build_report(load_model("digits-cnn-silu"), load_dataset("digits"), ReportConfig.quick())
    Path("report.html").write_text(report_html(report))
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

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
from geometry.runtime.cache import DiskCache, cache_key, default_cache
from geometry.runtime.compute import CancelToken, scaled_progress
from geometry.runtime.fingerprint import tensor_fingerprint

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "SECTION_KEYS",
    "Report",
    "ReportConfig",
    "ReportItem",
    "ReportSection",
    "build_report",
    "report_html",
    "report_images",
    "write_report",
]

Progress = Callable[[float, str], None]
REPORT_VERSION = "2"  # 2: boundary_curvature tolerance 1e-4

SECTION_KEYS: tuple[str, ...] = (
    "model",
    "accuracy",
    "deepfool",
    "frequency",
    "curvature",
    "connectivity",
    "detection",
    "robustness",
)
SECTION_TITLES = {
    "model": "Model card",
    "accuracy": "Accuracy",
    "deepfool": "Distance to the boundary (DeepFool margins)",
    "frequency": "Margins along frequency bands",
    "curvature": "Curvature of the boundary",
    "connectivity": "Connectivity of the class regions",
    "detection": "Detecting small adversarial perturbations",
    "robustness": "Robustness to size, position, rotation and resolution",
}


@dataclass(frozen=True)
class ReportConfig:
    """How much of each analysis the report runs (defaults: about a minute for the digits models on 2 CPU cores)."""

    n_images: int = 100  # DeepFool and frequency margins
    bands: int | None = None  # frequency bands, evenly spread from low to high (None: all)
    curvature_images: int = 10
    curvature_k: int = 5  # principal curvatures from each end of the spectrum
    connectivity_pairs: int = 20
    connectivity_pool: int = 200  # images the same-class pairs are drawn from
    detection_images: int = 50
    detection_directions: int = 32
    detection_fpr: float = 0.05
    robustness_images: int = 100
    shapes_images: int = 60  # per factor value, for models trained on shapes
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "bands" and v is None:
                continue
            if f.name == "detection_fpr":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                    raise ValueError(f"expected detection_fpr in [0, 1), got {v!r}")
                continue
            minimum = 0 if f.name == "seed" else (2 if f.name == "connectivity_pool" else 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValueError(f"expected {f.name} as an int >= {minimum}, got {v!r}")

    @classmethod
    def quick(cls) -> ReportConfig:
        """A small configuration that runs in seconds (for tests and a first look)."""
        return cls(
            n_images=8,
            bands=3,
            curvature_images=3,
            curvature_k=2,
            connectivity_pairs=4,
            connectivity_pool=24,
            detection_images=10,
            detection_directions=8,
            robustness_images=12,
            shapes_images=6,
        )

    @classmethod
    def with_images(cls, n: int, **changes: Any) -> ReportConfig:
        """The default configuration scaled to ``n`` images per analysis."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"expected n as an int >= 2, got {n!r}")
        return cls(
            **{
                **dict(
                    n_images=n,
                    curvature_images=min(10, n),
                    connectivity_pairs=max(1, min(20, n // 2)),
                    connectivity_pool=max(2, 2 * n),
                    detection_images=max(2, min(50, n)),
                    robustness_images=n,
                    shapes_images=max(6, min(60, n)),
                ),
                **changes,
            }
        )


@dataclass
class ReportItem:
    """One figure (or table) of a section and its one-line reading."""

    reading: str
    figure: go.Figure | None = None
    table: list[tuple[str, str]] | None = None


@dataclass
class ReportSection:
    key: str  # one of SECTION_KEYS
    title: str
    summary: str  # the section's one-line reading
    items: list[ReportItem] = field(default_factory=list)
    applicable: bool = True


@dataclass
class Report:
    model: str
    dataset: str
    config: ReportConfig
    sections: list[ReportSection]
    created: str  # ISO time
    seconds: float

    def section(self, key: str) -> ReportSection:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections are {[s.key for s in self.sections]}")


# -- cached pieces the other modules do not cache themselves ---------------------------------------------------------


@dataclass(frozen=True)
class _Margins:
    norm: torch.Tensor  # (N,) float32
    converged: torch.Tensor  # (N,) bool
    label: torch.Tensor  # (N,) int64


@dataclass(frozen=True)
class _Predictions:
    predicted: torch.Tensor  # (N,) int64


def _cached(
    name: str,
    handle: ModelHandle,
    x: torch.Tensor,
    params: dict,
    compute: Callable[[], Any],
    cls: type,
    cache: DiskCache | None,
) -> Any:
    key = cache_key(
        f"report.{name}", REPORT_VERSION, model=handle.fingerprint, inputs=tensor_fingerprint(x), params=params
    )
    return (cache if cache is not None else default_cache()).get_or_compute(key, compute, cls=cls)


def report_images(dataset: Dataset, n: int, seed: int) -> Dataset:
    """The report's sample: ``n`` images of ``dataset`` in a seeded random order (all of them if fewer)."""
    order = np.random.default_rng(seed).permutation(len(dataset))[: min(n, len(dataset))]
    return dataset.subset(np.sort(order))


# -- sections ----------------------------------------------------------------------------------------------------------


def _fmt(v: float, spec: str = ".3g") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _model_section(handle: ModelHandle, dataset: Dataset) -> ReportSection:
    card = handle.card
    rows = [
        ("name", handle.name),
        ("input", "x".join(map(str, handle.input_shape))),
        ("classes", f"{handle.num_classes}: {', '.join(handle.class_names)}"),
        ("parameters", f"{parameter_count(handle.module):,}"),
        ("device", str(handle.device)),
        ("fingerprint", handle.fingerprint[:16]),
    ]
    for key in (
        "architecture",
        "activation",
        "smooth",
        "dataset",
        "train_size",
        "test_accuracy",
        "seed",
        "training_command",
        "description",
    ):
        if key in card:
            rows.append((key.replace("_", " "), str(card[key])))
    arch = card.get("architecture", type(handle.network).__name__)
    act = f" with {card['activation']} activations" if "activation" in card else ""
    trained = f", trained on {card['dataset']}" if "dataset" in card else ""
    smooth = {True: "smooth", False: "piecewise linear", None: "of unknown smoothness"}[handle.smooth]
    summary = (
        f"{handle.name}: {arch}{act} ({smooth}), {parameter_count(handle.module):,} parameters{trained}; "
        f"input {'x'.join(map(str, handle.input_shape))}, {handle.num_classes} classes; analysed on "
        f"{dataset.name} ({dataset.split}, {len(dataset):,} inputs)."
    )
    return ReportSection(
        "model", SECTION_TITLES["model"], summary, [ReportItem("What the model is and how it was trained.", table=rows)]
    )


def _accuracy_section(
    handle: ModelHandle,
    dataset: Dataset,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.figures.inspect import class_accuracy_figure

    pred = _cached(
        "predictions",
        handle,
        dataset.images,
        {},
        lambda: _Predictions(handle.predict(dataset.images, progress=progress, cancel=cancel)),
        _Predictions,
        cache,
    ).predicted
    labels = dataset.labels
    known = labels >= 0
    if not bool(known.any()):
        return ReportSection(
            "accuracy", SECTION_TITLES["accuracy"], "Not applicable: the inputs have no labels.", applicable=False
        )
    acc = float((pred[known] == labels[known]).float().mean())
    k = handle.num_classes
    per = np.full(k, np.nan)
    counts = np.zeros(k, dtype=int)
    for c in range(k):
        m = labels == c
        counts[c] = int(m.sum())
        if counts[c]:
            per[c] = float((pred[m] == c).float().mean())
    worst = int(np.nanargmin(per)) if np.isfinite(per).any() else 0
    summary = (
        f"Accuracy {acc:.1%} on {int(known.sum()):,} {dataset.split} inputs of {dataset.name}; the weakest "
        f"class is {handle.class_names[worst]!r} ({_fmt(per[worst], '.0%')})."
    )
    return ReportSection(
        "accuracy",
        SECTION_TITLES["accuracy"],
        summary,
        [
            ReportItem(
                "Accuracy per true class: a low bar is a class the model often gets wrong.",
                class_accuracy_figure(per, counts, handle.class_names),
            )
        ],
    )


def _deepfool_section(
    handle: ModelHandle, x: torch.Tensor, cache: DiskCache | None, progress: Progress | None, cancel: CancelToken | None
) -> ReportSection:
    from geometry.boundary.deepfool import deepfool
    from geometry.figures.inspect import margin_histogram

    def compute() -> _Margins:
        r = deepfool(handle, x, progress=progress, cancel=cancel)
        return _Margins(norm=r.norm, converged=r.converged, label=r.original_label)

    m = _cached("deepfool", handle, x, {}, compute, _Margins, cache)
    ok = m.converged.numpy() & np.isfinite(m.norm.numpy())
    norms = m.norm.numpy()[ok]
    if len(norms) == 0:
        return ReportSection(
            "deepfool",
            SECTION_TITLES["deepfool"],
            f"DeepFool did not cross the boundary for any of {len(x)} inputs.",
            [ReportItem("DeepFool margins.", margin_histogram(m.norm, m.converged))],
        )
    med, q10 = float(np.median(norms)), float(np.quantile(norms, 0.1))
    typical = float(x.reshape(len(x), -1).norm(dim=1).median())
    rel = f" ({med / typical:.1%} of a typical input's norm)" if typical > 0 else ""
    summary = (
        f"Median distance to the nearest boundary {med:.3g}{rel}; 10% of inputs are within {q10:.3g} "
        f"({int((~ok).sum())} of {len(x)} runs did not converge)."
    )
    return ReportSection(
        "deepfool",
        SECTION_TITLES["deepfool"],
        summary,
        [
            ReportItem(
                "L2 distance (in [0, 1] pixels) from each input to the boundary along DeepFool's path: "
                "small values are inputs a tiny perturbation flips.",
                margin_histogram(m.norm, m.converged),
            )
        ],
    )


def _band_choice(handle: ModelHandle, bands: int | None) -> list[int] | None:
    total = len(frequency_bands(handle.input_shape))
    if bands is None or bands >= total:
        return None
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, bands)})


def _frequency_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.figures.inspect import band_images_figure, frequency_margins_figure

    title = SECTION_TITLES["frequency"]
    if len(handle.input_shape) != 3:
        return ReportSection(
            "frequency",
            title,
            "Not applicable: frequency bands need image inputs, this model takes "
            f"inputs of shape {handle.input_shape}.",
            applicable=False,
        )
    res: FrequencyMargins = cached_frequency_margins(
        handle,
        x,
        bands=_band_choice(handle, config.bands),
        full=False,
        seed=config.seed,
        progress=progress,
        cancel=cancel,
        cache=cache,
    )
    med = res.band_median()
    labels = res.band_labels()
    rand = float(np.median(res.random_margins.numpy())) if res.random_margins.numel() else math.nan
    nc = int((~res.converged).sum())
    low, high = float(med[0]), float(med[-1])
    lean = "low" if low < high else "high"
    summary = (
        f"Median margin {_fmt(low)} in the lowest band ({labels[0]}) and {_fmt(high)} in the highest "
        f"({labels[-1]}): the model is most sensitive to {lean}-frequency features; a random subspace of the "
        f"same dimension ({res.subspace_dim}) gives {_fmt(rand)}. {nc} of {res.margins.numel()} runs did not "
        "converge (drawn as crosses, lower bounds)."
    )
    return ReportSection(
        "frequency",
        title,
        summary,
        [
            ReportItem(
                "Subspace-DeepFool margin of each input inside each DCT band (log scale): small = the model relies "
                "on those frequencies; large = it is nearly invariant to them.",
                frequency_margins_figure(res),
            ),
            ReportItem(
                "A random image from each band's subspace, low to high frequency.",
                band_images_figure(handle.input_shape, res.band_starts.tolist(), res.block),
            ),
        ],
    )


def _curvature_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.boundary.curvature import CurvatureResult, boundary_curvature
    from geometry.figures.inspect import curvature_summary_figure

    params = {"k": config.curvature_k, "num_random": 50, "seed": config.seed}
    res = _cached(
        "curvature",
        handle,
        x,
        params,
        lambda: boundary_curvature(handle, x, progress=progress, cancel=cancel, **params),
        CurvatureResult,
        cache,
    )
    curv = res.curvatures.numpy()
    rows = np.isfinite(curv).all(axis=1)
    rand = res.random_curvatures.numpy()
    if not rows.any():
        return ReportSection(
            "curvature",
            SECTION_TITLES["curvature"],
            "DeepFool found no boundary point to measure the curvature at.",
            [ReportItem("Curvature summary.", curvature_summary_figure(res))],
        )
    top = float(np.median(np.abs(curv[rows]).max(axis=1)))
    flat = float(np.nanmedian(np.abs(rand[rows]))) if np.isfinite(rand[rows]).any() else math.nan
    ratio = top / flat if flat and math.isfinite(flat) and flat > 0 else math.nan
    where = f"measured at {int(rows.sum())} boundary points, method {res.method}"
    if not math.isfinite(ratio):
        reading = f"the boundary is flat along every random direction measured; |kappa| is {_fmt(top)} at most"
    elif ratio >= 5:  # the picture of Fawzi et al.: flat in most directions, curved in a few
        reading = (
            f"along random directions the boundary is nearly flat (median |kappa| {_fmt(flat)}), along its most "
            f"curved direction |kappa| is {_fmt(top)} ({ratio:.0f}x): curved in a few directions only"
        )
    else:
        reading = (
            f"the boundary is about as curved along random directions (median |kappa| {_fmt(flat)}) as along "
            f"its most curved direction ({_fmt(top)}, {ratio:.1f}x): no few dominant curved directions"
        )
    summary = f"{reading[0].upper()}{reading[1:]} ({where})."
    return ReportSection(
        "curvature",
        SECTION_TITLES["curvature"],
        summary,
        [
            ReportItem(
                "Principal curvatures of the boundary at DeepFool's boundary points (kappa > 0: the input's region "
                "is locally convex), against the curvature along random tangent directions.",
                curvature_summary_figure(res),
            )
        ],
    )


def _connectivity_section(
    handle: ModelHandle,
    data: Dataset,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.figures.inspect import connectivity_figure, path_figure

    labels = data.labels if bool((data.labels >= 0).all()) else None
    try:
        res: PathResult = cached_connectivity_batch(
            handle,
            data.images,
            labels,
            num_pairs=config.connectivity_pairs,
            seed=config.seed,
            progress=progress,
            cancel=cancel,
            cache=cache,
        )
    except ValueError as err:
        return ReportSection("connectivity", SECTION_TITLES["connectivity"], f"Not measured: {err}.", applicable=False)
    summary = (
        f"{res.success_rate:.0%} of {len(res)} random same-class pairs are joined by a path that stays in "
        f"their class ({res.straight_rate:.0%} by the straight segment); the largest detour is "
        f"{float(res.max_deviation.max()):.1%} of the distance between the two inputs."
    )
    items = [
        ReportItem(
            "Same-class pairs by the number of anchors their path needed (the class regions are connected "
            "when all are joined).",
            connectivity_figure(res),
        )
    ]
    bent = [p for p in range(len(res)) if int(res.num_anchors[p]) > 0]
    p = bent[0] if bent else 0
    items.append(
        ReportItem(
            "One path: the inputs along it with the class predicted under each, and the class at "
            "every sampled point (one colour = inside the class all along).",
            path_figure(res, p, handle.class_names),
        )
    )
    return ReportSection("connectivity", SECTION_TITLES["connectivity"], summary, items)


def _detection_section(
    handle: ModelHandle,
    x: torch.Tensor,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.figures.inspect import detection_scores_figure, roc_figure

    res: DetectionResult = cached_evaluate_detection(
        handle,
        x,
        fpr=config.detection_fpr,
        num_directions=config.detection_directions,
        seed=config.seed,
        progress=progress,
        cancel=cancel,
        cache=cache,
    )
    summary = (
        f"The curvature statistic separates clean from DeepFool-perturbed inputs with AUC "
        f"{_fmt(res.auc, '.2f')}; at the threshold set for {res.target_fpr:.0%} false positives on clean "
        f"inputs it flags "
        f"{_fmt(res.tpr_at_threshold, '.0%')} of perturbed inputs and recovers the original label of "
        f"{_fmt(res.recovery_accuracy, '.0%')} of them (0.5 AUC = no better than chance)."
    )
    return ReportSection(
        "detection",
        SECTION_TITLES["detection"],
        summary,
        [
            ReportItem(
                "ROC of the detector over all thresholds; the diamond is the chosen operating point.", roc_figure(res)
            ),
            ReportItem(
                "The detection score on clean and on perturbed inputs: the further apart, the easier to detect.",
                detection_scores_figure(res),
            ),
        ],
    )


def _value_at(sweep: SweepResult, value: float, what: str = "kept") -> float:
    i = int(np.argmin(np.abs(np.asarray(sweep.values, dtype=float) - value)))
    return float(getattr(sweep, what)[i])


def _robustness_section(
    handle: ModelHandle,
    data: Dataset,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> ReportSection:
    from geometry.figures.inspect import position_heatmap, sweep_figure

    title = SECTION_TITLES["robustness"]
    if len(handle.input_shape) != 3:
        return ReportSection(
            "robustness",
            title,
            f"Not applicable: these sweeps transform images, this model takes inputs of shape {handle.input_shape}.",
            applicable=False,
        )
    shapes = is_shapes_model(handle)
    steps = 4 + (3 if shapes else 0)
    labels = data.labels if bool((data.labels >= 0).all()) else None
    sweeps: dict[str, SweepResult] = {}
    for i, kind in enumerate(("scale", "shift", "rotate", "resolution")):
        sweeps[kind] = cached_image_sweep(
            handle,
            data.images,
            kind,
            labels=labels,
            cache=cache,
            cancel=cancel,
            progress=scaled_progress(progress, i / steps, (i + 1) / steps),
        )
    shifted = sweeps["shift"]
    corner = float(shifted.heatmap("kept")[0, 0])
    summary = (
        f"Prediction kept at half size {_value_at(sweeps['scale'], 0.5):.0%}, rotated by 40 degrees "
        f"{_value_at(sweeps['rotate'], 40):.0%}, at half resolution {_value_at(sweeps['resolution'], 0.5):.0%}, "
        f"shifted by 30% in x and y {corner:.0%} (own images, {len(data)} of them)."
    )
    items = [
        ReportItem(
            "Own images scaled about their centre on their own border colour: share of predictions kept "
            "(solid) and mean logit margin of the original class (dashed).",
            sweep_figure(sweeps["scale"], title="scale"),
        ),
        ReportItem(
            "Own images rotated: predictions kept and margin.", sweep_figure(sweeps["rotate"], title="rotation")
        ),
        ReportItem(
            "Input resolution changed (down-sampled and back up, or the reverse): predictions kept and margin.",
            sweep_figure(sweeps["resolution"], title="resolution"),
        ),
        ReportItem(
            "Own images shifted: share of predictions kept for each shift (x right, y down).",
            position_heatmap(shifted, what="kept", title="shift"),
        ),
    ]
    if shapes:
        more, shape_items = _shapes_part(handle, config, cache, progress, cancel, steps)
        summary += more
        items += shape_items
    return ReportSection("robustness", title, summary, items)


def _shapes_part(
    handle: ModelHandle,
    config: ReportConfig,
    cache: DiskCache | None,
    progress: Progress | None,
    cancel: CancelToken | None,
    steps: int,
) -> tuple[str, list[ReportItem]]:
    """The generated-shapes part of the robustness section (size, rotation at several sizes, position): a sentence for
    the summary and the figures. ``steps``: the section's progress steps, the last three are these sweeps."""
    from geometry.figures.inspect import position_heatmap, sweep_figure

    def part(i: int) -> Progress | None:
        return scaled_progress(progress, (steps - 3 + i) / steps, (steps - 2 + i) / steps)

    opts = {"n": config.shapes_images, "seed": config.seed, "cache": cache, "cancel": cancel}
    area = cached_shapes_sweep(handle, "area", progress=part(0), **opts)
    rotations = cached_shapes_rotation_sweeps(handle, sizes=ROTATION_SIZES, progress=part(1), **opts)
    position = cached_shapes_sweep(handle, "position", progress=part(2), **opts)
    by_size = ", ".join(f"{float(np.mean(s.accuracy)):.0%} at area {a:g}" for a, s in rotations.items())
    summary = (
        f" On generated shapes, accuracy is {_value_at(area, 0.02, 'accuracy'):.0%} at 2% of the image, "
        f"{_value_at(area, 0.2, 'accuracy'):.0%} at 20%; averaged over rotations it is {by_size}."
    )
    return summary, [
        ReportItem(
            "Generated shapes of one size (area fraction, centred): accuracy and mean margin of the true class.",
            sweep_figure(area, metric="accuracy", title="object size"),
        ),
        ReportItem(
            "Generated shapes rotated, one curve per object size (area fraction): accuracy and mean margin.",
            sweep_figure(
                {f"area {a:g}": s for a, s in rotations.items()},
                metric="accuracy",
                title="object rotation at several sizes",
            ),
        ),
        ReportItem(
            "Generated shapes with their centre at each grid position: accuracy.",
            position_heatmap(position, what="accuracy", title="object position"),
        ),
    ]


# -- assembling ------------------------------------------------------------------------------------------------------


def build_report(
    handle: ModelHandle,
    dataset: Dataset,
    config: ReportConfig | None = None,
    *,
    cache: DiskCache | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Report:
    """Run every analysis of the report (through the disk cache) and return its sections with figures and readings."""
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a Dataset (geometry.load_dataset), got {type(dataset).__name__}")
    if tuple(dataset.input_shape) != tuple(handle.input_shape):
        raise ValueError(
            f"expected a data set of inputs {handle.input_shape} for {handle.name!r}, got "
            f"{dataset.name!r} with inputs {dataset.input_shape}"
        )
    if len(dataset) < 2:
        raise ValueError(f"expected a data set of at least 2 inputs, got {len(dataset)}")
    config = config or ReportConfig()
    if not isinstance(config, ReportConfig):
        raise TypeError(f"expected a ReportConfig, got {type(config).__name__}")
    start = time.perf_counter()
    seed = config.seed
    # progress weights of the steps (roughly their cost)
    plan = [
        ("accuracy", 1),
        ("deepfool", 2),
        ("frequency", 8),
        ("curvature", 3),
        ("connectivity", 3),
        ("detection", 4),
        ("robustness", 3),
    ]
    total = sum(w for _, w in plan)
    bounds, acc = {}, 0
    for name, w in plan:
        bounds[name] = (acc / total, (acc + w) / total)
        acc += w

    def step(name: str) -> Progress | None:
        if progress is None:
            return None
        lo, hi = bounds[name]
        inner = scaled_progress(progress, lo, hi)
        assert inner is not None
        title = SECTION_TITLES[name]
        inner(0.0, title)
        return lambda f, text: inner(f, f"{title}: {text}")

    sample = report_images(dataset, config.n_images, seed).images
    sections = [
        _model_section(handle, dataset),
        _accuracy_section(handle, dataset, cache, step("accuracy"), cancel),
        _deepfool_section(handle, sample, cache, step("deepfool"), cancel),
        _frequency_section(handle, sample, config, cache, step("frequency"), cancel),
        _curvature_section(
            handle,
            report_images(dataset, config.curvature_images, seed).images,
            config,
            cache,
            step("curvature"),
            cancel,
        ),
        _connectivity_section(
            handle, report_images(dataset, config.connectivity_pool, seed), config, cache, step("connectivity"), cancel
        ),
        _detection_section(
            handle,
            report_images(dataset, config.detection_images, seed).images,
            config,
            cache,
            step("detection"),
            cancel,
        ),
        _robustness_section(
            handle, report_images(dataset, config.robustness_images, seed), config, cache, step("robustness"), cancel
        ),
    ]
    if progress is not None:
        progress(1.0, "report ready")
    return Report(
        model=handle.name,
        dataset=f"{dataset.name} ({dataset.split})",
        config=config,
        sections=sections,
        created=_dt.datetime.now().isoformat(timespec="seconds"),
        seconds=time.perf_counter() - start,
    )


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 24px; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; } .summary { font-size: 1.05em; background: #f4f7fb; padding: 10px 14px;
        border-left: 4px solid #1f77b4; } .reading { color: #444; margin: 1.2em 0 0.2em; font-style: italic; }
.na { border-left-color: #aaa; color: #666; } table { border-collapse: collapse; margin: 0.5em 0; }
td { border-bottom: 1px solid #eee; padding: 4px 12px 4px 0; vertical-align: top; } td:first-child { color: #666; }
nav ol { columns: 2; } code { background: #f3f3f3; padding: 0 3px; }
"""


def report_html(report: Report) -> str:
    """The report as one self-contained HTML page (plotly.js inline once; opens offline)."""
    from plotly.offline import get_plotlyjs

    if not isinstance(report, Report):
        raise TypeError(f"expected a Report (build_report), got {type(report).__name__}")
    esc = html.escape
    body = [
        f"<h1>Boundary Atlas report: {esc(report.model)}</h1>",
        f"<p class='meta'>Data: {esc(report.dataset)} · generated {esc(report.created)} in "
        f"{report.seconds:.1f} s · configuration: "
        f"{esc(', '.join(f'{k}={v}' for k, v in dataclasses.asdict(report.config).items()))}</p>",
        "<nav><ol>"
        + "".join(f"<li><a href='#sec-{s.key}'>{esc(s.title)}</a></li>" for s in report.sections)
        + "</ol></nav>",
    ]
    fig_count = 0
    for s in report.sections:
        body.append(f"<section id='sec-{s.key}' data-section='{s.key}'><h2>{esc(s.title)}</h2>")
        body.append(f"<p class='summary{'' if s.applicable else ' na'}'>{esc(s.summary)}</p>")
        for item in s.items:
            body.append(f"<p class='reading'>{esc(item.reading)}</p>")
            if item.table is not None:
                body.append(
                    "<table>"
                    + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in item.table)
                    + "</table>"
                )
            if item.figure is not None:
                fig_count += 1
                body.append(
                    item.figure.to_html(
                        full_html=False,
                        include_plotlyjs=False,
                        div_id=f"fig-{fig_count}",
                        config={"displaylogo": False, "responsive": True},
                    )
                )
        body.append("</section>")
    body.append(
        "<p class='meta'>Made by Boundary Atlas (<code>python -m geometry report</code>). Distances are L2 in "
        "[0, 1] pixel space; curvature kappa &gt; 0 means the input's own region is locally convex.</p>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Boundary Atlas report: {esc(report.model)}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    path: str | os.PathLike[str],
    handle: ModelHandle,
    dataset: Dataset,
    config: ReportConfig | None = None,
    *,
    cache: DiskCache | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Report:
    """Build the report and write its HTML to ``path`` atomically (nothing half-written on error)."""
    out = Path(path).expanduser()
    if out.exists() and out.is_dir():
        raise ValueError(f"expected a file path for the report, got the folder {str(out)!r}")
    if not out.parent.exists():
        raise FileNotFoundError(f"the folder {str(out.parent)!r} does not exist")
    report = build_report(handle, dataset, config, cache=cache, progress=progress, cancel=cancel)
    text = report_html(report)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report

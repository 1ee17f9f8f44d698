"""The options of the inspection family, in one place: connectivity paths, frequency margins, detection.

Each is a frozen dataclass, checked and normalised once when it is made, so a page, the report and a script pass one
object, the cache keys it field by field (`geometry.runtime.memo`), and the defaults below are THE defaults of
`find_path` / `find_paths` / `connectivity_batch`, `frequency_margins` and `evaluate_detection` / `detect`. Only
what can change a result is here: progress, cancellation and batch sizes are arguments of the calls, and so is
*what* is measured (the images, the pairs to sample, the bands to compute).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.runtime.options import set_field
from geometry.runtime.validate import check_bool, check_int, check_number, check_seed

__all__ = ["DetectionOptions", "MarginOptions", "PathOptions", "check_number"]

DEFAULT_DIRECTIONS = 32
DEFAULT_STEP = 0.5  # h in L2 input units: about a DeepFool margin of the built-in digits models (ReLU models need
# a step that spans several linear pieces; smooth ones give the same statistic for any h up to about 1)


def _check_overshoot(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value < 10:
        raise ValueError(f"expected overshoot as a number in [0, 10), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PathOptions:
    """How `find_paths` searches a path inside a class (Fawzi et al.'s bisection; see its docstring).

    ``resolution``: grid points checked inside every segment (odd, so the midpoint is one of them).
    ``max_depth``: bisection levels. ``max_anchors``: anchors per path. ``overshoot``: of the targeted DeepFool that
    pushes a midpoint into the class, in [0, 10) (1.0 puts the anchor well inside, so fewer levels are needed than
    with DeepFool's usual 0.02). ``samples`` / ``strip``: points along the finished path whose class (and images)
    are reported.
    """

    resolution: int = 31
    max_depth: int = 6
    max_anchors: int = 32
    overshoot: float = 1.0
    samples: int = 64
    strip: int = 9

    def __post_init__(self) -> None:
        resolution = check_int("resolution", self.resolution, 1)
        if resolution % 2 == 0:
            raise ValueError(f"expected an odd resolution (the midpoint is a grid point), got {resolution}")
        set_field(self, "resolution", resolution)
        set_field(self, "max_depth", check_int("max_depth", self.max_depth, 0))
        set_field(self, "max_anchors", check_int("max_anchors", self.max_anchors, 0))
        set_field(self, "overshoot", _check_overshoot(self.overshoot))
        set_field(self, "samples", check_int("samples", self.samples, 2))
        set_field(self, "strip", check_int("strip", self.strip, 2))


@dataclass(frozen=True)
class MarginOptions:
    """How `frequency_margins` measures (see its docstring).

    ``block`` / ``stride``: the band layout (None: by image size, `geometry.data.dct.default_dct_blocks`).
    ``num_random``: random subspaces of the band's dimension, the baseline (seeded by ``seed``, ``seed + 1``, ...).
    ``full``: also the unconstrained DeepFool norm. ``overshoot`` / ``max_iter`` / ``candidates``: of the
    subspace-constrained DeepFool whose ``||(1 + overshoot) r||`` is each margin.
    """

    block: int | None = None
    stride: int | None = None
    num_random: int = 1
    full: bool = True
    seed: int = 0
    overshoot: float = 0.02
    max_iter: int = 100
    candidates: int = 10

    def __post_init__(self) -> None:
        if self.block is not None:
            set_field(self, "block", check_int("block", self.block, 1))
        if self.stride is not None:
            set_field(self, "stride", check_int("stride", self.stride, 1))
        set_field(self, "num_random", check_int("num_random", self.num_random, 0))
        set_field(self, "full", check_bool("full", self.full))
        set_field(self, "seed", check_seed(self.seed))
        set_field(self, "overshoot", _check_overshoot(self.overshoot))
        set_field(self, "max_iter", check_int("max_iter", self.max_iter, 1))
        set_field(self, "candidates", check_int("candidates", self.candidates, 1))


@dataclass(frozen=True)
class DetectionOptions:
    """How the curvature statistic is measured and the detector evaluated (see `geometry.inspection.detection`).

    ``num_directions``: M random unit directions. ``h``: the finite-difference step (L2 input units). ``seed``: the
    directions and (evaluation) the calibration / held-out split. ``fpr``: the false-positive rate the threshold is
    set for on the calibration inputs (evaluation only). ``calibration_share``: the share of the clean inputs the
    threshold is set on; the rest are held out, and the false-positive rate, ROC and AUC are measured on them and
    their perturbations (evaluation only). ``overshoot`` / ``clip``: of the DeepFool attack that makes the perturbed
    inputs (evaluation only; ``clip`` None: clip when the model's input range is bounded).
    """

    num_directions: int = DEFAULT_DIRECTIONS
    h: float = DEFAULT_STEP
    seed: int = 0
    fpr: float = 0.05
    calibration_share: float = 0.5
    overshoot: float = 0.02
    clip: bool | None = None

    def __post_init__(self) -> None:
        set_field(self, "num_directions", check_int("num_directions", self.num_directions, 1))
        set_field(self, "h", check_number("h", self.h, low=0.0))
        set_field(self, "seed", check_seed(self.seed))
        set_field(self, "fpr", check_number("fpr", self.fpr, low=0.0, high=1.0, open_low=False))
        share = check_number("calibration_share", self.calibration_share, low=0.0, high=1.0)
        if share >= 1.0:
            raise ValueError(f"expected calibration_share below 1 (some inputs must be held out), got {share!r}")
        set_field(self, "calibration_share", share)
        set_field(self, "overshoot", _check_overshoot(self.overshoot))
        set_field(self, "clip", check_bool("clip", self.clip, optional=True))

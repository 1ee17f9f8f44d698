"""One-line readings of the Playground's geometry: a claim and whether it holds for this network now.

Each reading is a sentence that can come out false (the page shows it with a tick or a cross), so a student reads
a statement about this network, not a caption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geometry.playground.linear_regions import one_layer_bound

__all__ = ["Reading", "curvature_reading", "margin_reading", "region_reading", "unit_reading"]

DATA_RADIUS = 3.0  # the toy sets fill about [-3, 3]^2: a circle of this radius is "the data's own scale"


@dataclass(frozen=True)
class Reading:
    claim: str  # the sentence, with this network's numbers
    holds: bool  # whether it is true for this network

    def __str__(self) -> str:
        return f"{'✓' if self.holds else '✗'} {self.claim}" + ("" if self.holds else " — not so here.")


def region_reading(count: int, first_layer_units: int) -> Reading:
    """Depth pays: more linear regions than one layer of as many units as the first could cut the plane into."""
    bound = one_layer_bound(first_layer_units)
    return Reading(
        f"Its {count} linear regions are more than one layer of its {first_layer_units} first-layer units could "
        f"make ({bound}).",
        count > bound,
    )


def margin_reading(margins: np.ndarray, correct: np.ndarray, noise: float) -> Reading:
    """Half the correctly classified training points lie farther from the boundary than the data's noise level."""
    ok = np.isfinite(margins) & correct
    median = float(np.median(margins[ok])) if ok.any() else float("nan")
    return Reading(
        f"Half the correctly classified training points are farther from the boundary than the noise level "
        f"{noise:g} (median margin {median:.3g}).",
        bool(ok.any() and median > noise),
    )


def curvature_reading(curvature: np.ndarray) -> Reading:
    """The boundary is flatter than the data's scale where it passes the points: median |kappa| < 1 / DATA_RADIUS."""
    finite = np.abs(curvature[np.isfinite(curvature)])
    median = float(np.median(finite)) if len(finite) else float("nan")
    return Reading(
        f"Near the training points the boundary bends less than a circle of the data's radius {DATA_RADIUS:g} "
        f"(median |κ| {median:.3g} < {1 / DATA_RADIUS:.3g} per unit).",
        bool(len(finite) and median < 1 / DATA_RADIUS),
    )


def unit_reading(activations: list[np.ndarray]) -> Reading:
    """No dead unit: every hidden unit changes its output somewhere in the view (activations: (units, R, R) per
    layer, as `Playground.unit_activations` gives)."""
    dead = sum(int(((a.reshape(len(a), -1).max(1) - a.reshape(len(a), -1).min(1)) < 1e-6).sum()) for a in activations)
    total = sum(len(a) for a in activations)
    return Reading(
        f"Every one of the {total} hidden units changes its output somewhere in the view ({dead} constant).",
        dead == 0,
    )

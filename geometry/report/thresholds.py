"""The go / no-go thresholds of the report (`Thresholds`): what a model must reach for the report to say "go".

Each threshold is a lower bound on one measured number; None turns that check off (it is listed as "not checked").
The defaults are a starting point, not a standard: a deployment states its own (``python -m geometry report
--min-median-margin 0.5 ...``, or ``ReportConfig(thresholds=Thresholds(...))``), and the report prints the ones used.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Lower bounds the report checks its numbers against (None: not checked).

    ``accuracy``: share of labelled inputs predicted right. ``median_margin``, ``low_margin``: the median and the 10th
    percentile of the DeepFool distance to the boundary over the converged runs (L2, input units: [0, 1] pixels for
    images). ``sweep_accuracy``: accuracy (share of predictions kept when the inputs have no labels) of the own images
    at each robustness sweep's stress point (half size, 40 degrees, half resolution, shifted 30% in x and y).
    ``detection_auc``: the detector's held-out ROC AUC (0.5 = chance; below 0.5 it does not work on the model).
    """

    accuracy: float | None = 0.9
    median_margin: float | None = 0.25
    low_margin: float | None = 0.1
    sweep_accuracy: float | None = 0.5
    detection_auc: float | None = 0.7

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"expected {f.name} as a number >= 0 or None, got {v!r}")
            if f.name in ("accuracy", "sweep_accuracy", "detection_auc") and v > 1:
                raise ValueError(f"expected {f.name} in [0, 1] or None, got {v!r}")
            object.__setattr__(self, f.name, float(v))  # 1 and 1.0 are one threshold (and one cache key)

    def text(self) -> str:
        """The thresholds in one line, as the report prints them."""
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            parts.append(f"{f.name.replace('_', ' ')} " + ("not checked" if v is None else f">= {v:g}"))
        return ", ".join(parts)

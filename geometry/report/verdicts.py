"""The report's go / no-go summary: each measured number against its threshold (`Thresholds`), pass or fail.

    verdict = report_verdict(results, Thresholds(median_margin=0.5))
    verdict.go          # True only if every check that applies and is switched on passes
    verdict.lines       # ["median DeepFool margin 0.356, threshold >= 0.5: fail", ...]

A check whose number could not be measured (NaN: DeepFool never converged, no held-out AUC) fails: no number, no go.
A check that does not apply to the model (image sweeps on 2D inputs) or is switched off (threshold None) is listed and
left out of the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geometry.report.sections import STRESS_POINTS, ReportResults
from geometry.report.thresholds import Thresholds

__all__ = ["Check", "Verdict", "report_verdict"]


@dataclass(frozen=True)
class Check:
    """One number against its threshold: ``value >= threshold`` passes."""

    name: str  # what is measured, e.g. "median DeepFool margin"
    value: float  # the measured number (NaN: not measured)
    threshold: float | None  # None: not checked
    applicable: bool = True  # False: the model has no such number
    percent: bool = False  # write value and threshold as percentages
    note: str = ""  # what the number means beyond pass / fail (e.g. a detector below chance)

    @property
    def status(self) -> str:
        """ "pass", "fail", "not applicable" or "not checked"."""
        if not self.applicable:
            return "not applicable"
        if self.threshold is None:
            return "not checked"
        return "pass" if math.isfinite(self.value) and self.value >= self.threshold else "fail"

    @property
    def counts(self) -> bool:
        """Whether this check takes part in the verdict."""
        return self.status in ("pass", "fail")

    def _number(self, v: float) -> str:
        if not math.isfinite(v):
            return "not measured"
        return f"{v:.0%}" if self.percent else f"{v:.3g}"

    @property
    def value_text(self) -> str:
        return self._number(self.value) if self.applicable else "-"

    @property
    def threshold_text(self) -> str:
        return "not checked" if self.threshold is None else f">= {self._number(self.threshold)}"

    @property
    def line(self) -> str:
        """E.g. "median DeepFool margin 0.356, threshold >= 0.25: pass"."""
        if not self.applicable:
            text = f"{self.name}: not applicable"
        elif self.threshold is None:
            text = f"{self.name} {self.value_text}: not checked"
        else:
            text = f"{self.name} {self.value_text}, threshold {self.threshold_text}: {self.status}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    thresholds: Thresholds

    @property
    def counted(self) -> list[Check]:
        return [c for c in self.checks if c.counts]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.counted if c.status == "fail"]

    @property
    def go(self) -> bool:
        """True when at least one check applies and every check that applies passes."""
        return bool(self.counted) and not self.failed

    @property
    def lines(self) -> list[str]:
        return [c.line for c in self.checks]

    @property
    def summary(self) -> str:
        counted = self.counted
        if not counted:
            return "No verdict: every check is switched off or does not apply to this model."
        if self.go:
            return f"Go: all {len(counted)} checks pass their thresholds."
        names = ", ".join(c.name for c in self.failed)
        return f"No-go: {len(self.failed)} of {len(counted)} checks fail their thresholds ({names})."


def report_verdict(results: ReportResults, thresholds: Thresholds) -> Verdict:
    """Every check of the report's numbers against ``thresholds``."""
    t = thresholds
    acc = results.accuracy
    df = results.deepfool
    det = results.detection.detection
    rob = results.robustness
    checks = [
        Check("accuracy", acc.accuracy, t.accuracy, applicable=acc.applicable, percent=True),
        Check("median DeepFool margin", df.median_margin, t.median_margin),
        Check("10th-percentile DeepFool margin", df.low_margin, t.low_margin),
    ]
    for kind, (label, _) in STRESS_POINTS.items():
        value, what = rob.stress(kind) if rob.applicable else (math.nan, "accuracy")
        checks.append(Check(f"{what} {label}", value, t.sweep_accuracy, applicable=rob.applicable, percent=True))
    auc = float(det.auc)
    note = "below 0.5: the detector does not work on this model" if math.isfinite(auc) and auc < 0.5 else ""
    checks.append(Check("detection AUC (held out)", auc, t.detection_auc, note=note))
    return Verdict(tuple(checks), thresholds)

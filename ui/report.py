"""Streamlit glue of the Report page: the report's configuration, its identity, and building it with a progress bar."""

from __future__ import annotations

import hashlib

from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.report import Report, ReportConfig, Thresholds, build_report, report_html
from ui.progress import progress_bar


def report_config(n: int, bands: int | None, thresholds: Thresholds | None = None) -> ReportConfig:
    return ReportConfig.with_images(n, bands=bands, thresholds=thresholds or Thresholds())


def threshold_flags(thresholds: Thresholds) -> str:
    """The command-line flags that give ``thresholds`` (only the ones that differ from the defaults)."""
    default = Thresholds()
    flags = []
    for name in ("accuracy", "median_margin", "low_margin", "sweep_accuracy", "detection_auc"):
        value = getattr(thresholds, name)
        if value != getattr(default, name):
            flags.append(f" --min-{name.replace('_', '-')} {'off' if value is None else f'{value:g}'}")
    return "".join(flags)


def report_key(handle: ModelHandle, data: Dataset, config: ReportConfig) -> str:
    text = f"{handle.fingerprint}|{data.fingerprint}|{config!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate_report(handle: ModelHandle, data: Dataset, config: ReportConfig) -> tuple[Report, str]:
    """Build the report (each analysis from the disk cache when it is there) and its HTML."""
    with progress_bar("Building the report") as cb:
        rep = build_report(handle, data, config, progress=cb)
        cb(1.0, "writing the HTML")
        return rep, report_html(rep)

"""The pre-deployment report: one self-contained HTML file about a model on a data set.

Sections (each figure with a one-line reading of what it shows): model card, accuracy, DeepFool margin
distribution, frequency-margin profile, curvature spectrum summary, connectivity rate, detection ROC, robustness
curves, under a go / no-go summary against stated thresholds (`Thresholds`, `geometry.report.verdicts`). They are
computed in `geometry.report.sections` (numbers, through the disk cache: the same entries the app's
pages use, so a report after browsing, or a second report, is quick) and drawn in `geometry.report.html`.

    report = build_report(load_model("digits-cnn-silu"), load_dataset("digits"), ReportConfig.quick())
    Path("report.html").write_text(report_html(report))
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
import time
from pathlib import Path

from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.report.config import ReportConfig
from geometry.report.html import Report, render_sections, report_html
from geometry.report.sections import compute_sections
from geometry.report.verdicts import report_verdict
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import CancelToken, Progress

__all__ = ["build_report", "write_report"]


def _check(handle: ModelHandle, dataset: Dataset, config: ReportConfig | None) -> ReportConfig:
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
    return config


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
    config = _check(handle, dataset, config)
    start = time.perf_counter()
    results = compute_sections(handle, dataset, config, cache=cache, progress=progress, cancel=cancel)
    sections = render_sections(results)
    if progress is not None:
        progress(1.0, "report ready")
    return Report(
        model=handle.name,
        dataset=f"{dataset.name} ({dataset.split})",
        config=config,
        sections=sections,
        created=_dt.datetime.now().isoformat(timespec="seconds"),
        seconds=time.perf_counter() - start,
        results=results,
        verdict=report_verdict(results, config.thresholds),
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

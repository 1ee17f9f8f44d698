"""The pre-deployment report: its configuration (`config`, `thresholds`), its sections computed (`sections`: numbers,
no plotly), checked against the thresholds (`verdicts`: go / no-go) and drawn (`html`: figures and the self-contained
page), and all of it put together (`build`)."""

from __future__ import annotations

from geometry.report.build import build_report, write_report
from geometry.report.config import PAGE_CURVATURE, SECTION_KEYS, SECTION_TITLES, ReportConfig
from geometry.report.html import Report, ReportItem, ReportSection, render_sections, report_html
from geometry.report.sections import ReportResults, compute_sections, report_images
from geometry.report.thresholds import Thresholds
from geometry.report.verdicts import Check, Verdict, report_verdict

__all__ = [
    "PAGE_CURVATURE",
    "Check",
    "SECTION_KEYS",
    "SECTION_TITLES",
    "Thresholds",
    "Verdict",
    "Report",
    "ReportConfig",
    "ReportItem",
    "ReportResults",
    "ReportSection",
    "build_report",
    "compute_sections",
    "render_sections",
    "report_html",
    "report_images",
    "report_verdict",
    "write_report",
]

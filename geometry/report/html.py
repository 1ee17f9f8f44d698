"""The report, drawn: each computed section (`geometry.report.sections`) as figures with a one-line reading each, and
the whole as one self-contained HTML page (plotly.js embedded once, inline, so the file opens offline).

The only part of the report that imports `geometry.figures` (and, through it, plotly), and only when drawing.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geometry.report.config import ReportConfig
from geometry.report.sections import (
    AccuracySection,
    ConnectivitySection,
    CurvatureSection,
    DeepFoolSection,
    DetectionSection,
    FrequencySection,
    ModelSection,
    ReportResults,
    RobustnessSection,
    SectionResult,
)
from geometry.report.verdicts import Verdict

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Report", "ReportItem", "ReportSection", "render_sections", "report_html", "verdict_html"]


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
    caveats: list[str] = field(default_factory=list)  # what qualifies the section's numbers, shown beside them


@dataclass
class Report:
    model: str
    dataset: str
    config: ReportConfig
    sections: list[ReportSection]
    created: str  # ISO time
    seconds: float
    results: ReportResults | None = None  # the numbers the sections draw
    verdict: Verdict | None = None  # the go / no-go checks against config.thresholds

    def section(self, key: str) -> ReportSection:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections are {[s.key for s in self.sections]}")


# -- each section's figures --------------------------------------------------------------------------------------------


def _model_items(res: ModelSection) -> list[ReportItem]:
    return [ReportItem("What the model is and how it was trained.", table=res.rows)]


def _accuracy_items(res: AccuracySection) -> list[ReportItem]:
    from geometry.figures.common import class_accuracy_figure

    return [
        ReportItem(
            "Accuracy per true class: a low bar is a class the model often gets wrong.",
            class_accuracy_figure(res.per_class, res.counts, res.class_names),
        )
    ]


def _deepfool_items(res: DeepFoolSection) -> list[ReportItem]:
    from geometry.figures.margins import margin_histogram

    ok = res.converged.numpy() & res.norm.isfinite().numpy()
    if not ok.any():
        return [ReportItem("DeepFool margins.", margin_histogram(res.norm, res.converged))]
    return [
        ReportItem(
            "L2 distance (in [0, 1] pixels) from each input to the boundary along DeepFool's path: "
            "small values are inputs a tiny perturbation flips.",
            margin_histogram(res.norm, res.converged),
        )
    ]


def _frequency_items(res: FrequencySection) -> list[ReportItem]:
    from geometry.figures.margins import band_images_figure, frequency_margins_figure

    margins = res.margins
    assert margins is not None
    return [
        ReportItem(
            "Subspace-DeepFool margin of each input inside each DCT band (log scale): small = the model relies "
            "on those frequencies; large = it is nearly invariant to them.",
            frequency_margins_figure(margins),
        ),
        ReportItem(
            "A random image from each band's subspace, low to high frequency.",
            band_images_figure(res.input_shape, margins.band_starts.tolist(), margins.block),
        ),
    ]


def _curvature_items(res: CurvatureSection) -> list[ReportItem]:
    from geometry.figures.curvature import curvature_summary_figure

    if not res.measured.any():
        return [ReportItem("Curvature summary.", curvature_summary_figure(res.curvature))]
    return [
        ReportItem(
            "Principal curvatures of the boundary at DeepFool's boundary points (kappa > 0: the input's region "
            "is locally convex), against the curvature along random tangent directions.",
            curvature_summary_figure(res.curvature),
        )
    ]


def _connectivity_items(res: ConnectivitySection) -> list[ReportItem]:
    from geometry.figures.connectivity import connectivity_figure, path_figure

    assert res.paths is not None
    return [
        ReportItem(
            "Same-class pairs by the number of anchors their path needed (the class regions are connected "
            "when all are joined).",
            connectivity_figure(res.paths),
        ),
        ReportItem(
            "One path: the inputs along it with the class predicted under each, and the class at "
            "every sampled point (one colour = inside the class all along).",
            path_figure(res.paths, res.example, res.class_names),
        ),
    ]


def _detection_items(res: DetectionSection) -> list[ReportItem]:
    from geometry.figures.detection import detection_scores_figure, roc_figure

    return [
        ReportItem(
            "ROC of the detector over all thresholds; the diamond is the chosen operating point.",
            roc_figure(res.detection),
        ),
        ReportItem(
            "The detection score on clean and on perturbed inputs: the further apart, the easier to detect.",
            detection_scores_figure(res.detection),
        ),
    ]


def _robustness_items(res: RobustnessSection) -> list[ReportItem]:
    from geometry.figures.robustness import position_heatmap, sweep_figure

    s = res.sweeps
    items = [
        ReportItem(
            "Own images scaled about their centre on their own border colour: share of predictions kept "
            "(solid) and mean logit margin of the original class (dashed).",
            sweep_figure(s["scale"], title="scale"),
        ),
        ReportItem("Own images rotated: predictions kept and margin.", sweep_figure(s["rotate"], title="rotation")),
        ReportItem(
            "Input resolution changed (down-sampled and back up, or the reverse): predictions kept and margin.",
            sweep_figure(s["resolution"], title="resolution"),
        ),
        ReportItem(
            "Own images shifted: share of predictions kept for each shift (x right, y down).",
            position_heatmap(s["shift"], what="kept", title="shift"),
        ),
    ]
    if res.shapes_area is not None and res.shapes_position is not None:
        items += [
            ReportItem(
                "Generated shapes of one size (area fraction, centred): accuracy and mean margin of the true class.",
                sweep_figure(res.shapes_area, metric="accuracy", title="object size"),
            ),
            ReportItem(
                "Generated shapes rotated, one curve per object size (area fraction): accuracy and mean margin.",
                sweep_figure(
                    {f"area {a:g}": r for a, r in res.shapes_rotation.items()},
                    metric="accuracy",
                    title="object rotation at several sizes",
                ),
            ),
            ReportItem(
                "Generated shapes with their centre at each grid position: accuracy.",
                position_heatmap(res.shapes_position, what="accuracy", title="object position"),
            ),
        ]
    return items


# each section's figures, by its key (a function of that section's result type)
_ITEMS: dict[str, Callable[[Any], list[ReportItem]]] = {
    "model": _model_items,
    "accuracy": _accuracy_items,
    "deepfool": _deepfool_items,
    "frequency": _frequency_items,
    "curvature": _curvature_items,
    "connectivity": _connectivity_items,
    "detection": _detection_items,
    "robustness": _robustness_items,
}


def render_section(res: SectionResult) -> ReportSection:
    """One computed section with its figures (none when it does not apply to the model)."""
    items = _ITEMS[res.key](res) if res.applicable else []
    return ReportSection(res.key, res.title, res.summary, items, applicable=res.applicable, caveats=list(res.caveats))


def render_sections(results: ReportResults) -> list[ReportSection]:
    """Every computed section with its figures, in the report's order."""
    return [render_section(res) for res in results]


# -- the page ----------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 24px; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; } .summary { font-size: 1.05em; background: #f4f7fb; padding: 10px 14px;
        border-left: 4px solid #1f77b4; } .reading { color: #444; margin: 1.2em 0 0.2em; font-style: italic; }
.na { border-left-color: #aaa; color: #666; } table { border-collapse: collapse; margin: 0.5em 0; }
td { border-bottom: 1px solid #eee; padding: 4px 12px 4px 0; vertical-align: top; } td:first-child { color: #666; }
nav ol { columns: 2; } code { background: #f3f3f3; padding: 0 3px; }
.caveat { background: #fff8e6; border-left: 4px solid #e0a800; padding: 6px 14px; margin: 0.4em 0; }
.verdict { padding: 10px 14px; border-left: 6px solid; } .go { border-color: #2a9d2a; background: #eef8ee; }
.no-go { border-color: #c62828; background: #fbeeee; } td.fail { color: #c62828; font-weight: 600; }
td.pass { color: #2a7d2a; }
"""


def _config_text(config: ReportConfig) -> str:
    """``name=value`` for each setting; an options object as ``name=Class(field=value, ...)`` of its non-defaults."""
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            default = type(value)()
            changed = [
                f"{g.name}={getattr(value, g.name)}"
                for g in dataclasses.fields(value)
                if getattr(value, g.name) != getattr(default, g.name)
            ]
            value = f"{type(value).__name__}({', '.join(changed)})"
        parts.append(f"{f.name}={value}")
    return ", ".join(parts)


def verdict_html(verdict: Verdict) -> str:
    """The go / no-go block: the overall verdict, one row per check (number, threshold, pass / fail), the thresholds."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c.name)}</td><td>{esc(c.value_text)}</td><td>{esc(c.threshold_text)}</td>"
        f"<td class='{esc(c.status.replace(' ', '-'))}'>{esc(c.status)}</td><td>{esc(c.note)}</td></tr>"
        for c in verdict.checks
    )
    kind = "go" if verdict.go else "no-go"
    header = "<tr><td>check</td><td>measured</td><td>threshold</td><td>result</td><td></td></tr>"
    return (
        f"<section id='verdict' data-section='verdict' data-verdict='{kind}'><h2>Go / no-go</h2>"
        f"<p class='verdict {kind}'><strong>{esc(verdict.summary)}</strong></p><table>{header}{rows}</table>"
        f"<p class='meta'>Thresholds: {esc(verdict.thresholds.text())}. Go only if every check that applies passes; "
        "a number that could not be measured fails.</p></section>"
    )


def report_html(report: Report) -> str:
    """The report as one self-contained HTML page (plotly.js inline once; opens offline)."""
    from plotly.offline import get_plotlyjs

    if not isinstance(report, Report):
        raise TypeError(f"expected a Report (build_report), got {type(report).__name__}")
    esc = html.escape
    body = [
        f"<h1>Boundary Atlas report: {esc(report.model)}</h1>",
        f"<p class='meta'>Data: {esc(report.dataset)} · generated {esc(report.created)} in "
        f"{report.seconds:.1f} s · configuration: {esc(_config_text(report.config))}</p>",
        "<nav><ol>"
        + "".join(f"<li><a href='#sec-{s.key}'>{esc(s.title)}</a></li>" for s in report.sections)
        + "</ol></nav>",
    ]
    if report.verdict is not None:
        body.insert(2, verdict_html(report.verdict))
    fig_count = 0
    for s in report.sections:
        body.append(f"<section id='sec-{s.key}' data-section='{s.key}'><h2>{esc(s.title)}</h2>")
        body.append(f"<p class='summary{'' if s.applicable else ' na'}'>{esc(s.summary)}</p>")
        body.extend(f"<p class='caveat'>Caveat: {esc(c)}</p>" for c in s.caveats)
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

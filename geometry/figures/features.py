"""Figures of the Feature space view: embedding scatter with painted regions, exact feature-plane maps,
pixel-space slices beside them, convex-hull summaries and the morphing comparison. Numpy in, plotly out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geometry.figures.common import class_color, discrete_colorscale

if TYPE_CHECKING:
    from geometry.features.hull import HullReport
    from geometry.features.morph import MorphResult
    from geometry.features.regions import FeatureRegionMap, PaintedRegions
    from geometry.slices.evaluate import SliceResult

__all__ = [
    "embedding_scatter",
    "feature_plane_figure",
    "hull_figure",
    "morph_figure",
    "slice_label_figure",
]

PAINT_ALPHA = 0.42  # opacity of a trusted painted region
DIM_ALPHA = 0.10  # ... and of an untrusted one
INVALID_ALPHA = 0.22  # slices: grid points outside the model's input range
MAP_ALPHA = 0.55  # opacity of exact region maps


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.3f})"


def _label_heatmap(
    x: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    alpha: float,
    dim: np.ndarray | None = None,
    dim_alpha: float = DIM_ALPHA,
    name: str = "regions",
    hover: bool = True,
) -> go.Heatmap:
    """Class labels as a heatmap in class colours; where ``dim`` is True the colour is much paler."""
    colors = [_rgba(class_color(k, num_classes), alpha) for k in range(num_classes)]
    z = np.asarray(labels, dtype=np.int32)
    if dim is not None:
        colors += [_rgba(class_color(k, num_classes), dim_alpha) for k in range(num_classes)]
        z = np.where(dim, z + num_classes, z)
    n = len(colors)
    return go.Heatmap(
        x=x,
        y=y,
        z=z,
        zmin=-0.5,
        zmax=n - 0.5,
        colorscale=discrete_colorscale(colors),
        showscale=False,
        name=name,
        hoverinfo="skip" if not hover else None,
        hovertemplate=None if not hover else "(%{x:.3g}, %{y:.3g})<extra>" + name + "</extra>",
    )


def embedding_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    color_by: str = "true",
    painted: PaintedRegions | None = None,
    highlight: Sequence[int] = (),
    axis_names: tuple[str, str] = ("axis 1", "axis 2"),
    title: str = "",
) -> go.Figure:
    """Samples at their 2D embedding coordinates, coloured by true or predicted class, misclassified ringed.

    ``indices`` (N,): the samples' positions in their data set, stored as customdata (selections report them).
    ``painted``: a `PaintedRegions` drawn behind the points (pale where it is not trusted).
    ``highlight``: data set indices to mark with a black ring and their number.
    """
    xy = np.asarray(coords, dtype=float)
    y_true = np.asarray(labels, dtype=np.int64)
    y_pred = np.asarray(predictions, dtype=np.int64)
    n, k = len(xy), len(class_names)
    if xy.shape != (n, 2) or y_true.shape != (n,) or y_pred.shape != (n,):
        raise ValueError(
            f"expected coords (N, 2), labels (N,), predictions (N,); got {xy.shape}, {y_true.shape}, {y_pred.shape}"
        )
    if color_by not in ("true", "predicted"):
        raise ValueError(f"expected color_by 'true' or 'predicted', got {color_by!r}")
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    colour_class = np.where(y_true >= 0, y_true, y_pred) if color_by == "true" else y_pred
    names = list(class_names)
    truth_text = np.array([names[c] if c >= 0 else "unlabelled" for c in y_true], dtype=object)
    text = np.array(
        [f"#{i} · true {t} · predicted {names[p]}" for i, t, p in zip(idx, truth_text, y_pred, strict=True)]
    )
    wrong = (y_true >= 0) & (y_true != y_pred)
    fig = go.Figure()
    if painted is not None:
        fig.add_trace(
            _label_heatmap(
                painted.x,
                painted.y,
                painted.labels,
                k,
                alpha=PAINT_ALPHA,
                dim=~np.asarray(painted.trusted),
                name="painted regions (approximate)",
                hover=False,
            )
        )
    marker_size = 7 if n <= 2000 else 5
    for c in range(k):
        sel = colour_class == c
        if not sel.any():
            continue
        fig.add_trace(
            go.Scattergl(
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=names[c],
                customdata=idx[sel][:, None],
                text=text[sel],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(
                    size=marker_size, color=class_color(c, k), opacity=0.85, line=dict(width=0.5, color="white")
                ),
            )
        )
    if wrong.any():
        fig.add_trace(
            go.Scattergl(
                x=xy[wrong, 0],
                y=xy[wrong, 1],
                mode="markers",
                name="misclassified",
                customdata=idx[wrong][:, None],
                text=text[wrong],
                hovertemplate="%{text} ✗<extra></extra>",
                marker=dict(symbol="x-thin", size=marker_size + 5, color="black", line=dict(width=1.6, color="black")),
            )
        )
    if len(highlight):
        pos = {int(i): p for p, i in enumerate(idx)}
        h = [pos[int(i)] for i in highlight if int(i) in pos]
        if h:
            fig.add_trace(
                go.Scatter(
                    x=xy[h, 0],
                    y=xy[h, 1],
                    mode="markers+text",
                    name="chosen",
                    text=[f"#{idx[p]}" for p in h],
                    textposition="top center",
                    customdata=idx[h][:, None],
                    hoverinfo="skip",
                    marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(width=2.5, color="black")),
                )
            )
    fig.update_layout(
        title=title or None,
        height=600,
        dragmode="lasso",
        legend=dict(itemsizing="constant"),
        xaxis=dict(title=axis_names[0], zeroline=False),
        yaxis=dict(title=axis_names[1], zeroline=False),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="white",
    )
    return fig


def _class_legend(fig: go.Figure, present: Sequence[int], class_names: Sequence[str], **subplot: Any) -> None:
    k = len(class_names)
    for c in present:
        marker = dict(size=10, symbol="square", color=class_color(c, k))
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="markers", name=class_names[c], legendgroup=f"c{c}", marker=marker),
            **subplot,
        )


def feature_plane_figure(
    region_map: FeatureRegionMap,
    class_names: Sequence[str],
    *,
    anchor_names: Sequence[str] = (),
    point_classes: np.ndarray | None = None,
    title: str = "",
) -> go.Figure:
    """An exact `FeatureRegionMap`: regions in class colours, boundaries as black lines, anchors marked.

    ``point_classes`` (P,): the model's predictions for the projected points in ``region_map.point_coords``
    (drawn small; they lie off the plane, so their colour may differ from the region under them).
    """
    k = len(class_names)
    rm = region_map
    fig = go.Figure()
    fig.add_trace(_label_heatmap(rm.a, rm.b, rm.labels, k, alpha=MAP_ALPHA, name="exact regions"))
    segs = np.asarray(rm.segments)
    if len(segs):
        xs = np.concatenate([np.append(s[:, 0], np.nan) for s in segs])
        ys = np.concatenate([np.append(s[:, 1], np.nan) for s in segs])
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name="boundaries", line=dict(color="black", width=1.6), hoverinfo="skip"
            )
        )
    pc = np.asarray(rm.point_coords)
    if len(pc) and point_classes is not None:
        cls = np.asarray(point_classes, dtype=np.int64)
        fig.add_trace(
            go.Scattergl(
                x=pc[:, 0],
                y=pc[:, 1],
                mode="markers",
                name="samples (projected)",
                marker=dict(size=4, color=[class_color(int(c), k) for c in cls], opacity=0.55),
                hoverinfo="skip",
            )
        )
    an = np.asarray(rm.anchors)
    if len(an):
        names = list(anchor_names) or [f"anchor {i + 1}" for i in range(len(an))]
        _add_anchors(fig, an, names, rm.anchor_classes, class_names)
    _class_legend(fig, [c for c in range(k) if rm.area_share[c] > 0], class_names)
    _plane_layout(fig, rm.extent, "feature units", title)
    return fig


def _add_anchors(
    fig: go.Figure, xy: np.ndarray, names: Sequence[str], classes: Sequence[int], class_names: Sequence[str]
) -> None:
    """The chosen samples: large markers in their class colour, labelled "name → class"."""
    k = len(class_names)
    fig.add_trace(
        go.Scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers+text",
            name="chosen samples",
            text=[f"{nm} → {class_names[int(c)]}" for nm, c in zip(names, classes, strict=True)],
            textposition="top center",
            hovertemplate="%{text}<extra></extra>",
            marker=dict(size=14, color=[class_color(int(c), k) for c in classes], line=dict(width=2, color="black")),
        )
    )


def _plane_layout(fig: go.Figure, extent: Sequence[float], units: str, title: str) -> None:
    """Square axes a, b over ``extent`` (a0, a1, b0, b1) in ``units``, legend below: the two plane maps alike."""
    a0, a1, b0, b1 = extent
    fig.update_layout(
        title=title or None,
        height=540,
        plot_bgcolor="white",
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.14, xanchor="left", x=0.0),
        xaxis=dict(title=f"a ({units})", range=[a0, a1], constrain="domain"),
        yaxis=dict(title=f"b ({units})", range=[b0, b1], scaleanchor="x", constrain="domain"),
    )


def slice_label_figure(
    slice_result: SliceResult,
    class_names: Sequence[str],
    *,
    anchors: Mapping[str, tuple[float, float]] | None = None,
    anchor_classes: Sequence[int] = (),
    title: str = "",
) -> go.Figure:
    """A pixel-space `SliceResult` drawn like `feature_plane_figure` (grid outside [0, 1] paler), for side by side."""
    k = len(class_names)
    s = slice_result
    fig = go.Figure()
    fig.add_trace(
        _label_heatmap(
            s.a,
            s.b,
            s.labels,
            k,
            alpha=MAP_ALPHA,
            dim=~np.asarray(s.valid),
            dim_alpha=INVALID_ALPHA,
            name="model's class",
        )
    )
    if anchors:
        names = list(anchors)
        xy = np.array([anchors[n] for n in names], dtype=float)
        cls = list(anchor_classes) or [s.label_at(a, b) for a, b in xy]
        _add_anchors(fig, xy, names, cls, class_names)
    present = np.unique(np.asarray(s.labels)).tolist()
    _class_legend(fig, [int(c) for c in present], class_names)
    _plane_layout(fig, s.extent, "L2 pixel units", title)
    return fig


def hull_figure(report: HullReport, class_names: Sequence[str]) -> go.Figure:
    """Share of test samples outside their class's training hull (bars per class, the overall share as a line),
    and the distribution of distances to the overall hull relative to the spread of the training features."""
    k = len(class_names)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.5, 0.5],
        horizontal_spacing=0.12,
        subplot_titles=(
            "outside the hull of their class's training features",
            "distance to the hull of all training features",
        ),
    )
    share = np.asarray(report.per_class_outside, dtype=float)
    present = [c for c in range(k) if report.per_class_count[c] > 0]
    fig.add_trace(
        go.Bar(
            x=[class_names[c] for c in present],
            y=share[present],
            name="per class",
            marker_color=[class_color(c, k) for c in present],
            text=[f"{share[c]:.0%}" for c in present] if len(present) <= 6 else None,
            textposition="auto",
            customdata=np.asarray(report.per_class_count)[present],
            hovertemplate="class %{x}: %{y:.1%} of %{customdata} outside<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[class_names[c] for c in present],
            y=[report.share_outside] * len(present),
            mode="lines",
            line=dict(color="black", dash="dash"),
            name="outside the overall hull",
            hovertemplate=f"outside the hull of all training features: {report.share_outside:.1%}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    rel = np.asarray(report.distance, dtype=float) / max(report.scale, 1e-12)
    fig.add_trace(
        go.Histogram(
            x=rel, nbinsx=30, name="distance", marker_color="#555", hovertemplate="%{x}: %{y} samples<extra></extra>"
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(title_text="share outside", range=[0, 1.05], tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="class", type="category", row=1, col=1)
    fig.update_xaxes(title_text="distance / median radius of the training features", row=1, col=2)
    fig.update_yaxes(title_text="test samples", row=1, col=2)
    fig.update_layout(height=380, showlegend=False, margin=dict(l=10, r=10, t=40, b=10), bargap=0.15)
    return fig


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=float)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def morph_figure(
    result: MorphResult, class_names: Sequence[str], *, endpoint_names: tuple[str, str] = ("a", "b")
) -> go.Figure:
    """The class along the pixel path and along the feature path (strips), and the probabilities of the two
    endpoint classes along each (solid: pixel path, dashed: feature path)."""
    k = len(class_names)
    t = np.asarray(result.t)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.08)
    strips = np.stack([result.feature_pred, result.pixel_pred])
    colors = [_rgba(class_color(c, k), 0.9) for c in range(k)]
    text = np.array([[class_names[int(c)] for c in row] for row in strips])
    fig.add_trace(
        go.Heatmap(
            x=t,
            y=["feature path", "pixel path"],
            z=strips,
            zmin=-0.5,
            zmax=k - 0.5,
            colorscale=discrete_colorscale(colors),
            showscale=False,
            text=text,
            hovertemplate="t=%{x:.3f}: %{text}<extra>%{y}</extra>",
            xgap=0,
            ygap=3,
        ),
        row=1,
        col=1,
    )
    ends = []
    for c in (int(result.pixel_pred[0]), int(result.pixel_pred[-1])):
        if c not in ends:
            ends.append(c)
    pp, fp = _softmax(result.pixel_logits), _softmax(result.feature_logits)
    for c in ends:
        col = class_color(c, k)
        fig.add_trace(
            go.Scatter(
                x=t, y=pp[:, c], mode="lines", name=f"P({class_names[c]}) pixel path", line=dict(color=col, width=2.5)
            ),
            row=2,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=t,
                y=fp[:, c],
                mode="lines",
                name=f"P({class_names[c]}) feature path",
                line=dict(color=col, width=2.5, dash="dash"),
            ),
            row=2,
            col=1,
        )
    for tb in result.feature_breaks:
        fig.add_vline(x=float(tb), line=dict(color="#888", dash="dot", width=1), row=2, col=1)
    fig.update_yaxes(title_text="probability", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text=f"t  (0 = {endpoint_names[0]}, 1 = {endpoint_names[1]})", row=2, col=1)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25))
    return fig

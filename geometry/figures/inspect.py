"""Figures of the inspection views: frequency margins, connectivity, detection, robustness, and the report.

Numpy / torch results in, plotly figures out; no Streamlit. Class colours come from `class_color`, images are
composed into one PNG per figure (small HTML, crisp pixels).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from geometry.figures.common import class_color, image_to_uint8

__all__ = [
    "band_images_figure",
    "class_accuracy_figure",
    "connectivity_figure",
    "curvature_summary_figure",
    "detection_scores_figure",
    "frequency_margins_figure",
    "image_grid_figure",
    "image_strip_figure",
    "margin_histogram",
    "path_figure",
    "position_heatmap",
    "rho_figure",
    "roc_figure",
    "sweep_figure",
]

_OK = "#2ca02c"
_BAD = "#d62728"
_MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b")


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mosaic(tiles: list[list[np.ndarray]], gap: int) -> np.ndarray:
    """Rows of equally sized uint8 tiles (h, w, 3) -> one image with white gaps."""
    h, w = tiles[0][0].shape[:2]
    rows, cols = len(tiles), max(len(r) for r in tiles)
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def image_grid_figure(
    images: Any,
    *,
    row_titles: Sequence[str] = (),
    col_titles: Sequence[str] = (),
    captions: Sequence[Sequence[str]] | None = None,
    caption_colors: Sequence[Sequence[str]] | None = None,
    tile: int = 72,
    title: str = "",
) -> go.Figure:
    """A grid of images ``(R, C, ch, H, W)`` in [0, 1] with optional row/column titles and a caption under each.

    One PNG holds the tiles and white space for the texts, which are annotations inside it (so nothing is clipped);
    the figure's height shows it pixel for pixel.
    """
    arr = _np(images)
    if arr.ndim != 5 or arr.shape[2] not in (1, 3):
        raise ValueError(f"expected images of shape (rows, cols, 1 or 3, H, W), got {arr.shape}")
    rows, cols = arr.shape[:2]
    tiles = [[image_to_uint8(arr[r, c], min_size=tile) for c in range(cols)] for r in range(rows)]
    th, tw = tiles[0][0].shape[:2]
    gap = max(4, tw // 10)
    # columns at least as wide as their titles and captions (about 7 px per character)
    widest = max([len(str(t)) for t in col_titles] + [len(str(c)) for row in (captions or []) for c in row] + [0])
    col_gap = max(gap, 7 * widest + 8 - tw)
    cap_h = 20 if captions is not None else 0
    top = 26 if col_titles else 0
    left = 8 + 7 * max((len(str(t)) for t in row_titles), default=0) if row_titles else 0
    height = top + rows * (th + cap_h) + (rows - 1) * gap
    width = left + cols * tw + (cols - 1) * col_gap
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    fig = go.Figure()
    for r in range(rows):
        y0 = top + r * (th + cap_h + gap)
        for c in range(cols):
            x0 = left + c * (tw + col_gap)
            canvas[y0 : y0 + th, x0 : x0 + tw] = tiles[r][c]
            if captions is not None:
                color = caption_colors[r][c] if caption_colors is not None else "#333"
                fig.add_annotation(
                    x=x0 + tw / 2,
                    y=y0 + th + 2,
                    text=str(captions[r][c]),
                    showarrow=False,
                    yanchor="top",
                    font=dict(size=11, color=color),
                )
        if r < len(row_titles):
            fig.add_annotation(
                x=left - 8, y=y0 + th / 2, text=str(row_titles[r]), showarrow=False, xanchor="right", font=dict(size=12)
            )
    for c, text in enumerate(col_titles[:cols]):
        fig.add_annotation(
            x=left + c * (tw + col_gap) + tw / 2, y=top / 2, text=f"<b>{text}</b>", showarrow=False, font=dict(size=12)
        )
    fig.add_trace(go.Image(source=_png(canvas), hoverinfo="skip"))
    fig.data = fig.data[::-1]
    head = 34 if title else 4
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5])
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(
        title=title or None, margin=dict(l=4, r=4, t=head, b=4), plot_bgcolor="white", height=height + head + 8
    )
    return fig


def image_strip_figure(
    images: Any, captions: Sequence[str] = (), *, colors: Sequence[str] | None = None, tile: int = 72, title: str = ""
) -> go.Figure:
    """One row of images ``(T, ch, H, W)`` with a caption (and caption colour) under each."""
    arr = _np(images)
    caps = [list(captions)] if captions else None
    cols = [list(colors)] if colors is not None else None
    return image_grid_figure(arr[None], captions=caps, caption_colors=cols, tile=tile, title=title)


# -- margins -----------------------------------------------------------------------------------------------------------


def margin_histogram(
    norms: Any,
    converged: Any,
    *,
    title: str = "DeepFool margin distribution",
    unit: str = "L2 distance in [0, 1] pixels",
) -> go.Figure:
    """Histogram of DeepFool margins; runs that did not cross the boundary are counted in the title, not drawn."""
    n = _np(norms).astype(float)
    ok = _np(converged).astype(bool) & np.isfinite(n)
    fig = go.Figure(
        go.Histogram(
            x=n[ok],
            nbinsx=min(40, max(5, int(ok.sum() // 3) or 5)),
            marker_color="#1f77b4",
            hovertemplate="margin %{x}<br>%{y} images<extra></extra>",
        )
    )
    if ok.any():
        med = float(np.median(n[ok]))
        fig.add_vline(
            x=med,
            line=dict(color="#333", dash="dash"),
            annotation_text=f"median {med:.3g}",
            annotation_position="top right",
        )
    failed = int((~ok).sum())
    note = f" ({failed} not converged, not shown)" if failed else ""
    fig.update_layout(
        title=title + note,
        xaxis_title=unit,
        yaxis_title="images",
        height=320,
        bargap=0.05,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def frequency_margins_figure(
    results: Mapping[str, Any] | Any,
    *,
    kind: str = "box",
    log_y: bool = True,
    title: str = "Margins along DCT frequency bands",
) -> go.Figure:
    """Margin distribution per frequency band (low -> high), a random subspace of the same dimension and the
    unconstrained DeepFool margin, for one or several models (a mapping name -> `FrequencyMargins`).

    Not-converged runs are drawn as red crosses at their accumulated norm (a lower bound on the margin).
    """
    if kind not in ("box", "violin"):
        raise ValueError(f"expected kind 'box' or 'violin', got {kind!r}")
    if not isinstance(results, Mapping):
        results = {"": results}
    if not results:
        raise ValueError("expected at least one FrequencyMargins result, got none")
    fig = go.Figure()
    many = len(results) > 1
    for i, (name, res) in enumerate(results.items()):
        color = _MODEL_COLORS[i % len(_MODEL_COLORS)]
        labels = res.band_labels()
        m, c = _np(res.margins).astype(float), _np(res.converged).astype(bool)
        cols = [(labels[b], m[:, b], c[:, b]) for b in range(m.shape[1])]
        rm, rc = _np(res.random_margins).astype(float), _np(res.random_converged).astype(bool)
        if rm.shape[1]:
            cols.append(("random", rm.ravel(), rc.ravel()))
        fm, fc = _np(res.full_margins).astype(float), _np(res.full_converged).astype(bool)
        if np.isfinite(fm).any():
            cols.append(("full", fm, fc))
        xs = np.concatenate([[lab] * len(v) for lab, v, _ in cols])
        ys = np.concatenate([v for _, v, _ in cols])
        ok = np.concatenate([k for _, _, k in cols])
        trace_name = name or "margins"
        common = dict(
            x=xs[ok],
            y=ys[ok],
            name=trace_name,
            legendgroup=trace_name,
            marker_color=color,
            offsetgroup=str(i) if many else None,
        )
        if kind == "box":
            fig.add_trace(
                go.Box(
                    boxpoints="outliers", hovertemplate="band %{x}: %{y:.3g}<extra>" + trace_name + "</extra>", **common
                )
            )
        else:
            fig.add_trace(
                go.Violin(
                    points=False, box_visible=True, meanline_visible=False, spanmode="hard", scalemode="width", **common
                )
            )
        if (~ok).any():
            fig.add_trace(
                go.Scatter(
                    x=xs[~ok],
                    y=ys[~ok],
                    mode="markers",
                    name=f"{trace_name}: not converged",
                    legendgroup=trace_name,
                    marker=dict(symbol="x", color=_BAD, size=8),
                    hovertemplate="band %{x}: >= %{y:.3g} (not converged)<extra></extra>",
                )
            )
    first = next(iter(results.values()))
    extras = ", random subspace" if first.random_margins.shape[1] else ""
    extras += ", full input" if any(np.isfinite(_np(r.full_margins)).any() for r in results.values()) else ""
    fig.update_layout(
        title=title,
        height=420,
        margin=dict(l=10, r=10, t=40, b=10),
        boxmode="group" if many else "overlay",
        violinmode="group" if many else "overlay",
        xaxis=dict(
            title=f"DCT band (frequencies, {first.block}x{first.block} blocks of dimension "
            f"{first.subspace_dim}; low -> high){extras}",
            type="category",
        ),
        yaxis=dict(title="margin (L2 in [0, 1] pixels)", type="log" if log_y else "linear"),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return fig


def band_images_figure(
    input_shape: Sequence[int], starts: Sequence[int], block: int, *, seed: int = 0, tile: int = 64
) -> go.Figure:
    """One random image from each band's subspace (grey = 0), labelled by its frequency range."""
    from geometry.inspection.margins import band_image

    images = np.stack([_np(band_image(input_shape, int(s), block, seed=seed)) for s in starts])
    captions = [f"{int(s)}-{int(s) + block - 1}" for s in starts]
    return image_strip_figure(images, captions, tile=tile)


# -- curvature ---------------------------------------------------------------------------------------------------------


def curvature_summary_figure(result: Any) -> go.Figure:
    """Left: principal curvatures at each image's boundary point (faint) and their median (bold), by rank.
    Right: normal curvatures along random tangent directions, against the most curved directions' values."""
    curv = _np(result.curvatures).astype(float)
    rand = _np(result.random_curvatures).astype(float)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.5, 0.5],
        horizontal_spacing=0.1,
        subplot_titles=("principal curvatures (by rank)", "random tangent directions"),
    )
    rows = [r for r in curv if np.isfinite(r).any()]
    ranks = np.arange(1, curv.shape[1] + 1)
    for r in rows:
        fig.add_trace(
            go.Scatter(
                x=ranks,
                y=r,
                mode="lines",
                line=dict(color="rgba(31,119,180,0.25)", width=1),
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    if rows:
        fig.add_trace(
            go.Scatter(
                x=ranks,
                y=np.nanmedian(np.array(rows), axis=0),
                mode="lines+markers",
                name="median over images",
                line=dict(color="#1f77b4", width=3),
            ),
            row=1,
            col=1,
        )
    finite = rand[np.isfinite(rand)]
    if finite.size:
        fig.add_trace(go.Histogram(x=finite, nbinsx=50, marker_color="#7f7f7f", name="random directions"), row=1, col=2)
    if rows:
        top, bottom = np.nanmedian(np.array(rows)[:, 0]), np.nanmedian(np.array(rows)[:, -1])
        for v, text in ((top, "most positive (median)"), (bottom, "most negative (median)")):
            fig.add_vline(
                x=float(v),
                line=dict(color=_BAD, dash="dash"),
                row=1,
                col=2,
                annotation_text=text,
                annotation_font_size=10,
            )
    fig.add_hline(y=0, line=dict(color="#999", width=1), row=1, col=1)
    fig.update_xaxes(title_text="rank", row=1, col=1)
    fig.update_yaxes(title_text="kappa (1 / L2 pixels)", row=1, col=1)
    fig.update_xaxes(title_text="kappa along a random tangent direction", row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


# -- connectivity ------------------------------------------------------------------------------------------------------


def _discrete_scale(colors: Sequence[str]) -> list[list[Any]]:
    k = len(colors)
    if k == 1:
        return [[0, colors[0]], [1, colors[0]]]
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / k, c], [(i + 1) / k, c]]
    return scale


def path_figure(result: Any, p: int, class_names: Sequence[str], *, tile: int = 72) -> go.Figure:
    """Pair ``p`` of a `PathResult`: the inputs along the path (class under each) over a band of the class at
    every sampled point along it (the path's own class should fill it)."""
    k = len(class_names)
    strip = _np(result.strip[p])
    sc = _np(result.strip_class[p]).astype(int)
    pc = _np(result.path_class[p]).astype(int)
    c = int(result.cls[p])
    tiles = [[image_to_uint8(img, min_size=tile) for img in strip]] if strip.ndim == 4 else None
    fig = make_subplots(rows=2, cols=1, row_heights=[0.78, 0.22] if tiles else [0.01, 0.99], vertical_spacing=0.1)
    if tiles:
        mosaic = _mosaic(tiles, max(4, tiles[0][0].shape[1] // 10))
        fig.add_trace(go.Image(source=_png(mosaic), hoverinfo="skip"), row=1, col=1)
        tw = tiles[0][0].shape[1]
        gap = max(4, tw // 10)
        for i, cls in enumerate(sc):
            fig.add_annotation(
                x=i * (tw + gap) + tw / 2,
                y=tiles[0][0].shape[0] + 2,
                text=class_names[cls],
                showarrow=False,
                yanchor="top",
                font=dict(color=_OK if cls == c else _BAD, size=12),
                xref="x",
                yref="y",
            )
        fig.update_xaxes(visible=False, row=1, col=1)
        fig.update_yaxes(visible=False, row=1, col=1, range=[tiles[0][0].shape[0] + 20, -0.5])
    s = np.linspace(0, 1, len(pc))
    colors = [class_color(i, k) for i in range(k)]
    fig.add_trace(
        go.Heatmap(
            x=s,
            y=["class"],
            z=pc[None],
            zmin=-0.5,
            zmax=k - 0.5,
            colorscale=_discrete_scale(colors),
            showscale=False,
            text=[[class_names[v] for v in pc]],
            hovertemplate="position %{x:.2f}: %{text}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_xaxes(title_text="position along the path (fraction of its length)", row=2, col=1)
    status = "inside the class all along" if bool(result.success[p]) else f"failed: {result.reason[p]}"
    fig.update_layout(
        title=f"Path in class {class_names[c]!r}: {int(result.num_anchors[p])} anchors, max deviation "
        f"{float(result.max_deviation[p]):.1%} of ||x1 - x2||, {status}",
        height=300 if tiles else 160,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def connectivity_figure(result: Any) -> go.Figure:
    """Pairs by number of anchors their path needed, split into joined (green) and not joined (red)."""
    anchors = _np(result.num_anchors).astype(int)
    ok = _np(result.success).astype(bool)
    top = int(anchors.max()) if len(anchors) else 0
    bins = np.arange(top + 1)
    fig = go.Figure()
    for mask, name, color in ((ok, "joined inside the class", _OK), (~ok, "not joined", _BAD)):
        counts = np.bincount(anchors[mask], minlength=top + 1)
        fig.add_trace(
            go.Bar(
                x=bins,
                y=counts,
                name=name,
                marker_color=color,
                hovertemplate="%{x} anchors: %{y} pairs<extra>" + name + "</extra>",
            )
        )
    rate = float(ok.mean()) if len(ok) else math.nan
    fig.update_layout(
        barmode="stack",
        title=f"{len(ok)} same-class pairs: {rate:.0%} joined by a path inside their class",
        xaxis=dict(title="anchors the path needed (0 = the straight segment)", dtick=1),
        yaxis_title="pairs",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return fig


# -- detection ---------------------------------------------------------------------------------------------------------


def roc_figure(result: Any, *, name: str = "") -> go.Figure:
    """ROC curve of the curvature statistic (clean = negative, DeepFool-perturbed = positive) with the chosen
    threshold's operating point."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#aaa", dash="dot"), name="chance", hoverinfo="skip"
        )
    )
    if len(result.roc_fpr):
        fig.add_trace(
            go.Scatter(
                x=result.roc_fpr,
                y=result.roc_tpr,
                mode="lines",
                line=dict(color="#1f77b4", width=3),
                name=f"{name + ': ' if name else ''}AUC {result.auc:.3f}",
                hovertemplate="FPR %{x:.2f}, TPR %{y:.2f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[result.fpr_at_threshold],
                y=[result.tpr_at_threshold],
                mode="markers",
                marker=dict(size=12, color=_BAD, symbol="diamond"),
                name=f"threshold {result.threshold:.3g} (target FPR {result.target_fpr:.0%})",
            )
        )
    fig.update_layout(
        title=f"Detecting DeepFool perturbations: AUC {result.auc:.3f}",
        xaxis=dict(title="false-positive rate (clean flagged)", range=[0, 1]),
        yaxis=dict(title="true-positive rate (perturbed flagged)", range=[0, 1.02]),
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
    )
    return fig


def detection_scores_figure(result: Any) -> go.Figure:
    """Distributions of the detection score on clean and on perturbed inputs, with the threshold."""
    clean = _np(result.clean_score).astype(float)
    pert = _np(result.perturbed_score).astype(float)
    fig = go.Figure()
    for v, name, color in ((clean, "clean", "#1f77b4"), (pert[np.isfinite(pert)], "DeepFool-perturbed", _BAD)):
        fig.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, marker_color=color, opacity=0.6, nbinsx=30))
    fig.add_vline(
        x=result.threshold,
        line=dict(color="#333", dash="dash"),
        annotation_text=f"threshold (FPR {result.fpr_at_threshold:.0%})",
    )
    fig.update_layout(
        barmode="overlay",
        title="Detection score max_i(-rho_i)",
        xaxis_title="score (logits / L2 px^2)",
        yaxis_title="inputs",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(x=0.01, y=0.98, xanchor="left", yanchor="top", bgcolor="rgba(255,255,255,0.7)"),
    )
    return fig


def rho_figure(
    rho: Any, class_names: Sequence[str], *, predicted: int, recovered: int, threshold: float | None = None
) -> go.Figure:
    """-rho_i of one input for every class i other than its prediction; the tallest bar is the recovered label."""
    r = _np(rho).astype(float).ravel()
    k = len(class_names)
    idx = [i for i in range(k) if i != predicted and np.isfinite(r[i])]
    fig = go.Figure(
        go.Bar(
            x=[class_names[i] for i in idx],
            y=[-r[i] for i in idx],
            marker_color=[class_color(i, k) for i in idx],
            marker_line=dict(width=[3 if i == recovered else 0 for i in idx], color="#000"),
            hovertemplate="class %{x}: -rho = %{y:.3g}<extra></extra>",
        )
    )
    if threshold is not None and math.isfinite(threshold):
        fig.add_hline(y=threshold, line=dict(color="#333", dash="dash"), annotation_text="threshold")
    fig.update_layout(
        title=f"-rho_i for each class i (predicted {class_names[predicted]!r}; outlined: the recovered "
        f"label {class_names[recovered]!r})",
        xaxis=dict(title="class i", type="category"),
        yaxis_title="-rho_i (logits / L2 px^2)",
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


# -- robustness --------------------------------------------------------------------------------------------------------


def sweep_figure(sweeps: Mapping[str, Any] | Any, *, metric: str = "kept", title: str = "") -> go.Figure:
    """A metric ("kept" or "accuracy") per factor value (solid, left axis) and the mean logit margin (dashed, right
    axis) of one or several 1D sweeps (a mapping name -> `SweepResult`)."""
    if metric not in ("kept", "accuracy"):
        raise ValueError(f"expected metric 'kept' or 'accuracy', got {metric!r}")
    if not isinstance(sweeps, Mapping):
        sweeps = {"": sweeps}
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    unit = ""
    for i, (name, s) in enumerate(sweeps.items()):
        if np.asarray(s.values).ndim != 1:
            raise ValueError(f"expected a 1D sweep, got {s.factor!r} with 2D values; use position_heatmap")
        color = _MODEL_COLORS[i % len(_MODEL_COLORS)]
        label = name or s.factor
        y = getattr(s, metric)
        fig.add_trace(
            go.Scatter(
                x=s.values,
                y=y,
                mode="lines+markers",
                name=f"{label}: {metric}",
                line=dict(color=color, width=3),
                legendgroup=label,
                hovertemplate="%{x:.3g}: %{y:.1%}<extra>" + label + "</extra>",
            ),
            secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(
                x=s.values,
                y=s.margin,
                mode="lines",
                name=f"{label}: mean margin",
                line=dict(color=color, dash="dash"),
                legendgroup=label,
                hovertemplate="%{x:.3g}: margin %{y:.3g}<extra>" + label + "</extra>",
            ),
            secondary_y=True,
        )
        unit = s.unit
    ylabel = "prediction kept" if metric == "kept" else "accuracy"
    fig.update_yaxes(title_text=ylabel, range=[0, 1.02], tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="mean logit margin f_y - max f_k", secondary_y=True, zeroline=True)
    fig.update_xaxes(title_text=unit)
    fig.update_layout(
        title=title or None,
        height=340,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return fig


def position_heatmap(sweep: Any, *, what: str = "accuracy", title: str = "") -> go.Figure:
    """A 2D position (or shift) sweep as a heatmap over object centres (x right, y down)."""
    grid = sweep.heatmap(what)
    vals = np.asarray(sweep.values)
    gy, gx = sweep.grid_shape
    xs = vals[:gx, 0]
    ys = vals[::gx, 1][:gy]
    is_rate = what in ("kept", "accuracy")
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=grid,
            zmin=0 if is_rate else None,
            zmax=1 if is_rate else None,
            colorscale="Viridis",
            colorbar=dict(title=what, tickformat=".0%" if is_rate else None),
            hovertemplate="x %{x:.2f}, y %{y:.2f}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or None,
        height=380,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title=sweep.unit + " x", constrain="domain"),
        yaxis=dict(title="y (down)", autorange="reversed", scaleanchor="x"),
    )
    return fig


def class_accuracy_figure(accuracy: Sequence[float], counts: Sequence[int], class_names: Sequence[str]) -> go.Figure:
    """Accuracy per true class, coloured by class, with the number of test inputs in the hover."""
    k = len(class_names)
    acc = np.asarray(accuracy, dtype=float)
    fig = go.Figure(
        go.Bar(
            x=list(class_names),
            y=acc,
            marker_color=[class_color(i, k) for i in range(k)],
            customdata=np.asarray(counts),
            text=[f"{a:.0%}" if np.isfinite(a) else "" for a in acc],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="class %{x}: %{y:.1%} of %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis=dict(title="true class", type="category"),
        yaxis=dict(title="accuracy", range=[0, 1.1], tickformat=".0%"),
        height=300,
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig

"""Figures of the Connectivity view (and the report): one path between two inputs of a class, and how many anchors
the paths of many pairs needed. Results in, plotly figures out; no Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geometry.figures.common import BAD_COLOR, OK_COLOR, class_color, discrete_colorscale, image_to_uint8, to_numpy
from geometry.figures.images import png_data_url, tile_mosaic

if TYPE_CHECKING:
    from geometry.inspection.connectivity import PathResult

__all__ = [
    "connectivity_figure",
    "path_figure",
]


def path_figure(result: PathResult, p: int, class_names: Sequence[str], *, tile: int = 72) -> go.Figure:
    """Pair ``p`` of a `PathResult`: the inputs along the path (class under each) over a band of the class at
    every sampled point along it (the path's own class should fill it)."""
    k = len(class_names)
    strip = to_numpy(result.strip[p])
    sc = to_numpy(result.strip_class[p]).astype(int)
    pc = to_numpy(result.path_class[p]).astype(int)
    c = int(result.cls[p])
    tiles = [[image_to_uint8(img, min_size=tile) for img in strip]] if strip.ndim == 4 else None
    fig = make_subplots(rows=2, cols=1, row_heights=[0.78, 0.22] if tiles else [0.01, 0.99], vertical_spacing=0.1)
    if tiles:
        strip_image = tile_mosaic(tiles, max(4, tiles[0][0].shape[1] // 10))
        fig.add_trace(go.Image(source=png_data_url(strip_image), hoverinfo="skip"), row=1, col=1)
        tw = tiles[0][0].shape[1]
        gap = max(4, tw // 10)
        for i, cls in enumerate(sc):
            fig.add_annotation(
                x=i * (tw + gap) + tw / 2,
                y=tiles[0][0].shape[0] + 2,
                text=class_names[cls],
                showarrow=False,
                yanchor="top",
                font=dict(color=OK_COLOR if cls == c else BAD_COLOR, size=12),
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
            colorscale=discrete_colorscale(colors),
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


def connectivity_figure(result: PathResult) -> go.Figure:
    """Pairs by number of anchors their path needed, split into joined (green) and not joined (red)."""
    anchors = to_numpy(result.num_anchors).astype(int)
    ok = to_numpy(result.success).astype(bool)
    top = int(anchors.max()) if len(anchors) else 0
    bins = np.arange(top + 1)
    fig = go.Figure()
    for mask, name, color in ((ok, "joined inside the class", OK_COLOR), (~ok, "not joined", BAD_COLOR)):
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

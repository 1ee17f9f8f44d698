"""Figures of the Robustness view (and the report): predictions kept and margins along a sweep, and a 2D position
sweep as a heatmap. Results in, plotly figures out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geometry.figures.common import MODEL_COLORS

if TYPE_CHECKING:
    from geometry.inspection.robustness import SweepResult

__all__ = [
    "position_heatmap",
    "sweep_figure",
]


def sweep_figure(
    sweeps: Mapping[str, SweepResult] | SweepResult, *, metric: str = "kept", title: str = ""
) -> go.Figure:
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
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
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


def position_heatmap(sweep: SweepResult, *, what: str = "accuracy", title: str = "") -> go.Figure:
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

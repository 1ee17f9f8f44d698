"""Figures of the Train view: the gradient activation function, training curves, and two models' margins."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geometry.runtime.validate import check_positive

# one colour per trained model (plain first, activated second), distinct from the class palette's first two
MODEL_COLORS = ["#555555", "#d62728", "#1f77b4", "#2ca02c"]


def gradient_activation_figure(alpha: float, beta: float, *, g_max: float | None = None) -> go.Figure:
    """``g -> alpha * arctan(beta * g)`` against the identity, with its slope at 0 and its bound marked."""
    alpha, beta = check_positive("alpha", alpha), check_positive("beta", beta)
    bound = alpha * math.pi / 2
    g_max = check_positive("g_max", g_max) if g_max is not None else max(3.0 * bound, 4.0 / beta)
    g = np.linspace(-g_max, g_max, 401)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=g, y=g, name="identity (plain training)", line=dict(color=MODEL_COLORS[0], dash="dot")))
    fig.add_trace(
        go.Scatter(
            x=g,
            y=alpha * np.arctan(beta * g),
            name=f"{alpha:g}·arctan({beta:g}·g)",
            line=dict(color=MODEL_COLORS[1], width=3),
        )
    )
    for sign in (1, -1):
        fig.add_hline(y=sign * bound, line=dict(color="#999", dash="dash", width=1))
    fig.add_annotation(
        x=g_max, y=bound, text=f"bound απ/2 = {bound:.3g}", showarrow=False, xanchor="right", yanchor="bottom"
    )
    fig.update_layout(
        title=f"α·arctan(β·g): slope αβ = {alpha * beta:.3g} at 0, bounded by ±{bound:.3g}",
        xaxis_title="gradient g",
        yaxis_title="what the optimizer gets",
        yaxis=dict(range=[-1.6 * bound, 1.6 * bound]),
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """Loss (log scale) and train/test accuracy per epoch, one colour per model (``name -> card["history"]``)."""
    if not histories:
        raise ValueError("expected at least one training history, got none")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "accuracy (solid: test, dotted: train)"))
    for i, (name, history) in enumerate(histories.items()):
        if not history:
            raise ValueError(f"the training history of {name!r} is empty")
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        epochs = [h["epoch"] for h in history]
        fig.add_trace(
            go.Scatter(x=epochs, y=[h["loss"] for h in history], name=name, legendgroup=name, line=dict(color=color)),
            row=1,
            col=1,
        )
        if all("test_accuracy" in h for h in history):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[h["test_accuracy"] for h in history],
                    name=f"{name} (test)",
                    legendgroup=name,
                    showlegend=False,
                    line=dict(color=color),
                ),
                row=1,
                col=2,
            )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h["train_accuracy"] for h in history],
                name=f"{name} (train)",
                legendgroup=name,
                showlegend=False,
                line=dict(color=color, dash="dot"),
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(type="log", dtick=1, row=1, col=1)  # ticks at powers of ten only
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def margin_comparison(
    values: Mapping[str, Any],
    converged: Mapping[str, Any] | None = None,
    *,
    title: str,
    axis_title: str,
    log: bool = False,
) -> go.Figure:
    """One box (with every point) per model of a per-image quantity, e.g. DeepFool distances or curvatures.

    ``converged`` (same keys, bool arrays) leaves out runs that did not converge and counts them in the legend.
    """
    if not values:
        raise ValueError("expected values of at least one model, got none")
    fig = go.Figure()
    for i, (name, v) in enumerate(values.items()):
        x = np.asarray(v, dtype=float).ravel()
        ok = np.isfinite(x)
        if converged is not None and name in converged:
            ok &= np.asarray(converged[name], dtype=bool).ravel()
        dropped = int((~ok).sum())
        median = float(np.median(x[ok])) if ok.any() else float("nan")
        label = f"{name}: median {median:.3g}" + (f" ({dropped} not converged)" if dropped else "")
        fig.add_trace(
            go.Box(
                y=x[ok],
                name=label,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker=dict(color=MODEL_COLORS[i % len(MODEL_COLORS)], size=4, opacity=0.6),
                line=dict(color=MODEL_COLORS[i % len(MODEL_COLORS)]),
                hovertemplate="%{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        yaxis_title=axis_title,
        yaxis_type="log" if log else None,
        height=360,
        showlegend=False,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig

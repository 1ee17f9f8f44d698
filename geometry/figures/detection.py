"""Figures of the Adversarial detection view (and the report): the ROC of the curvature statistic, the scores on
clean and perturbed inputs, and -rho_i of one input. Results in, plotly figures out; no Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import torch

from geometry.figures.common import BAD_COLOR, class_color, to_numpy

if TYPE_CHECKING:
    from geometry.inspection.detection import DetectionResult

__all__ = [
    "detection_scores_figure",
    "rho_figure",
    "roc_figure",
]


def roc_figure(result: DetectionResult, *, name: str = "") -> go.Figure:
    """ROC curve of the curvature statistic on the held-out inputs (clean = negative, DeepFool-perturbed = positive)
    with the operating point of the threshold set on the calibration inputs."""
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
                marker=dict(size=12, color=BAD_COLOR, symbol="diamond"),
                name=f"threshold {result.threshold:.3g} (set for FPR {result.target_fpr:.0%} on other inputs)",
            )
        )
    fig.update_layout(
        title=f"Detecting DeepFool perturbations: held-out AUC {result.auc:.3f}",
        xaxis=dict(title="false-positive rate (clean flagged)", range=[0, 1]),
        yaxis=dict(title="true-positive rate (perturbed flagged)", range=[0, 1.02]),
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
    )
    return fig


def detection_scores_figure(result: DetectionResult) -> go.Figure:
    """Distributions of the detection score on the held-out clean and perturbed inputs, with the threshold (set on the
    calibration inputs)."""
    clean = to_numpy(result.clean_score).astype(float)
    pert = to_numpy(result.perturbed_score).astype(float)
    fig = go.Figure()
    traces = ((clean, "clean (held out)", "#1f77b4"), (pert[np.isfinite(pert)], "DeepFool-perturbed", BAD_COLOR))
    for v, name, color in traces:
        fig.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, marker_color=color, opacity=0.6, nbinsx=30))
    fig.add_vline(
        x=result.threshold,
        line=dict(color="#333", dash="dash"),
        annotation_text=f"threshold (held-out FPR {result.fpr_at_threshold:.0%})",
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
    rho: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    *,
    predicted: int,
    recovered: int,
    threshold: float | None = None,
) -> go.Figure:
    """-rho_i of one input for every class i other than its prediction; the tallest bar is the recovered label."""
    r = to_numpy(rho).astype(float).ravel()
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

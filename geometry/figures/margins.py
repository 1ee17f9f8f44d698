"""Figures of the Frequency margins view (and the report): DeepFool margins, margins per DCT frequency band, the
bands as images. Results in, plotly figures out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import torch

from geometry.figures.common import BAD_COLOR, MODEL_COLORS, to_numpy
from geometry.figures.images import image_strip_figure

if TYPE_CHECKING:
    from geometry.inspection.margins import FrequencyMargins

__all__ = [
    "band_images_figure",
    "frequency_margins_figure",
    "margin_histogram",
]


def margin_histogram(
    norms: torch.Tensor | np.ndarray,
    converged: torch.Tensor | np.ndarray,
    *,
    title: str = "DeepFool margin distribution",
    unit: str = "L2 distance in [0, 1] pixels",
) -> go.Figure:
    """Histogram of DeepFool margins; runs that did not cross the boundary are counted in the title, not drawn."""
    n = to_numpy(norms).astype(float)
    ok = to_numpy(converged).astype(bool) & np.isfinite(n)
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
    results: Mapping[str, FrequencyMargins] | FrequencyMargins,
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
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        labels = res.band_labels()
        m, c = to_numpy(res.margins).astype(float), to_numpy(res.converged).astype(bool)
        cols = [(labels[b], m[:, b], c[:, b]) for b in range(m.shape[1])]
        rm, rc = to_numpy(res.random_margins).astype(float), to_numpy(res.random_converged).astype(bool)
        if rm.shape[1]:
            cols.append(("random", rm.ravel(), rc.ravel()))
        fm, fc = to_numpy(res.full_margins).astype(float), to_numpy(res.full_converged).astype(bool)
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
                    marker=dict(symbol="x", color=BAD_COLOR, size=8),
                    hovertemplate="band %{x}: >= %{y:.3g} (not converged)<extra></extra>",
                )
            )
    first = next(iter(results.values()))
    extras = ", random subspace" if first.random_margins.shape[1] else ""
    extras += ", full input" if any(np.isfinite(to_numpy(r.full_margins)).any() for r in results.values()) else ""
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

    images = np.stack([to_numpy(band_image(input_shape, int(s), block, seed=seed)) for s in starts])
    captions = [f"{int(s)}-{int(s) + block - 1}" for s in starts]
    return image_strip_figure(images, captions, tile=tile)

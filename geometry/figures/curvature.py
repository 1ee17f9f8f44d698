"""Curvature figures: the spectrum, cross-sections with osculating parabolas, random directions, vulnerability,
and the summary over many images (the report).

Numpy / torch results in, plotly figures (or uint8 images) out; no Streamlit. Sign convention (docs/DESIGN.md §3):
kappa > 0 means x's own region is locally convex — the boundary bends towards x.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from geometry.boundary.curvature import CurvatureProfile, CurvatureResult, VulnerabilityResult
from geometry.figures.common import BAD_COLOR, class_color, to_numpy
from geometry.slices.evaluate import SliceResult

__all__ = [
    "SIGN_CONVENTION",
    "curvature_histogram",
    "curvature_summary_figure",
    "logit_profile_figure",
    "profile_figure",
    "signed_image",
    "spectrum_figure",
    "vulnerability_figure",
]

SIGN_CONVENTION = (
    "κ > 0: the boundary bends towards x (x's region is locally convex there: if x's class region were a ball of "
    "radius R, κ would be 1/R in every direction); κ < 0: it bends away from x (x's region is locally concave); "
    "κ = 0: flat. κ(u) = uᵀ H u / ‖∇F‖ for a unit tangent u, with H the Hessian of F at z."
)
POSITIVE = "#d62728"  # red: bends towards x
NEGATIVE = "#1f77b4"  # blue: bends away
_MARGIN = dict(l=10, r=10, t=40, b=10)


def _np(a: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def signed_image(image: torch.Tensor | np.ndarray, *, min_size: int = 96, scale: float | None = None) -> np.ndarray:
    """A signed image (C, H, W) (a perturbation, a direction) -> (H', W', 3) uint8 for display.

    One channel: a diverging map, blue < 0 < red, white at 0. Three channels: 0.5 + v / (2 max|v|) (grey = 0).
    ``scale`` is the value shown at full saturation (default max |v|). Upscaled by pixel repetition.
    """
    a = _np(image).astype(np.float64)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1 or 3, H, W), got {a.shape}")
    s = float(np.abs(a).max()) if scale is None else float(scale)
    v = a / s if s > 0 and np.isfinite(s) else np.zeros_like(a)
    v = np.clip(np.nan_to_num(v), -1.0, 1.0)
    if a.shape[0] == 1:
        p = v[0]
        red = np.where(p > 0, 1.0, 1.0 + p)
        green = 1.0 - np.abs(p)
        blue = np.where(p < 0, 1.0, 1.0 - p)
        rgb = np.stack([red, green, blue], axis=2)
    else:
        rgb = (0.5 + 0.5 * v).transpose(1, 2, 0)
    factor = max(1, int(np.ceil(min_size / max(rgb.shape[0], rgb.shape[1]))))
    rgb = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def spectrum_figure(result: CurvatureResult, image: int = 0, *, height: int = 340) -> go.Figure:
    """The principal curvatures of one image, sorted (largest first), red > 0 and blue < 0, with the residual in
    the hover; the gap between the top-k and bottom-k ends (eigenvalues not computed) is marked."""
    kappa = _np(result.curvatures[image]).astype(float)
    res = _np(result.residuals[image]).astype(float)
    conv = _np(result.converged[image]).astype(bool)
    m = len(kappa)
    dim = int(np.prod(result.directions.shape[2:]))
    k = result.k
    split = m == 2 * k and m < dim - 1  # top-k and bottom-k with uncomputed eigenvalues in between
    ranks = np.arange(1, m + 1)
    labels = [f"{i}" for i in ranks]
    if split:  # "+1" is the most positive, "−1" the most negative
        labels = [f"+{i}" for i in range(1, k + 1)] + [f"−{k - i}" for i in range(k)]
    colors = [POSITIVE if v > 0 else (NEGATIVE if v < 0 else "#7f7f7f") for v in kappa]
    fig = go.Figure(
        go.Bar(
            x=list(range(m)),
            y=kappa,
            marker_color=colors,
            marker_line=dict(color=["black" if not c else "rgba(0,0,0,0)" for c in conv], width=1.5),
            customdata=np.stack([res, conv.astype(float)], axis=1),
            hovertext=labels,
            hovertemplate="%{hovertext}: κ = %{y:.4g}<br>residual %{customdata[0]:.2g}<extra></extra>",
            name="principal curvatures",
        )
    )
    if split:
        fig.add_vline(x=k - 0.5, line=dict(color="#555", dash="dot"))
        fig.add_annotation(
            x=k - 0.5,
            y=1.0,
            yref="paper",
            showarrow=False,
            yanchor="bottom",
            text=f"… {dim - 1 - m} more in between (not computed)",
            font=dict(size=11),
        )
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    fig.update_layout(
        title="Principal curvatures (sorted)",
        xaxis=dict(
            title="principal direction",
            tickvals=list(range(m)),
            ticktext=labels if m <= 24 else None,
            showticklabels=m <= 24,
        ),
        yaxis=dict(title="κ (1 / L2 pixel units)"),
        height=height,
        margin=_MARGIN,
        showlegend=False,
        bargap=0.15,
    )
    return fig


def curvature_histogram(result: CurvatureResult, image: int = 0, *, bins: int = 40, height: int = 320) -> go.Figure:
    """Histogram of the normal curvature along random tangent directions, with the extreme principal curvatures."""
    rand = _np(result.random_curvatures[image]).astype(float)
    rand = rand[np.isfinite(rand)]
    kappa = _np(result.curvatures[image]).astype(float)
    fig = go.Figure(
        go.Histogram(
            x=rand,
            nbinsx=bins,
            marker_color="#8c8c8c",
            name="random directions",
            hovertemplate="κ ∈ %{x}<br>%{y} directions<extra></extra>",
        )
    )
    if len(kappa) and np.isfinite(kappa).all():
        fig.add_vline(
            x=float(kappa.max()),
            line=dict(color=POSITIVE, dash="dash"),
            annotation_text=f"max κ = {kappa.max():.3g}",
            annotation_position="top left",
        )
        fig.add_vline(
            x=float(kappa.min()),
            line=dict(color=NEGATIVE, dash="dash"),
            annotation_text=f"min κ = {kappa.min():.3g}",
            annotation_position="top right",
        )
    fig.add_vline(x=0.0, line=dict(color="#333", width=1))
    fig.update_layout(
        title=f"Curvature along {len(rand)} random tangent directions",
        xaxis_title="κ(v) = vᵀ H v / ‖∇F‖",
        yaxis_title="directions",
        height=height,
        margin=_MARGIN,
        showlegend=False,
        bargap=0.05,
    )
    return fig


def profile_figure(
    profile: CurvatureProfile,
    which: int,
    *,
    region: SliceResult | None = None,
    region_colors: Sequence[str] | None = None,
    class_names: Sequence[str] = (),
    x_offset: float | None = None,
    x_along: float = 0.0,
    title: str = "",
    height: int = 470,
) -> go.Figure:
    """Cross-section ``which`` (row of the profile): the boundary in the plane (u_i, n) through z and its
    osculating parabola, over the class regions of the slice (``region``, on the same plane and extent).

    Horizontal: t along u_i; vertical: s along the normal n (up = towards the class across, down = towards x).
    ``x_offset``, ``x_along``: the s- and t-coordinates of x's orthogonal projection onto the plane, ``(x - z) . n``
    (about minus the distance from x to z) and ``(x - z) . u_i``; the marker is drawn when it falls in the window."""
    t = _np(profile.t).astype(float)
    s = _np(profile.boundary[which]).astype(float)
    par = _np(profile.parabola[which]).astype(float)
    kappa = float(profile.curvatures[which])
    w = float(profile.window)
    fig = go.Figure()
    if region is not None:
        labels = np.asarray(region.labels)
        k = int(region.num_classes)
        palette = list(region_colors) if region_colors is not None else [class_color(c, k) for c in range(k)]
        rgb = np.array([[int(c.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)] for c in palette], dtype=np.float32)
        img = rgb[np.clip(labels, 0, k - 1)]
        img = 0.45 * img + 0.55 * 255.0  # pale regions, so the curves stand out
        a, b = np.asarray(region.a), np.asarray(region.b)
        da = float(a[1] - a[0]) if len(a) > 1 else 1.0
        db = float(b[1] - b[0]) if len(b) > 1 else 1.0
        fig.add_trace(
            go.Image(
                z=img.astype(np.uint8), x0=float(a[0]), dx=da, y0=float(b[0]), dy=db, hoverinfo="skip", name="regions"
            )
        )
        present = np.unique(labels)
        for c in present:
            name = class_names[int(c)] if int(c) < len(class_names) else f"class {int(c)}"
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    name=f"region: {name}",
                    marker=dict(symbol="square", size=12, color=palette[int(c)]),
                )
            )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=s,
            mode="lines",
            name="boundary F = 0",
            line=dict(color="black", width=3),
            hovertemplate="t = %{x:.3g}<br>s = %{y:.3g}<extra>boundary</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=par,
            mode="lines",
            name="osculating parabola −κt²/2",
            line=dict(color=POSITIVE if kappa > 0 else NEGATIVE, width=2, dash="dash"),
            hovertemplate="t = %{x:.3g}<br>s = %{y:.3g}<extra>parabola</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(x=[0.0], y=[0.0], mode="markers", name="z", marker=dict(symbol="x", size=11, color="black"))
    )
    inside = x_offset is not None and np.isfinite(x_offset) and np.isfinite(x_along)
    if inside and abs(x_offset) <= w * 1.001 and abs(x_along) <= w * 1.001:
        fig.add_trace(
            go.Scatter(
                x=[float(x_along)],
                y=[float(x_offset)],
                mode="markers",
                name="x (projected)",
                marker=dict(symbol="star", size=14, color="white", line=dict(color="black", width=1.5)),
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis=dict(title="t along u (L2)", range=[-w, w], constrain="domain"),
        yaxis=dict(title="s along n (↑ other class)", range=[-w, w], scaleanchor="x"),
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0, font=dict(size=10), itemwidth=30),
    )
    return fig


def logit_profile_figure(profile: CurvatureProfile, *, names: Sequence[str] = (), height: int = 300) -> go.Figure:
    """The 1D profiles F(z + t u_i) along each principal direction with their second-order models."""
    t = _np(profile.t).astype(float)
    fig = go.Figure()
    for row in range(len(profile.curvatures)):
        kappa = float(profile.curvatures[row])
        color = POSITIVE if kappa > 0 else NEGATIVE
        name = names[row] if row < len(names) else f"u{int(profile.direction_index[row]) + 1}"
        fig.add_trace(
            go.Scatter(
                x=t,
                y=_np(profile.logit_difference[row]),
                mode="lines",
                name=f"F along {name}",
                line=dict(color=color, width=2.5),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=t,
                y=_np(profile.logit_quadratic[row]),
                mode="lines",
                name=f"F(z) + ‖∇F‖κt²/2 ({name})",
                line=dict(color=color, width=1.5, dash="dash"),
            )
        )
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    fig.update_layout(
        title="Logit difference F = f_k − f_j along the principal directions",
        xaxis_title="t (L2 pixel units)",
        yaxis_title="F (logits)",
        height=height,
        margin=_MARGIN,
        legend=dict(font=dict(size=11)),
    )
    return fig


def vulnerability_figure(result: VulnerabilityResult, image: int = 0, *, height: int = 360) -> go.Figure:
    """DeepFool norm vs subspace dimension m: the m most curved directions vs random m-dim subspaces (each random
    run a dot, their median a line; runs that did not reach another class are drawn hollow at their final norm)."""
    dims = _np(result.dims).astype(int)
    curved = _np(result.curved_norm[image]).astype(float)
    curved_ok = _np(result.curved_converged[image]).astype(bool)
    rnd = _np(result.random_norm[image]).astype(float)
    rnd_ok = _np(result.random_converged[image]).astype(bool)
    fig = go.Figure()
    if rnd.shape[1]:
        xs = np.repeat(dims, rnd.shape[1])
        flat, ok = rnd.reshape(-1), rnd_ok.reshape(-1)
        fig.add_trace(
            go.Scatter(
                x=xs[ok],
                y=flat[ok],
                mode="markers",
                name="random subspace (one run)",
                marker=dict(color="#7f7f7f", size=7, opacity=0.6),
            )
        )
        if (~ok).any():
            fig.add_trace(
                go.Scatter(
                    x=xs[~ok],
                    y=flat[~ok],
                    mode="markers",
                    name="random: did not converge",
                    marker=dict(color="#7f7f7f", size=8, symbol="circle-open"),
                )
            )
        med = np.array([np.median(np.where(rnd_ok[i], rnd[i], np.inf)) for i in range(len(dims))])
        fig.add_trace(
            go.Scatter(
                x=dims,
                y=np.where(np.isfinite(med), med, np.nan),
                mode="lines+markers",
                name="random subspaces (median)",
                line=dict(color="#7f7f7f", width=2, dash="dash"),
            )
        )
    ordered = "most curved (|κ|)" if result.order == "absolute" else "most positively curved (κ)"
    fig.add_trace(
        go.Scatter(
            x=dims[curved_ok],
            y=curved[curved_ok],
            mode="lines+markers",
            name=f"span of the m {ordered} directions",
            line=dict(color=POSITIVE, width=3),
            marker=dict(size=9),
        )
    )
    if (~curved_ok).any():
        fig.add_trace(
            go.Scatter(
                x=dims[~curved_ok],
                y=curved[~curved_ok],
                mode="markers",
                name="curved: did not converge",
                marker=dict(color=POSITIVE, size=10, symbol="circle-open"),
            )
        )
    full = float(result.full_norm[image])
    if np.isfinite(full):
        fig.add_hline(y=full, line=dict(color="black", dash="dot"))
        # on a log axis an annotation's y is log10 of the value (add_hline's own annotation gets this wrong)
        fig.add_annotation(
            x=1,
            xref="paper",
            y=float(np.log10(full)) if full > 0 else 0.0,
            yref="y",
            text=f"unrestricted DeepFool ‖r‖ = {full:.3g}",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(size=11),
        )
    fig.update_layout(
        title="Curvature ↔ vulnerability: DeepFool restricted to an m-dimensional subspace",
        xaxis=dict(title="subspace dimension m", tickvals=dims.tolist(), type="log" if dims.max() > 10 else "linear"),
        yaxis=dict(title="‖r‖ (L2 pixel units)", type="log"),
        height=height,
        margin=_MARGIN,
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, font=dict(size=11)),
    )
    return fig


def curvature_summary_figure(result: CurvatureResult) -> go.Figure:
    """Left: principal curvatures at each image's boundary point (faint) and their median (bold), by rank.
    Right: normal curvatures along random tangent directions, against the most curved directions' values."""
    curv = to_numpy(result.curvatures).astype(float)
    rand = to_numpy(result.random_curvatures).astype(float)
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
                line=dict(color=BAD_COLOR, dash="dash"),
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

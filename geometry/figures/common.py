"""What every view shares: one colour per class (the same on every page), images for display, top-k bars."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative

_PALETTE_10 = qualitative.D3  # 10 colours, the classic class palette
_PALETTE_24 = qualitative.Light24
OK_COLOR = "#2ca02c"  # green: kept, joined, the class of the untouched image
BAD_COLOR = "#d62728"  # red: flipped, failed, not converged
OTHER_COLOR = "#b0b0b0"  # grey: classes beyond a view's palette, named in the legend instead
MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b")  # one per model when several share a figure


def discrete_colorscale(colors: Sequence[str]) -> list[list[float | str]]:
    """A plotly colorscale that maps the integers 0..n-1 (with zmin=-0.5, zmax=n-0.5) to ``colors``."""
    n = len(colors)
    scale: list[list[float | str]] = []
    for i, c in enumerate(colors):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return scale


def to_numpy(a: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    """A tensor (any device, detached) or array-like as a numpy array."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def class_color(k: int, num_classes: int) -> str:
    """The colour of class ``k`` as ``#rrggbb``; stable across pages for a given number of classes.

    Up to 10 classes use D3's palette, up to 24 Light24; beyond that, hues spaced by the golden ratio
    (distinct for neighbouring indices; views with many classes also name classes in a legend).
    """
    if not 0 <= k < max(num_classes, 1):
        raise ValueError(f"class index {k} out of range for {num_classes} classes")
    if num_classes <= 10:
        return _PALETTE_10[k]
    if num_classes <= 24:
        return _PALETTE_24[k]
    hue = (k * 0.618033988749895) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.5 + 0.15 * ((k // 7) % 2), 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def class_colors(num_classes: int) -> list[str]:
    """``[class_color(k, num_classes) for k in range(num_classes)]``."""
    return [class_color(k, num_classes) for k in range(num_classes)]


def view_class_colors(present: Sequence[int] | np.ndarray, num_classes: int, *, most: int = 24) -> dict[int, str]:
    """Colours for the classes that appear in one view, distinct from each other however many the model has.

    With up to 24 classes a class keeps its page-wide colour (`class_color`). With more (1000 ImageNet classes),
    1000 golden-ratio hues are too close to tell apart, so the classes present in the view get a qualitative
    palette in order of first appearance in ``present`` (callers pass them most frequent first); past ``most`` the
    rest share grey (callers name them in the legend / hover instead).
    """
    order: list[int] = []
    for c in np.asarray(present, dtype=np.int64).ravel().tolist():
        if not 0 <= c < max(num_classes, 1):
            raise ValueError(f"class index {c} out of range for {num_classes} classes")
        if c not in order:
            order.append(c)
    if num_classes <= 24:
        return {c: class_color(c, num_classes) for c in order}
    palette = list(_PALETTE_10) + [c for c in _PALETTE_24 if c not in _PALETTE_10]
    return {c: (palette[i] if i < min(most, len(palette)) else OTHER_COLOR) for i, c in enumerate(order)}


def image_to_uint8(image: torch.Tensor | np.ndarray, *, min_size: int = 96) -> np.ndarray:
    """A (C, H, W) image in [0, 1] -> (H', W', 3) uint8 for display, upscaled by pixel repetition.

    Small images (8x8 digits) are enlarged with nearest-neighbour repetition to at least ``min_size``
    pixels so that browsers do not blur them. Values outside [0, 1] are clipped.
    """
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1 or 3, H, W), got {a.shape}")
    a = np.clip(a, 0.0, 1.0).transpose(1, 2, 0)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    scale = max(1, int(np.ceil(min_size / max(a.shape[0], a.shape[1]))))
    a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
    return (a * 255.0 + 0.5).astype(np.uint8)


def probability_bars(
    probabilities: np.ndarray, class_names: Sequence[str], *, k: int = 5, title: str = ""
) -> go.Figure:
    """Horizontal bars of the top-``k`` class probabilities of one input, coloured by class."""
    p = np.asarray(probabilities, dtype=float).ravel()
    if len(p) != len(class_names):
        raise ValueError(f"got {len(p)} probabilities for {len(class_names)} classes")
    top = np.argsort(-p)[: min(k, len(p))][::-1]
    fig = go.Figure(
        go.Bar(
            x=p[top],
            y=[class_names[i] for i in top],
            orientation="h",
            marker_color=[class_color(int(i), len(p)) for i in top],
            text=[f"{v:.1%}" for v in p[top]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or None,
        # room right of a full bar for its "100.0%" label
        xaxis=dict(range=[0, 1.25], tickvals=[0, 0.5, 1], tickformat=".0%", title="probability"),
        # Class names such as "0".."9" must stay categories, not become a numeric axis.
        yaxis=dict(type="category"),
        height=60 + 28 * len(top),
        margin=dict(l=10, r=10, t=30 if title else 10, b=10),
        showlegend=False,
    )
    return fig


def toy_scatter(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    highlight: Sequence[int] = (),
    title: str = "",
) -> go.Figure:
    """Scatter of a 2D toy data set coloured by class; ``highlight`` indices drawn as large marked points."""
    pts = np.asarray(points, dtype=float)
    lab = np.asarray(labels)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {pts.shape}")
    fig = go.Figure()
    for c, name in enumerate(class_names):
        sel = lab == c
        fig.add_trace(
            go.Scattergl(
                x=pts[sel, 0],
                y=pts[sel, 1],
                mode="markers",
                name=name,
                marker=dict(size=5, color=class_color(c, len(class_names)), opacity=0.6),
            )
        )
    if len(highlight):
        h = np.asarray(highlight)
        fig.add_trace(
            go.Scatter(
                x=pts[h, 0],
                y=pts[h, 1],
                mode="markers+text",
                name="picked",
                text=[f"#{i}" for i in h],
                textposition="top center",
                marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis_title="x₁",
        yaxis_title="x₂",
        height=420,
        yaxis=dict(scaleanchor="x"),
        margin=dict(l=10, r=10, t=30 if title else 10, b=10),
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

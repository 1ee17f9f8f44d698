"""Figures of the dataset atlas (`geometry.atlas`): every image as a point, the robustness curve R(eps), histograms
per class and the image-by-image comparison of two models. Plain pandas / numpy in, plotly out (no Streamlit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from geometry.figures.common import BAD_COLOR, MODEL_COLORS, OK_COLOR, class_color

__all__ = [
    "COLUMN_LABELS",
    "atlas_histogram",
    "atlas_scatter",
    "column_label",
    "margin_change_figure",
    "robustness_figure",
]

COLUMN_LABELS = {
    "margin": "margin: DeepFool boundary distance (L2, [0,1] pixels)",
    "curvature_max_abs": "largest |principal curvature| (1 / pixel units)",
    "logit_margin": "logit margin (top-1 minus top-2 logit)",
    "confidence": "confidence (softmax of the prediction)",
    "detection_score": "detection score (max -rho)",
    "curvature_random_mean": "mean curvature along random directions",
    "deepfool_norm": "DeepFool ||r|| (with overshoot)",
}


def column_label(name: str) -> str:
    """An axis title for an atlas column: what it measures and its unit where known."""
    return COLUMN_LABELS.get(name, name.replace("_", " "))


def _hover_text(df: pd.DataFrame, class_names: Sequence[str], x: str, y: str) -> np.ndarray:
    names = list(class_names)

    def name(c: int) -> str:
        return names[c] if 0 <= c < len(names) else "unlabelled"

    return np.array(
        [
            f"#{i} · true {name(t)} · predicted {name(p)}<br>{x} {a:.4g} · {y} {b:.4g}"
            for i, t, p, a, b in zip(df["index"], df["label"], df["prediction"], df[x], df[y], strict=True)
        ]
    )


def atlas_scatter(
    df: pd.DataFrame,
    x: str = "margin",
    y: str = "curvature_max_abs",
    *,
    class_names: Sequence[str],
    color_by: str = "class",
    log_y: bool = False,
) -> go.Figure:
    """Every image of an atlas at (``x``, ``y``) (two of its numeric columns), one trace per class (``color_by=
    "class"``, the true class) or per outcome (``"correct"``: correctly classified vs wrong); wrong images are
    crossed either way. Each point's customdata is its data set index (selections and hover images use it). No
    drag mode is set: Streamlit then selects a point on a click (box and lasso are in the mode bar)."""
    for column in (x, y):
        if column not in df.columns:
            raise ValueError(f"expected a column of the atlas, got {column!r}; it has {', '.join(df.columns)}")
    if color_by not in ("class", "correct"):
        raise ValueError(f"expected color_by 'class' or 'correct', got {color_by!r}")
    k = len(class_names)
    text = _hover_text(df, class_names, x, y)
    xs, ys = df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float)
    idx = df["index"].to_numpy(dtype=np.int64)
    wrong = ~df["correct"].to_numpy(dtype=bool)
    size = 7 if len(df) <= 2000 else 4
    groups: list[tuple[str, np.ndarray, str]] = []
    if color_by == "class":
        labels = df["label"].to_numpy()
        groups = [(class_names[c], labels == c, class_color(c, k)) for c in range(k) if (labels == c).any()]
    else:
        groups = [("correct", ~wrong, OK_COLOR), ("wrong", wrong, BAD_COLOR)]
    fig = go.Figure()
    for name, sel, color in groups:
        if not sel.any():
            continue
        fig.add_trace(
            go.Scattergl(
                x=xs[sel],
                y=ys[sel],
                mode="markers",
                name=name,
                customdata=idx[sel][:, None],
                text=text[sel],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=size, color=color, opacity=0.8, line=dict(width=0.5, color="white")),
            )
        )
    if color_by == "class" and wrong.any():
        fig.add_trace(
            go.Scattergl(
                x=xs[wrong],
                y=ys[wrong],
                mode="markers",
                name="misclassified",
                customdata=idx[wrong][:, None],
                text=text[wrong],
                hovertemplate="%{text} ✗<extra></extra>",
                marker=dict(symbol="x-thin", size=size + 5, color="black", line=dict(width=1.5, color="black")),
            )
        )
    fig.update_layout(
        xaxis_title=column_label(x),
        yaxis_title=column_label(y),
        yaxis_type="log" if log_y else "linear",
        height=520,
        margin=dict(l=60, r=20, t=40, b=50),
        legend_title_text="true class" if color_by == "class" else "",
        title=f"{len(df):,} images: {x} vs {y}",
    )
    return fig


def robustness_figure(
    curves: Mapping[str, pd.DataFrame], class_names: Sequence[str], *, per_class: bool = True
) -> go.Figure:
    """R(eps) of one or more models (``{model name: geometry.atlas.robustness_curve frame}``): a thick line for all
    images of each model, thin lines per class for the first one."""
    fig = go.Figure()
    for m, (model, curve) in enumerate(curves.items()):
        color = MODEL_COLORS[m % len(MODEL_COLORS)]
        fig.add_trace(
            go.Scatter(
                x=curve["eps"],
                y=curve["all"],
                mode="lines",
                name=f"{model}: all images",
                line=dict(color=color, width=3, dash="solid" if m == 0 else "dash"),
                hovertemplate="eps %{x:.3f}: %{y:.1%} robust<extra>" + model + "</extra>",
            )
        )
        if per_class and m == 0:
            for c, name in enumerate(class_names):
                if str(c) not in curve.columns:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=curve["eps"],
                        y=curve[str(c)],
                        mode="lines",
                        name=f"class {name}",
                        line=dict(color=class_color(c, len(class_names)), width=1),
                        hovertemplate="eps %{x:.3f}: %{y:.1%}<extra>class " + str(name) + "</extra>",
                    )
                )
    fig.update_layout(
        title="Robustness curve R(eps): share of images still correctly classified at L2 distance eps",
        xaxis_title="eps (L2, [0,1] pixels)",
        yaxis_title="R(eps)",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1.02],
        height=420,
        margin=dict(l=60, r=20, t=50, b=50),
    )
    return fig


def atlas_histogram(df: pd.DataFrame, column: str, class_names: Sequence[str], *, bins: int = 40) -> go.Figure:
    """Histograms of ``column`` per true class, overlaid, on shared bins (NaN left out)."""
    if column not in df.columns:
        raise ValueError(f"expected a column of the atlas, got {column!r}")
    values = df[column].to_numpy(dtype=float)
    finite = np.isfinite(values)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    size = (hi - lo) / bins if hi > lo else 1.0
    labels = df["label"].to_numpy()
    fig = go.Figure()
    for c, name in enumerate(class_names):
        sel = (labels == c) & finite
        if not sel.any():
            continue
        fig.add_trace(
            go.Histogram(
                x=values[sel],
                name=str(name),
                xbins=dict(start=lo, end=hi + size, size=size),
                marker_color=class_color(c, len(class_names)),
                opacity=0.6,
            )
        )
    fig.update_layout(
        barmode="overlay",
        title=f"{column_label(column)} per class",
        xaxis_title=column_label(column),
        yaxis_title="images",
        height=380,
        margin=dict(l=60, r=20, t=50, b=50),
    )
    return fig


def margin_change_figure(joined: pd.DataFrame, names: tuple[str, str], class_names: Sequence[str]) -> go.Figure:
    """Two models' margins image by image (`geometry.atlas.compare_atlases`): below the diagonal, images that came
    closer to the boundary with the second model."""
    k = len(class_names)
    fig = go.Figure()
    labels = joined["label"].to_numpy()
    for c in range(k):
        sel = labels == c
        if not sel.any():
            continue
        fig.add_trace(
            go.Scattergl(
                x=joined["margin_a"][sel],
                y=joined["margin_b"][sel],
                mode="markers",
                name=str(class_names[c]),
                customdata=joined["index"].to_numpy()[sel][:, None],
                hovertemplate="#%{customdata[0]}: %{x:.3f} → %{y:.3f}<extra></extra>",
                marker=dict(size=6, color=class_color(c, k), opacity=0.8),
            )
        )
    finite = np.isfinite(joined[["margin_a", "margin_b"]].to_numpy(dtype=float))
    top = float(np.nanmax(joined[["margin_a", "margin_b"]].to_numpy(dtype=float))) if finite.any() else 1.0
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            line=dict(color="grey", dash="dot"),
            name="same margin",
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title=f"Margins image by image: {names[0]} vs {names[1]}",
        xaxis_title=f"margin with {names[0]}",
        yaxis_title=f"margin with {names[1]}",
        height=460,
        margin=dict(l=60, r=20, t=50, b=50),
    )
    return fig

"""Slice figures: class regions on a plane, shaded by confidence, with boundaries and anchor markers.

The regions are drawn as one PNG image (``layout.images``, compact even at 1024 x 1024) placed at the
grid's coordinates, so axes are plane coordinates in L2 pixel units. The decision boundaries are vector
lines on top (one ``scatter`` trace named "boundaries"): they run along the pixel edges between grid
points of different labels, collinear edges merged and joined into polylines, so they stay crisp at any
zoom and small at 1024^2 (a staircase costs about one point per step).
An invisible grid of scatter points carries the hover text (coordinates, class, probability, margin)
and makes points selectable by a click (Streamlit's ``on_select``); each point's ``customdata`` starts
with its (a, b).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from geometry.figures.common import class_color
from geometry.slices.evaluate import SliceResult

__all__ = ["boundary_lines", "disagreement_figure", "slice_colors", "slice_figure", "slice_image"]

_BOUNDARY_RGB = np.array([25, 25, 25], dtype=np.float32)
_BOUNDARY_LINE = dict(color="rgba(20, 20, 20, 0.9)", width=1.4, simplify=False)  # exact cell edges
_MAX_SEGMENTS = 30_000  # more boundary segments than this (a speckled map): drawn as raster pixels
_INVALID_DIM = 0.8  # weight of the (desaturated) colour outside the input range, the rest is white
_MAX_IMAGE = 1024  # pixels per side drawn (larger slices are subsampled for display)
_ANCHOR_SYMBOLS = ("diamond", "circle", "square", "triangle-up", "pentagon", "hexagon")


def _hex_to_rgb(color: str) -> np.ndarray:
    c = color.lstrip("#")
    return np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32)


def slice_colors(labels: np.ndarray | Sequence[np.ndarray], num_classes: int) -> dict[int, str]:
    """Colour of each class present in ``labels`` (one label map, or several shown side by side).

    Up to 24 classes: the app-wide class colour (``class_color``). Beyond that the classes present in any of
    the maps, largest total area first (ties: lower index first), take the 24 Light24 colours and then
    golden-ratio hues. Pass every map shown together, so a class has the same colour in each of them.
    """
    maps = [labels] if isinstance(labels, np.ndarray) else list(labels)
    if not maps or not all(isinstance(m, np.ndarray) for m in maps):
        raise TypeError("labels: expected a label map (numpy array) or a sequence of them")
    counts = np.zeros(max(int(num_classes), 1), dtype=np.int64)
    for m in maps:
        values = np.asarray(m).ravel().astype(np.int64)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"labels: expected class indices in [0, {num_classes}), got {values.min()}..{values.max()}"
            )
        counts += np.bincount(values, minlength=len(counts))
    present = np.flatnonzero(counts)
    if num_classes <= 24:
        return {int(c): class_color(int(c), num_classes) for c in present}
    order = present[np.lexsort((present, -counts[present]))]
    palette = qualitative.Light24
    return {int(c): (palette[i] if i < len(palette) else class_color(int(c), num_classes)) for i, c in enumerate(order)}


def _edges(c: np.ndarray) -> np.ndarray:
    """The n + 1 pixel edges of n evenly spaced centres ``c``."""
    step = (c[-1] - c[0]) / (len(c) - 1) if len(c) > 1 else 1.0
    return np.concatenate([[c[0] - step / 2], (c[:-1] + c[1:]) / 2, [c[-1] + step / 2]])


def _runs(change: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along axis 1 of (L, M): line index, first and one-past-last position."""
    padded = np.zeros((change.shape[0], change.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = change
    d = np.diff(padded, axis=1)
    line, start = np.nonzero(d == 1)
    _, stop = np.nonzero(d == -1)  # same row-major order as the starts
    return line, start, stop


def _boundary_segments(labels: np.ndarray) -> np.ndarray:
    """Label changes as merged segments (S, 4) int64 ``(i0, j0, i1, j1)`` between pixel corners: i indexes the
    na + 1 column edges, j the nb + 1 row edges; consecutive edges on one grid line form one segment."""
    col, r0, r1 = _runs((labels[:, 1:] != labels[:, :-1]).T)  # vertical: between columns col and col + 1
    row, c0, c1 = _runs(labels[1:, :] != labels[:-1, :])  # horizontal: between rows row and row + 1
    return np.concatenate(
        [np.stack([col + 1, r0, col + 1, r1], axis=1), np.stack([c0, row + 1, c1, row + 1], axis=1)]
    ).astype(np.int64)


def boundary_lines(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixel edges between grid points of different labels, as polylines separated by NaN.

    ``labels`` (nb, na) on cell centres ``a`` (na,), ``b`` (nb,) (evenly spaced); a pixel spans half a cell
    either side of its centre. Edges on one grid line that follow each other are merged into one segment, and
    segments that meet end to end (where no third one meets them) are joined into one polyline, so a
    staircase costs about one point per step. Returns x, y float64 arrays: each polyline's corners, then NaN.
    """
    labels = np.asarray(labels)
    return _polylines(_boundary_segments(labels), np.asarray(a, np.float64), np.asarray(b, np.float64))


def _polylines(segments: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join segments (S, 4) that share an end met by no third one; x, y of the corners with NaN after each line."""
    n = len(segments)
    if n == 0:
        return np.empty(0), np.empty(0)
    width = len(a) + 1
    ends = np.concatenate([segments[:, 1] * width + segments[:, 0], segments[:, 3] * width + segments[:, 2]])
    # the other segment through each end, where exactly two segments meet (-1 elsewhere)
    order = np.argsort(ends, kind="stable")
    sorted_ends = ends[order]
    first = np.flatnonzero(np.r_[True, sorted_ends[1:] != sorted_ends[:-1]])
    count = np.diff(np.r_[first, len(ends)])
    pairs = first[count == 2]
    partner = np.full(2 * n, -1, dtype=np.int64)
    partner[order[pairs]] = order[pairs + 1] % n
    partner[order[pairs + 1]] = order[pairs] % n
    start_node, stop_node = ends[:n].tolist(), ends[n:].tolist()
    at_start, at_stop = partner[:n].tolist(), partner[n:].tolist()
    used = bytearray(n)
    out: list[int] = []
    for s in range(n):
        if used[s]:
            continue
        used[s] = 1
        halves = []
        for node, nxt in ((stop_node[s], at_stop[s]), (start_node[s], at_start[s])):  # grow both ways
            grown = []
            while nxt >= 0 and not used[nxt]:
                used[nxt] = 1
                if start_node[nxt] == node:
                    node, nxt = stop_node[nxt], at_stop[nxt]
                else:
                    node, nxt = start_node[nxt], at_start[nxt]
                grown.append(node)
            halves.append(grown)
        out.extend(halves[1][::-1])
        out.extend((start_node[s], stop_node[s]))
        out.extend(halves[0])
        out.append(-1)
    ids = np.asarray(out, dtype=np.int64)
    gap = ids < 0
    xe, ye = _edges(a), _edges(b)
    x = np.where(gap, np.nan, xe[np.where(gap, 0, ids % width)])
    y = np.where(gap, np.nan, ye[np.where(gap, 0, ids // width)])
    return x, y


def _display_stride(result: SliceResult) -> int:
    return max(1, int(np.ceil(max(result.shape) / _MAX_IMAGE)))


def slice_image(
    result: SliceResult,
    colors: Mapping[int, str] | None = None,
    *,
    shade: bool = True,
    dim_invalid: bool = True,
    boundaries: bool = True,
) -> np.ndarray:
    """The region map as RGB ``(nb, na, 3)`` uint8 with row 0 at the *bottom* (b ascending, like the arrays).

    Colour = the class colour, paler where the top-1 probability is lower (``shade``), darkened outside
    the input range (``dim_invalid``), with dark pixels where the label changes (``boundaries``).
    """
    if not isinstance(result, SliceResult):
        raise TypeError(f"result: expected a SliceResult, got {type(result).__name__}")
    labels = result.labels
    colors = dict(colors) if colors is not None else slice_colors(labels, result.num_classes)
    missing = set(np.unique(labels).tolist()) - set(colors)
    if missing:
        raise ValueError(f"colors: expected a colour for every class in the slice, missing {sorted(missing)}")
    lut = np.zeros((int(labels.max()) + 1, 3), dtype=np.float32)
    for k, c in colors.items():
        if 0 <= k < len(lut):
            lut[k] = _hex_to_rgb(c)
    rgb = lut[labels.astype(np.int64)]
    if shade:
        k = max(result.num_classes, 2)
        s = np.clip((result.probability - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)
        w = (0.28 + 0.72 * s)[..., None]
        rgb = 255.0 * (1.0 - w) + rgb * w
    if dim_invalid and not result.valid.all():
        # outside the input range: greyed, with diagonal hatching so the valid region stands out
        nb, na = labels.shape
        period = max(6, int(max(nb, na) / 48))
        stripe = ((np.arange(nb)[:, None] + np.arange(na)[None, :]) % period) < max(1, period // 4)
        grey = rgb.mean(axis=-1, keepdims=True)
        dimmed = _INVALID_DIM * (0.55 * rgb + 0.45 * grey) + (1 - _INVALID_DIM) * 255.0
        if max(nb, na) >= 128:  # coarser grids would show blocky stripes: fading alone marks them
            dimmed = np.where(stripe[..., None], dimmed * 0.82, dimmed)
        rgb = np.where(result.valid[..., None], rgb, dimmed)
    if boundaries:
        edge = np.zeros(labels.shape, dtype=bool)
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        edge[1:, :] |= labels[1:, :] != labels[:-1, :]
        rgb[edge] = _BOUNDARY_RGB
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hover_grid(result: SliceResult, n: int) -> tuple[np.ndarray, np.ndarray]:
    nb, na = result.shape
    rows = np.unique(np.linspace(0, nb - 1, min(n, nb)).round().astype(int))
    cols = np.unique(np.linspace(0, na - 1, min(n, na)).round().astype(int))
    return rows, cols


def slice_figure(
    result: SliceResult,
    class_names: Sequence[str],
    *,
    anchors: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    shade: bool = True,
    dim_invalid: bool = True,
    hover_grid: int = 72,
    selected: tuple[float, float] | None = None,
    points: tuple[np.ndarray, np.ndarray] | None = None,
    pair_names: tuple[str, str] | None = None,
    height: int = 560,
    colors: Mapping[int, str] | None = None,
) -> go.Figure:
    """The slice as a plotly figure.

    anchors: name -> (a, b) markers (x0, the DeepFool point, other images); ``selected``: a clicked (a, b);
    ``points``: extra data ``(coords (N, 2), labels (N,))`` drawn as small dots (the data of 2D toy sets);
    ``pair_names`` label the f_i = f_j contour drawn when the result has a ``pair_margin``; ``colors``:
    class -> ``#rrggbb`` for every class in view (default ``slice_colors(result.labels)``; pass one map
    from ``slice_colors([first.labels, second.labels])`` to colour two figures alike).
    Boundaries: a "boundaries" line trace along the pixel edges where the label changes (for a speckled map
    of more than 30,000 segments they are drawn as dark pixels in the image instead).
    Hover/click points: an invisible ``hover_grid`` x ``hover_grid`` scatter whose customdata is
    ``[a, b, class name, probability, margin, note]`` (the note says when a point lies outside the input
    range): trace "grid" holds the evaluated points, "grid (interpolated)" the points of an adaptive slice
    whose values are interpolated, and its hover says so.
    """
    if not isinstance(result, SliceResult):
        raise TypeError(f"result: expected a SliceResult, got {type(result).__name__}")
    if len(class_names) != result.num_classes:
        raise ValueError(f"class_names: expected {result.num_classes} names, got {len(class_names)}")
    if isinstance(hover_grid, bool) or not isinstance(hover_grid, (int, np.integer)) or hover_grid < 2:
        raise ValueError(f"hover_grid: expected an int >= 2, got {hover_grid!r}")
    hover_grid = int(hover_grid)
    if colors is None:
        colors = slice_colors(result.labels, result.num_classes)
    elif not isinstance(colors, Mapping):
        raise TypeError(f"colors: expected a mapping class -> '#rrggbb', got {type(colors).__name__}")
    stride = _display_stride(result)
    shown = result if stride == 1 else _subsample(result, stride)
    segments = _boundary_segments(shown.labels)
    raster_edges = len(segments) > _MAX_SEGMENTS
    bx, by = _polylines(segments, shown.a, shown.b) if not raster_edges else (np.empty(0), np.empty(0))
    rgb = slice_image(shown, colors, shade=shade, dim_invalid=dim_invalid, boundaries=raster_edges)
    a, b = shown.a, shown.b
    da = (a[-1] - a[0]) / max(len(a) - 1, 1)
    db = (b[-1] - b[0]) / max(len(b) - 1, 1)
    x_lo, x_hi = a[0] - da / 2, a[-1] + da / 2
    y_lo, y_hi = b[0] - db / 2, b[-1] + db / 2

    fig = go.Figure()
    # legend: the classes in view, largest area first
    present, counts = np.unique(result.labels, return_counts=True)
    for c in present[np.argsort(-counts, kind="stable")]:
        share = counts[present == c][0] / result.labels.size
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"{class_names[int(c)]} ({share:.0%})",
                marker=dict(symbol="square", size=13, color=colors[int(c)]),
                legendgroup="classes",
                hoverinfo="skip",
            )
        )

    # invisible hover / click grid: evaluated points in trace "grid"; with an adaptive slice, the points whose
    # values were interpolated in trace "grid (interpolated)", whose hover says so (no per-point text needed)
    rows, cols = _hover_grid(result, hover_grid)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    marker_size = max(4, min(14, int(0.9 * (height - 100) / max(len(rows), 1))))
    evaluated = result.evaluated[rr, cc]
    for trace_name, keep, extra in (
        ("grid", evaluated, ""),
        ("grid (interpolated)", ~evaluated, "<br><i>interpolated between evaluated neighbours</i>"),
    ):
        if not keep.any():
            continue
        r, c = rr[keep], cc[keep]
        custom = np.empty((len(r), 6), dtype=object)
        custom[:, 0] = np.round(result.a[c], 6)
        custom[:, 1] = np.round(result.b[r], 6)
        custom[:, 2] = np.asarray(class_names, dtype=object)[result.labels[r, c].astype(int)]
        custom[:, 3] = np.round(result.probability[r, c].astype(float), 4)
        custom[:, 4] = np.round(result.margin[r, c].astype(float), 4)
        custom[:, 5] = np.where(result.valid[r, c], "", "<br><i>outside the input range</i>")
        fig.add_trace(
            go.Scatter(
                x=result.a[c],
                y=result.b[r],
                mode="markers",
                name=trace_name,
                showlegend=False,
                customdata=custom,
                marker=dict(size=marker_size, color="rgba(0,0,0,0)", symbol="square"),
                selected=dict(marker=dict(color="rgba(0,0,0,0)")),
                unselected=dict(marker=dict(opacity=0)),
                hovertemplate=(
                    "a = %{customdata[0]:.3f}, b = %{customdata[1]:.3f}<br>class <b>%{customdata[2]}</b>"
                    "<br>p = %{customdata[3]:.1%}, margin = %{customdata[4]:.3f}%{customdata[5]}"
                    f"{extra}<extra></extra>"
                ),
            )
        )

    if len(bx) and not raster_edges:
        fig.add_trace(
            go.Scatter(
                x=bx.astype(np.float32),
                y=by.astype(np.float32),
                mode="lines",
                name="boundaries",
                showlegend=False,
                hoverinfo="skip",
                line=_BOUNDARY_LINE,
                connectgaps=False,
            )
        )

    if result.pair_margin is not None and result.target_pair is not None:
        i, j = result.target_pair
        ni, nj = pair_names if pair_names else (class_names[i], class_names[j])
        fig.add_trace(
            go.Contour(
                x=shown.a,
                y=shown.b,
                z=shown.pair_margin,
                contours=dict(start=0, end=0, size=1, coloring="lines"),
                line=dict(color="black", width=2, dash="dot"),
                showscale=False,
                hoverinfo="skip",
                name=f"f({ni}) = f({nj})",
                showlegend=True,
            )
        )

    if points is not None:
        xy, plab = np.asarray(points[0], dtype=float), np.asarray(points[1]).astype(int)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(plab) != len(xy):
            raise ValueError(f"points: expected (coords (N, 2), labels (N,)), got shapes {xy.shape} and {plab.shape}")
        inside = (xy[:, 0] >= x_lo) & (xy[:, 0] <= x_hi) & (xy[:, 1] >= y_lo) & (xy[:, 1] <= y_hi)
        fig.add_trace(
            go.Scatter(
                x=xy[inside, 0],
                y=xy[inside, 1],
                mode="markers",
                name="data",
                hoverinfo="skip",
                marker=dict(
                    size=5,
                    color=[colors.get(int(k)) or class_color(int(k), result.num_classes) for k in plab[inside]],
                    line=dict(width=0.6, color="white"),
                ),
            )
        )

    for name, (ax, by), symbol in _anchor_symbols(anchors or {}):
        fig.add_trace(
            go.Scatter(
                x=[ax],
                y=[by],
                mode="markers+text",
                name=name,
                text=[name],
                textposition="top center",
                textfont=dict(size=12, color="black"),
                hovertemplate=f"{name}<br>a = %{{x:.3f}}, b = %{{y:.3f}}<extra></extra>",
                marker=dict(
                    symbol=symbol, size=15 if symbol == "star" else 12, color="white", line=dict(width=2, color="black")
                ),
            )
        )
    if selected is not None:
        fig.add_trace(
            go.Scatter(
                x=[selected[0]],
                y=[selected[1]],
                mode="markers",
                name="selected point",
                hovertemplate="selected<br>a = %{x:.3f}, b = %{y:.3f}<extra></extra>",
                marker=dict(symbol="circle-open", size=18, color="black", line=dict(width=3)),
            )
        )

    fig.add_layout_image(
        dict(
            source=_png_data_uri(rgb[::-1]),
            xref="x",
            yref="y",
            x=x_lo,
            y=y_hi,
            sizex=x_hi - x_lo,
            sizey=y_hi - y_lo,
            sizing="stretch",
            xanchor="left",
            yanchor="top",
            layer="below",
        )
    )
    aspect = (x_hi - x_lo) / (y_hi - y_lo)
    yaxis: dict = dict(
        range=[y_lo, y_hi], title="b: along v (L2, pixel units)", showgrid=False, zeroline=False, constrain="domain"
    )
    if 0.25 <= aspect <= 4:
        yaxis.update(scaleanchor="x", scaleratio=1)
    fig.update_layout(
        title=title or None,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(
            range=[x_lo, x_hi], title="a: along u (L2, pixel units)", showgrid=False, zeroline=False, constrain="domain"
        ),
        yaxis=yaxis,
        plot_bgcolor="white",
        hovermode="closest",
        dragmode="zoom",
        clickmode="event+select",
        legend=dict(itemsizing="constant", bgcolor="rgba(255,255,255,0.8)"),
    )
    return fig


def _anchor_symbols(anchors: Mapping[str, tuple[float, float]]) -> list[tuple[str, tuple[float, float], str]]:
    """Marker per anchor by role, not by order (a cached plane's anchors come back sorted by name): the origin
    (0, 0) is a star, DeepFool / boundary points are crosses, the others take shapes in name order."""
    out, n = [], 0
    for name in sorted(anchors):
        a, b = (float(c) for c in anchors[name])
        if a == 0.0 and b == 0.0:
            symbol = "star"
        elif "deepfool" in name.lower() or "boundary" in name.lower():
            symbol = "x"
        else:
            symbol = _ANCHOR_SYMBOLS[min(n, len(_ANCHOR_SYMBOLS) - 1)]
            n += 1
        out.append((name, (a, b), symbol))
    return out


def _subsample(result: SliceResult, s: int) -> SliceResult:
    import dataclasses

    sl = (slice(None, None, s), slice(None, None, s))
    pm = result.pair_margin[sl] if result.pair_margin is not None else None
    return dataclasses.replace(
        result,
        a=result.a[::s],
        b=result.b[::s],
        labels=result.labels[sl],
        probability=result.probability[sl],
        margin=result.margin[sl],
        pair_margin=pm,
        valid=result.valid[sl],
        evaluated=result.evaluated[sl],
    )


def disagreement_figure(
    first: SliceResult, second: SliceResult, names: tuple[str, str], *, height: int = 360
) -> go.Figure:
    """Where two region maps of the same grid differ (dark) or agree (light); ``names`` label the hover."""
    if first.shape != second.shape:
        raise ValueError(f"expected two slices on the same grid, got {first.shape} and {second.shape}")
    s = max(1, int(np.ceil(max(first.shape) / 256)))  # at most 256 x 256 cells drawn
    differ = (first.labels[::s, ::s] != second.labels[::s, ::s]).astype(np.uint8)
    fig = go.Figure(
        go.Heatmap(
            x=first.a[::s],
            y=first.b[::s],
            z=differ,
            zmin=0,
            zmax=1,
            showscale=False,
            colorscale=[[0, "#f4f4f4"], [1, "#444444"]],
            hovertemplate=f"a = %{{x:.3f}}, b = %{{y:.3f}}<br>{names[0]} vs {names[1]}: "
            "%{z}<extra>1 = different labels</extra>",
        )
    )
    fig.update_layout(
        title="Where the two models disagree (dark)",
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(scaleanchor="x"),
        xaxis_title="a (L2)",
        yaxis_title="b (L2)",
    )
    return fig

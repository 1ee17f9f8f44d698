"""The Playground's pictures: the live region map as an image, unit thumbnails, the exact-region mesh, margins, and
the lesson's animation. Results in, arrays or plotly figures out; no Streamlit.

The live map is an RGB array (the page sends it as one image per redraw, not a figure): each pixel takes its
class's colour, paler where the network is unsure, with the boundary drawn dark and, for ReLU networks, the linear
regions' edges drawn thin; training points are filled discs, test points hollow ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geometry.figures.common import class_colors
from geometry.figures.images import png_data_url
from geometry.playground.digits import DigitsPlayground
from geometry.playground.linear_regions import pattern_map
from geometry.playground.trainer import PlaneGrid, Playground, single_thread

__all__ = [
    "digits_image",
    "editor_figure",
    "live_image",
    "lesson_figure",
    "margin_figure",
    "mesh_figure",
    "region_count_figure",
    "region_image",
    "unit_thumbnail",
]

BOUNDARY_RGB = np.array([40, 40, 40], dtype=np.float32)
MESH_RGB = np.array([255, 255, 255], dtype=np.float32)


def _rgb(colors: Sequence[str]) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=np.float32)


def region_image(
    labels: np.ndarray,
    confidence: np.ndarray,
    num_classes: int,
    *,
    scale: int = 3,
    regions: np.ndarray | None = None,
    points: Sequence[tuple[np.ndarray, np.ndarray, bool]] = (),
) -> np.ndarray:
    """The region map as an ``(R*scale, R*scale, 3)`` uint8 image.

    labels: (R, R) int class per pixel (row 0 = top); confidence: (R, R) top probability in [0, 1] (or uint8 x 255).
    regions: (R*scale, R*scale) int linear-region ids at display resolution (their edges drawn thin), or None.
    points: (pixels (N, 2) as (column, row) at display resolution, labels (N,), hollow) per point set.
    """
    colors = _rgb(class_colors(num_classes))
    conf = confidence.astype(np.float32) / (255.0 if confidence.dtype == np.uint8 else 1.0)
    # 1/K (a guess) -> almost white, 1 -> the full colour
    strength = np.clip((conf - 1.0 / num_classes) / (1.0 - 1.0 / num_classes), 0.0, 1.0)[..., None]
    image = 255.0 * (1.0 - 0.75 * strength) + colors[labels] * 0.75 * strength
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    big = np.repeat(np.repeat(labels, scale, axis=0), scale, axis=1)
    if regions is not None:
        edge = _edges(regions)
        image[edge] = 0.55 * image[edge] + 0.45 * MESH_RGB
    image[_edges(big)] = BOUNDARY_RGB
    for pixels, point_labels, hollow in points:
        _stamp(image, pixels, colors[point_labels], hollow)
    return np.clip(image, 0, 255).astype(np.uint8)


def live_image(pg: Playground, *, scale: int = 4, regions: bool = False) -> tuple[np.ndarray, int | None]:
    """The live map of ``pg`` now: (``region_image`` at ``scale``, the number of linear regions seen on the map's
    grid or None). ``regions`` draws the linear regions' edges (ReLU networks), found at display resolution."""
    probs = pg.probabilities(pg.grid)
    ids, count = None, None
    if regions and pg.config.piecewise_linear and pg.config.hidden:
        fine_scale = 2 if scale % 2 == 0 else 1  # half the display resolution: thin enough, 4x cheaper
        fine = PlaneGrid(pg.grid.extent, pg.grid.resolution * fine_scale)
        with single_thread():
            ids = pattern_map(pg.network, fine.points()).reshape(fine.resolution, fine.resolution)
        ids = np.repeat(np.repeat(ids, scale // fine_scale, axis=0), scale // fine_scale, axis=1)
        count = int(pattern_map(pg.network, pg.grid.points()).max()) + 1
    points = [
        (pg.grid.to_pixels(pg.x_train.numpy(), scale), pg.y_train.numpy(), False),
        (pg.grid.to_pixels(pg.x_test.numpy(), scale), pg.y_test.numpy(), True),
    ]
    image = region_image(probs.argmax(2), probs.max(2), pg.num_classes, scale=scale, regions=ids, points=points)
    return image, count


def digits_image(pg: DigitsPlayground, *, scale: int = 6) -> np.ndarray:
    """The digits slice now as an ``(R*scale, R*scale, 3)`` uint8 image: each grid point in its predicted digit's
    colour (paler where unsure), the boundaries dark, the three digits the plane passes through as discs of their
    true digit's colour."""
    frame = pg.frames[-1]
    anchors = [(pg.anchor_pixels(scale), np.array(pg.anchor_labels), False)]
    return region_image(frame.labels, frame.confidence, pg.num_classes, scale=scale, points=anchors)


def _edges(ids: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another id (a line one pixel thin)."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, 1:] != ids[:, :-1]
    edge[:-1, :] |= ids[1:, :] != ids[:-1, :]
    return edge


_DISC = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if dx * dx + dy * dy <= 10]
_RING = [(dy, dx) for dy, dx in _DISC if dx * dx + dy * dy >= 5]


def _stamp(image: np.ndarray, pixels: np.ndarray, colors: np.ndarray, hollow: bool) -> None:
    """Draw a disc (a ring when ``hollow``) of each point's colour with a dark outline."""
    h, w = image.shape[:2]
    centre = np.round(pixels).astype(int)
    outline = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if 10 < dx * dx + dy * dy <= 17]
    for offsets, color in ((outline, None), (_RING if hollow else _DISC, colors)):
        for dy, dx in offsets:
            r, c = centre[:, 1] + dy, centre[:, 0] + dx
            ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            image[r[ok], c[ok]] = BOUNDARY_RGB if color is None else color[ok]


def unit_thumbnail(activation: np.ndarray, *, size: int = 48) -> np.ndarray:
    """One hidden unit's activation ``(R, R)`` as a ``(size, size, 3)`` uint8 map: orange where it is high, blue
    where low (TensorFlow Playground's colours), white at the middle of its range in the view."""
    a = activation.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    t = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    orange, blue, white = np.array([245, 147, 34.0]), np.array([8, 119, 189.0]), np.array([255, 255, 255.0])
    s = (2 * t - 1)[..., None]
    img = np.where(s > 0, white + s * (orange - white), white - s * (blue - white))
    step = max(1, a.shape[0] // size)
    return np.clip(img[::step, ::step], 0, 255).astype(np.uint8)


def mesh_figure(
    image: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    polygons: Sequence[np.ndarray] = (),
    circles: tuple[np.ndarray, np.ndarray] | None = None,
    title: str = "",
    height: int = 520,
) -> go.Figure:
    """The region image in plane coordinates, the exact linear regions' edges as a thin mesh, and margin circles.

    image: (H, W, 3) uint8 from `region_image`; polygons: (V, 2) regions in plane units; circles: (centres (N, 2),
    radii (N,)) in plane units (NaN radii skipped).
    """
    x0, x1, y0, y1 = extent
    h, w = image.shape[:2]
    fig = go.Figure(
        go.Image(
            source=png_data_url(image),
            x0=x0,
            dx=(x1 - x0) / w,
            y0=y1,
            dy=-(y1 - y0) / h,
            hoverinfo="skip",
        )
    )
    if polygons:
        xs: list[float | None] = []
        ys: list[float | None] = []
        for p in polygons:
            closed = np.vstack([p, p[:1]])
            xs += [*closed[:, 0].tolist(), None]
            ys += [*closed[:, 1].tolist(), None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": "rgba(20,20,20,0.55)", "width": 0.7}, name="regions")
        )
    if circles is not None:
        centres, radii = circles
        t = np.linspace(0, 2 * np.pi, 33)
        xs, ys = [], []
        for (cx, cy), r in zip(centres, radii, strict=True):
            if np.isfinite(r):
                xs += [*(cx + r * np.cos(t)).tolist(), None]
                ys += [*(cy + r * np.sin(t)).tolist(), None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": "rgba(0,0,0,0.35)", "width": 0.8}, name="margins")
        )
    fig.update_xaxes(range=[x0, x1], showgrid=False, zeroline=False, title="x₁")
    fig.update_yaxes(range=[y0, y1], showgrid=False, zeroline=False, title="x₂", scaleanchor="x", autorange=False)
    fig.update_layout(title=title, height=height, margin={"l": 40, "r": 10, "t": 40, "b": 40}, showlegend=False)
    return fig


def editor_figure(
    image: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    added: Sequence[tuple[float, float, int]] = (),
    num_classes: int = 2,
    cells: int = 60,
    height: int = 520,
) -> go.Figure:
    """The point editor: the region image with an invisible ``cells`` x ``cells`` layer of clickable markers at
    cell centres (a click on the map selects the nearest, whose (x, y) the page adds as a point: plotly reports
    clicks on markers only), and the points added so far as crosses of their class's colour.

    image: (H, W, 3) uint8 from `region_image`; extent: (x_min, x_max, y_min, y_max) in plane units; added: (x, y,
    class) in plane units.
    """
    fig = mesh_figure(image, extent, height=height)
    x0, x1, y0, y1 = extent
    xs = x0 + (x1 - x0) * (np.arange(cells) + 0.5) / cells
    ys = y0 + (y1 - y0) * (np.arange(cells) + 0.5) / cells
    gx, gy = np.meshgrid(np.round(xs, 2), np.round(ys, 2))
    size = max(4.0, 0.8 * height / cells)
    fig.add_trace(
        go.Scatter(
            x=gx.ravel(),
            y=gy.ravel(),
            mode="markers",
            marker={"size": size, "color": "rgba(0,0,0,0)", "symbol": "square"},
            hovertemplate="add a point at (%{x:.2f}, %{y:.2f})<extra></extra>",
            name="click to add",
        )
    )
    if added:
        colors = class_colors(num_classes)
        pts = np.array([p[:2] for p in added], dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=pts[:, 0],
                y=pts[:, 1],
                mode="markers",
                marker={
                    "size": 11,
                    "symbol": "x",
                    "color": [colors[int(p[2])] for p in added],
                    "line": {"color": "rgb(40,40,40)", "width": 1},
                },
                hovertemplate="added (%{x:.2f}, %{y:.2f})<extra></extra>",
                unselected={"marker": {"opacity": 1.0}},
                name="added",
            )
        )
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def margin_figure(snapshots: Mapping[int, np.ndarray]) -> go.Figure:
    """Margins (plane units) of the training points at each epoch they were measured: one histogram per epoch."""
    fig = go.Figure()
    for epoch, margins in sorted(snapshots.items()):
        finite = margins[np.isfinite(margins)]
        fig.add_trace(go.Histogram(x=finite, name=f"epoch {epoch}", opacity=0.6, nbinsx=30))
    fig.update_layout(
        barmode="overlay",
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis_title="distance to the boundary (plane units)",
        yaxis_title="training points",
        title="Margins over training",
    )
    return fig


def region_count_figure(counts: Mapping[int, int], exact: Mapping[int, int] | None = None) -> go.Figure:
    """Linear regions over training: the grid's count each epoch, and the exact counts where measured."""
    fig = go.Figure(go.Scatter(x=list(counts), y=list(counts.values()), mode="lines", name="seen on the grid"))
    if exact:
        fig.add_trace(go.Scatter(x=list(exact), y=list(exact.values()), mode="markers", name="exact"))
    fig.update_layout(
        height=260,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis_title="epoch",
        yaxis_title="linear regions",
        title="Linear regions over training",
    )
    return fig


def lesson_figure(
    frames: Sequence[tuple[int, np.ndarray]],
    history: Sequence[Mapping[str, float]],
    extent: tuple[float, float, float, float],
    *,
    title: str,
) -> go.Figure:
    """The training replayed: one animation frame per recorded epoch (the region image and the loss so far).

    frames: (epoch, (H, W, 3) uint8 region image) in epoch order; history: `Playground.history`.
    """
    if not frames:
        raise ValueError("expected at least one recorded epoch to replay")
    x0, x1, y0, y1 = extent
    epochs = [h["epoch"] for h in history]
    loss = {split: [h[f"{split}_loss"] for h in history] for split in ("train", "test")}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], subplot_titles=("Regions", "Loss"))

    def traces(epoch: int, image: np.ndarray) -> list[go.BaseTraceType]:
        h, w = image.shape[:2]
        upto = [i for i, e in enumerate(epochs) if e <= epoch]
        return [
            go.Image(source=png_data_url(image), x0=x0, dx=(x1 - x0) / w, y0=y1, dy=-(y1 - y0) / h),
            go.Scatter(x=[epochs[i] for i in upto], y=[loss["train"][i] for i in upto], name="train loss"),
            go.Scatter(x=[epochs[i] for i in upto], y=[loss["test"][i] for i in upto], name="test loss"),
        ]

    for trace, col in zip(traces(*frames[0]), (1, 2, 2), strict=True):
        fig.add_trace(trace, row=1, col=col)
    fig.frames = [go.Frame(data=traces(e, img), name=str(e), traces=[0, 1, 2]) for e, img in frames]
    finite = [v for v in loss["train"] + loss["test"] if np.isfinite(v) and v > 0]
    fig.update_xaxes(range=[x0, x1], row=1, col=1, showgrid=False)
    fig.update_yaxes(range=[y0, y1], row=1, col=1, showgrid=False, scaleanchor="x")
    fig.update_xaxes(range=[0, max(epochs) or 1], row=1, col=2, title="epoch")
    if finite:
        fig.update_yaxes(type="log", range=[np.log10(min(finite)) - 0.1, np.log10(max(finite)) + 0.1], row=1, col=2)
    fig.update_layout(
        title=title,
        height=560,
        updatemenus=[
            {
                "type": "buttons",
                "x": 0.0,
                "y": -0.08,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": "▶ Play",
                        "method": "animate",
                        "args": [None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True}],
                    },
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
                    },
                ],
            }
        ],
        sliders=[
            {
                "currentvalue": {"prefix": "epoch "},
                "y": -0.08,
                "x": 0.15,
                "len": 0.85,
                "steps": [
                    {
                        "label": str(e),
                        "method": "animate",
                        "args": [[str(e)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
                    }
                    for e, _ in frames
                ],
            }
        ],
    )
    return fig

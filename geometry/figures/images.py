"""Images as figures: a grid or a strip of images composed into one PNG (small HTML, crisp pixels), with titles
and a caption under each image. Shared by the margins, connectivity and robustness views and the report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from geometry.figures.common import image_to_uint8, to_numpy

__all__ = [
    "image_grid_figure",
    "image_strip_figure",
    "tile_mosaic",
    "png_data_url",
]


def png_data_url(rgb: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a ``data:image/png`` URL (a plotly ``go.Image`` source)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def tile_mosaic(tiles: list[list[np.ndarray]], gap: int) -> np.ndarray:
    """Rows of equally sized uint8 tiles (h, w, 3) -> one image with white gaps."""
    h, w = tiles[0][0].shape[:2]
    rows, cols = len(tiles), max(len(r) for r in tiles)
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def image_grid_figure(
    images: torch.Tensor | np.ndarray,
    *,
    row_titles: Sequence[str] = (),
    col_titles: Sequence[str] = (),
    captions: Sequence[Sequence[str]] | None = None,
    caption_colors: Sequence[Sequence[str]] | None = None,
    tile: int = 72,
    title: str = "",
) -> go.Figure:
    """A grid of images ``(R, C, ch, H, W)`` in [0, 1] with optional row/column titles and a caption under each.

    One PNG holds the tiles and white space for the texts, which are annotations inside it (so nothing is clipped);
    the figure's height shows it pixel for pixel.
    """
    arr = to_numpy(images)
    if arr.ndim != 5 or arr.shape[2] not in (1, 3):
        raise ValueError(f"expected images of shape (rows, cols, 1 or 3, H, W), got {arr.shape}")
    rows, cols = arr.shape[:2]
    tiles = [[image_to_uint8(arr[r, c], min_size=tile) for c in range(cols)] for r in range(rows)]
    th, tw = tiles[0][0].shape[:2]
    gap = max(4, tw // 10)
    # columns at least as wide as their titles and captions (about 7 px per character)
    widest = max([len(str(t)) for t in col_titles] + [len(str(c)) for row in (captions or []) for c in row] + [0])
    col_gap = max(gap, 7 * widest + 8 - tw)
    cap_h = 20 if captions is not None else 0
    top = 26 if col_titles else 0
    left = 8 + 7 * max((len(str(t)) for t in row_titles), default=0) if row_titles else 0
    height = top + rows * (th + cap_h) + (rows - 1) * gap
    width = left + cols * tw + (cols - 1) * col_gap
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    fig = go.Figure()
    for r in range(rows):
        y0 = top + r * (th + cap_h + gap)
        for c in range(cols):
            x0 = left + c * (tw + col_gap)
            canvas[y0 : y0 + th, x0 : x0 + tw] = tiles[r][c]
            if captions is not None:
                color = caption_colors[r][c] if caption_colors is not None else "#333"
                fig.add_annotation(
                    x=x0 + tw / 2,
                    y=y0 + th + 2,
                    text=str(captions[r][c]),
                    showarrow=False,
                    yanchor="top",
                    font=dict(size=11, color=color),
                )
        if r < len(row_titles):
            fig.add_annotation(
                x=left - 8, y=y0 + th / 2, text=str(row_titles[r]), showarrow=False, xanchor="right", font=dict(size=12)
            )
    for c, text in enumerate(col_titles[:cols]):
        fig.add_annotation(
            x=left + c * (tw + col_gap) + tw / 2, y=top / 2, text=f"<b>{text}</b>", showarrow=False, font=dict(size=12)
        )
    fig.add_trace(go.Image(source=png_data_url(canvas), hoverinfo="skip"))
    fig.data = fig.data[::-1]
    head = 34 if title else 4
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5])
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(
        title=title or None, margin=dict(l=4, r=4, t=head, b=4), plot_bgcolor="white", height=height + head + 8
    )
    return fig


def image_strip_figure(
    images: torch.Tensor | np.ndarray,
    captions: Sequence[str] = (),
    *,
    colors: Sequence[str] | None = None,
    tile: int = 72,
    title: str = "",
) -> go.Figure:
    """One row of images ``(T, ch, H, W)`` with a caption (and caption colour) under each."""
    arr = to_numpy(images)
    caps = [list(captions)] if captions else None
    cols = [list(colors)] if colors is not None else None
    return image_grid_figure(arr[None], captions=caps, caption_colors=cols, tile=tile, title=title)

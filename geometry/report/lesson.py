"""The exported lesson: one HTML file that replays a Playground run (regions and loss, one frame per recorded
epoch) and opens offline, without Python or a server: plotly.js is written into the file, images are data URLs.

It draws figures, so it sits at the report's level (above `geometry.figures`); `geometry.playground` does not
import it.
"""

from __future__ import annotations

import html

from geometry.figures.playground import lesson_figure, region_image
from geometry.playground.trainer import Playground, config_to_query

__all__ = ["lesson_html"]


def lesson_html(playground: Playground, *, title: str | None = None, scale: int = 3) -> str:
    """A self-contained HTML page replaying ``playground``'s recorded epochs (`Playground.frames`)."""
    pg = playground
    train_px = pg.grid.to_pixels(pg.x_train.numpy(), scale)
    test_px = pg.grid.to_pixels(pg.x_test.numpy(), scale)
    points = [(train_px, pg.y_train.numpy(), False), (test_px, pg.y_test.numpy(), True)]
    frames = [
        (f.epoch, region_image(f.labels, f.confidence, pg.num_classes, scale=scale, points=points)) for f in pg.frames
    ]
    c = pg.config
    title = title or (
        f"{c.dataset} ({c.classes} classes, noise {c.noise:g}): {len(c.hidden)} hidden layers "
        f"{'-'.join(map(str, c.hidden)) or '(none)'}, {c.activation}, {c.optimizer} lr {c.lr:g}"
    )
    figure = lesson_figure(frames, pg.history, pg.grid.extent, title=title)
    body = figure.to_html(include_plotlyjs=True, full_html=False, auto_play=False, config={"displaylogo": False})
    settings = "&".join(f"{k}={v}" for k, v in config_to_query(c, pg.epoch).items())
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>\n"
        f"<h2>{html.escape(title)}</h2>\n"
        "<p>Press Play to watch the network train: each frame is one recorded epoch; filled dots are training "
        "points, rings test points. Made with Boundary Atlas's Playground.</p>\n"
        f"{body}\n<p style='color:#666'>Settings: <code>{html.escape(settings)}</code></p>\n</body></html>\n"
    )

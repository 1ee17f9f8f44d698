"""Hover images on a plotly chart: a thumbnail of the hovered sample follows the mouse.

Plotly's hover labels cannot hold images, so the thumbnails travel as one sprite sheet (a PNG data URI with all
the chart's thumbnails on a grid) and a small script shows the right tile. The script is sent with
``st.html(..., unsafe_allow_javascript=True)``, which runs it in the app's own document (no iframe, so no
cross-origin question): it finds the chart's plotly graph div by the chart's widget key (Streamlit puts the
class ``st-key-<key>`` on the element), subscribes to ``plotly_hover``/``plotly_unhover`` (and re-subscribes
whenever Streamlit redraws or replaces the chart), and crops the tile with CSS ``background-position``. Each
point names its sample by the first value of its ``customdata``; ``ids`` lists those values in sprite order.

Usage, for any chart whose points carry an id in ``customdata[0]``::

    event = st.plotly_chart(fig, key="my_chart")
    hover_images("my_chart", sprite_sheet(images), ids)

The sheet is sent with every run, but Streamlit's message cache sends an unchanged element only once per
browser session, and the page's script runs again only when the sheet or the ids change.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["SpriteSheet", "hover_html", "hover_images", "sprite_sheet"]

_CHUNK = 256  # images resized at a time
MAX_COLORS = 256  # colour images with more colours than this are quantised (median cut) to a 256-colour palette
TESTID = "baHoverImage"  # data-testid of the floating thumbnail (browser tests look for it)


@dataclass(frozen=True)
class SpriteSheet:
    """Thumbnails of N images on a grid, as one PNG: tile i is at row ``i // columns``, column ``i % columns``."""

    png: bytes  # the PNG file: grayscale (L), or a palette (P) of at most 256 colours
    count: int  # N thumbnails
    columns: int  # tiles per row
    rows: int  # rows of tiles
    tile_width: int  # px of one thumbnail
    tile_height: int  # px
    exact: bool  # True when every pixel is the image's own (no colour quantisation)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def thumbnail(self, i: int) -> np.ndarray:
        """Tile ``i`` decoded from the PNG: ``(tile_height, tile_width, channels)`` uint8 (1 or 3 channels)."""
        from PIL import Image

        if not 0 <= i < self.count:
            raise IndexError(f"expected a tile index in [0, {self.count}), got {i}")
        with Image.open(io.BytesIO(self.png)) as im:
            sheet = np.asarray(im.convert("L" if im.mode == "L" else "RGB"))
        r, c = divmod(i, self.columns)
        tile = sheet[r * self.tile_height : (r + 1) * self.tile_height, c * self.tile_width : (c + 1) * self.tile_width]
        return tile[..., None] if tile.ndim == 2 else tile


def sprite_sheet(
    images: torch.Tensor | np.ndarray, *, indices: Sequence[int] | np.ndarray | None = None, tile: int = 32
) -> SpriteSheet:
    """Thumbnails of ``images`` ``(N, C, H, W)`` in [0, 1] (C = 1 or 3) on a near-square grid, as one PNG.

    ``indices``: only these rows, in this order (taken a chunk at a time: no copy of a large image set).
    Images larger than ``tile`` px on their longer side are shrunk to it (area average, aspect kept); smaller ones
    keep their pixels (the browser enlarges them without blurring). Grayscale is stored losslessly; colour
    losslessly when it has at most 256 colours, else quantised to 256 (median cut, no dithering: small files).
    """
    from PIL import Image

    x = torch.as_tensor(images).detach()
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[0] < 1:
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W) with N >= 1, got {tuple(x.shape)}")
    rows_of = np.arange(len(x)) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
    if len(rows_of) < 1 or rows_of.min() < 0 or rows_of.max() >= len(x):
        raise ValueError(f"expected at least one index, each in [0, {len(x)}), got {rows_of.tolist()[:8]}")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 4:
        raise ValueError(f"expected tile as an int >= 4 (px), got {tile!r}")
    n, c, h, w = len(rows_of), *(int(s) for s in x.shape[1:])
    scale = min(1.0, tile / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    tiles = np.empty((n, th, tw, c), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        part = x[torch.from_numpy(rows_of[start : start + _CHUNK])].cpu().float()
        if (th, tw) != (h, w):
            part = torch.nn.functional.interpolate(part, size=(th, tw), mode="area")
        tiles[start : start + len(part)] = (part.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.zeros((rows, columns, th, tw, c), dtype=np.uint8)
    sheet.reshape(rows * columns, th, tw, c)[:n] = tiles
    sheet = sheet.transpose(0, 2, 1, 3, 4).reshape(rows * th, columns * tw, c)
    exact = True
    if c == 1:
        im = Image.fromarray(np.ascontiguousarray(sheet[..., 0]))  # mode L
    else:
        rgb = sheet.astype(np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colors, inverse = np.unique(packed, return_inverse=True)
        if len(colors) <= MAX_COLORS:  # an exact palette
            im = Image.fromarray(inverse.reshape(sheet.shape[:2]).astype(np.uint8))
            palette = np.stack([colors >> 16, (colors >> 8) & 255, colors & 255], axis=1).astype(np.uint8)
            im.putpalette(palette.ravel().tolist())  # L -> P
        else:
            im = Image.fromarray(sheet).quantize(MAX_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            exact = False
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return SpriteSheet(
        png=buf.getvalue(), count=n, columns=columns, rows=rows, tile_width=tw, tile_height=th, exact=exact
    )


def _css_key(key: str) -> str:
    """The class Streamlit gives an element with this key: ``st-key-`` + the key with other characters as '-'."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def _id_text(value: Any) -> str:
    """A customdata value as the script compares it: integers without a decimal point (JavaScript's String())."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected ids as ints or strings, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def hover_html(chart_key: str, sheet: SpriteSheet, ids: Sequence[Any], *, size: int = 96) -> str:
    """The HTML (a hidden marker, a style rule and the script) that adds hover images to the chart ``chart_key``.

    ``ids[i]``: the ``customdata[0]`` of the points whose thumbnail is tile i. ``size``: the thumbnail's longer
    side on screen, in CSS px.
    """
    if not isinstance(chart_key, str) or not chart_key.strip():
        raise ValueError(f"expected the chart's widget key as a non-empty str, got {chart_key!r}")
    if not isinstance(sheet, SpriteSheet):
        raise TypeError(f"expected a SpriteSheet, got {type(sheet).__name__}")
    keys = [_id_text(i) for i in ids]
    if len(keys) != sheet.count:
        raise ValueError(f"expected one id per thumbnail ({sheet.count}), got {len(keys)}")
    if len(set(keys)) != len(keys):
        raise ValueError("expected distinct ids: each names one thumbnail")
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise ValueError(f"expected size as an int in [8, 1024] (CSS px), got {size!r}")
    scale = size / max(sheet.tile_width, sheet.tile_height)
    cfg = {
        "chart": chart_key,
        "selector": f".{_css_key(chart_key)} .js-plotly-plot",
        "src": sheet.data_uri,
        "ids": keys,
        "columns": sheet.columns,
        "rows": sheet.rows,
        "width": sheet.tile_width * scale,
        "height": sheet.tile_height * scale,
        "pixelated": scale >= 1.5,
        "testid": TESTID,
    }
    config = json.dumps(cfg, separators=(",", ":")).replace("</", "<\\/")
    marker = f'<div class="ba-hover-images" data-chart="{_escape(chart_key)}"></div>'
    style = '<style>[data-testid="stElementContainer"]:has(.ba-hover-images){display:none}</style>'
    return f"{marker}{style}<script>{_SCRIPT.replace('__CONFIG__', config)}</script>"


def hover_images(chart_key: str, sheet: SpriteSheet, ids: Sequence[Any], *, size: int = 96) -> None:
    """Show a thumbnail of the hovered point of the plotly chart drawn with ``key=chart_key`` (see the module)."""
    import streamlit as st

    st.html(hover_html(chart_key, sheet, ids, size=size), unsafe_allow_javascript=True)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


# The script: one instance per chart key (a new run of it replaces the old one). It polls every 300 ms for the
# chart's graph div, because Streamlit may replace the div or Plotly may drop its listeners on a full redraw,
# and stops itself once its own element has left the page.
_SCRIPT = """
(function () {
  const cfg = __CONFIG__;
  const me = document.currentScript || document.querySelector('.ba-hover-images[data-chart="' + cfg.chart + '"]');
  const registry = (window.__baHoverImages = window.__baHoverImages || {});
  if (registry[cfg.chart]) registry[cfg.chart].stop();
  const tile = new Map(cfg.ids.map((id, i) => [id, i]));
  const tip = document.createElement("div");
  tip.setAttribute("data-testid", cfg.testid);
  tip.setAttribute("data-chart", cfg.chart);
  Object.assign(tip.style, {position: "fixed", zIndex: "1000000", pointerEvents: "none", display: "none",
    padding: "3px", background: "#fff", border: "1px solid #999", borderRadius: "4px",
    boxShadow: "0 2px 8px rgba(0,0,0,0.3)", lineHeight: "0"});
  const img = document.createElement("div");
  Object.assign(img.style, {width: cfg.width + "px", height: cfg.height + "px",
    backgroundImage: 'url("' + cfg.src + '")', backgroundRepeat: "no-repeat",
    backgroundSize: cfg.columns * cfg.width + "px " + cfg.rows * cfg.height + "px",
    imageRendering: cfg.pixelated ? "pixelated" : "auto"});
  tip.appendChild(img);
  document.body.appendChild(tip);
  let gd = null, mouse = null, timer = null;

  function idOf(point) {
    let cd = point ? point.customdata : null;
    if (cd !== null && typeof cd === "object" && cd.length !== undefined) cd = cd[0];
    return cd === null || cd === undefined ? null : String(cd);
  }
  function place() {
    if (!mouse) return;
    const pad = 16, r = tip.getBoundingClientRect();
    let x = mouse.x + pad, y = mouse.y + pad;
    if (x + r.width > window.innerWidth) x = mouse.x - pad - r.width;
    if (y + r.height > window.innerHeight) y = mouse.y - pad - r.height;
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
  }
  function hide() {
    tip.style.display = "none";
    tip.removeAttribute("data-id");
  }
  function onHover(data) {
    let id = null;
    for (const p of (data && data.points) || []) {
      const k = idOf(p);
      if (k !== null && tile.has(k)) { id = k; break; }
    }
    if (id === null) { hide(); return; }
    const e = data.event;
    if (e && e.clientX !== undefined) mouse = {x: e.clientX, y: e.clientY};
    const i = tile.get(id), col = i % cfg.columns, row = Math.floor(i / cfg.columns);
    img.style.backgroundPosition = -col * cfg.width + "px " + -row * cfg.height + "px";
    tip.setAttribute("data-id", id);
    tip.style.display = "block";
    place();
  }
  function onMove(e) {
    mouse = {x: e.clientX, y: e.clientY};
    if (tip.style.display !== "none") place();
  }
  function subscribed(el) {
    return !!(el && el._ev && typeof el._ev.listeners === "function" &&
              el._ev.listeners("plotly_hover").indexOf(onHover) >= 0);
  }
  function detach() {
    if (gd) {
      if (typeof gd.removeListener === "function") {
        gd.removeListener("plotly_hover", onHover);
        gd.removeListener("plotly_unhover", hide);
      }
      gd.removeEventListener("mousemove", onMove);
      gd.removeEventListener("mouseleave", hide);
    }
    gd = null;
    hide();
  }
  function attach() {
    if (me && !me.isConnected) { stop(); return; }
    const el = document.querySelector(cfg.selector);
    if (el && el === gd && subscribed(el)) return;
    detach();
    if (!el || typeof el.on !== "function") return;
    gd = el;
    gd.on("plotly_hover", onHover);
    gd.on("plotly_unhover", hide);
    gd.addEventListener("mousemove", onMove);
    gd.addEventListener("mouseleave", hide);
  }
  function stop() {
    clearInterval(timer);
    detach();
    tip.remove();
    if (registry[cfg.chart] === api) delete registry[cfg.chart];
  }
  const api = {stop: stop, attach: attach};
  registry[cfg.chart] = api;
  attach();
  timer = setInterval(attach, 300);
})();
"""

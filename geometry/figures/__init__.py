"""Numpy results -> plotly figures (no Streamlit), so every figure is unit-testable.

One module per view; the colours and image helpers every view shares live in `geometry.figures.common`.
"""

from __future__ import annotations

from geometry.figures.common import class_color, class_colors, image_to_uint8, probability_bars, toy_scatter

__all__ = ["class_color", "class_colors", "image_to_uint8", "probability_bars", "toy_scatter"]

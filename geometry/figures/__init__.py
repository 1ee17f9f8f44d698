"""Numpy results -> plotly figures (no Streamlit), so every figure is unit-testable.

One module per view (slices, curvature, features, margins, connectivity, detection, robustness, training); the
colours and helpers every view shares live in `geometry.figures.common`, grids and strips of images in
`geometry.figures.images`.
"""

from __future__ import annotations

from geometry.figures.common import (
    class_accuracy_figure,
    class_color,
    class_colors,
    image_to_uint8,
    probability_bars,
    toy_scatter,
    view_class_colors,
)
from geometry.figures.connectivity import connectivity_figure, path_figure
from geometry.figures.curvature import (
    curvature_histogram,
    curvature_summary_figure,
    logit_profile_figure,
    profile_figure,
    signed_image,
    spectrum_figure,
    vulnerability_figure,
)
from geometry.figures.detection import detection_scores_figure, rho_figure, roc_figure
from geometry.figures.features import (
    embedding_scatter,
    feature_plane_figure,
    hull_figure,
    morph_figure,
    slice_label_figure,
)
from geometry.figures.images import image_grid_figure, image_strip_figure
from geometry.figures.margins import band_images_figure, frequency_margins_figure, margin_histogram
from geometry.figures.robustness import position_heatmap, sweep_figure
from geometry.figures.slices import disagreement_figure, slice_colors, slice_figure, slice_image

__all__ = [
    "band_images_figure",
    "class_accuracy_figure",
    "class_color",
    "class_colors",
    "connectivity_figure",
    "curvature_histogram",
    "curvature_summary_figure",
    "detection_scores_figure",
    "disagreement_figure",
    "embedding_scatter",
    "feature_plane_figure",
    "frequency_margins_figure",
    "hull_figure",
    "image_grid_figure",
    "image_strip_figure",
    "image_to_uint8",
    "logit_profile_figure",
    "margin_histogram",
    "morph_figure",
    "path_figure",
    "position_heatmap",
    "probability_bars",
    "profile_figure",
    "rho_figure",
    "roc_figure",
    "signed_image",
    "slice_colors",
    "slice_figure",
    "slice_image",
    "slice_label_figure",
    "spectrum_figure",
    "sweep_figure",
    "toy_scatter",
    "view_class_colors",
    "vulnerability_figure",
]

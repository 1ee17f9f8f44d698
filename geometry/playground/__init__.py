"""The classroom Playground: a small MLP trained live on 2D data, and the geometry no playground shows.

`trainer` (the config, the network stepped epoch by epoch, the link), `linear_regions` (exact regions of ReLU
nets), `digits` (the same live loop for the small digits CNN, seen through a fixed slice), `margins` (DeepFool
margins and the boundary's curvature on the plane), `readings` (one-line claims that can come out false). The
exported lesson (`geometry.report.lesson`) draws figures, so it sits at the report's level and is not imported
here.
"""

from __future__ import annotations

from geometry.playground.digits import DIGITS_ANCHORS, DigitsConfig, DigitsFrame, DigitsPlayground
from geometry.playground.linear_regions import (
    LinearRegions,
    exact_linear_regions,
    one_layer_bound,
    pattern_map,
    relu_layers,
)
from geometry.playground.margins import PointMargins, boundary_curvature_2d, point_margins
from geometry.playground.readings import Reading, curvature_reading, margin_reading, region_reading, unit_reading
from geometry.playground.trainer import (
    PLAYGROUND_ACTIVATIONS,
    PLAYGROUND_DATASETS,
    Frame,
    PlaneGrid,
    Playground,
    PlaygroundConfig,
    config_from_query,
    config_to_query,
)

__all__ = [
    "DIGITS_ANCHORS",
    "DigitsConfig",
    "DigitsFrame",
    "DigitsPlayground",
    "PLAYGROUND_ACTIVATIONS",
    "PLAYGROUND_DATASETS",
    "Frame",
    "LinearRegions",
    "PlaneGrid",
    "Playground",
    "PlaygroundConfig",
    "PointMargins",
    "Reading",
    "boundary_curvature_2d",
    "config_from_query",
    "config_to_query",
    "curvature_reading",
    "exact_linear_regions",
    "margin_reading",
    "one_layer_bound",
    "pattern_map",
    "point_margins",
    "region_reading",
    "relu_layers",
    "unit_reading",
]

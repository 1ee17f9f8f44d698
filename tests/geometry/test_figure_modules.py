"""One figures module per view: every name is still exported from `geometry.figures`, and each figure of a result
takes that result's type (not ``Any``)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import pytest

import geometry.figures as figures

# figure -> (module it lives in, the type of its first argument)
RESULT_FIGURES = {
    "frequency_margins_figure": ("margins", "Mapping[str, FrequencyMargins] | FrequencyMargins"),
    "path_figure": ("connectivity", "PathResult"),
    "connectivity_figure": ("connectivity", "PathResult"),
    "roc_figure": ("detection", "DetectionResult"),
    "detection_scores_figure": ("detection", "DetectionResult"),
    "sweep_figure": ("robustness", "Mapping[str, SweepResult] | SweepResult"),
    "position_heatmap": ("robustness", "SweepResult"),
    "curvature_summary_figure": ("curvature", "CurvatureResult"),
    "feature_plane_figure": ("features", "FeatureRegionMap"),
    "slice_label_figure": ("features", "SliceResult"),
    "hull_figure": ("features", "HullReport"),
    "morph_figure": ("features", "MorphResult"),
}


def test_every_exported_name_resolves_to_its_views_module():
    for name in figures.__all__:
        assert callable(getattr(figures, name)), name
    assert not importlib.util.find_spec("geometry.figures.inspect")  # split up, not kept beside the new modules


@pytest.mark.parametrize("name", sorted(RESULT_FIGURES))
def test_a_figure_takes_the_result_type_it_draws(name):
    module, annotation = RESULT_FIGURES[name]
    function = getattr(figures, name)
    assert function.__module__ == f"geometry.figures.{module}"
    first = next(iter(inspect.signature(function).parameters.values()))
    assert first.annotation == annotation
    # the annotation names a real class of the library (checked under TYPE_CHECKING only in the module itself)
    source_module = importlib.import_module(function.__module__)
    text = inspect.getsource(source_module)
    for type_name in annotation.replace("Mapping[str, ", "").replace("]", "").split(" | "):
        assert f"import {type_name}" in text or f", {type_name}" in text or f"{type_name}," in text, type_name


def test_view_class_colors_distinct_for_a_1000_class_model():
    from geometry.figures.common import OTHER_COLOR, class_color, view_class_colors

    present = [907, 3, 511, 3, 42]
    colors = view_class_colors(present, 1000)
    assert list(colors) == [907, 3, 511, 42]  # first appearance order, no repeats
    assert len(set(colors.values())) == 4  # the classes in the view are told apart
    many = view_class_colors(range(40), 1000, most=24)
    assert len({many[c] for c in range(24)}) == 24 and all(many[c] == OTHER_COLOR for c in range(24, 40))
    # with few classes a class keeps its page-wide colour
    assert view_class_colors([2, 0], 10) == {2: class_color(2, 10), 0: class_color(0, 10)}

"""Figures of the Train view: what they draw is the data they were given, bad input is named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geometry.figures.training import gradient_activation_figure, margin_comparison, training_curves


def test_the_activation_curve_and_its_bound():
    fig = gradient_activation_figure(0.3, 4.5)
    curve = next(t for t in fig.data if "arctan" in t.name)
    np.testing.assert_allclose(curve.y, 0.3 * np.arctan(4.5 * np.asarray(curve.x)))
    bounds = sorted(s.y0 for s in fig.layout.shapes)
    assert bounds == pytest.approx([-0.3 * math.pi / 2, 0.3 * math.pi / 2])


@pytest.mark.parametrize(("alpha", "beta", "match"), [(0, 1, "expected alpha"), (1, -2, "expected beta")])
def test_the_activation_figure_rejects_bad_parameters(alpha, beta, match):
    with pytest.raises(ValueError, match=match):
        gradient_activation_figure(alpha, beta)


def test_training_curves_draw_every_epoch_of_every_model():
    histories = {
        "plain": [
            {"epoch": 1, "loss": 0.7, "train_accuracy": 0.5, "test_accuracy": 0.55},
            {"epoch": 2, "loss": 0.3, "train_accuracy": 0.9, "test_accuracy": 0.85},
        ],
        "activated": [{"epoch": 1, "loss": 0.6, "train_accuracy": 0.6, "test_accuracy": 0.65}],
    }
    fig = training_curves(histories)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["plain"].y) == [0.7, 0.3]
    assert list(by_name["plain (test)"].y) == [0.55, 0.85]
    assert list(by_name["activated (train)"].y) == [0.6]
    with pytest.raises(ValueError, match="at least one training history"):
        training_curves({})
    with pytest.raises(ValueError, match="history of 'x' is empty"):
        training_curves({"x": []})


def test_margin_comparison_leaves_out_runs_that_did_not_converge():
    fig = margin_comparison(
        {"a": [1.0, 2.0, 3.0, np.nan], "b": [4.0, 5.0, 6.0]},
        {"a": [True, True, False, False], "b": [True, True, True]},
        title="t",
        axis_title="d",
    )
    a, b = fig.data
    assert list(a.y) == [1.0, 2.0] and a.name == "a: median 1.5 (2 not converged)"
    assert list(b.y) == [4.0, 5.0, 6.0] and b.name == "b: median 5"
    with pytest.raises(ValueError, match="at least one model"):
        margin_comparison({}, title="t", axis_title="d")

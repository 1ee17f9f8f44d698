"""The Playground on digits: the fixed slice's regions form while the small CNN trains, the test accuracy rises, the
slice image is drawn the right way up, and a run is the same for the same config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geometry.figures.playground import digits_image
from geometry.playground import DigitsConfig, DigitsPlayground


@pytest.fixture(scope="module")
def trained() -> DigitsPlayground:
    pg = DigitsPlayground(DigitsConfig(resolution=32))
    pg.step(6)
    return pg


def test_the_slice_changes_and_the_test_accuracy_rises_while_it_trains(trained: DigitsPlayground) -> None:
    first, last = trained.frames[0], trained.frames[-1]
    assert (first.epoch, last.epoch) == (0, 6)
    assert (first.labels != last.labels).mean() > 0.2  # the regions formed, not a few pixels flickering
    accuracy = [h["test_accuracy"] for h in trained.history]
    assert accuracy[0] < 0.3  # an untrained 10-class net is near chance
    assert accuracy[-1] > accuracy[0] + 0.4 and accuracy[-1] > 0.7
    # three digits, so at least two digits' regions show on the slice once it has learnt
    assert len(np.unique(last.labels)) >= 2


def test_the_slice_image_is_drawn_the_right_way_up(trained: DigitsPlayground) -> None:
    """The label drawn at a digit's pixel is the network's prediction at the slice's grid point there, which lies
    within one grid cell of the digit itself."""
    n = trained.config.resolution
    result = trained.slice
    handle = trained.handle()
    plane = trained.plane
    cell = np.hypot(*result.cell)
    for (col, row), (a, b) in zip(trained.anchor_pixels(), plane.anchors.values(), strict=True):
        c, r = int(col), int(row)
        ga, gb = result.a[c], result.b[n - 1 - r]  # image row r is slice row n-1-r
        assert np.hypot(ga - a, gb - b) <= cell
        x = (plane.origin + float(ga) * plane.u + float(gb) * plane.v)[None]
        assert int(handle.predict(x)[0]) == int(trained.frames[-1].labels[r, c])
    image = digits_image(trained, scale=3)
    assert image.shape == (3 * n, 3 * n, 3) and image.dtype == np.uint8


def test_a_digits_run_is_the_same_for_the_same_config() -> None:
    config = DigitsConfig(activation="silu", pool="avg", resolution=16, seed=4)
    a, b = DigitsPlayground(config), DigitsPlayground(config)
    a.step(2)
    b.step(1)
    b.step(1)
    assert np.array_equal(a.frames[-1].labels, b.frames[-1].labels)
    assert a.history == b.history
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(p, q)


def test_bad_digits_settings_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match="expected three distinct test-digit indices"):
        DigitsConfig(anchors=(1, 1, 2))
    with pytest.raises(ValueError, match="expected activation as one of"):
        DigitsConfig(activation="swish")
    with pytest.raises(ValueError, match="expected anchors among the 450 test digits"):
        DigitsPlayground(DigitsConfig(anchors=(0, 1, 450)))

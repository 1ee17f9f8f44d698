from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geometry.data.shapes import (
    BACKGROUNDS,
    MIN_CONTRAST,
    SHAPE_NAMES,
    ShapeFactors,
    render_shapes,
    sample_factors,
    with_factor,
)

OFFSCREEN = (50.0, 50.0)  # an object centred here covers no pixel: the render is the background


def _factors(name: str, **kw: object) -> ShapeFactors:
    base = dict(
        shape=SHAPE_NAMES.index(name),
        color=(0.9, 0.2, 0.1),
        area=0.2,
        center=(0.5, 0.5),
        rotation=0.0,
        background="plain",
        background_seed=7,
    )
    base.update(kw)
    return ShapeFactors(**base)  # type: ignore[arg-type]


def _alpha(f: ShapeFactors, size: int = 64) -> np.ndarray:
    """The object's coverage per pixel (size, size), recovered from the image and its background."""
    img, bg = render_shapes([f, with_factor([f], center=OFFSCREEN)[0]], size=size).double().numpy()
    col = np.asarray(f.color)[:, None, None]
    return ((img - bg) * (col - bg)).sum(0) / ((col - bg) ** 2).sum(0)


def test_class_names() -> None:
    assert SHAPE_NAMES == ("circle", "square", "triangle", "star", "cross", "ring")


@pytest.mark.parametrize("size", [8, 32, 64])
def test_render_shape_dtype_range(size: int) -> None:
    x = render_shapes(sample_factors(24, seed=3), size=size)
    assert x.shape == (24, 3, size, size)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_render_large_size() -> None:
    x = render_shapes(sample_factors(6, seed=4), size=224)
    assert x.shape == (6, 3, 224, 224)
    assert x.dtype == torch.float32


def test_render_empty() -> None:
    assert render_shapes([], size=16).shape == (0, 3, 16, 16)


def test_deterministic_from_seed() -> None:
    a, b = sample_factors(50, seed=11), sample_factors(50, seed=11)
    assert a == b
    assert torch.equal(render_shapes(a), render_shapes(b))
    c = sample_factors(50, seed=12)
    assert a != c
    assert not torch.equal(render_shapes(a), render_shapes(c))


def test_background_seed_changes_background_only() -> None:
    f = _factors("star", background="texture", background_seed=1)
    g = with_factor([f], background_seed=2)[0]
    x, y = render_shapes([f, g], size=32)
    assert not torch.equal(x, y)
    a_f, a_g = _alpha(f, 32), _alpha(g, 32)
    np.testing.assert_allclose(a_f, a_g, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("area", [0.05, 0.15, 0.3, 0.5])
def test_area_fraction_matches_request(shape: str, area: float) -> None:
    alpha = _alpha(_factors(shape, area=area, rotation=10.0), size=64)
    assert alpha.mean() == pytest.approx(area, rel=0.1)


def test_area_is_resolution_independent() -> None:
    f = _factors("cross", area=0.12, rotation=30.0)
    assert _alpha(f, 32).mean() == pytest.approx(_alpha(f, 128).mean(), rel=0.05)


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_center_moves_centroid(shape: str) -> None:
    size = 64
    alpha = _alpha(_factors(shape, area=0.1, center=(0.3, 0.65), rotation=0.0), size=size)
    grid = (np.arange(size) + 0.5) / size
    cx = (alpha.sum(0) * grid).sum() / alpha.sum()
    cy = (alpha.sum(1) * grid).sum() / alpha.sum()
    assert cx == pytest.approx(0.3, abs=0.5 / size)
    assert cy == pytest.approx(0.65, abs=0.5 / size)


def test_object_partly_outside_image() -> None:
    alpha = _alpha(_factors("circle", area=0.2, center=(0.0, 0.5)), size=64)
    assert alpha.mean() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize(("shape", "angle"), [("square", 90.0), ("cross", 90.0), ("star", 72.0), ("triangle", 120.0)])
def test_rotation_by_a_symmetry_angle_keeps_the_mask(shape: str, angle: float) -> None:
    a = _alpha(_factors(shape, rotation=15.0))
    b = _alpha(_factors(shape, rotation=15.0 + angle))
    np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.mark.parametrize("shape", ["triangle", "star"])
def test_rotation_by_90_changes_a_non_square_shape(shape: str) -> None:
    a = _alpha(_factors(shape, rotation=0.0))
    b = _alpha(_factors(shape, rotation=90.0))
    assert np.abs(a - b).max() > 0.5


def test_rotation_is_counter_clockwise_about_the_centre() -> None:
    a = _alpha(_factors("triangle", rotation=0.0))
    b = _alpha(_factors("triangle", rotation=90.0))
    np.testing.assert_allclose(b, np.rot90(a, k=1), atol=1e-3)  # np.rot90 turns the picture CCW


def test_triangle_points_up_at_rotation_zero() -> None:
    rows = np.flatnonzero(_alpha(_factors("triangle", rotation=0.0)).max(1) > 0.5)
    centre = 32 - 0.5
    assert centre - rows.min() > 1.5 * (rows.max() - centre)  # apex (2/sqrt3 r) above, base (1/sqrt3 r) below


def test_ring_has_a_hole_and_circle_does_not() -> None:
    ring = _alpha(_factors("ring", area=0.3))
    circle = _alpha(_factors("circle", area=0.3))
    assert ring[30:34, 30:34].max() < 0.01
    assert circle[30:34, 30:34].min() > 0.99


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_background_contrasts_with_object(background: str) -> None:
    fs = with_factor(sample_factors(60, seed=5, backgrounds=(background,)), center=OFFSCREEN)
    bg = render_shapes(fs, size=32).double().numpy()
    col = np.array([f.color for f in fs])[:, :, None, None]
    dist = np.sqrt(((bg - col) ** 2).sum(1))
    assert dist.min() >= MIN_CONTRAST - 1e-4


def test_plain_background_is_one_colour_and_others_are_not() -> None:
    fs = with_factor([_factors("circle", background=b) for b in BACKGROUNDS], center=OFFSCREEN)
    bg = render_shapes(fs, size=32)
    spread = (bg.amax(dim=(2, 3)) - bg.amin(dim=(2, 3))).amax(1)
    assert float(spread[0]) == 0.0
    assert (spread[1:] > 0.05).all()


def test_classes_balanced() -> None:
    labels = np.array([f.shape for f in sample_factors(603, seed=1)])
    counts = np.bincount(labels, minlength=len(SHAPE_NAMES))
    assert counts.max() - counts.min() <= 1 and counts.sum() == 603


def test_sample_ranges_and_fixed_factors() -> None:
    fs = sample_factors(200, seed=2, area=0.1, rotation=(10.0, 20.0), center=(0.4, 0.6), shapes=["ring", 1])
    assert {f.area for f in fs} == {0.1}
    assert all(10.0 <= f.rotation <= 20.0 for f in fs)
    assert {f.center for f in fs} == {(0.4, 0.6)}
    assert {f.shape for f in fs} == {1, 5}
    fs = sample_factors(200, seed=2, center=((0.1, 0.2), (0.8, 0.9)), backgrounds=("noise",))
    assert all(0.1 <= f.center[0] <= 0.2 and 0.8 <= f.center[1] <= 0.9 for f in fs)
    assert {f.background for f in fs} == {"noise"}


def test_with_factor() -> None:
    fs = sample_factors(5, seed=0)
    moved = with_factor(fs, center=(0.1, 0.2))
    assert [f.center for f in moved] == [(0.1, 0.2)] * 5
    assert [f.shape for f in moved] == [f.shape for f in fs]


def test_with_factor_unknown_name() -> None:
    with pytest.raises(ValueError, match="expected factor names"):
        with_factor(sample_factors(2, seed=0), size=3)


def test_factors_area_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"expected area in \[0.01, 1.0\], got 1.5"):
        _factors("circle", area=1.5)


def test_factors_bad_shape() -> None:
    with pytest.raises(ValueError, match="expected shape in 0..5"):
        _factors("circle", shape=6)


def test_factors_bad_colour() -> None:
    with pytest.raises(ValueError, match=r"expected color as RGB in \[0, 1\]"):
        _factors("circle", color=(0.0, 2.0, 0.0))


def test_factors_bad_background() -> None:
    with pytest.raises(ValueError, match="expected background in"):
        _factors("circle", background="clouds")


def test_factors_nan_rotation() -> None:
    with pytest.raises(ValueError, match="expected rotation to be finite"):
        _factors("circle", rotation=math.nan)


def test_render_size_too_small() -> None:
    with pytest.raises(ValueError, match="expected size as an int >= 8, got 4"):
        render_shapes(sample_factors(1, seed=0), size=4)


def test_render_wrong_item_type() -> None:
    with pytest.raises(TypeError, match="expected ShapeFactors, got dict at index 0"):
        render_shapes([{"shape": 0}])  # type: ignore[list-item]


def test_sample_unknown_shape_name() -> None:
    with pytest.raises(ValueError, match="expected shape names among"):
        sample_factors(3, seed=0, shapes=["hexagon"])


def test_sample_area_range_out_of_bounds() -> None:
    with pytest.raises(ValueError, match="expected area within"):
        sample_factors(3, seed=0, area=(0.001, 0.2))

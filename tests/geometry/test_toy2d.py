from __future__ import annotations

import numpy as np
import pytest

from geometry.data.toy2d import TOY2D_NAMES, make_toy2d

CASES = [("moons", 2), ("circles", 2), ("spirals", 2), ("spirals", 5), ("blobs", 2), ("blobs", 3), ("blobs", 5)]


@pytest.mark.parametrize(("name", "classes"), CASES)
def test_shapes_dtypes_balance_and_scale(name: str, classes: int) -> None:
    x, y = make_toy2d(name, 503, seed=0, classes=classes)
    assert x.shape == (503, 2) and x.dtype == np.float32
    assert y.shape == (503,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes and counts.max() - counts.min() <= 1
    assert np.abs(x).max() < 4.5
    assert 0.5 < x.std() < 2.5


@pytest.mark.parametrize("name", TOY2D_NAMES)
def test_deterministic_from_seed(name: str) -> None:
    a, b, c = (make_toy2d(name, 100, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_moons_without_noise_lie_on_two_half_circles() -> None:
    x, y = make_toy2d("moons", 200, seed=0, noise=0.0)
    p = x / 2.0 + np.array([0.5, 0.25])  # undo the fixed scaling into scikit-learn's units
    centres = np.where(y[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(p - centres, axis=1), 1.0, atol=1e-5)


def test_circles_without_noise_have_two_radii() -> None:
    x, y = make_toy2d("circles", 200, seed=0, noise=0.0)
    r = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(r[y == 0], 2.5, atol=1e-5)
    np.testing.assert_allclose(r[y == 1], 1.25, atol=1e-5)


def test_spirals_without_noise_separate_arms_by_angle() -> None:
    arms = 3
    x, y = make_toy2d("spirals", 300, seed=0, noise=0.0, classes=arms)
    r = np.linalg.norm(x, axis=1)
    assert r.min() >= 0.3 - 1e-5 and r.max() <= 2.8 + 1e-5
    # Same radius -> the arms sit at angles 2 pi / arms apart: rotate each arm back onto arm 0.
    t = (r - 0.3) / 2.5
    angle = np.arctan2(x[:, 1], x[:, 0]) - 2 * np.pi * (t + y / arms)
    np.testing.assert_allclose(np.cos(angle), 1.0, atol=1e-4)


def test_blob_centres_do_not_depend_on_the_seed() -> None:
    means = []
    for seed in (0, 1):
        x, y = make_toy2d("blobs", 4000, seed=seed, classes=4)
        means.append(np.stack([x[y == c].mean(0) for c in range(4)]))
    np.testing.assert_allclose(means[0], means[1], atol=0.05)
    np.testing.assert_allclose(np.linalg.norm(means[0], axis=1), 2.0, atol=0.05)


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"expected a toy 2D set among .*got 'squares'"):
        make_toy2d("squares", 10, seed=0)


def test_moons_class_count() -> None:
    with pytest.raises(ValueError, match="expected 2 classes for 'moons', got 3"):
        make_toy2d("moons", 10, seed=0, classes=3)


def test_blobs_class_count() -> None:
    with pytest.raises(ValueError, match=r"expected 2\.\.5 classes for 'blobs', got 6"):
        make_toy2d("blobs", 10, seed=0, classes=6)


def test_spirals_class_count() -> None:
    with pytest.raises(ValueError, match=r"expected 2\.\.5 classes for 'spirals', got 1"):
        make_toy2d("spirals", 10, seed=0, classes=1)


def test_too_few_points() -> None:
    with pytest.raises(ValueError, match="expected n as an int >= 3"):
        make_toy2d("blobs", 2, seed=0, classes=3)


def test_negative_noise() -> None:
    with pytest.raises(ValueError, match="expected noise as a finite number >= 0"):
        make_toy2d("moons", 10, seed=0, noise=-1.0)

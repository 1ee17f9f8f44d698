"""Convex-hull membership (LP) and distance (QP, Wolfe) on cases known by construction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from geometry.features.hull import hull_distance, hull_membership_lp, hull_report, min_norm_point
from geometry.runtime.cache import DiskCache

CUBE = np.array(list(itertools.product([0.0, 1.0], repeat=3)))  # the unit cube's 8 corners


@pytest.mark.parametrize(
    ("z", "inside", "distance", "nearest"),
    [
        ((0.5, 0.5, 0.5), True, 0.0, (0.5, 0.5, 0.5)),
        ((0.1, 0.9, 0.2), True, 0.0, (0.1, 0.9, 0.2)),
        ((2.0, 0.5, 0.5), False, 1.0, (1.0, 0.5, 0.5)),  # nearest point on a face
        ((2.0, 2.0, 0.5), False, np.sqrt(2.0), (1.0, 1.0, 0.5)),  # ... on an edge
        ((-1.0, -2.0, 3.0), False, np.sqrt(1 + 4 + 4), (0.0, 0.0, 1.0)),  # ... at a corner
    ],
)
def test_unit_cube(z, inside, distance, nearest):
    assert hull_membership_lp(CUBE, z) is inside
    hd = hull_distance(CUBE, z)
    assert hd.distance == pytest.approx(distance, abs=1e-9)
    np.testing.assert_allclose(hd.nearest, nearest, atol=1e-9)
    assert hd.certified_outside is (not inside)


def test_standard_simplex_in_five_dimensions():
    d = 5
    simplex = np.vstack([np.zeros(d), np.eye(d)])  # conv{0, e1, ..., e5} = {z >= 0, sum z <= 1}
    rng = np.random.default_rng(0)
    for w in rng.dirichlet(np.ones(d + 1), size=10):  # convex combinations are inside
        z = w @ simplex
        assert hull_membership_lp(simplex, z)
        assert hull_distance(simplex, z).distance == pytest.approx(0.0, abs=1e-9)
    for c in (0.3, 0.5, 1.0):  # c * (1, ..., 1) is outside for c > 1/d, at distance (c d - 1) / sqrt(d)
        z = np.full(d, c)
        assert not hull_membership_lp(simplex, z)
        assert hull_distance(simplex, z).distance == pytest.approx((c * d - 1) / np.sqrt(d), abs=1e-9)


def test_wolfe_agrees_with_a_general_purpose_qp_solver():
    rng = np.random.default_rng(1)
    for trial in range(5):
        pts = rng.normal(size=(20, 6))
        z = rng.normal(size=6) * 3
        x, w, _ = min_norm_point(pts - z)
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(w @ (pts - z), x, atol=1e-10)
        res = minimize(
            lambda lam, pts=pts, z=z: np.sum((lam @ pts - z) ** 2),
            np.full(20, 1 / 20),
            method="SLSQP",
            bounds=[(0, None)] * 20,
            constraints={"type": "eq", "fun": lambda lam: lam.sum() - 1},
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert np.linalg.norm(x) == pytest.approx(np.sqrt(res.fun), rel=1e-5), trial
        assert np.linalg.norm(x) <= np.sqrt(res.fun) + 1e-9  # Wolfe's answer is never worse


def test_distance_to_a_single_point_and_to_duplicates():
    p = np.array([[1.0, 2.0, 3.0]])
    assert hull_distance(p, [1.0, 2.0, 7.0]).distance == pytest.approx(4.0)
    dup = np.repeat(CUBE, 3, axis=0)
    assert hull_distance(dup, [2.0, 0.5, 0.5]).distance == pytest.approx(1.0, abs=1e-9)


def _two_squares() -> tuple[np.ndarray, np.ndarray]:
    square = np.array(list(itertools.product([-1.0, 1.0], repeat=2)))
    train = np.vstack([square, square + [10.0, 0.0]])
    return train, np.array([0] * 4 + [1] * 4)


def test_hull_report_on_two_classes_known_by_construction():
    train, labels = _two_squares()
    test = np.array(
        [
            [0.5, 0.5],  # inside class 0's square
            [10.2, -0.3],  # inside class 1's square
            [5.0, 0.0],  # between: inside the overall hull, outside its class's square
            [0.0, 3.0],  # above class 0's square: outside everything, 2 from both hulls
        ]
    )
    classes = np.array([0, 1, 0, 0])
    r = hull_report(train, labels, test, classes, num_classes=2)
    np.testing.assert_array_equal(r.inside, [True, True, True, False])
    np.testing.assert_array_equal(r.inside_class, [True, True, False, False])
    np.testing.assert_allclose(r.distance, [0, 0, 0, 2.0], atol=1e-9)
    np.testing.assert_allclose(r.distance_class, [0, 0, 4.0, 2.0], atol=1e-9)
    assert r.share_outside == 0.25 and r.share_outside_class == 0.5
    np.testing.assert_allclose(r.per_class_outside, [2 / 3, 0.0])
    np.testing.assert_array_equal(r.per_class_count, [3, 1])
    np.testing.assert_array_equal(r.train_count, [4, 4])


def test_in_high_dimensions_test_points_fall_outside():
    """A classic: 200 Gaussian points in 50 dimensions; fresh points from the same law lie outside their hull."""
    rng = np.random.default_rng(2)
    train = rng.normal(size=(200, 50))
    test = rng.normal(size=(20, 50))
    r = hull_report(train, np.zeros(200, int), test, np.zeros(20, int))
    assert r.share_outside == 1.0 and (r.distance > 0).all()
    inside = rng.dirichlet(np.ones(200), size=3) @ train  # ... while convex combinations are inside
    r2 = hull_report(train, np.zeros(200, int), inside, np.zeros(3, int))
    assert r2.share_outside == 0.0


def test_hull_report_is_cached_and_can_be_looked_up_without_computing(tmp_path):
    cache = DiskCache(tmp_path)
    train, labels = _two_squares()
    args = (train, labels, np.array([[0.0, 3.0]]), np.array([0]))
    assert hull_report(*args, fingerprint="fp", cache=cache, cached_only=True) is None
    first = hull_report(*args, fingerprint="fp", cache=cache)
    again = hull_report(*args, fingerprint="fp", cache=cache, cached_only=True)
    assert again is not None and again.seconds == first.seconds and len(cache) == 1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="expected a point of dimension 3"):
        hull_distance(CUBE, [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        hull_membership_lp(np.full((3, 2), np.nan), [0.0, 0.0])
    train, labels = _two_squares()
    with pytest.raises(ValueError, match="expected test features of dimension 2"):
        hull_report(train, labels, np.zeros((1, 3)), [0])
    with pytest.raises(ValueError, match=r"expected classes in \[0, 2\)"):
        hull_report(train, labels, np.zeros((1, 2)), [5], num_classes=2)
    with pytest.raises(ValueError, match="fingerprint"):
        hull_report(train, labels, np.zeros((1, 2)), [0], cached_only=True)

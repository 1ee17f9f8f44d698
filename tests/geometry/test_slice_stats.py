"""Region statistics on slices: hand-made label maps and a linear classifier with a known boundary distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geometry.slices import planes as P
from geometry.slices import stats as T
from geometry.slices.evaluate import SliceResult, evaluate_slice
from tests.geometry.analytic import Affine, affine_handle, ball_handle, toy_handle


def test_area_shares_count_grid_points_per_class():
    labels = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    np.testing.assert_allclose(T.area_shares(labels, 4), [3 / 8, 3 / 8, 2 / 8, 0.0])
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    np.testing.assert_allclose(T.area_shares(labels, 3, mask=mask), [3 / 5, 0.0, 2 / 5])
    np.testing.assert_allclose(T.area_shares(labels, 3, mask=np.zeros_like(mask)), [0.0, 0.0, 0.0])


def test_components_count_disconnected_regions_per_class():
    labels = np.array(
        [
            [0, 0, 1, 0, 0],
            [0, 0, 1, 0, 0],
            [1, 1, 1, 2, 2],
            [0, 1, 2, 2, 2],
        ]
    )
    np.testing.assert_array_equal(T.region_components(labels, 4), [3, 1, 1, 0])
    diagonal = np.array([[0, 1], [1, 0]])
    np.testing.assert_array_equal(T.region_components(diagonal, 2, connectivity=4), [2, 2])
    np.testing.assert_array_equal(T.region_components(diagonal, 2, connectivity=8), [1, 1])
    mask = np.array([[True, True], [True, False]])
    np.testing.assert_array_equal(T.region_components(diagonal, 2, mask=mask), [1, 2])


def test_boundary_distance_is_exact_to_half_a_cell():
    a = np.linspace(-2, 2, 81)  # cell 0.05
    b = np.linspace(-1, 1, 41)
    labels = np.broadcast_to((a > 0.73).astype(np.int16), (41, 81)).copy()  # vertical boundary at a = 0.73
    dist, where = T.boundary_distance(labels, a, b, (0.0, 0.0))
    assert abs(dist - 0.73) <= 0.025 + 1e-12
    assert where[1] == pytest.approx(0.0) and abs(where[0] - 0.73) <= 0.025 + 1e-12
    dist, _ = T.boundary_distance(labels, a, b, (1.5, 0.5))
    assert abs(dist - 0.77) <= 0.025 + 1e-12
    assert T.boundary_distance(np.zeros((5, 5), dtype=int), np.arange(5.0), np.arange(5.0)) == (np.inf, None)


def test_slice_stats_of_a_linear_classifier_find_the_analytic_distance():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 16, generator=gen, dtype=torch.float64)
    x0 = torch.rand(1, 4, 4, generator=gen)
    wd = w[1] - w[0]
    bias = torch.tensor([0.0, float(-(wd @ x0.double().flatten()) + 0.9)])  # F(x0) = 0.9
    handle = affine_handle(w.float(), bias.float(), (1, 4, 4))
    plane = P.random_plane(x0, seed=2)
    res = evaluate_slice(handle, plane, extent=(-8, 8, -6, 6), resolution=(161, 121))
    alpha = float(wd @ plane.u.double().flatten())
    beta = float(wd @ plane.v.double().flatten())
    exact = 0.9 / np.hypot(alpha, beta)  # distance from (0, 0) to the line alpha a + beta b + 0.9 = 0 in the plane
    stats = T.slice_statistics(res)
    assert stats.point_label == 1
    assert abs(stats.boundary_distance - exact) <= 0.5 * max(res.cell) + 1e-9
    np.testing.assert_array_equal(stats.components, [1, 1])
    assert stats.area_share.sum() == pytest.approx(1.0)
    assert len(stats.fragmented) == 0


def test_a_ball_seen_off_centre_is_one_region_and_its_outside_too():
    c = torch.full((1, 3, 3), 0.5)
    handle = ball_handle(c, 0.3)
    plane = P.random_plane(c, seed=0)
    res = evaluate_slice(handle, plane, extent=1.0, resolution=101)
    stats = T.slice_statistics(res, connectivity=8)
    np.testing.assert_array_equal(stats.components, [1, 1])
    assert stats.boundary_distance == pytest.approx(0.3, abs=0.5 * max(res.cell) + 1e-9)
    assert stats.area_share[1] == pytest.approx(np.pi * 0.3**2 / 4.0, rel=0.03)  # disc area / square area


def test_region_iou_of_two_maps():
    a = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    b = np.array([[0, 1, 1, 1], [0, 0, 1, 2]])
    iou = T.region_iou(a, b, 4)
    # class 0: inter 3, union 4; class 1: inter 3, union 5; class 2: inter 0, union 1; class 3 absent
    np.testing.assert_allclose(iou.per_class[:3], [3 / 4, 3 / 5, 0.0])
    assert np.isnan(iou.per_class[3])
    assert iou.mean_iou == pytest.approx((3 / 4 + 3 / 5 + 0.0) / 3)
    assert iou.agreement == pytest.approx(6 / 8)
    same = T.region_iou(a, a, 2)
    assert same.mean_iou == 1.0 and same.agreement == 1.0


def test_two_models_on_one_plane_have_the_analytic_iou_of_two_half_planes():
    # model 1: class 1 where a > 0; model 2: class 1 where a + b > 0 (2D inputs, the plane is the input space).
    # On the square [-e, e]^2 the half-planes {a > 0} and {a + b > 0} overlap in 3/8 of the square and differ on
    # the triangles {a > 0 > a + b} and {a < 0 < a + b} (1/8 each): IoU 0.6 per class, agreement 0.75.
    h1 = toy_handle(Affine(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.zeros(2)))
    h2 = toy_handle(Affine(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.zeros(2)))
    plane = P.input_space_plane()
    r1 = evaluate_slice(h1, plane, extent=2.0, resolution=400)
    r2 = evaluate_slice(h2, plane, extent=2.0, resolution=400)
    iou = T.region_iou(r1.labels, r2.labels, 2)
    np.testing.assert_allclose(iou.per_class, [0.6, 0.6], atol=0.01)  # grid error O(1 / resolution)
    assert iou.mean_iou == pytest.approx(0.6, abs=0.01)
    assert iou.agreement == pytest.approx(0.75, abs=0.01)
    same = T.region_iou(r1.labels, r1.labels, 2)
    assert same.mean_iou == 1.0 and same.agreement == 1.0


def test_boundary_distance_and_statistics_honour_the_valid_mask():
    a = np.linspace(-2, 2, 81)  # cell 0.05
    b = np.linspace(-1, 1, 41)
    labels = np.zeros((41, 81), dtype=np.int16)
    labels[:, a > 0.5] = 1  # a boundary at a = 0.5 ...
    labels[:, a > 1.5] = 2  # ... and one at a = 1.5
    valid = np.broadcast_to(a > 1.0, labels.shape).copy()  # only a > 1 holds valid inputs
    dist, where = T.boundary_distance(labels, a, b, (0.0, 0.0))
    assert abs(dist - 0.5) <= 0.025 + 1e-12
    dist, where = T.boundary_distance(labels, a, b, (0.0, 0.0), mask=valid)
    assert abs(dist - 1.5) <= 0.025 + 1e-12 and abs(where[0] - 1.5) <= 0.025 + 1e-12
    # a change between a valid and an invalid neighbour is no boundary between valid inputs
    assert T.boundary_distance(labels, a, b, (0.0, 0.0), mask=valid & (labels != 2)) == (np.inf, None)
    ones = np.ones(labels.shape, np.float32)
    res = SliceResult(
        a=a,
        b=b,
        labels=labels,
        probability=ones,
        margin=ones,
        pair_margin=None,
        target_pair=None,
        valid=valid,
        evaluated=ones.astype(bool),
        evaluations=labels.size,
        adaptive=False,
        num_classes=3,
        extent=(-2.0, 2.0, -1.0, 1.0),
        seconds=0.0,
    )
    every = T.slice_statistics(res)
    inside = T.slice_statistics(res, valid_only=True)
    assert abs(every.boundary_distance - 0.5) <= 0.025 + 1e-12
    assert abs(inside.boundary_distance - 1.5) <= 0.025 + 1e-12 and inside.valid_only
    np.testing.assert_allclose(inside.area_share, [0.0, 10 / 20, 10 / 20])  # a in (1, 1.5] and (1.5, 2]
    np.testing.assert_array_equal(inside.components, [0, 1, 1])


def test_labels_must_be_an_array():
    with pytest.raises(TypeError, match="numpy array"):
        T.area_shares([[0, 1]], 2)


def test_labels_must_be_integers():
    with pytest.raises(TypeError, match="integer class indices"):
        T.area_shares(np.zeros((2, 2)), 2)


def test_labels_must_be_2d():
    with pytest.raises(ValueError, match="2D label map"):
        T.region_components(np.zeros(4, dtype=int), 2)


def test_num_classes_must_be_positive():
    with pytest.raises(ValueError, match="num_classes"):
        T.area_shares(np.zeros((2, 2), dtype=int), 0)


def test_labels_must_be_below_num_classes():
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        T.area_shares(np.full((2, 2), 2), 2)


def test_mask_must_match_the_labels():
    with pytest.raises(ValueError, match=r"expected shape \(2, 2\)"):
        T.area_shares(np.zeros((2, 2), dtype=int), 2, mask=np.ones((3, 3), dtype=bool))


def test_mask_must_be_boolean():
    with pytest.raises(TypeError, match="boolean"):
        T.area_shares(np.zeros((2, 2), dtype=int), 2, mask=np.ones((2, 2)))


def test_connectivity_must_be_4_or_8():
    with pytest.raises(ValueError, match="connectivity"):
        T.region_components(np.zeros((2, 2), dtype=int), 2, connectivity=6)


def test_boundary_distance_needs_matching_coordinates():
    with pytest.raises(ValueError, match="coordinates of shapes"):
        T.boundary_distance(np.zeros((3, 4), dtype=int), np.arange(3.0), np.arange(4.0))


def test_boundary_distance_needs_a_point():
    with pytest.raises(ValueError, match="point"):
        T.boundary_distance(np.zeros((3, 4), dtype=int), np.arange(4.0), np.arange(3.0), point="origin")


def test_region_iou_needs_maps_of_one_shape():
    with pytest.raises(ValueError, match="same shape"):
        T.region_iou(np.zeros((2, 2), dtype=int), np.zeros((2, 3), dtype=int), 2)


def test_slice_stats_needs_a_slice_result():
    with pytest.raises(TypeError, match="SliceResult"):
        T.slice_statistics(np.zeros((2, 2), dtype=int))


def test_boundary_distance_mask_must_match_the_labels():
    with pytest.raises(ValueError, match=r"mask: expected shape \(3, 4\) like the labels, got \(4, 3\)"):
        T.boundary_distance(np.zeros((3, 4), dtype=int), np.arange(4.0), np.arange(3.0), mask=np.ones((4, 3), bool))


def test_valid_only_must_be_a_bool():
    res = evaluate_slice(
        toy_handle(Affine(torch.eye(2), torch.zeros(2))), P.input_space_plane(), extent=1.0, resolution=4
    )
    with pytest.raises(TypeError, match="valid_only: expected a bool, got str"):
        T.slice_statistics(res, valid_only="yes")

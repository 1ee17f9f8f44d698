"""The connectivity path finder on regions whose shape is known: a ball (convex), a ring (connected, not convex) and
two disjoint balls (not connected); the batch mode and its pair sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import geometry
from geometry.inspection.connectivity import (
    cached_find_path,
    connectivity_batch,
    find_path,
    find_paths,
    sample_same_class_pairs,
)
from tests.geometry.analytic import BallInsideClass0, Ring, TwoBalls, handle_of


def _on_polyline(vertices: torch.Tensor, per_segment: int = 400) -> torch.Tensor:
    t = torch.linspace(0, 1, per_segment)[:, None]
    return torch.cat([a + t * (b - a) for a, b in zip(vertices[:-1], vertices[1:], strict=True)])


def test_inside_a_convex_region_the_path_is_the_straight_segment():
    handle = handle_of(BallInsideClass0(torch.zeros(5), 1.0), 5)
    x1 = torch.tensor([0.5, 0.1, 0.0, -0.2, 0.1])
    x2 = torch.tensor([-0.4, 0.2, 0.3, 0.1, -0.3])
    res = find_path(handle, x1, x2, resolution=15)
    assert bool(res.success[0]) and res.reason == ("",)
    assert int(res.num_anchors[0]) == 0 and int(res.depth[0]) == 0
    assert float(res.max_deviation[0]) == 0.0
    torch.testing.assert_close(res.vertices(0), torch.stack([x1, x2]))
    assert float(res.path_length[0]) == pytest.approx(float((x1 - x2).norm()), rel=1e-6)
    assert res.evaluations == 15  # one grid check, nothing else
    assert bool((res.path_class == 0).all()) and bool((res.strip_class == 0).all())
    torch.testing.assert_close(res.strip[0, 0], x1)
    torch.testing.assert_close(res.strip[0, -1], x2)
    torch.testing.assert_close(res.strip[0, 4], (x1 + x2) / 2)  # 9 points evenly spaced: the middle one


def test_a_ring_is_connected_by_a_bent_path_that_never_leaves_it():
    handle = handle_of(Ring(1.0, 3.0), 2)
    x1, x2 = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.1])  # the segment crosses the hole
    res = find_path(handle, x1, x2)
    assert bool(res.success[0]), res.reason
    assert int(res.num_anchors[0]) >= 1
    v = res.vertices(0)
    torch.testing.assert_close(v[0], x1)
    torch.testing.assert_close(v[-1], x2)
    # independent check: thousands of points along the polyline are all on the ring
    radius = _on_polyline(v).norm(dim=1)
    assert float(radius.min()) > 1.0 and float(radius.max()) < 3.0
    assert bool((res.path_class == 0).all())
    # the detour goes around the hole: at least the hole's radius away from the segment, relative to its length
    assert float(res.max_deviation[0]) > 1.0 / float((x1 - x2).norm())
    assert float(res.path_length[0]) > float(res.distance[0])


def test_two_disjoint_balls_are_not_connected():
    handle = handle_of(TwoBalls(torch.tensor([2.0, 0.0])), 2)
    res = find_path(handle, torch.tensor([-2.2, 0.1]), torch.tensor([2.3, -0.1]), max_depth=4)
    assert not bool(res.success[0])
    assert "bisection levels" in res.reason[0] or "anchor budget" in res.reason[0]
    assert bool((res.path_class != 0).any())  # the reported polyline does leave the class


def test_the_anchor_budget_stops_the_search():
    handle = handle_of(Ring(1.0, 3.0), 2)
    res = find_path(handle, torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.1]), max_anchors=0)
    assert not bool(res.success[0]) and "anchor budget (0)" in res.reason[0]


def test_many_pairs_at_once_equal_one_at_a_time():
    handle = handle_of(Ring(1.0, 3.0), 2)
    starts = torch.tensor([[2.0, 0.0], [0.0, 2.5], [1.5, 1.5]])
    ends = torch.tensor([[-2.0, 0.1], [0.5, 2.0], [-1.6, -1.4]])
    batch = find_paths(handle, starts, ends)
    for p in range(3):
        one = find_path(handle, starts[p], ends[p])
        assert bool(one.success[0]) == bool(batch.success[p])
        assert int(one.num_anchors[0]) == int(batch.num_anchors[p])
        torch.testing.assert_close(one.vertices(0), batch.vertices(p), atol=1e-5, rtol=0)
    assert int(batch.num_anchors[1]) == 0  # a short chord inside the ring needs no anchor


def test_pairs_are_same_class_distinct_eligible_and_seeded():
    pred = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 3])
    eligible = torch.tensor([True, True, True, True, True, False, True, True, True])
    pairs = sample_same_class_pairs(pred, 50, seed=1, eligible=eligible)
    # classes 0 (2 eligible), 1 (2) and 2 (3): 1 + 1 + 3 = 5 distinct pairs exist
    assert len(pairs) == 5
    assert {tuple(sorted(p)) for p in pairs.tolist()} == {(0, 2), (1, 4), (3, 6), (3, 7), (6, 7)}
    assert bool((pred[pairs[:, 0]] == pred[pairs[:, 1]]).all()) and bool((pairs[:, 0] != pairs[:, 1]).all())
    torch.testing.assert_close(sample_same_class_pairs(pred, 3, seed=7), sample_same_class_pairs(pred, 3, seed=7))
    with pytest.raises(ValueError, match="at least two"):
        sample_same_class_pairs(torch.tensor([0, 1, 2]), 2)


def _on_circle(radius: float, degrees: list[float]) -> torch.Tensor:
    a = torch.tensor(degrees) * torch.pi / 180
    return radius * torch.stack([a.cos(), a.sin()], dim=1)


def test_batch_mode_inside_a_convex_region_joins_every_pair_by_the_straight_segment():
    handle = handle_of(BallInsideClass0(torch.zeros(2), 1.0), 2)
    images = _on_circle(0.8, [0, 70, 150, 220, 300])
    res = connectivity_batch(handle, images, num_pairs=10, seed=0, resolution=7)
    assert len(res) == 10  # all 5 * 4 / 2 pairs of the convex ball
    assert res.success_rate == 1.0 and res.straight_rate == 1.0
    assert bool((res.num_anchors == 0).all())


def test_batch_mode_around_a_ring_bends_every_path():
    """Points at radius 1.2 of the ring 1 < r < 3, 90 degrees apart: every chord passes within 1.2 cos(45 deg) < 1 of
    the centre, through the hole, so no straight segment works; the ring is connected, so every pair is joined."""
    handle = handle_of(Ring(1.0, 3.0), 2)
    images = _on_circle(1.2, [0, 90, 180, 270])
    res = connectivity_batch(handle, images, num_pairs=6, seed=0)
    assert len(res) == 6
    assert res.straight_rate == 0.0 and bool((res.num_anchors >= 1).all())
    assert res.success_rate == 1.0, res.reason
    # with no anchors allowed every pair fails with 0 anchors: failures are not "straight segment enough"
    none = connectivity_batch(handle, images, num_pairs=6, seed=0, max_anchors=0)
    assert bool((none.num_anchors == 0).all()) and none.success_rate == 0.0
    assert none.straight_rate == 0.0


def test_batch_mode_on_a_built_in_model():
    handle = geometry.load_model("digits-mlp-relu", device="cpu")
    data = geometry.load_dataset("digits").subset(slice(0, 40))
    res = connectivity_batch(handle, data.images, data.labels, num_pairs=6, seed=3, resolution=7)
    assert len(res) == 6
    pred = handle.predict(data.images)
    for (i, j), c in zip(res.pair_index.tolist(), res.cls.tolist(), strict=True):
        assert int(pred[i]) == int(pred[j]) == c == int(data.labels[i]) == int(data.labels[j])
        assert i != j
    for p in np.flatnonzero(res.success.numpy()):
        assert bool((res.path_class[p] == res.cls[p]).all())
        torch.testing.assert_close(res.strip[p, 0], data.images[res.pair_index[p, 0]])


def test_cached_path_equals_the_direct_one(tmp_path):
    cache = geometry.DiskCache(tmp_path / "c")
    handle = handle_of(Ring(1.0, 3.0), 2)
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.1])
    direct = find_path(handle, a, b, resolution=15)
    first = cached_find_path(handle, a, b, resolution=15, cache=cache)
    second = cached_find_path(handle, a, b, resolution=15, cache=cache)
    assert len(cache) == 1
    for res in (first, second):
        torch.testing.assert_close(res.anchors, direct.anchors, equal_nan=True)
        assert res.reason == direct.reason and res.evaluations == direct.evaluations


def test_bad_inputs_are_rejected_with_clear_messages():
    handle = handle_of(BallInsideClass0(torch.zeros(2), 1.0), 2)
    inside, outside = torch.tensor([0.1, 0.0]), torch.tensor([2.0, 0.0])
    with pytest.raises(ValueError, match="same predicted class"):
        find_path(handle, inside, outside)
    with pytest.raises(ValueError, match="odd resolution"):
        find_path(handle, inside, -inside, resolution=10)
    with pytest.raises(ValueError, match="max_depth"):
        find_path(handle, inside, -inside, max_depth=-1)
    with pytest.raises(ValueError, match="as many ends as starts"):
        find_paths(handle, torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="one label per image"):
        connectivity_batch(handle, torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64))


def test_path_options_are_checked_once_and_both_spellings_share_a_cache_entry(tmp_path):
    from geometry.inspection.options import PathOptions

    with pytest.raises(ValueError, match="odd resolution"):
        PathOptions(resolution=8)
    with pytest.raises(ValueError, match="overshoot"):
        PathOptions(overshoot=10)
    assert PathOptions(overshoot=1) == PathOptions()  # numbers normalised: 1 -> 1.0
    cache = geometry.DiskCache(tmp_path / "c")
    handle = handle_of(Ring(1.0, 3.0), 2)
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.1])
    keyword = cached_find_path.key(handle, a, b, resolution=15)
    assert keyword == cached_find_path.key(handle, a, b, options=PathOptions(resolution=15))
    assert keyword != cached_find_path.key(handle, a, b, resolution=17)
    assert not cached_find_path.is_cached(handle, a, b, resolution=15, cache=cache)
    cached_find_path(handle, a, b, options=PathOptions(resolution=15), cache=cache)
    assert cached_find_path.is_cached(handle, a, b, resolution=15, cache=cache)

"""Exact region maps on feature planes, and regions painted behind embeddings, against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import geometry
from geometry.features.extract import Head, compute_features
from geometry.features.regions import (
    BackMap,
    FeaturePlane,
    exact_region_map,
    fold_assignment,
    paint_regions,
    pca_plane,
    plane_logit_coefficients,
    plane_through_features,
)
from geometry.runtime.cache import DiskCache


@pytest.fixture(scope="module")
def digits():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    fs = compute_features(handle, geometry.load_dataset("digits", "test"))
    return handle, fs


def _whole_plane(d: int = 2) -> FeaturePlane:
    return FeaturePlane(origin=np.zeros(d), basis=np.eye(d)[:2], kind="pca", anchors=np.zeros((0, 2)))


def test_plane_through_three_feature_vectors_holds_them_at_their_anchor_coordinates():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 50))
    plane = plane_through_features(*z)
    np.testing.assert_allclose(plane.basis @ plane.basis.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(plane.points(plane.anchors), z, atol=1e-10)
    np.testing.assert_allclose(plane.coords(z), plane.anchors, atol=1e-10)
    np.testing.assert_allclose(plane.offsets(z), 0, atol=1e-10)
    assert plane.anchors[1, 1] == 0 and plane.anchors[1, 0] == pytest.approx(np.linalg.norm(z[1] - z[0]))
    with pytest.raises(ValueError, match="collinear"):
        plane_through_features(z[0], z[1], 2 * z[1] - z[0])
    with pytest.raises(ValueError, match="distinct"):
        plane_through_features(z[0], z[0], z[1])


def test_known_regions_of_a_three_class_head_on_the_whole_plane():
    # class 0 where z1 > max(z2, 0), class 1 where z2 > max(z1, 0), class 2 where both < 0
    head = Head(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), np.zeros(3))
    rm = exact_region_map(head, _whole_plane(), extent=(-1, 1, -1, 1), resolution=201)
    np.testing.assert_allclose(rm.area_share, [0.375, 0.375, 0.25], atol=1e-12)
    # three boundary rays from the origin: z1 = z2 (z1 > 0), z1 = 0 (z2 < 0), z2 = 0 (z1 < 0)
    assert len(rm.segments) == 3
    pairs = {tuple(p) for p in rm.segment_classes}
    assert pairs == {(0, 1), (0, 2), (1, 2)}
    for seg, (k, j) in zip(rm.segments, rm.segment_classes, strict=True):
        ends = {tuple(np.round(e, 12)) for e in seg}
        expected = {
            (0, 1): {(0.0, 0.0), (1.0, 1.0)},
            (0, 2): {(0.0, 0.0), (0.0, -1.0)},
            (1, 2): {(0.0, 0.0), (-1.0, 0.0)},
        }[(k, j)]
        assert ends == expected
    # the grid labels: a = column (z1), b = row (z2)
    a, b = np.meshgrid(rm.a, rm.b)
    truth = np.where((a > b) & (a > 0), 0, np.where((b > a) & (b > 0), 1, 2))
    clear = rm.margin > 1e-9
    np.testing.assert_array_equal(rm.labels[clear], truth[clear])


def test_region_map_of_a_plane_through_three_samples_predicts_each_samples_own_class(digits):
    handle, fs = digits
    # three samples of different predicted classes
    picks = [int(np.flatnonzero(fs.predictions == c)[0]) for c in (0, 3, 8)]
    z = fs.features[picks]
    rm = exact_region_map(fs.head, plane_through_features(*z), resolution=151)
    np.testing.assert_array_equal(rm.anchor_classes, fs.predictions[picks])
    for (a, b), c in zip(rm.anchors, fs.predictions[picks], strict=True):  # and the grid point nearest each
        i, j = np.abs(rm.b - b).argmin(), np.abs(rm.a - a).argmin()
        assert rm.labels[i, j] == c
    assert set(np.unique(rm.labels)) >= {0, 3, 8}


def test_the_exact_map_equals_the_models_own_head_on_the_plane(digits):
    handle, fs = digits
    z = fs.features[[5, 17, 42]]
    plane = plane_through_features(*z)
    rm = exact_region_map(fs.head, plane, resolution=120)
    a, b = np.meshgrid(rm.a, rm.b)
    points = plane.points(np.stack([a.ravel(), b.ravel()], axis=1))
    with torch.inference_mode():  # the model's own final layer, in float32
        logits = handle.network.head(torch.from_numpy(points).float()).numpy()
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-3
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(rm.labels.ravel()[clear], logits.argmax(axis=1)[clear])


def test_polygons_and_boundaries_are_exact(digits):
    _, fs = digits
    plane = plane_through_features(*fs.features[[1, 2, 3]])
    rm = exact_region_map(fs.head, plane, resolution=300)
    c, p = plane_logit_coefficients(fs.head, plane)
    assert rm.area_share.sum() == pytest.approx(1.0, abs=1e-9)
    grid_share = np.bincount(rm.labels.ravel(), minlength=len(c)) / rm.labels.size
    np.testing.assert_allclose(grid_share, rm.area_share, atol=0.02)  # the grid approximates the exact areas
    for k, poly in enumerate(rm.polygons):
        if len(poly):  # every vertex is in class k's closed region
            lg = c + poly @ p.T
            assert (lg[:, k] >= lg.max(axis=1) - 1e-8 * max(1.0, np.abs(lg).max())).all()
    assert len(rm.segments) > 0
    for seg, (k, j) in zip(rm.segments, rm.segment_classes, strict=True):
        for point in (seg[0], 0.5 * (seg[0] + seg[1]), seg[1]):  # the whole segment is a tie of the top two
            lg = c + p @ point
            assert lg[k] == pytest.approx(lg[j], abs=1e-8 * max(1.0, np.abs(lg).max()))
            assert lg[k] >= np.delete(lg, [k, j]).max() - 1e-8 * max(1.0, np.abs(lg).max())


def test_pca_plane_is_the_top_two_principal_axes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    plane = pca_plane(x)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(plane.basis @ vt[:2].T), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(plane.origin, x.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize("method", ["knn", "rbf"])
def test_back_mapping_features_then_the_head_equals_back_mapping_logits(method):
    rng = np.random.default_rng(2)
    coords, feats = rng.normal(size=(200, 2)), rng.normal(size=(200, 7))
    head = Head(rng.normal(size=(4, 7)), rng.normal(size=4))
    q = rng.normal(size=(50, 2))
    via_features = head.logits(BackMap(method=method, k=12).fit(coords, feats)(q))
    via_logits = BackMap(method=method, k=12).fit(coords, head.logits(feats))(q)
    np.testing.assert_allclose(via_features, via_logits, atol=1e-8)
    const = BackMap(method=method, k=12).fit(coords, np.full((200, 1), 3.5))(q)  # constants are reproduced
    np.testing.assert_allclose(const, 3.5, atol=1e-8)


def _two_class_head() -> Head:
    return Head(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.zeros(2))  # class 0 iff z1 > 0


def test_painting_an_exact_embedding_recovers_the_regions_and_scores_high():
    rng = np.random.default_rng(3)
    z = rng.uniform(-1, 1, size=(1500, 2))
    head = _two_class_head()
    pr = paint_regions(z, z, head, resolution=100)  # the embedding *is* the feature space
    gx, gy = np.meshgrid(pr.x, pr.y)
    truth = np.where(gx > 0, 0, 1)
    away = np.abs(gx) > 0.1
    assert (pr.labels[pr.trusted & away] == truth[pr.trusted & away]).mean() > 0.99
    assert pr.agreement > 0.97 and pr.heldout_agreement > 0.97
    assert pr.trusted_share > 0.8


def test_a_scrambled_embedding_scores_low_and_is_not_trusted():
    rng = np.random.default_rng(4)
    z = rng.uniform(-1, 1, size=(1500, 2))
    coords = z[rng.permutation(len(z))]  # positions unrelated to the features
    pr = paint_regions(coords, z, _two_class_head(), resolution=100)
    assert pr.heldout_agreement < 0.65  # about chance
    assert pr.trusted_share < 0.45  # a clear local majority (>= 70%) is rare by chance


def test_grid_points_far_from_every_sample_are_not_trusted():
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.normal(size=(300, 2)) * 0.2 + [-3, 0], rng.normal(size=(300, 2)) * 0.2 + [3, 0]])
    pr = paint_regions(z, z, _two_class_head(), resolution=121)
    gap = np.abs(pr.x) < 1.0  # between the two clusters
    assert not pr.trusted[:, gap].any()
    assert (pr.distance[:, gap] > pr.radius).all()
    centre = np.abs(pr.x + 3) < 0.1
    mid = np.abs(pr.y) < 0.1
    assert pr.trusted[np.ix_(mid, centre)].all() and (pr.labels[np.ix_(mid, centre)] == 1).all()


def test_painting_is_cached_with_a_fingerprint(tmp_path):
    rng = np.random.default_rng(6)
    z = rng.normal(size=(300, 2))
    cache = DiskCache(tmp_path)
    first = paint_regions(z, z, _two_class_head(), resolution=60, fingerprint="f", cache=cache)
    again = paint_regions(z, z, _two_class_head(), resolution=60, fingerprint="f", cache=cache)
    assert len(cache) == 1 and again.seconds == first.seconds
    np.testing.assert_array_equal(first.labels, again.labels)
    other = paint_regions(z, z, _two_class_head(), resolution=61, fingerprint="f", cache=cache)
    assert other.labels.shape == (61, 61) and len(cache) == 2


def test_bad_inputs_are_refused():
    head = _two_class_head()
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"expected coords of shape \(10, 2\)"):
        paint_regions(np.zeros((9, 2)), z, head)
    with pytest.raises(ValueError, match=r"expected features of shape \(N, 2\)"):
        paint_regions(np.zeros((10, 2)), np.zeros((10, 3)), head)
    with pytest.raises(ValueError, match="resolution"):
        paint_regions(z + np.arange(10)[:, None], z, head, resolution=3)
    with pytest.raises(ValueError, match="expected method 'knn' or 'rbf'"):
        BackMap(method="mlp")
    with pytest.raises(ValueError, match="a plane in the head's 2-d feature space"):
        exact_region_map(head, plane_through_features(*np.eye(3)))
    with pytest.raises(ValueError, match="extent"):
        exact_region_map(head, _whole_plane(), extent=(1, 0, 0, 1))


# -- held out: samples scored by maps painted without them -----------------------------------------------------------


def _three_clusters(seed: int = 0):
    """600 samples in three well-separated Gaussian clusters in 10-d, and the nearest-centre head (200 per class)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 10)) * 4
    z = np.concatenate([c + rng.normal(size=(200, 10)) for c in centres])
    return z, Head(centres, -0.5 * (centres**2).sum(axis=1))


def test_fold_assignment_is_seeded_and_balanced():
    fold = fold_assignment(23, 5, seed=1)
    assert sorted(np.bincount(fold).tolist()) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(fold_assignment(23, 5, seed=1), fold)
    assert not np.array_equal(fold_assignment(23, 5, seed=2), fold)
    with pytest.raises(ValueError, match="folds as an int >= 2"):
        fold_assignment(10, 1, seed=0)


def test_a_scrambled_embedding_agrees_in_sample_but_only_by_chance_held_out():
    """Random 2D positions: the map reproduces the samples it was painted from (in-sample agreement well above
    chance), but at samples it was painted without it is at chance (1/3, the most common class); a PCA embedding of
    the same well-separated clusters agrees held out too."""
    z, head = _three_clusters()
    pca = paint_regions(pca_plane(z).coords(z), z, head, resolution=120)
    assert pca.chance_agreement == pytest.approx(1 / 3)
    assert pca.heldout_agreement > 0.97 and pca.heldout_better_than_chance
    scrambled = paint_regions(np.random.default_rng(1).uniform(-1, 1, size=(len(z), 2)), z, head, resolution=120)
    assert scrambled.agreement > 0.55  # in-sample: looks informative
    assert abs(scrambled.heldout_agreement - 1 / 3) < 0.06  # held out: chance
    assert not scrambled.heldout_better_than_chance
    assert scrambled.folds == 5 and sorted(np.bincount(scrambled.sample_fold).tolist()) == [120] * 5
    # the page's sentence: true for the one, false (not said) for the other
    assert scrambled.reading().startswith("The painted regions predict the model no better than chance")
    assert "no better than chance" not in pca.reading()
    assert pca.reading().startswith(
        f"Held out (each sample scored by a map painted from the other 4 of 5 folds), the "
        f"painted regions agree with the model at {pca.heldout_agreement:.1%} of the 600"
    )


def test_held_out_classes_do_not_depend_on_the_samples_own_features():
    """Changing the features of one fold's samples changes the map painted from them (their in-sample class) but not
    their held-out class: that one comes from the other folds alone."""
    rng = np.random.default_rng(7)
    z = rng.uniform(-1, 1, size=(400, 2))
    head = _two_class_head()
    first = paint_regions(z, z, head, resolution=80, seed=3)
    moved = z.copy()
    in_fold = first.sample_fold == 0
    moved[in_fold, 0] = -moved[in_fold, 0]  # flips their predicted class, keeps their positions
    second = paint_regions(z, moved, head, resolution=80, seed=3)
    np.testing.assert_array_equal(second.sample_fold, first.sample_fold)
    np.testing.assert_array_equal(second.sample_heldout[in_fold], first.sample_heldout[in_fold])
    assert (second.sample_painted[in_fold] != first.sample_painted[in_fold]).mean() > 0.05  # in-sample: it moves
    assert not np.array_equal(second.sample_heldout[~in_fold], first.sample_heldout[~in_fold])


def test_trust_needs_held_out_evidence():
    """In a scrambled embedding, local majorities of the samples' own predictions occur by chance (about a third of
    the grid would be trusted on that evidence alone); the held-out check leaves much less trusted."""
    rng = np.random.default_rng(4)
    z = rng.uniform(-1, 1, size=(1500, 2))
    pr = paint_regions(z[rng.permutation(len(z))], z, _two_class_head(), resolution=100)
    assert pr.trusted_share < 0.25

"""Planes: orthonormal bases, anchors at exact coordinates, analytic DeepFool normals, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import geometry
from geometry.data.dct import dct2
from geometry.runtime.cache import DiskCache
from geometry.slices import boundary_planes as BP
from geometry.slices import planes as P
from tests.geometry.analytic import affine_handle, ball_handle

SHAPE = (1, 4, 4)


def _img(seed: int, shape=SHAPE) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _assert_orthonormal(plane: P.Plane, tol: float = 1e-6) -> None:
    u, v = plane.u.double().flatten(), plane.v.double().flatten()
    assert float(u.norm()) == pytest.approx(1.0, abs=tol)
    assert float(v.norm()) == pytest.approx(1.0, abs=tol)
    assert abs(float(u @ v)) < tol


def test_random_plane_is_orthonormal_seeded_and_through_the_origin():
    x0 = _img(0)
    p = P.random_plane(x0, seed=3)
    _assert_orthonormal(p)
    assert torch.equal(p.origin, x0)
    assert p.anchors == {"x0": (0.0, 0.0)}
    assert p.kind == "random"
    same, other = P.random_plane(x0, seed=3), P.random_plane(x0, seed=4)
    assert torch.equal(p.u, same.u) and torch.equal(p.v, same.v)
    assert p.fingerprint == same.fingerprint != other.fingerprint
    assert not torch.allclose(p.u, other.u)


def test_points_are_origin_plus_a_u_plus_b_v_against_a_float64_reference():
    p = P.random_plane(_img(1), seed=0)
    a = torch.tensor([0.0, 1.5, -2.0, 0.25], dtype=torch.float64)
    b = torch.tensor([0.0, -0.5, 3.0, 0.75], dtype=torch.float64)
    ref = p.origin.double() + a.view(-1, 1, 1, 1) * p.u.double() + b.view(-1, 1, 1, 1) * p.v.double()
    got = p.points(a, b)
    assert got.shape == (4, *SHAPE) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(p.coordinates(got), np.stack([a, b], 1), atol=1e-5)
    np.testing.assert_allclose(p.distance_to_plane(got), 0.0, atol=1e-5)
    torch.testing.assert_close(p.point(1.5, -0.5), got[1])


def test_three_image_plane_holds_all_three_images_at_their_anchor_coordinates():
    x0, x1, x2 = _img(0), _img(1), _img(2)
    p = P.three_image_plane(x0, x1, x2, names=("A", "B", "C"))
    _assert_orthonormal(p)
    assert p.kind == "three images"
    assert set(p.anchors) == {"A", "B", "C"}
    assert p.anchors["A"] == (0.0, 0.0)
    assert p.anchors["B"][1] == 0.0 and p.anchors["B"][0] == pytest.approx(float((x1 - x0).norm()), rel=1e-6)
    for name, img in (("A", x0), ("B", x1), ("C", x2)):
        torch.testing.assert_close(p.point(*p.anchors[name]), img, atol=1e-5, rtol=0)
    np.testing.assert_allclose(p.distance_to_plane(torch.stack([x0, x1, x2])), 0.0, atol=1e-5)
    a0, a1, b0, b1 = p.extent_hint
    for a, b in p.anchors.values():
        assert a0 < a < a1 and b0 <= b < b1
    # the triangle of the three images is inside [0, 1]: its centroid is a valid input
    centroid = p.point(*np.mean(list(p.anchors.values()), axis=0))
    assert float(centroid.min()) >= 0 and float(centroid.max()) <= 1


def test_plane_from_directions_keeps_the_span():
    x0, d1, d2 = _img(0), torch.randn(SHAPE), torch.randn(SHAPE)
    p = P.plane_from_directions(x0, d1, d2, anchors={"tip": (1.0, 2.0)})
    _assert_orthonormal(p)
    torch.testing.assert_close(p.u, d1 / d1.norm(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        p.distance_to_plane(torch.stack([x0 + d1, x0 + d2, x0 + 3 * d1 - 2 * d2])), 0.0, atol=1e-5
    )
    assert p.anchors == {"x0": (0.0, 0.0), "tip": (1.0, 2.0)}


def test_dct_plane_directions_lie_in_their_frequency_bands():
    x0 = _img(0, (3, 8, 8))
    p = P.dct_plane(x0, low=(0, 2), high=(6, 2), seed=1)
    _assert_orthonormal(p)
    cu, cv = dct2(p.u.double()), dct2(p.v.double())
    low = torch.zeros(8, 8, dtype=torch.bool)
    low[:2, :2] = True
    high = torch.zeros(8, 8, dtype=torch.bool)
    high[6:, 6:] = True
    assert float(cu[:, ~low].abs().max()) < 1e-6 and float(cu[:, low].abs().max()) > 0.05
    assert float(cv[:, ~high].abs().max()) < 1e-6 and float(cv[:, high].abs().max()) > 0.05
    # default high band: the block of the same size at the highest frequencies
    q = P.dct_plane(x0, low=(0, 3), seed=1)
    cq = dct2(q.v.double())
    assert float(cq[:, :5, :].abs().max()) < 1e-6


def test_input_space_plane_is_the_identity_on_2d_inputs():
    pts = torch.tensor([[-1.0, 0.5], [2.0, -3.0], [0.0, 1.0]])
    p = P.input_space_plane(pts, pad=0.0, anchors={"p": (2.0, -3.0)})
    assert p.kind == "input space"
    torch.testing.assert_close(p.points(pts[:, 0], pts[:, 1]), pts)
    assert p.extent_hint == (-1.0, 2.0, -3.0, 1.0)
    assert p.anchors == {"p": (2.0, -3.0)}


def test_custom_plane_from_npy_bytes_round_trips():
    x0 = _img(0)
    d = np.random.default_rng(0).normal(size=(2, *SHAPE))
    buf = io.BytesIO()
    np.save(buf, d)
    u, v = P.load_directions(buf.getvalue(), SHAPE)
    p = P.custom_plane(x0, u, v)
    _assert_orthonormal(p)
    torch.testing.assert_close(p.u.double(), torch.from_numpy(d[0] / np.linalg.norm(d[0])), atol=1e-6, rtol=0)
    flat = io.BytesIO()
    np.save(flat, d.reshape(2, -1))
    u2, _ = P.load_directions(flat.getvalue(), SHAPE)
    torch.testing.assert_close(u2, u)


def test_plane_survives_the_disk_cache(tmp_path):
    p = P.three_image_plane(_img(0), _img(1), _img(2))
    cache = DiskCache(tmp_path)
    cache.put("ab" * 32, p)
    q = cache.get("ab" * 32, P.Plane)
    assert isinstance(q, P.Plane)
    assert torch.equal(q.u, p.u) and torch.equal(q.v, p.v) and torch.equal(q.origin, p.origin)
    assert q.anchors == p.anchors and q.extent_hint == p.extent_hint and q.kind == p.kind
    assert q.fingerprint == p.fingerprint


# -- planes from DeepFool, on classifiers whose boundary is known ---------------------------------------------------


def test_normal_plane_of_a_linear_classifier_points_along_the_weight_difference():
    gen = torch.Generator().manual_seed(0)
    w, bias = torch.randn(2, 16, generator=gen), torch.tensor([0.3, -0.2])
    handle = affine_handle(w, bias, SHAPE)
    x0 = _img(5)
    p = BP.normal_plane(handle, x0, seed=2)
    _assert_orthonormal(p)
    j = int(handle.predict(x0.unsqueeze(0)))
    n = (w[1 - j] - w[j]).double()
    n = n / n.norm()
    assert float(p.u.double().flatten() @ n) == pytest.approx(1.0, abs=1e-5)  # u points across the boundary
    f = w.double() @ x0.double().flatten() + bias.double()
    dist = float((f[j] - f[1 - j]) / (w[1 - j] - w[j]).double().norm())  # exact distance to the hyperplane
    ((name, (a, b)),) = [(k, c) for k, c in p.anchors.items() if k != "x0"]
    assert name.startswith("DeepFool point")
    assert a == pytest.approx(dist, rel=1e-3) and abs(b) < 1e-5
    assert p.extent_hint == pytest.approx((-2 * a, 2 * a, -2 * a, 2 * a), rel=1e-6)
    # the random tangent depends on the seed only
    assert torch.equal(p.v, BP.normal_plane(handle, x0, seed=2).v)


def test_two_class_plane_anchors_lie_on_the_two_boundaries():
    gen = torch.Generator().manual_seed(1)
    w, bias = torch.randn(3, 16, generator=gen), torch.zeros(3)
    handle = affine_handle(w, bias, SHAPE)
    x0 = _img(7)
    j = int(handle.predict(x0.unsqueeze(0)))
    a_cls, b_cls = [k for k in range(3) if k != j]
    p = BP.two_class_plane(handle, x0, a_cls, b_cls)
    _assert_orthonormal(p)
    for cls in (a_cls, b_cls):
        coords = p.anchors[f"DeepFool → {handle.class_names[cls]}"]
        logits = handle.logits(p.point(*coords).unsqueeze(0))[0].double()
        assert float(logits[cls] - logits[j]) == pytest.approx(0.0, abs=1e-3)  # on the boundary j | cls
    wa = (w[a_cls] - w[j]).double()
    assert float(p.u.double().flatten() @ (wa / wa.norm())) == pytest.approx(1.0, abs=1e-5)


def test_curvature_plane_of_a_ball_is_radial_and_tangent():
    c = torch.full((1, 3, 3), 0.5)
    handle = ball_handle(c, 0.4)
    x0 = c.clone()
    x0[0, 0, 0] += 0.1
    p = BP.curvature_plane(handle, x0)
    _assert_orthonormal(p, tol=1e-4)
    radial = (x0 - c).double().flatten()
    assert abs(float(p.u.double().flatten() @ radial / radial.norm())) == pytest.approx(1.0, abs=1e-3)
    kappa = float(p.description.split("kappa = ")[1].split()[0])
    assert kappa == pytest.approx(1 / 0.4, rel=0.02)  # a ball of radius R curves by 1/R in every direction
    ((name, (a, b)),) = [(k, ab) for k, ab in p.anchors.items() if k != "x0"]
    assert np.hypot(a, b) == pytest.approx(0.4 - 0.1, abs=1e-3)  # the boundary point is R - |x0 - c| away


# -- bad input ------------------------------------------------------------------------------------------------------


def test_plane_rejects_a_non_orthonormal_pair():
    x0 = _img(0)
    with pytest.raises(ValueError, match="orthonormal"):
        P.Plane(x0, torch.ones(SHAPE), torch.zeros(SHAPE), "custom")


def test_plane_rejects_mismatched_shapes():
    p = P.random_plane(_img(0))
    with pytest.raises(ValueError, match=r"expected shape \(1, 4, 4\)"):
        P.Plane(p.origin, p.u, p.v.flatten(), "custom")


def test_plane_rejects_an_unknown_kind():
    p = P.random_plane(_img(0))
    with pytest.raises(ValueError, match="kind"):
        P.Plane(p.origin, p.u, p.v, "spiral")


def test_plane_rejects_non_finite_values():
    p = P.random_plane(_img(0))
    bad = p.origin.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        P.Plane(bad, p.u, p.v, "random")


def test_plane_rejects_bad_anchors():
    p = P.random_plane(_img(0))
    with pytest.raises(ValueError, match="pair of numbers"):
        P.Plane(p.origin, p.u, p.v, "random", {"x0": (0.0,)})


def test_plane_rejects_a_bad_extent_hint():
    p = P.random_plane(_img(0))
    with pytest.raises(ValueError, match="a_min < a_max"):
        P.Plane(p.origin, p.u, p.v, "random", {}, (1.0, -1.0, 0.0, 1.0))


def test_origin_must_be_a_tensor():
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        P.random_plane([0.1, 0.2])


def test_seed_must_be_an_int():
    with pytest.raises(TypeError, match="seed"):
        P.random_plane(_img(0), seed=1.5)


def test_three_collinear_images_are_rejected():
    x0, x1 = _img(0), _img(1)
    with pytest.raises(ValueError, match="collinear"):
        P.three_image_plane(x0, x1, x0 + 2 * (x1 - x0))


def test_three_images_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match="expected an input of shape"):
        P.three_image_plane(_img(0), _img(1), torch.rand(1, 5, 5))


def test_parallel_directions_are_rejected():
    d = torch.randn(SHAPE)
    with pytest.raises(ValueError, match="linearly independent"):
        P.plane_from_directions(_img(0), d, -3 * d)


def test_zero_direction_is_rejected():
    with pytest.raises(ValueError, match="non-zero"):
        P.orthonormal_pair(torch.zeros(4), torch.ones(4))


def test_npy_of_the_wrong_shape_is_rejected():
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, *SHAPE)))
    with pytest.raises(ValueError, match=r"expected an array of shape \(2, 1, 4, 4\)"):
        P.load_directions(buf.getvalue(), SHAPE)


def test_npy_with_pickled_objects_is_rejected():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="could not read"):
        P.load_directions(buf.getvalue(), SHAPE)


def test_dct_plane_needs_an_image():
    with pytest.raises(ValueError, match=r"expected an image \(C, H, W\)"):
        P.dct_plane(torch.rand(16))


def test_normal_plane_rejects_a_bad_target():
    handle = affine_handle(torch.randn(2, 16), torch.zeros(2), SHAPE)
    with pytest.raises(ValueError, match=r"class index in \[0, 2\)"):
        BP.normal_plane(handle, _img(0), target=5)


def test_two_class_plane_rejects_the_same_class_twice():
    handle = affine_handle(torch.randn(3, 16), torch.zeros(3), SHAPE)
    with pytest.raises(ValueError, match="two different classes"):
        BP.two_class_plane(handle, _img(0), 1, 1)


def test_normal_plane_rejects_an_image_of_the_wrong_shape():
    handle = affine_handle(torch.randn(2, 16), torch.zeros(2), SHAPE)
    with pytest.raises(ValueError, match=r"expected an input of shape \(1, 4, 4\)"):
        BP.normal_plane(handle, torch.rand(1, 8, 8))


def test_planes_are_exported():
    assert geometry.Plane is P.Plane and geometry.three_image_plane is P.three_image_plane


def test_curvature_plane_rejects_an_unknown_which():
    handle = ball_handle(torch.full((1, 3, 3), 0.5), 0.4)
    with pytest.raises(ValueError, match="which: expected 'positive' or 'negative', got 'largest'"):
        BP.curvature_plane(handle, torch.full((1, 3, 3), 0.6), which="largest")


@pytest.mark.parametrize("names", ["abc", ("a", "a", "b"), ("a", "b"), ("a", "", "c"), ("a", 2, "c")])
def test_three_image_plane_rejects_bad_names(names):
    with pytest.raises(ValueError, match="names: expected three distinct non-empty strings"):
        P.three_image_plane(_img(0), _img(1), _img(2), names=names)


@pytest.mark.parametrize("margin", [-0.1, 11, float("nan"), True, "wide"])
def test_three_image_plane_rejects_a_bad_margin(margin):
    with pytest.raises(ValueError, match=r"margin: expected a number in \[0, 10\]"):
        P.three_image_plane(_img(0), _img(1), _img(2), margin=margin)


@pytest.mark.parametrize(
    ("points", "match"),
    [
        (np.zeros((4, 3)), r"points: expected a \(N, 2\) array of 2D inputs, got shape \(4, 3\)"),
        (np.zeros((0, 2)), r"points: expected a \(N, 2\) array of 2D inputs, got shape \(0, 2\)"),
        (np.array([[0.0, 1.0], [np.nan, 2.0]]), "points: expected finite values"),
        ("data", "points: expected a"),
    ],
)
def test_input_space_plane_rejects_bad_points(points, match):
    with pytest.raises(ValueError, match=match):
        P.input_space_plane(points)


def test_input_space_plane_rejects_a_negative_pad():
    with pytest.raises(ValueError, match="pad: expected a finite number >= 0, got -0.5"):
        P.input_space_plane(np.zeros((3, 2)), pad=-0.5)


@pytest.mark.parametrize("low", ["ab", (0,), (0, 0), (-1, 2), (6, 3), (0.0, 2), (0, True), None])
def test_dct_plane_rejects_a_bad_low_band(low):
    with pytest.raises(ValueError, match=r"expected low as a pair of ints \(start, size\) .* start \+ size <= 8"):
        P.dct_plane(_img(0, (3, 8, 8)), low=low)


@pytest.mark.parametrize("high", ["ab", (7, 2), (0, 0)])
def test_dct_plane_rejects_a_bad_high_band(high):
    with pytest.raises(ValueError, match=r"expected high as a pair of ints \(start, size\)"):
        P.dct_plane(_img(0, (3, 8, 8)), high=high)


def test_npy_with_nan_directions_is_rejected():
    d = np.ones((2, *SHAPE))
    d[1, 0, 2, 3] = np.nan
    buf = io.BytesIO()
    np.save(buf, d)
    with pytest.raises(ValueError, match="expected finite directions, got NaN or infinity"):
        P.load_directions(buf.getvalue(), SHAPE)


def test_an_npz_file_is_rejected_as_directions():
    buf = io.BytesIO()
    np.savez(buf, u=np.ones(SHAPE), v=np.zeros(SHAPE))
    with pytest.raises(
        ValueError, match=r"expected a single \.npy array .* got an \.npz archive \(arrays \['u', 'v'\]\)"
    ):
        P.load_directions(buf.getvalue(), SHAPE)

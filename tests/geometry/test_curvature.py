"""Boundary curvature against closed forms (ball, cylinder, quadratic form, hyperplane) and a dense reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geometry.boundary.curvature import (
    CurvatureResult,
    boundary_curvature,
    curvature_profiles,
    curvature_vulnerability,
    principal_directions,
)
from geometry.boundary.deepfool import deepfool, subspace_deepfool
from geometry.boundary.hessian import smooth_handle
from geometry.figures.curvature import (
    NEGATIVE,
    POSITIVE,
    curvature_histogram,
    profile_figure,
    signed_image,
    spectrum_figure,
    vulnerability_figure,
)
from geometry.runtime.cache import DiskCache
from tests.geometry.analytic import (
    Affine,
    BallInsideClass0,
    BallInsideClass1,
    Cylinder,
    dense_logit_difference_hessian,
    handle_of,
    quadratic_with_spectrum,
)


def inside_points(center: torch.Tensor, radius: float, n: int, seed: int, fraction: float = 0.6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(n, len(center), generator=gen), dim=1)
    return center + fraction * radius * d


@pytest.fixture(scope="module")
def silu_curvature(silu, digits):
    return boundary_curvature(silu, digits.images[:2], k=4, num_random=32)


def test_ball_has_curvature_one_over_r_in_every_direction():
    center, radius = torch.full((6,), 0.5), 0.4
    handle = handle_of(BallInsideClass0(center, radius), 6)
    x = inside_points(center, radius, 3, seed=0)
    res = boundary_curvature(handle, x, k=2, num_random=16)
    assert res.method == "exact" and res.curvatures.shape == (3, 4)
    torch.testing.assert_close(res.curvatures, torch.full((3, 4), 1 / radius, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(res.random_curvatures, torch.full((3, 16), 1 / radius), atol=1e-4, rtol=0)
    assert res.converged.all()
    # z on the sphere, n radial and outwards (out of x's region), directions tangent
    torch.testing.assert_close((res.boundary_point - center).norm(dim=1), torch.full((3,), radius), atol=1e-5, rtol=0)
    radial = torch.nn.functional.normalize(res.boundary_point - center, dim=1)
    torch.testing.assert_close(res.normal, radial, atol=1e-5, rtol=0)
    assert (res.directions @ res.normal[:, :, None]).abs().max() < 1e-5


def test_outside_of_a_ball_is_concave_negative_curvature():
    center, radius = torch.zeros(5), 0.5
    handle = handle_of(BallInsideClass1(center, radius), 5)
    x = inside_points(center, radius, 2, seed=1, fraction=1.5)  # outside: x's region is the complement of the ball
    res = boundary_curvature(handle, x, k=2, num_random=8)
    torch.testing.assert_close(res.curvatures, torch.full((2, 4), -1 / radius, dtype=torch.float64), atol=1e-4, rtol=0)


def test_cylinder_has_one_curved_direction_and_the_rest_flat():
    center, radius = torch.zeros(6), 0.25
    handle = handle_of(Cylinder(center, radius), 6)
    gen = torch.Generator().manual_seed(2)
    x = 0.1 * torch.randn(2, 6, generator=gen)
    res = boundary_curvature(handle, x, k=3, num_random=2000)
    expected = torch.tensor([1 / radius, 0, 0, 0, 0], dtype=torch.float64)  # m = min(2k, D - 1) = 5: all of them
    torch.testing.assert_close(res.curvatures, expected.expand(2, 5), atol=1e-4, rtol=0)
    # the curved direction lies in the cross-section's plane (the first two coordinates)
    top = res.directions[:, 0]
    torch.testing.assert_close(top[:, :2].norm(dim=1), torch.ones(2), atol=1e-4, rtol=0)
    # Random unit tangent directions v are uniform on the unit sphere of the (D - 1 = 5)-dimensional tangent space,
    # and kappa(v) = cos^2(v, u_1) / R with u_1 the curved direction. cos^2 of a uniform direction in 5 dimensions
    # with a fixed axis is Beta(1/2, 2): mean 1/5, variance (1/2 * 2) / (5/2)^2 / (7/2) = 8/175. So kappa lies in
    # [0, 1/R] with mean 1/(5R) = 0.8 and standard deviation sqrt(8/175)/R = 0.855.
    kappa = res.random_curvatures.double().flatten()
    assert len(kappa) == 4000
    assert kappa.min() >= -1e-4 and kappa.max() <= 1 / radius + 1e-4
    mean, sd = 1 / (5 * radius), math.sqrt(8 / 175) / radius
    assert abs(float(kappa.mean()) - mean) < 4 * sd / math.sqrt(len(kappa))  # 4 standard errors: 0.054
    assert abs(float(kappa.std()) - sd) < 0.05 * sd
    # and the whole distribution: Kolmogorov-Smirnov against Beta(1/2, 2) (a normal component left in v, for one,
    # would give Beta(1/2, 5/2) and fail this by far)
    from scipy import stats

    assert stats.kstest((radius * kappa).clamp(0, 1).numpy(), "beta", args=(0.5, 2.0)).pvalue > 1e-3
    assert stats.kstest((radius * kappa).clamp(0, 1).numpy(), "beta", args=(0.5, 2.5)).pvalue < 1e-6


def test_quadratic_form_curvatures_are_its_eigenvalues_over_the_gradient_norm():
    eigenvalues = [3.0, 1.5, 0.7, 0.2, 0.0, -0.4, -1.1, -2.6]
    module, a, tangent = quadratic_with_spectrum(eigenvalues, grad_norm=2.0, seed=3)
    handle = handle_of(module, 9)
    x = -0.3 * a / a.norm()  # F(x) = -0.3 ||a|| < 0; DeepFool lands on z = 0 in one step
    res = boundary_curvature(handle, x[None], k=3, num_random=0)
    assert res.random_curvatures.shape == (1, 0)
    torch.testing.assert_close(res.boundary_point[0], torch.zeros(9), atol=1e-5, rtol=0)
    expected = torch.tensor([3.0, 1.5, 0.7, -0.4, -1.1, -2.6], dtype=torch.float64) / 2.0
    torch.testing.assert_close(res.curvatures[0], expected, atol=1e-5, rtol=0)
    # the principal directions are the eigenvectors of the form (up to sign)
    cos = (res.directions[0] @ tangent).abs()
    for col, row in zip([0, 1, 2, 5, 6, 7], range(6), strict=True):
        assert float(cos[row, col]) == pytest.approx(1.0, abs=1e-4)


def test_hyperplane_is_flat():
    gen = torch.Generator().manual_seed(4)
    handle = handle_of(Affine(torch.randn(3, 7, generator=gen), torch.randn(3, generator=gen)), 7)
    res = boundary_curvature(handle, torch.randn(2, 7, generator=gen), k=2, num_random=8)
    assert torch.equal(res.curvatures, torch.zeros(2, 4, dtype=torch.float64))
    assert torch.equal(res.random_curvatures, torch.zeros(2, 8)) and res.converged.all()


def test_a_2d_toy_boundary_is_a_curve_with_one_curvature():
    center, radius = torch.tensor([0.2, -0.1]), 0.8
    handle = handle_of(BallInsideClass0(center, radius), 2)
    res = boundary_curvature(handle, torch.tensor([[0.3, 0.2]]), k=5, num_random=4)
    assert res.curvatures.shape == (1, 1)
    assert float(res.curvatures[0, 0]) == pytest.approx(1 / radius, abs=1e-4)


def test_lanczos_matches_the_dense_hessian_of_the_builtin_smooth_cnn(silu, digits, silu_curvature):
    res = silu_curvature
    for i in range(2):
        z = res.boundary_point[i]
        grad, hess = dense_logit_difference_hessian(
            silu.module, z, int(res.original_label[i]), int(res.boundary_class[i])
        )
        n = grad / grad.norm()
        full, _ = torch.linalg.qr(torch.cat([n[:, None], torch.eye(64, dtype=torch.float64)[:, :63]], dim=1))
        tangent = full[:, 1:]  # an orthonormal basis of the tangent space
        ref = torch.linalg.eigvalsh(tangent.T @ hess @ tangent / grad.norm()).flip(0)
        scale = float(ref.abs().max())
        torch.testing.assert_close(res.curvatures[i], torch.cat([ref[:4], ref[-4:]]), atol=1e-4 * scale, rtol=0)
        torch.testing.assert_close(res.normal[i].reshape(64).double(), n, atol=1e-4, rtol=0)
        torch.testing.assert_close(res.grad_norm[i].double(), grad.norm(), atol=1e-3, rtol=1e-4)
    assert res.converged.all()
    assert res.hessian_products == res.lanczos_iterations + 32
    # curved in a few directions, flat in most: random directions are much less curved than the extremes
    spread = res.curvatures[:, 0] - res.curvatures[:, -1]
    assert (res.random_curvatures.std(dim=1).double() < 0.5 * spread).all()


def test_finite_differences_agree_with_exact_on_a_smooth_model(silu, digits, silu_curvature):
    fd = boundary_curvature(silu, digits.images[:2], k=4, num_random=32, method="finite-difference", h=1e-2)
    assert fd.method == "finite-difference" and fd.h == pytest.approx(1e-2)
    assert fd.lanczos_iterations == 63 and (fd.asymmetry < 0.05).all()  # assembled on the tangent basis, ~symmetric
    scale = float(silu_curvature.curvatures.abs().max())
    torch.testing.assert_close(fd.curvatures, silu_curvature.curvatures, atol=2e-2 * scale, rtol=0)
    # above dense_limit: Lanczos on the difference quotients, which converges for a smooth model
    krylov = boundary_curvature(
        silu, digits.images[:2], k=4, num_random=0, method="finite-difference", h=1e-2, dense_limit=0
    )
    assert krylov.lanczos_iterations < 63 and krylov.converged.all() and torch.isnan(krylov.asymmetry).all()
    torch.testing.assert_close(krylov.curvatures, silu_curvature.curvatures, atol=2e-2 * scale, rtol=0)


def test_relu_model_defaults_to_softplus_and_finite_differences_see_the_kinks(relu, digits):
    x = digits.images[:1]
    auto = boundary_curvature(relu, x, k=3, num_random=8)
    assert auto.method == "softplus" and "piecewise linear" in auto.method_reason
    assert float(auto.curvatures.abs().max()) > 0 and auto.converged.all()
    auto = boundary_curvature(relu, x, k=3, num_random=8, method="finite-difference")
    assert auto.h == pytest.approx(0.01) and float(auto.curvatures.abs().max()) > 0
    # the difference quotients of a ReLU network are far from a symmetric linear map: assembled, then symmetrised
    assert auto.converged.all() and float(auto.asymmetry[0]) > 0.05
    exact = boundary_curvature(relu, x, k=3, num_random=8, method="exact")
    assert torch.equal(exact.curvatures, torch.zeros_like(exact.curvatures))
    assert "zero almost everywhere" in exact.method_reason
    state = {key: t.clone() for key, t in relu.module.state_dict().items()}
    soft = boundary_curvature(relu, x, k=3, num_random=8, method="softplus", beta=10.0)
    assert soft.method == "softplus" and soft.beta == 10.0
    assert float(soft.curvatures.abs().max()) > 0 and soft.converged.all()
    assert float(soft.smoothing_shift[0]) < 0.5 * float(soft.boundary_distance[0])
    assert any(isinstance(m, torch.nn.ReLU) for m in relu.module.modules())  # the caller's model is untouched
    assert all(torch.equal(t, state[key]) for key, t in relu.module.state_dict().items())


def test_softplus_reports_the_distance_to_the_boundary_point_it_measured_at(relu, digits):
    x = digits.images[:3]
    soft = boundary_curvature(relu, x, k=2, num_random=0, method="softplus")
    df = deepfool(relu, x)
    assert (soft.smoothing_shift > 1e-3).all()  # z was moved onto the smoothed boundary: the two distances differ
    z = soft.boundary_point.flatten(1)
    torch.testing.assert_close(soft.boundary_distance, (z - x.flatten(1)).norm(dim=1), atol=1e-6, rtol=1e-6)
    assert ((soft.boundary_distance - df.boundary_distance).abs() > 1e-3).all()
    # z is on the smoothed copy's boundary {F = 0}
    smooth = smooth_handle(relu, beta=soft.beta)
    logits = smooth.logits(soft.boundary_point)
    rows = torch.arange(3)
    gap = logits[rows, soft.boundary_class] - logits[rows, soft.original_label]
    assert gap.abs().max() < 1e-4
    # for the exact method z is DeepFool's own point, so the distance is DeepFool's
    exact = boundary_curvature(relu, x, k=2, num_random=0, method="exact")
    torch.testing.assert_close(exact.boundary_distance, df.boundary_distance, atol=1e-6, rtol=1e-6)


def test_profiles_default_to_the_model_the_curvature_was_measured_on(relu, digits):
    x = digits.images[:1]
    soft = boundary_curvature(relu, x, k=2, num_random=0)
    assert soft.method == "softplus" and float(soft.smoothing_shift[0]) > 1e-3
    default = curvature_profiles(relu, soft, resolution=11, samples=16)
    smoothed = curvature_profiles(relu, soft, resolution=11, samples=16, model=smooth_handle(relu, beta=soft.beta))
    torch.testing.assert_close(default.boundary, smoothed.boundary, atol=0, rtol=0, equal_nan=True)
    torch.testing.assert_close(default.logit_difference, smoothed.logit_difference, atol=0, rtol=0)
    # z is on the smoothed boundary, so the drawn boundary passes through z (s = 0 at t = 0) and F(z) = 0 there;
    # the ReLU network's own boundary crosses the normal elsewhere (DeepFool's z, smoothing_shift away)
    assert default.boundary[:, 5].abs().max() < 1e-4 and default.logit_difference[:, 5].abs().max() < 1e-4
    relu_boundary = curvature_profiles(relu, soft, resolution=11, samples=16, model=relu).boundary[:, 5]
    torch.testing.assert_close(relu_boundary.abs(), soft.smoothing_shift[0].double().expand(2), atol=0, rtol=0.05)


def test_callers_model_and_tensors_are_left_alone_by_boundary_curvature():
    # batch norm + dropout; the owner keeps the network in train mode (one submodule in eval mode, one parameter
    # frozen) and passes a leaf tensor with a gradient: curvature runs on the eval-mode network and leaves it all so
    for activation, method in (
        (torch.nn.SiLU, "exact"),
        (torch.nn.ReLU, "softplus"),
        (torch.nn.ReLU, "finite-difference"),
    ):
        torch.manual_seed(8)
        net = torch.nn.Sequential(
            torch.nn.Linear(6, 16),
            torch.nn.BatchNorm1d(16),
            activation(),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(16, 3),
        )
        handle = handle_of(net, 6)
        with torch.no_grad():
            net[1].running_mean.uniform_(-0.5, 0.5)
            net[1].running_var.uniform_(0.5, 2.0)
        handle.module.train()
        net[3].eval()
        net[4].bias.requires_grad_(False)
        modes = [m.training for m in handle.module.modules()]
        needs_grad = [p.requires_grad for p in handle.module.parameters()]
        state = {key: t.clone() for key, t in handle.module.state_dict().items()}
        x = torch.randn(3, 6, generator=torch.Generator().manual_seed(9)).requires_grad_(True)
        x.grad = torch.full_like(x, 2.0)
        values = x.detach().clone()
        res = boundary_curvature(handle, x, k=2, num_random=8, method=method)
        prof = curvature_profiles(
            handle, res, image=int(torch.nonzero(res.deepfool_converged)[0]), resolution=5, samples=8
        )
        assert res.method == method and res.deepfool_converged.any()
        assert torch.equal(x.detach(), values) and x.requires_grad and torch.equal(x.grad, torch.full_like(x, 2.0))
        assert [m.training for m in handle.module.modules()] == modes
        assert [p.requires_grad for p in handle.module.parameters()] == needs_grad
        assert all(p.grad is None for p in handle.module.parameters())
        assert all(torch.equal(t, state[key]) for key, t in handle.module.state_dict().items())
        assert all(not m._forward_hooks and not m._backward_hooks for m in handle.module.modules())
        handle.module.eval()  # the same numbers as on the eval-mode network
        again = boundary_curvature(handle, values, k=2, num_random=8, method=method)
        torch.testing.assert_close(res.curvatures, again.curvatures, atol=0, rtol=0, equal_nan=True)
        torch.testing.assert_close(res.random_curvatures, again.random_curvatures, atol=0, rtol=0, equal_nan=True)
        again_prof = curvature_profiles(handle, again, image=prof.image, resolution=5, samples=8)
        torch.testing.assert_close(prof.boundary, again_prof.boundary, atol=0, rtol=0, equal_nan=True)


def test_principal_directions_for_the_slices_plane(silu, digits, silu_curvature):
    pd = principal_directions(silu, digits.images[:2], k=2)
    assert pd.directions.shape == (2, 4, 1, 8, 8) and pd.curvatures.shape == (2, 4)
    torch.testing.assert_close(pd.curvatures[:, :2], silu_curvature.curvatures[:, :2], atol=1e-3, rtol=1e-3)
    flat = pd.directions.reshape(2, 4, 64)
    torch.testing.assert_close(flat @ flat.transpose(1, 2), torch.eye(4).expand(2, 4, 4), atol=1e-4, rtol=0)
    assert (flat @ pd.normal.reshape(2, 64, 1)).abs().max() < 1e-4


def test_profile_of_a_ball_is_a_circle_with_its_osculating_parabola():
    center, radius = torch.zeros(4), 0.5
    handle = handle_of(BallInsideClass0(center, radius), 4)
    res = boundary_curvature(handle, torch.tensor([[0.1, 0.0, 0.05, 0.0]]), k=2, num_random=0)
    prof = curvature_profiles(handle, res, extent=0.3, resolution=31, samples=32)
    assert prof.boundary.shape == (2, 31) and prof.direction_index.tolist() == [0, 2]
    circle = torch.sqrt(radius**2 - prof.t**2) - radius  # the sphere seen from z, along n: bends towards x
    torch.testing.assert_close(prof.boundary, circle.expand(2, 31), atol=1e-5, rtol=0)
    torch.testing.assert_close(prof.parabola, (-(prof.t**2) / (2 * radius)).expand(2, 31), atol=1e-6, rtol=0)
    near = prof.t.abs() < 0.05
    assert (prof.boundary[:, near] - prof.parabola[:, near]).abs().max() < 1e-4  # osculating: agrees to O(t^4)
    torch.testing.assert_close(prof.logit_difference, prof.logit_quadratic, atol=2e-2, rtol=0)


def test_profile_of_the_smooth_cnn_osculates(silu, silu_curvature):
    prof = curvature_profiles(silu, silu_curvature, image=0, resolution=21, samples=24)
    assert torch.isfinite(prof.boundary[:, 10]).all()
    assert prof.boundary[:, 10].abs().max() < 1e-4  # z is on the boundary
    t = prof.t
    small = (t.abs() > 0) & (t.abs() <= 0.25 * prof.window)
    # near z, the boundary follows -kappa t^2 / 2 to second order: relative error shrinks with t
    err = (prof.boundary[:, small] - prof.parabola[:, small]).abs()
    assert (err <= 0.5 * prof.parabola[:, small].abs() + 1e-3).all()


def test_vulnerability_uses_the_most_curved_directions(silu, digits, silu_curvature):
    x = digits.images[:2]
    for order in ("absolute", "positive"):
        vul = curvature_vulnerability(silu, x, silu_curvature, dims=(1, 3), num_random=1, max_iter=30, order=order)
        key = silu_curvature.curvatures.abs() if order == "absolute" else silu_curvature.curvatures
        ranks = key.argsort(dim=1, descending=True)
        for a, m in enumerate((1, 3)):
            chosen = torch.stack([silu_curvature.directions[i, ranks[i, :m]] for i in range(2)])
            alone = subspace_deepfool(silu, x, chosen.reshape(2, m, 64).transpose(1, 2), max_iter=30)
            torch.testing.assert_close(vul.curved_norm[:, a], alone.norm, atol=1e-4, rtol=1e-4)
            assert torch.equal(vul.curved_converged[:, a], alone.converged)
        assert vul.order == order and vul.dims.tolist() == [1, 3]
    torch.testing.assert_close(vul.full_norm, silu_curvature.deepfool_norm)


def test_vulnerability_on_the_smooth_cnn_curved_beats_random(silu, digits):
    # Fawzi et al.: DeepFool in the span of the few most curved directions finds far smaller perturbations than in
    # random subspaces of the same dimension (a statistical finding: compare medians over images)
    x = digits.images[:8]
    res = boundary_curvature(silu, x, k=2, num_random=0)
    vul = curvature_vulnerability(silu, x, res, dims=(1, 2), num_random=2, max_iter=60)
    curved = torch.where(vul.curved_converged, vul.curved_norm, torch.inf).median(dim=0).values
    random = torch.where(vul.random_converged, vul.random_norm, torch.inf).transpose(0, 1).reshape(2, -1)
    assert (curved < 0.8 * random.median(dim=1).values).all()
    assert (curved > vul.full_norm.median()).all()  # restricted to m dimensions is never better than all of them


def test_result_round_trips_through_the_cache(tmp_path, silu_curvature):
    cache = DiskCache(tmp_path)
    cache.put("cd" * 16, silu_curvature)
    back = cache.get("cd" * 16, CurvatureResult)
    assert isinstance(back, CurvatureResult) and back.method == silu_curvature.method
    torch.testing.assert_close(back.curvatures, silu_curvature.curvatures)
    assert math.isnan(back.beta) and back.k == 4


def test_images_where_deepfool_fails_get_nan_rows(silu, digits):
    x = digits.images[[0, 8]]  # image 8 needs 2 DeepFool steps
    df = deepfool(silu, x, max_iter=1)
    assert df.converged.tolist() == [True, False]
    res = boundary_curvature(silu, x, k=2, num_random=4, deepfool_result=df)
    failed = ~df.converged
    assert torch.isnan(res.curvatures[failed]).all() and torch.isfinite(res.curvatures[~failed]).all()


def test_same_seed_same_result(silu, digits):
    a = boundary_curvature(silu, digits.images[5:6], k=2, num_random=8, seed=7)
    b = boundary_curvature(silu, digits.images[5:6], k=2, num_random=8, seed=7)
    assert torch.equal(a.curvatures, b.curvatures) and torch.equal(a.random_curvatures, b.random_curvatures)


# -- bad inputs ---------------------------------------------------------------------------------


def test_bad_k(silu, digits):
    with pytest.raises(ValueError, match="expected k as an int >= 1, got 0"):
        boundary_curvature(silu, digits.images[:1], k=0)


def test_bad_method(silu, digits):
    with pytest.raises(ValueError, match="expected method to be one of auto, exact, finite-difference, softplus"):
        boundary_curvature(silu, digits.images[:1], method="hutchinson")


def test_bad_step(silu, digits):
    with pytest.raises(ValueError, match="expected h as a positive number, got -1"):
        boundary_curvature(silu, digits.images[:1], h=-1)


def test_bad_shape(silu):
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 1, 8, 8\)"):
        boundary_curvature(silu, torch.zeros(1, 3, 8, 8))


def test_profile_image_out_of_range(silu, silu_curvature):
    with pytest.raises(ValueError, match=r"expected image as an index in \[0, 2\), got 5"):
        curvature_profiles(silu, silu_curvature, image=5)


def test_vulnerability_dims_beyond_the_computed_directions(silu, digits, silu_curvature):
    with pytest.raises(ValueError, match=r"expected subspace dimensions in \[1, 4\]"):
        curvature_vulnerability(silu, digits.images[:2], silu_curvature, dims=(1, 20))


# -- figures ------------------------------------------------------------------------------------


def test_signed_image_is_a_diverging_map():
    img = torch.tensor([[[1.0, -1.0], [0.0, 0.5]]])
    rgb = signed_image(img, min_size=4)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[0, 2].tolist() == [0, 0, 255]  # + red, - blue
    assert rgb[2, 0].tolist() == [255, 255, 255]  # 0 white
    colour = signed_image(torch.zeros(3, 2, 2), min_size=2)
    assert (colour == 128).all()  # RGB: zero is mid-grey
    with pytest.raises(ValueError, match=r"expected an image of shape \(1 or 3, H, W\), got \(2, 2\)"):
        signed_image(torch.zeros(2, 2))


def test_spectrum_and_histogram_figures_show_the_result(silu_curvature):
    fig = spectrum_figure(silu_curvature, 1)
    bars = fig.data[0]
    np.testing.assert_allclose(np.asarray(bars.y), silu_curvature.curvatures[1].numpy())
    colours = [POSITIVE if v > 0 else NEGATIVE for v in silu_curvature.curvatures[1].tolist()]
    assert list(bars.marker.color) == colours
    assert any("not computed" in (a.text or "") for a in fig.layout.annotations)  # 8 of 63: a gap in between
    hist = curvature_histogram(silu_curvature, 0)
    np.testing.assert_allclose(np.asarray(hist.data[0].x), silu_curvature.random_curvatures[0].numpy())


def test_profile_and_vulnerability_figures(silu, digits, silu_curvature):
    prof = curvature_profiles(silu, silu_curvature, image=0, resolution=11, samples=8)
    fig = profile_figure(prof, 0, class_names=silu.class_names, x_offset=-0.1, title="u1")
    boundary = next(t for t in fig.data if t.name == "boundary F = 0")
    np.testing.assert_allclose(np.asarray(boundary.y, dtype=float), prof.boundary[0].numpy(), equal_nan=True)
    assert any(t.name == "x (projected)" for t in fig.data)
    vul = curvature_vulnerability(silu, digits.images[:2], silu_curvature, dims=(1, 2), num_random=1, max_iter=20)
    vfig = vulnerability_figure(vul, 0)
    full = float(vul.full_norm[0])
    note = next(a for a in vfig.layout.annotations if "unrestricted" in a.text)
    assert note.y == pytest.approx(math.log10(full))  # log axis: annotation in log10 units
    curved = next(t for t in vfig.data if t.name.startswith("span of"))
    np.testing.assert_allclose(np.asarray(curved.y), vul.curved_norm[0][vul.curved_converged[0]].numpy())

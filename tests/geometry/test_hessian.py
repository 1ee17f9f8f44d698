"""Hessian-vector products: exact (double backprop) against dense float64 Hessians and central differences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import geometry
from geometry.boundary.hessian import (
    HessianOperator,
    SoftMaxPool2d,
    default_step,
    hvp_check,
    resolve_method,
    smooth_copy,
    smooth_handle,
)
from tests.geometry.analytic import Affine, dense_logit_difference_hessian, handle_of, quadratic_with_spectrum


@pytest.fixture(scope="module")
def points():
    data = geometry.load_dataset("digits")
    return data.images[:3]


def _classes(handle, x):
    j = handle.predict(x)
    return j, (j + 1) % handle.num_classes


def test_exact_hvp_matches_the_dense_float64_hessian(silu, points):
    j, k = _classes(silu, points)
    op = HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8))
    v = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    hv = op(v)
    for i in (0, 2):
        grad, dense = dense_logit_difference_hessian(silu.module, points[i], int(j[i]), int(k[i]))
        torch.testing.assert_close(hv[i].double(), dense @ v[i].double(), atol=2e-4, rtol=1e-3)
        torch.testing.assert_close(op.gradient[i].double(), grad, atol=1e-5, rtol=1e-4)
    assert op.products == 1


def test_exact_hvp_against_central_differences(silu, points):
    j, k = _classes(silu, points)
    op = HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8))
    check = hvp_check(op, num=4, h=1e-2)
    assert check.relative_error.shape == (3, 4)
    assert check.max_error < 2e-2
    assert (check.exact_norm > 1e-2).all()  # a real check: the products are not all zero


def test_quadratic_model_is_exact_for_both_methods():
    module, _, _ = quadratic_with_spectrum([3.0, -1.0, 0.5, 2.0])
    z = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    src, tgt = torch.zeros(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64)
    v = torch.randn(2, 5, generator=torch.Generator().manual_seed(2))
    expected = v @ module.hessian.T
    exact = HessianOperator(module, z, src, tgt, input_shape=(5,))
    fd = HessianOperator(module, z, src, tgt, input_shape=(5,), method="finite-difference", h=0.1)
    torch.testing.assert_close(exact(v), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fd(v), expected, atol=1e-4, rtol=1e-4)  # central differences are exact on quadratics
    torch.testing.assert_close(exact.value, z @ module.a + 0.5 * ((z @ module.hessian) * z).sum(1), atol=1e-5, rtol=0)


def test_batched_vectors_equal_one_at_a_time(silu, points):
    j, k = _classes(silu, points)
    op = HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8))
    vs = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(3))
    batched = op(vs)
    for b in range(5):
        torch.testing.assert_close(batched[:, b], op(vs[:, b]), atol=1e-6, rtol=1e-5)
    assert op.products == 10


def test_affine_model_has_zero_hessian():
    w, b = torch.randn(3, 4), torch.randn(3)
    op = HessianOperator(Affine(w, b), torch.randn(2, 4), torch.tensor([0, 1]), torch.tensor([2, 2]), input_shape=(4,))
    assert torch.equal(op(torch.randn(2, 4)), torch.zeros(2, 4))
    torch.testing.assert_close(op.gradient, (w[2] - w[[0, 1]]))
    torch.testing.assert_close(op.normal.norm(dim=1), torch.ones(2))


def test_relu_network_exact_is_zero_but_finite_differences_and_softplus_are_not(relu, points):
    j, k = _classes(relu, points)
    v = torch.randn(3, 64, generator=torch.Generator().manual_seed(4))
    exact = HessianOperator(relu.module, points, j, k, input_shape=(1, 8, 8))(v)
    assert exact.abs().max() == 0
    fd = HessianOperator(
        relu.module, points, j, k, input_shape=(1, 8, 8), method="finite-difference", h=default_step(relu)
    )(v)
    assert fd.norm(dim=1).min() > 0
    smooth = smooth_handle(relu, beta=10.0)
    soft = HessianOperator(smooth.module, points, j, k, input_shape=(1, 8, 8))(v)
    assert soft.norm(dim=1).min() > 0
    assert smooth.smooth is True and smooth.fingerprint != relu.fingerprint


def test_smooth_copy_replaces_relu_and_max_pooling_and_leaves_the_original_alone(relu):
    original = relu.module
    before = {name: type(m) for name, m in original.named_modules()}
    state = {key: t.clone() for key, t in original.state_dict().items()}
    clone, replaced, remaining = smooth_copy(original, beta=5.0)
    assert replaced == 7 and remaining == []  # 5 ReLUs and 2 max-pools in the small CNN
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in clone.modules())
    assert {name: type(m) for name, m in original.named_modules()} == before
    assert all(torch.equal(t, state[key]) for key, t in original.state_dict().items())
    kept, replaced_no_pool, remaining_pool = smooth_copy(original, pool=False)
    assert replaced_no_pool == 5 and len(remaining_pool) == 2 and "MaxPool2d" in remaining_pool[0]
    assert sum(isinstance(m, nn.MaxPool2d) for m in kept.modules()) == 2


def test_smoothed_network_approaches_the_original_as_beta_grows(relu, points):
    base = relu.logits(points)
    errors = [(smooth_handle(relu, beta=b).logits(points) - base).abs().max().item() for b in (2.0, 20.0, 200.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.1


def test_soft_max_pool_matches_max_pool_for_large_beta():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    for pool in (nn.MaxPool2d(2), nn.MaxPool2d(3, stride=2, padding=1)):
        soft = SoftMaxPool2d(pool, beta=1e3)(x)
        torch.testing.assert_close(soft, pool(x), atol=5e-3, rtol=0)
        assert (SoftMaxPool2d(pool, beta=2.0)(x) >= pool(x) - 1e-6).all()  # log-sum-exp is an upper bound


def test_resolve_method_defaults(silu, relu):
    assert resolve_method(silu)[0] == "exact"
    method, reason = resolve_method(relu)  # ReLU and max-pooling can both be swapped for smooth layers
    assert method == "softplus" and "piecewise linear" in reason
    # a layer softplus cannot replace (ReLU6), or a model whose layers cannot be swapped at all: finite differences
    relu6 = handle_of(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU6(), nn.Linear(4, 2)), 2)
    assert resolve_method(relu6)[0] == "finite-difference"
    scripted = handle_of(torch.jit.script(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))), 2)
    assert resolve_method(scripted)[0] == "finite-difference"
    assert resolve_method(relu, "finite-difference")[0] == "finite-difference"
    assert "zero almost everywhere" in resolve_method(relu, "exact")[1]
    assert resolve_method(relu, "softplus")[0] == "softplus"
    assert default_step(silu) == pytest.approx(0.01)
    assert default_step(handle_of(nn.Linear(2, 2), 2)) == pytest.approx(0.01)


def test_callers_model_and_points_are_left_alone():
    # a smooth network with batch norm and dropout, which its owner keeps in train mode (one submodule in eval mode,
    # one parameter frozen): the products are those of the eval-mode network, and every mode and flag is restored
    torch.manual_seed(6)
    module = nn.Sequential(
        nn.Flatten(), nn.Linear(6, 16), nn.BatchNorm1d(16), nn.SiLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )
    with torch.no_grad():
        module[2].running_mean.uniform_(-0.5, 0.5)
        module[2].running_var.uniform_(0.5, 2.0)
    module.train()
    module[4].eval()
    module[5].bias.requires_grad_(False)
    modes = [m.training for m in module.modules()]
    needs_grad = [p.requires_grad for p in module.parameters()]
    state = {key: t.clone() for key, t in module.state_dict().items()}
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(4, 6, generator=gen).requires_grad_(True)
    z.grad = torch.full_like(z, 3.0)
    z_values = z.detach().clone()
    j, k = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    v = torch.randn(4, 2, 6, generator=gen)
    op = HessianOperator(module, z, j, k, input_shape=(6,))
    hv = op(v)
    fd = HessianOperator(module, z, j, k, input_shape=(6,), method="finite-difference", h=1e-2)(v)
    hvp_check(op, num=1)
    op.release()
    assert torch.equal(z.detach(), z_values) and z.requires_grad and torch.equal(z.grad, torch.full_like(z, 3.0))
    assert [m.training for m in module.modules()] == modes
    assert [p.requires_grad for p in module.parameters()] == needs_grad
    assert all(p.grad is None for p in module.parameters())
    assert all(torch.equal(t, state[key]) for key, t in module.state_dict().items())  # running stats untouched
    assert all(not m._forward_hooks and not m._backward_hooks for m in module.modules())
    # the same products from the network in eval mode (so: no dropout, running statistics)
    module.eval()
    torch.testing.assert_close(hv, HessianOperator(module, z_values, j, k, input_shape=(6,))(v), atol=0, rtol=0)
    fd_eval = HessianOperator(module, z_values, j, k, input_shape=(6,), method="finite-difference", h=1e-2)(v)
    torch.testing.assert_close(fd, fd_eval, atol=0, rtol=0)
    dense = [dense_logit_difference_hessian(module, z_values[i], int(j[i]), int(k[i]))[1] for i in range(4)]
    torch.testing.assert_close(
        hv.double(), torch.stack([v[i].double() @ dense[i] for i in range(4)]), atol=1e-5, rtol=1e-4
    )


# -- bad inputs ---------------------------------------------------------------------------------


def test_unknown_method(silu):
    with pytest.raises(ValueError, match="expected method to be one of auto, exact, finite-difference, softplus"):
        resolve_method(silu, "newton")


def test_finite_difference_needs_a_step(silu, points):
    j, k = _classes(silu, points)
    with pytest.raises(ValueError, match="expected a positive finite-difference step h, got -0.1"):
        HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8), method="finite-difference", h=-0.1)


def test_vectors_of_the_wrong_shape(silu, points):
    j, k = _classes(silu, points)
    op = HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"expected vectors of shape \(3, 64\) or \(3, B, 64\), got \(3, 10\)"):
        op(torch.zeros(3, 10))


def test_one_class_pair_per_point(silu, points):
    with pytest.raises(ValueError, match=r"expected one source and one target class per point \(3\), got 1 and 3"):
        HessianOperator(silu.module, points, torch.tensor([0]), torch.tensor([1, 2, 3]), input_shape=(1, 8, 8))


def test_nan_points(silu):
    with pytest.raises(ValueError, match="expected finite points z"):
        HessianOperator(
            silu.module, torch.full((1, 64), float("nan")), torch.tensor([0]), torch.tensor([1]), input_shape=(1, 8, 8)
        )


def test_bad_beta(relu):
    with pytest.raises(ValueError, match="expected beta as a positive number, got 0"):
        smooth_handle(relu, beta=0)


def test_checking_a_finite_difference_operator(silu, points):
    j, k = _classes(silu, points)
    op = HessianOperator(silu.module, points, j, k, input_shape=(1, 8, 8), method="finite-difference", h=0.01)
    with pytest.raises(ValueError, match="expected an exact operator to check, got method 'finite-difference'"):
        hvp_check(op)

"""The curvature statistic against closed forms (quadratic forms, balls), the threshold rule, ROC/AUC and label
recovery on models whose geometry is known, and the cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import geometry
from geometry.inspection.detection import (
    cached_evaluate_detection,
    curvature_statistic,
    detect,
    evaluate_detection,
    random_directions,
    threshold_for_fpr,
)
from tests.geometry.analytic import Ball, Quadratic, handle_of


def _quadratic(dim: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, generator=gen)
    m = torch.randn(dim, dim, generator=gen)
    hessian = (m + m.T) / 2
    return Quadratic(a, hessian), a, hessian


def test_random_directions_are_unit_orthonormal_groups_and_seeded():
    v = random_directions(5, 12, seed=3)
    assert v.shape == (12, 5)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(12), atol=1e-6, rtol=0)
    for group in (v[:5], v[5:10]):
        torch.testing.assert_close(group @ group.T, torch.eye(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(random_directions(5, 12, seed=3), v)
    assert not torch.allclose(random_directions(5, 12, seed=4), v)


@pytest.mark.parametrize("h", [0.05, 0.5, 2.0])
def test_statistic_equals_the_mean_curvature_of_a_quadratic_model(h):
    """For F = a.x + x^T A x / 2 the second difference is exactly v^T A v: a full orthonormal group of directions
    averages it to tr(A) / D, the mean curvature of F (any step h)."""
    model, a, hessian = _quadratic()
    handle = handle_of(model, 6)
    gen = torch.Generator().manual_seed(1)
    x = 0.3 * torch.randn(8, 6, generator=gen)
    f = (x @ a + 0.5 * ((x @ hessian) * x).sum(1)).double()
    stat = curvature_statistic(handle, x, num_directions=12, h=h, seed=2)  # two full groups
    mean_curvature = float(torch.trace(hessian.double())) / 6
    for i in range(len(x)):
        j = int(f[i] > 0)  # logits (0, F): class 1 where F > 0
        assert int(stat.predicted[i]) == j
        assert math.isnan(float(stat.rho[i, j]))
        # F_i = f_i - f_j is +F for j = 0 and -F for j = 1
        expected = mean_curvature if j == 0 else -mean_curvature
        assert float(stat.rho[i, 1 - j]) == pytest.approx(expected, abs=2e-6 / h**2 + 1e-5)
        assert float(stat.score[i]) == pytest.approx(-expected, abs=2e-6 / h**2 + 1e-5)
        assert int(stat.recovered[i]) == 1 - j


def test_statistic_with_fewer_directions_is_the_mean_over_those_directions():
    model, _, hessian = _quadratic(seed=5)
    handle = handle_of(model, 6)
    x = torch.full((1, 6), -0.2)
    stat = curvature_statistic(handle, x, num_directions=4, h=0.3, seed=9)
    v = random_directions(6, 4, seed=9).double()
    expected = float(((v @ hessian.double()) * v).sum(1).mean())
    j = int(stat.predicted[0])
    assert float(stat.rho[0, 1 - j]) == pytest.approx(expected if j == 0 else -expected, abs=1e-4)


class BallAndHalfSpaces(nn.Module):
    """Class 0 in the convex set ||x|| + c|x_0| < R; outside it class 1 where x_0 > 0 and class 2 where x_0 < 0."""

    def __init__(self, radius: float = 1.0, c: float = 0.3) -> None:
        super().__init__()
        self.radius, self.c = radius, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)
        f = v.norm(dim=1) - self.radius
        return torch.stack([torch.zeros_like(f), f + self.c * v[:, 0], f - self.c * v[:, 0]], dim=1)


def _inside(n: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(n, dim, generator=gen)
    return d / d.norm(dim=1, keepdim=True) * torch.linspace(0.3, 0.6, n)[:, None]


def test_perturbations_out_of_a_convex_region_are_detected_and_the_label_recovered():
    """Clean inputs inside a convex region have rho > 0 for every other class; pushed just outside, the original
    class's rho is negative (its region curves around the input): AUC 1 and every label recovered — the asymmetry
    the detector relies on, with the sign fixed by DESIGN's F_i = f_i - f_j."""
    dim = 8
    handle = handle_of(BallAndHalfSpaces(), dim)
    x = _inside(12, dim, seed=0)
    assert bool((handle.predict(x) == 0).all())
    res = evaluate_detection(handle, x, fpr=0.1, num_directions=16, h=0.05, seed=0)
    assert bool(res.attack_converged.all())
    assert bool((res.perturbed_label != 0).all())
    assert float(res.clean_score.max()) < 0 < float(res.perturbed_score.min())
    assert res.auc == 1.0
    assert res.tpr_at_threshold == 1.0 and res.fpr_at_threshold <= 0.1
    assert res.recovery_accuracy == 1.0  # 3 classes: the other outside class is not mistaken for the original
    assert bool((res.recovered == 0).all())
    assert res.roc_fpr[0] == 0 and res.roc_tpr[-1] == 1 and bool(np.all(np.diff(res.roc_fpr) >= 0))
    # the measured rho_0 at a perturbed point is the ball's: -(D - 1) / (D r) to first order
    r = res.perturbed.norm(dim=1)
    expected = -(dim - 1) / (dim * r)
    np.testing.assert_allclose(res.perturbed_rho[:, 0].numpy(), expected.numpy(), rtol=0.35)


def test_on_a_built_in_model_perturbed_digits_score_higher_than_clean_ones_with_the_documented_sign():
    """The sign convention on real data: score = max_i(-rho_i) separates clean test digits from their DeepFool
    perturbations (AUC > 0.5), and Fawzi et al.'s rule as printed for F = f_j - f_i, max_i(+rho_i), does not."""
    from sklearn.metrics import roc_auc_score

    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits").images[:30]
    res = evaluate_detection(handle, x, num_directions=32, h=0.5, seed=0)
    ok = res.attack_converged
    assert int(ok.sum()) >= 20
    clean, pert = res.clean_rho.double(), res.perturbed_rho[ok].double()
    y = np.r_[np.zeros(len(clean)), np.ones(len(pert))]

    def auc(score) -> float:
        return float(roc_auc_score(y, np.r_[score(clean).numpy(), score(pert).numpy()]))

    documented = auc(lambda rho: (-rho).nan_to_num(-math.inf).max(dim=1).values)
    assert documented == pytest.approx(res.auc, abs=1e-6)  # the library's score is max_i(-rho_i)
    assert documented > 0.5
    assert auc(lambda rho: rho.nan_to_num(-math.inf).max(dim=1).values) < 0.5  # the other sign is worse than chance


def test_threshold_for_a_false_positive_rate():
    scores = np.arange(1.0, 101.0)
    assert threshold_for_fpr(scores, 0.05) == 95.0  # 96..100 above: 5%
    assert threshold_for_fpr(scores, 0.0) == 100.0
    assert threshold_for_fpr(scores, 1.0) == -math.inf
    gen = np.random.default_rng(0)
    for fpr in (0.01, 0.1, 0.33):
        s = gen.normal(size=57)
        t = threshold_for_fpr(torch.tensor(s), fpr)
        assert (s > t).mean() <= fpr and t in s
        assert (s >= t).mean() > fpr  # the smallest such threshold: one step lower would exceed the rate
    assert threshold_for_fpr([np.nan, 1.0, 2.0], 0.0) == 2.0
    with pytest.raises(ValueError, match="fpr"):
        threshold_for_fpr(scores, 1.5)
    with pytest.raises(ValueError, match="at least one finite"):
        threshold_for_fpr([np.nan], 0.1)


def test_statistic_is_the_same_per_input_and_in_a_batch_and_detect_applies_the_threshold():
    handle = geometry.load_model("digits-cnn-relu", device="cpu")
    x = geometry.load_dataset("digits").images[:5]
    batch = curvature_statistic(handle, x, num_directions=8, seed=1)
    one = curvature_statistic(handle, x[3], num_directions=8, seed=1, batch_size=1)
    torch.testing.assert_close(one.rho[0], batch.rho[3], equal_nan=True, atol=1e-4, rtol=1e-4)
    assert batch.predicted.tolist() == handle.predict(x).tolist()
    verdict = detect(handle, x, float(batch.score[2]), num_directions=8, seed=1)
    assert verdict.flagged.tolist() == (batch.score > batch.score[2]).tolist()
    assert not bool(verdict.flagged[2])


def test_cached_detection_equals_the_direct_one(tmp_path):
    cache = geometry.DiskCache(tmp_path / "c")
    handle = handle_of(Ball(torch.zeros(4), 1.0), 4)
    x = _inside(6, 4, seed=1)
    direct = evaluate_detection(handle, x, num_directions=8, h=0.05)
    first = cached_evaluate_detection(handle, x, num_directions=8, h=0.05, cache=cache)
    second = cached_evaluate_detection(handle, x, num_directions=8, h=0.05, cache=cache)
    assert len(cache) == 1
    for res in (first, second):
        torch.testing.assert_close(res.perturbed_score, direct.perturbed_score, equal_nan=True)
        np.testing.assert_array_equal(res.roc_tpr, direct.roc_tpr)
        assert res.auc == direct.auc and res.threshold == direct.threshold


def test_bad_inputs_are_rejected_with_clear_messages():
    handle = handle_of(Ball(torch.zeros(3), 1.0), 3)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="num_directions"):
        curvature_statistic(handle, x, num_directions=0)
    with pytest.raises(ValueError, match=r"h as a number in \(0"):
        curvature_statistic(handle, x, h=0.0)
    with pytest.raises(ValueError, match="finite inputs"):
        curvature_statistic(handle, torch.full((1, 3), math.nan))
    with pytest.raises(ValueError, match="threshold"):
        detect(handle, x, math.nan)
    with pytest.raises(ValueError, match="at least one clean input"):
        evaluate_detection(handle, torch.zeros(0, 3))
    with pytest.raises(TypeError, match="ModelHandle"):
        curvature_statistic("model", x)

"""The curvature statistic against closed forms (quadratic forms, balls), the threshold rule, ROC/AUC and label
recovery on models whose geometry is known, and the cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import geometry
from geometry.inspection.detection import (
    cached_evaluate_detection,
    calibration_split,
    curvature_statistic,
    detect,
    evaluate_detection,
    random_directions,
    threshold_for_fpr,
)
from tests.geometry.analytic import BallAndHalfSpaces, BallInsideClass0, BallInsideClass1, Quadratic, handle_of


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


def _inside(n: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(n, dim, generator=gen)
    return d / d.norm(dim=1, keepdim=True) * torch.linspace(0.3, 0.6, n)[:, None]


def test_perturbations_out_of_a_convex_region_are_detected_and_the_label_recovered():
    """Clean inputs inside a convex region have rho > 0 for every other class; pushed just outside, the original
    class's rho is negative (its region curves around the input): AUC 1 and every label recovered — the asymmetry
    the detector relies on, with the sign fixed by docs/DESIGN.md §3's F_i = f_i - f_j."""
    dim = 8
    handle = handle_of(BallAndHalfSpaces(), dim)
    x = _inside(12, dim, seed=0)
    assert bool((handle.predict(x) == 0).all())
    res = evaluate_detection(handle, x, fpr=0.1, num_directions=16, h=0.05, seed=0)
    assert bool(res.attack_converged.all())
    assert bool((res.perturbed_label != 0).all())
    assert float(res.clean_score.max()) < 0 < float(res.perturbed_score.min())
    assert res.auc == 1.0
    # in-sample (on the calibration inputs) the rate is <= the target by construction; held out it need not be
    assert res.tpr_at_threshold == 1.0 and res.calibration_fpr <= 0.1
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
    x = geometry.load_dataset("digits").images[:60]  # 30 held out (the rest set the threshold)
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
    handle = handle_of(BallInsideClass0(torch.zeros(4), 1.0), 4)
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
    handle = handle_of(BallInsideClass0(torch.zeros(3), 1.0), 3)
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
    with pytest.raises(ValueError, match="at least 2 clean inputs"):
        evaluate_detection(handle, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="calibration_share below 1"):
        evaluate_detection(handle, x, options=geometry.DetectionOptions(calibration_share=1.0))
    with pytest.raises(TypeError, match="ModelHandle"):
        curvature_statistic("model", x)


# -- held out: the threshold is set on some clean inputs, every rate is measured on others ----------------------------


def _at_radius(radii: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(len(radii), dim, generator=gen)
    return d / d.norm(dim=1, keepdim=True) * radii[:, None]


def test_calibration_split_is_seeded_disjoint_and_complete():
    cal, held = calibration_split(11, 0.5, seed=3)
    assert sorted(cal.tolist() + held.tolist()) == list(range(11))
    assert len(cal) == 6 and len(held) == 5  # round(5.5) = 6
    assert torch.equal(calibration_split(11, 0.5, seed=3)[0], cal)
    assert not torch.equal(calibration_split(11, 0.5, seed=4)[0], cal)
    assert [len(p) for p in calibration_split(2, 0.9, seed=0)] == [1, 1]  # at least one of each
    with pytest.raises(ValueError, match="n as an int >= 2"):
        calibration_split(1, 0.5, seed=0)


def test_the_reported_rates_come_from_inputs_disjoint_from_the_calibration_inputs():
    """Recomputed independently: t from the calibration rows alone, the false-positive rate from the other rows."""
    dim = 4
    handle = handle_of(BallInsideClass0(torch.zeros(dim), 1.0), dim)
    x = _at_radius(torch.linspace(0.2, 0.8, 10), dim, seed=0)
    res = evaluate_detection(handle, x, fpr=0.2, num_directions=8, h=0.05, seed=5)
    cal, held = res.calibration_index.tolist(), res.held_out_index.tolist()
    assert not set(cal) & set(held) and sorted(cal + held) == list(range(10))
    assert (res.n_calibration, res.n_held_out) == (5, 5) and len(res) == 5
    expected_cal, expected_held = calibration_split(10, 0.5, seed=5)
    assert cal == expected_cal.tolist() and held == expected_held.tolist()
    opts = {"num_directions": 8, "h": 0.05, "seed": 5}
    cal_scores = curvature_statistic(handle, x[cal], **opts).score
    held_scores = curvature_statistic(handle, x[held], **opts).score
    assert res.threshold == threshold_for_fpr(cal_scores, 0.2)
    torch.testing.assert_close(res.clean_score, held_scores)
    assert res.fpr_at_threshold == float((held_scores > res.threshold).double().mean())
    assert res.calibration_fpr == float((cal_scores > res.threshold).double().mean())
    # the perturbed inputs are those of the held-out rows
    assert torch.equal(res.clean_label, handle.predict(x[held]))
    torch.testing.assert_close((res.perturbed - x[held]).norm(dim=1), res.attack_norm, atol=1e-5, rtol=1e-4)


def test_a_held_out_false_positive_rate_above_the_target_is_what_is_reported():
    """Calibration inputs deep inside the ball (score -(D-1)/(D r) very negative), held-out ones near its surface
    (scores above every calibration score): in-sample the false-positive rate is 0 <= 10%, held out it is 100%."""
    dim, n = 4, 10
    cal, held = calibration_split(n, 0.5, seed=0)
    radii = torch.empty(n)
    radii[cal] = torch.linspace(0.15, 0.25, len(cal))
    radii[held] = torch.linspace(0.6, 0.8, len(held))
    handle = handle_of(BallInsideClass0(torch.zeros(dim), 1.0), dim)
    res = evaluate_detection(handle, _at_radius(radii, dim, seed=1), fpr=0.1, num_directions=8, h=0.05, seed=0)
    assert res.calibration_fpr == 0.0 <= res.target_fpr
    assert res.fpr_at_threshold == 1.0  # every held-out clean input is a false alarm
    assert float(res.clean_score.min()) > res.threshold


def test_a_detector_with_the_statistic_inverted_is_flagged_as_not_working():
    """Clean inputs *outside* a ball of the other class: their region curves away from them (score > 0) and their
    perturbations land inside the ball (score < 0), so the held-out AUC is 0 and the page's sentence says the detector
    does not work; inside the ball (the convex case) the AUC is 1 and the sentence says it separates them."""
    dim = 6
    inverted = handle_of(BallInsideClass1(torch.zeros(dim), 1.0), dim)  # class 0 outside
    outside = _at_radius(torch.linspace(1.3, 1.8, 12), dim, seed=2)
    assert bool((inverted.predict(outside) == 0).all())
    bad = evaluate_detection(inverted, outside, num_directions=12, h=0.05, seed=0)
    assert bad.n_perturbed == bad.n_held_out == 6
    assert bad.auc == 0.0 and bad.worse_than_chance
    assert bad.reading("the ball").startswith("The detector does not work on the ball: its held-out AUC 0.000")
    assert "6 held-out clean inputs and 6 perturbed ones" in bad.reading("the ball")
    convex = handle_of(BallInsideClass0(torch.zeros(dim), 1.0), dim)
    good = evaluate_detection(convex, _inside(12, dim, seed=2), num_directions=12, h=0.05, seed=0)
    assert good.auc == 1.0 and not good.worse_than_chance
    assert "does not work" not in good.reading("the ball")
    assert good.reading("the ball").startswith("The detector separates perturbed from clean inputs on the ball")

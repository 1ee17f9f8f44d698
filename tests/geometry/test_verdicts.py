"""Every sentence the report generates from a number can come out false: each is read on a model where it is true
and on one where it is not. Also the curvature-concentration statistic (`geometry.boundary.spectrum`), the go / no-go
summary against `Thresholds`, and the caveats carried next to the numbers they qualify."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import geometry
from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.options import CurvatureOptions
from geometry.boundary.spectrum import FEW_SHARE, concentration, energy_from_random
from geometry.cli import main
from geometry.inspection.margins import band_basis, frequency_bands, frequency_margins
from geometry.report import PAGE_CURVATURE, ReportConfig, Thresholds, build_report, report_html, report_verdict
from geometry.report.sections import (
    CurvatureSection,
    DeepFoolSection,
    FrequencySection,
    compute_sections,
    curvature_section,
    detection_section,
    model_section,
    report_images,
)
from geometry.report.verdicts import Check
from tests.geometry.analytic import Quadratic, affine_handle, handle_of, quadratic_with_spectrum

FEW = "curved in a few directions"
SPREAD = "spread over many directions"

# -- the curvature spectrum: few directions or spread ------------------------------------------------------------------


def low_rank_model(dim: int) -> tuple[geometry.ModelHandle, torch.Tensor]:
    """F = a.x + x^T A x / 2 with A of rank 3 (curvatures 1.5, 1, -0.75 at the boundary point 0), and 3 inputs on the
    normal line through 0."""
    module, a, _ = quadratic_with_spectrum([3.0, 2.0, -1.5] + [0.0] * (dim - 4), grad_norm=2.0, seed=1)
    unit = a / a.norm()
    return handle_of(module, dim), torch.stack([-d * unit for d in (0.3, 0.4, 0.5)])


def random_hessian_model(dim: int) -> tuple[geometry.ModelHandle, torch.Tensor]:
    """F = a.x + x^T A x / 2 with A a random symmetric matrix (GOE, spectrum in about [-1, 1]): no structure."""
    gen = torch.Generator().manual_seed(dim)
    a = torch.randn(dim, generator=gen)
    a = 2 * a / a.norm()
    b = torch.randn(dim, dim, generator=gen)
    hessian = (b + b.T) / (2 * math.sqrt(dim))
    unit = a / a.norm()
    x = torch.stack([-d * unit + 0.02 * torch.randn(dim, generator=gen) for d in (0.3, 0.4, 0.5)])
    return handle_of(Quadratic(a, hessian), dim), x


def section_of(handle: geometry.ModelHandle, x: torch.Tensor) -> CurvatureSection:
    """The report's curvature section on ``x``, measured by the real `boundary_curvature` with the page's options."""
    result = boundary_curvature(handle, x, options=PAGE_CURVATURE)
    assert bool(result.deepfool_converged.all())
    return CurvatureSection(key="curvature", applicable=True, note="", curvature=result)


@pytest.mark.parametrize("dim", [63, 1000])
def test_a_low_rank_boundary_reads_curved_in_a_few_directions(dim):
    section = section_of(*low_rank_model(dim))
    conc = section.concentration
    assert conc.top == int(0.1 * (dim - 1)) and conc.few_directions and not conc.spread
    assert conc.median_low > 0.99  # rank 3 <= m: every bit of sum kappa^2 is in the top m
    assert FEW in section.summary and SPREAD not in section.summary
    assert f"the {conc.top} most curved of the {dim - 1} tangent directions" in section.summary.lower()


@pytest.mark.parametrize("dim", [63, 1000])
def test_a_random_hessian_does_not_read_curved_in_a_few_directions(dim):
    section = section_of(*random_hessian_model(dim))
    conc = section.concentration
    assert conc.spread and not conc.few_directions
    assert conc.median_low <= conc.median_high < FEW_SHARE  # the GOE null: about 31% in the top 10%
    if dim == 63:  # m = 6 <= k = 10: the share is known, not bracketed
        assert conc.median_low == conc.median_high == pytest.approx(0.31, abs=0.06)
    assert FEW not in section.summary and SPREAD in section.summary
    # the former reading (largest principal |kappa| >= 5x the median random |kappa|) said "few" here, at both sizes
    assert section.most_curved / section.random_median > 5


def test_the_energy_estimate_from_random_directions_is_unbiased():
    rng = np.random.default_rng(0)
    dims = 40
    kappa = np.r_[3.0, -2.0, rng.normal(0.1, 0.3, dims - 2)]  # a spectrum with a mean (tr M != 0) and structure
    v = rng.standard_normal((40_000, dims))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    estimate = energy_from_random((v**2) @ kappa, dims)
    assert estimate == pytest.approx(float((kappa**2).sum()), rel=0.05)
    # a sphere's shape operator (every kappa = c): exact from any two directions
    assert energy_from_random(np.full(2, 0.5), dims) == pytest.approx(dims * 0.25)
    assert math.isnan(energy_from_random(np.array([1.0, np.nan]), dims))


def test_the_share_is_exact_when_the_whole_spectrum_is_measured():
    spectrum = [4.0] + [1.0] * 14 + [-2.0] * 5  # D' = 20, m = 2: (16 + 4) / (16 + 14 + 20) = 0.4
    module, a, _ = quadratic_with_spectrum(spectrum, grad_norm=1.0, seed=3)
    handle = handle_of(module, len(spectrum) + 1)
    result = boundary_curvature(handle, -0.5 * (a / a.norm())[None], options=CurvatureOptions(k=10, num_random=50))
    conc = concentration(result)
    assert conc.exact and conc.top == 2
    assert conc.median_low == conc.median_high == pytest.approx(0.4, abs=1e-4)
    assert conc.spread and not conc.few_directions


def test_a_bracket_across_the_threshold_gives_no_verdict():
    """k = 2 at D' = 62 (m = 6): a flat-topped spectrum leaves the top-6 share undetermined, and the reading says so."""
    module, a, _ = quadratic_with_spectrum([1.0] * 8 + [0.05] * 54, grad_norm=2.0, seed=2)
    handle = handle_of(module, 63)
    result = boundary_curvature(handle, -0.4 * (a / a.norm())[None], options=CurvatureOptions(k=2, num_random=300))
    section = CurvatureSection(key="curvature", applicable=True, note="", curvature=result)
    conc = section.concentration
    assert conc.median_low < FEW_SHARE <= conc.median_high
    assert not conc.few_directions and not conc.spread
    assert "cannot be told" in section.summary and FEW not in section.summary and SPREAD not in section.summary


# -- the other readings ------------------------------------------------------------------------------------------------


def test_the_frequency_reading_follows_which_end_has_the_smaller_margin():
    """An affine model F = w.x - 0.3 with w in the lowest DCT band is crossed at 0.3 there and never in the highest
    band; with w in the highest band, the other way round."""
    shape = (1, 8, 8)
    layout = frequency_bands(shape)
    last = len(layout.starts) - 1
    readings = {}
    for end, band in (("low", 0), ("high", last)):
        basis = band_basis(shape, layout.starts[band], layout.block)  # (D, m) orthonormal
        w = basis[:, 0]
        handle = affine_handle(torch.stack([torch.zeros_like(w), w]), torch.tensor([0.0, -0.3]), shape=shape)
        x = torch.zeros(2, *shape)
        res = frequency_margins(handle, x, bands=[0, last], full=False, num_random=1)
        readings[end] = FrequencySection(key="frequency", applicable=True, note="", margins=res, input_shape=shape)
    assert "more sensitive to its lowest frequencies than to its highest" in readings["low"].summary
    assert "more sensitive to its highest frequencies than to its lowest" in readings["high"].summary


def test_the_model_reading_says_smooth_only_for_a_smooth_model():
    data = geometry.load_dataset("digits")
    silu = model_section(geometry.load_model("digits-cnn-silu", device="cpu"), data).summary
    relu = model_section(geometry.load_model("digits-cnn-relu", device="cpu"), data).summary
    assert "(smooth)" in silu and "piecewise linear" not in silu
    assert "(piecewise linear)" in relu and "(smooth)" not in relu


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return geometry.DiskCache(tmp_path_factory.mktemp("verdict-cache"))


def _detection(name: str, data: str, cache):
    handle = geometry.load_model(name, device="cpu")
    config = ReportConfig.quick()
    x = report_images(geometry.load_dataset(data), config.detection_images, config.seed).images
    return detection_section(handle, x, config, cache=cache)


def test_the_detection_reading_says_it_does_not_work_only_below_chance(cache, digits_results):
    works = _detection("digits-cnn-silu", "digits", cache)
    fails = _detection("moons-mlp", "moons", cache)
    assert works.detection.auc > 0.5 and fails.detection.auc < 0.5
    assert works.works is True and fails.works is False
    assert "does not work on this model" in fails.summary and "below 0.5" in fails.summary
    assert "does not work" not in works.summary and "separates held-out clean" in works.summary
    # the held-out false-positive rate is the one quoted, with the counts
    assert f"{works.detection.fpr_at_threshold:.0%} of held-out clean inputs are flagged" in works.summary
    # the go / no-go line flags the detector below chance, and only that one
    for section, flagged in ((fails, True), (works, False)):
        verdict = report_verdict(dataclasses.replace(digits_results, detection=section), Thresholds())
        check = next(c for c in verdict.checks if c.name == "detection AUC (held out)")
        assert ("the detector does not work on this model" in check.line) is flagged


# -- go / no-go --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_results(cache):
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    return compute_sections(handle, geometry.load_dataset("digits"), ReportConfig.quick(), cache=cache)


def test_go_when_every_number_clears_its_threshold_and_no_go_when_one_does_not(digits_results):
    res = digits_results
    median = res.deepfool.median_margin
    lenient = Thresholds(accuracy=0.5, median_margin=median / 2, low_margin=0.0, sweep_accuracy=0.0, detection_auc=0.5)
    go = report_verdict(res, lenient)
    assert go.go and go.summary.startswith("Go: all 8 checks pass")
    assert all(c.status == "pass" for c in go.checks)
    strict = dataclasses.replace(lenient, median_margin=median * 2)
    no_go = report_verdict(res, strict)
    assert not no_go.go and [c.name for c in no_go.failed] == ["median DeepFool margin"]
    assert no_go.summary.startswith("No-go: 1 of 8 checks fail") and "median DeepFool margin" in no_go.summary
    line = next(c.line for c in no_go.checks if c.name == "median DeepFool margin")
    assert line == f"median DeepFool margin {median:.3g}, threshold >= {median * 2:.3g}: fail"
    off = report_verdict(res, dataclasses.replace(strict, median_margin=None))
    assert off.go and "not checked" in next(c.line for c in off.checks if c.name == "median DeepFool margin")


def test_a_number_that_could_not_be_measured_fails_and_an_inapplicable_one_is_left_out():
    assert Check("x", math.nan, 0.1).status == "fail"
    assert Check("x", 0.5, 0.1, applicable=False).status == "not applicable"
    assert not Check("x", 0.5, 0.1, applicable=False).counts
    with pytest.raises(ValueError, match="accuracy"):
        Thresholds(accuracy=1.5)
    with pytest.raises(ValueError, match="median_margin"):
        Thresholds(median_margin=-1)


def test_a_2d_model_has_no_sweep_checks_and_its_failing_detector_makes_it_no_go(cache):
    handle = geometry.load_model("moons-mlp", device="cpu")
    results = compute_sections(handle, geometry.load_dataset("moons"), ReportConfig.quick(), cache=cache)
    verdict = report_verdict(results, Thresholds())
    sweeps = [c for c in verdict.checks if c.name.startswith(("accuracy at", "accuracy rotated", "accuracy shifted"))]
    assert len(sweeps) == 4 and all(c.status == "not applicable" for c in sweeps)
    assert not verdict.go and [c.name for c in verdict.failed] == ["detection AUC (held out)"]
    assert report_verdict(results, Thresholds(detection_auc=None)).go


def test_the_report_opens_with_the_verdict_and_prints_the_thresholds(tmp_path, cache, digits_results):
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    config = dataclasses.replace(ReportConfig.quick(), thresholds=Thresholds(median_margin=100.0))
    report = build_report(handle, geometry.load_dataset("digits"), config, cache=cache)
    assert report.verdict is not None and not report.verdict.go
    text = report_html(report)
    assert text.index("id='verdict'") < text.index("id='sec-model'")
    assert "data-verdict='no-go'" in text and "median margin &gt;= 100" in text
    assert "median DeepFool margin" in text and "&gt;= 100</td><td class='fail'>fail" in text


def test_the_command_line_takes_the_thresholds_and_fails_a_strict_no_go(tmp_path, capsys, monkeypatch, cache):
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(cache.root))
    base = ["report", "--model", "digits-cnn-silu", "--dataset", "digits", "--quick", "--device", "cpu"]
    base += ["--no-progress", "--out", str(tmp_path / "r.html")]
    lenient = ["--min-accuracy", "0", "--min-median-margin", "0", "--min-low-margin", "0"]
    lenient += ["--min-sweep-accuracy", "0", "--min-detection-auc", "off"]
    assert main([*base, *lenient, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "Go: all 7 checks pass" in out and "detection AUC (held out)" in out and "not checked" in out
    assert main([*base, *lenient, "--min-median-margin", "100", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "No-go: 1 of 7 checks fail" in out and "threshold >= 100: fail" in out
    assert main([*base, "--min-median-margin", "100"]) == 0  # not strict: the report is the product
    assert main([*base, "--min-accuracy", "2"]) == 2
    assert "accuracy" in capsys.readouterr().err


# -- caveats -----------------------------------------------------------------------------------------------------------


def test_a_relu_models_report_carries_the_smoothing_caveat_and_a_silu_models_does_not(cache):
    data = geometry.load_dataset("digits")
    config = ReportConfig.quick()
    x = report_images(data, config.curvature_images, config.seed).images
    relu = geometry.load_model("digits-cnn-relu", device="cpu")
    silu = geometry.load_model("digits-cnn-silu", device="cpu")
    relu_curv = curvature_section(relu, x, config, cache=cache)
    silu_curv = curvature_section(silu, x, config, cache=cache)
    assert relu_curv.curvature.method == "softplus" and silu_curv.curvature.method == "exact"
    assert any("softplus copy" in c and "not on the network itself" in c for c in relu_curv.caveats)
    assert silu_curv.caveats == ()
    relu_det = _detection("digits-cnn-relu", "digits", cache)
    silu_det = _detection("digits-cnn-silu", "digits", cache)
    assert any("finite-difference" in c and "piecewise linear" in c for c in relu_det.caveats)
    assert silu_det.caveats == ()


def test_the_caveats_are_printed_next_to_their_section(cache):
    report = build_report(
        geometry.load_model("digits-cnn-relu", device="cpu"),
        geometry.load_dataset("digits"),
        ReportConfig.quick(),
        cache=cache,
    )
    text = report_html(report)
    curvature = text.split("id='sec-curvature'", 1)[1].split("</section>", 1)[0]
    assert "class='caveat'>Caveat: Measured on a softplus copy" in curvature
    assert report.section("curvature").caveats


def test_non_converged_deepfool_runs_are_a_caveat_only_when_there_are_some():
    norm = torch.tensor([0.1, 0.2, 0.3, 0.4])
    all_ok = DeepFoolSection(
        key="deepfool", applicable=True, note="", norm=norm, converged=torch.ones(4, dtype=torch.bool), typical_norm=1
    )
    some = dataclasses.replace(all_ok, converged=torch.tensor([True, True, False, False]))
    assert all_ok.caveats == () and all_ok.median_margin == pytest.approx(0.25)
    assert "2 of 4 DeepFool runs did not reach the boundary" in some.caveats[0]
    assert some.median_margin == pytest.approx(0.15)  # the converged runs only

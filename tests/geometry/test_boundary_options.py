"""Options objects of the boundary family and their cached forms: one place for defaults, checks once, one cache
entry per (model, images, options)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

import geometry
from geometry.boundary import curvature as curvature_module
from geometry.boundary import deepfool as deepfool_module
from geometry.boundary.curvature import boundary_curvature, cached_curvature
from geometry.boundary.deepfool import cached_deepfool, deepfool
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.runtime.cache import DiskCache
from tests.geometry.analytic import BallInsideClass0, handle_of

RADIUS = 0.8


@pytest.fixture(scope="module")
def ball():
    """Class 0 inside a ball of radius 0.8 in R^6: every principal curvature of its boundary is 1 / 0.8."""
    return handle_of(BallInsideClass0(torch.zeros(6), RADIUS), 6)


@pytest.fixture(scope="module")
def inside():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, generator=gen)
    return 0.4 * x / x.norm(dim=1, keepdim=True)  # at distance 0.4 from the centre: 0.4 from the boundary


def test_the_documented_defaults():
    assert DeepFoolOptions() == DeepFoolOptions(
        target=None, candidates=10, overshoot=0.02, max_iter=50, clip=False, tol=1e-5
    )
    assert CurvatureOptions() == CurvatureOptions(
        k=10,
        method="auto",
        h=None,
        beta=10.0,
        num_random=200,
        max_iter=None,
        tol=1e-4,
        dense_limit=4096,
        seed=0,
        deepfool=DeepFoolOptions(),
    )
    # the keyword forms have no defaults of their own: every option keyword is None ("take the option's value")
    for function, options in ((deepfool, DeepFoolOptions), (boundary_curvature, CurvatureOptions)):
        parameters = inspect.signature(function).parameters
        for field in dataclasses.fields(options):
            if field.name in parameters:
                assert parameters[field.name].default is None, (function.__name__, field.name)


def test_numbers_are_normalised_so_equal_options_have_equal_keys(ball, inside):
    assert DeepFoolOptions(overshoot=0) == DeepFoolOptions(overshoot=0.0)
    assert isinstance(DeepFoolOptions(overshoot=0).overshoot, float)
    assert cached_deepfool.key(ball, inside, DeepFoolOptions(overshoot=0)) == cached_deepfool.key(
        ball, inside, DeepFoolOptions(overshoot=0.0)
    )
    assert CurvatureOptions(beta=10) == CurvatureOptions(beta=10.0)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: DeepFoolOptions(candidates=0), ValueError, r"expected candidates as an int >= 1, got 0"),
        (lambda: DeepFoolOptions(overshoot=-0.1), ValueError, r"expected overshoot as a number in \[0, 10\), got -0.1"),
        (lambda: DeepFoolOptions(tol=0.0), ValueError, r"expected tol as a positive number, got 0.0"),
        (lambda: DeepFoolOptions(clip=1), TypeError, r"expected clip to be True or False, got 1"),
        (lambda: DeepFoolOptions(target=True), TypeError, r"expected target as an int class index or None"),
        (lambda: CurvatureOptions(k=0), ValueError, r"expected k as an int >= 1, got 0"),
        (lambda: CurvatureOptions(method="magic"), ValueError, r"expected method to be one of auto, exact"),
        (lambda: CurvatureOptions(h=-1), ValueError, r"expected h as a positive number, got -1"),
        (lambda: CurvatureOptions(max_iter=0), ValueError, r"expected max_iter as an int >= 1, got 0"),
        (lambda: CurvatureOptions(deepfool={}), TypeError, r"expected deepfool to be a DeepFoolOptions, got dict"),
    ],
)
def test_bad_options_are_refused_when_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_keywords_and_options_give_the_same_result_and_keywords_override(ball, inside):
    by_keywords = deepfool(ball, inside, overshoot=0.05, max_iter=20)
    by_options = deepfool(ball, inside, options=DeepFoolOptions(overshoot=0.05, max_iter=20))
    overridden = deepfool(ball, inside, options=DeepFoolOptions(overshoot=0.5), overshoot=0.05, max_iter=20)
    for result in (by_options, overridden):
        assert result.overshoot == 0.05
        torch.testing.assert_close(result.perturbation, by_keywords.perturbation, atol=0, rtol=0)
    # the overshoot did change the result: r = (1 + overshoot) * (the steps)
    plain = deepfool(ball, inside, options=DeepFoolOptions(overshoot=0.5))
    assert not torch.allclose(plain.norm, by_keywords.norm)


def test_cached_deepfool_computes_once_and_keys_every_option(ball, inside, tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "cache")
    options = DeepFoolOptions(max_iter=20)
    assert not cached_deepfool.is_cached(ball, inside, options, cache=cache)
    first = cached_deepfool(ball, inside, options, cache=cache)
    assert cached_deepfool.is_cached(ball, inside, options, cache=cache) and len(cache) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(deepfool_module, "deepfool", refuse)
    again = cached_deepfool(ball, inside, options, cache=cache)
    torch.testing.assert_close(again.boundary_point, first.boundary_point, atol=0, rtol=0)
    # every option is in the key, the bisection tolerance too (the Train view's old hand-made key left it out)
    for changed in (dataclasses.replace(options, tol=1e-3), dataclasses.replace(options, clip=True), DeepFoolOptions()):
        assert cached_deepfool.key(ball, inside, changed) != cached_deepfool.key(ball, inside, options)
    assert cached_deepfool.key(ball, inside, options) != cached_deepfool.key(ball, inside[:2], options)


def test_cached_curvature_measures_the_balls_curvature_once(ball, inside, tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(tmp_path / "default"))  # where its DeepFool step is kept
    cache = DiskCache(tmp_path / "cache")
    options = CurvatureOptions(k=2, num_random=16, seed=3)
    result = cached_curvature(ball, inside, options, cache=cache)
    torch.testing.assert_close(
        result.curvatures, torch.full((3, 4), 1 / RADIUS, dtype=torch.float64), atol=1e-3, rtol=0
    )
    direct = boundary_curvature(ball, inside, options=options)
    torch.testing.assert_close(result.curvatures, direct.curvatures, atol=0, rtol=0)
    torch.testing.assert_close(result.random_curvatures, direct.random_curvatures, atol=0, rtol=0)
    assert geometry.cached_deepfool.is_cached(ball, inside, options.deepfool)  # shared with a page's DeepFool step

    def refuse(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(curvature_module, "boundary_curvature", refuse)
    entries = len(cache)
    again = cached_curvature(ball, inside, options, cache=cache)
    assert len(cache) == entries
    torch.testing.assert_close(again.directions, result.directions, atol=0, rtol=0)
    assert not cached_curvature.is_cached(ball, inside, dataclasses.replace(options, num_random=8), cache=cache)


def test_keyword_forms_of_curvature_route_target_clip_and_overshoot_to_deepfool(ball, inside):
    by_keywords = boundary_curvature(ball, inside, k=1, num_random=0, overshoot=0.1, target=1)
    by_options = boundary_curvature(
        ball, inside, options=CurvatureOptions(k=1, num_random=0, deepfool=DeepFoolOptions(overshoot=0.1, target=1))
    )
    assert by_keywords.target.tolist() == by_options.target.tolist() == [1, 1, 1]
    torch.testing.assert_close(by_keywords.curvatures, by_options.curvatures, atol=0, rtol=0)
    torch.testing.assert_close(by_keywords.deepfool_norm, by_options.deepfool_norm, atol=0, rtol=0)

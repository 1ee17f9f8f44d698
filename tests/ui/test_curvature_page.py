"""AppTest of the Curvature page: the figures show the library's numbers, choices recompute, errors are st.error."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import geometry
import geometry.boundary.curvature as curvature_module
import ui.curvature as ui_curvature
import ui.train as ui_train
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.runtime.cache import default_cache
from tests.ui.apptest import app, decode, figures

PAGE = "views/curvature.py"


def _page(**sidebar):
    at = app(**sidebar).run()
    at.switch_page(PAGE).run()
    return at


def _figure(at, title: str) -> dict:
    found = [f for f in figures(at) if title in str(f["layout"].get("title", {}).get("text", ""))]
    assert len(found) == 1, [f["layout"].get("title") for f in figures(at)]
    return found[0]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def default_page():
    at = _page()
    assert not at.exception
    return at


def test_default_page_shows_the_librarys_curvature(default_page):
    at = default_page
    assert at.title[0].value == "Curvature"
    assert [s.value for s in at.subheader] == [
        "DeepFool perturbation",
        "Curvature spectrum",
        "Principal directions",
        "Cross-sections with osculating parabolas",
        "Curvature along random directions",
        "Curvature and vulnerability",
    ]
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits").images[:1]  # the sidebar's first pick, #0
    expected = geometry.boundary_curvature(handle, x, k=10, num_random=300)
    bars = decode(_figure(at, "Principal curvatures")["data"][0]["y"])
    np.testing.assert_allclose(bars, expected.curvatures[0].numpy(), rtol=1e-4, atol=1e-5)
    df = geometry.deepfool(handle, x)
    metrics = _metrics(at)
    assert metrics["‖r‖ (L2)"] == f"{float(df.norm[0]):.4f}"
    assert metrics["Class change"] == f"{int(df.original_label[0])} → {int(df.label_reached[0])}"
    assert any("Measured by: Exact Hessian" in i.value for i in at.info)
    assert any("κ > 0: the boundary bends towards x" in m.value for m in at.markdown)
    hist = decode(_figure(at, "random tangent directions")["data"][0]["x"])
    assert len(hist) == 300
    # the cross-section's black curve passes through z = (0, 0) and the figure draws the parabola -κt²/2
    prof = _figure(at, "most positive")
    boundary = next(t for t in prof["data"] if t.get("name") == "boundary F = 0")
    parabola = next(t for t in prof["data"] if t.get("name", "").startswith("osculating"))
    t, s = decode(boundary["x"]), decode(boundary["y"])
    assert abs(s[np.argmin(np.abs(t))]) < 1e-3
    np.testing.assert_allclose(decode(parabola["y"]), -0.5 * float(bars[0]) * decode(parabola["x"]) ** 2, rtol=1e-6)
    assert len(at.main.get("image")) == 3 + 8  # x, r magnified, x + r, and the 4 + 4 extreme principal directions
    # x's star sits at its orthogonal projection onto the plane (u_1, n) through z: ((x - z).u_1, (x - z).n), which
    # is not minus the distance ||z - x|| (x - z is not along n at z)
    _assert_x_is_projected(prof, x, expected, 0)
    # the random-direction caption states the measured share of flat directions
    rand, kappa = expected.random_curvatures[0].double().numpy(), expected.curvatures[0].numpy()
    cutoff = 0.1 * np.abs(kappa).max()
    share = float(np.mean(np.abs(rand) < cutoff))
    assert any(
        f"{share:.0%} of the 300 random tangent directions have |κ| < {cutoff:.3g}" in c.value for c in at.caption
    )


def _assert_x_is_projected(fig: dict, x, curvature, direction: int) -> None:
    star = next(t for t in fig["data"] if t.get("name") == "x (projected)")
    d = (x[0] - curvature.boundary_point[0]).flatten().double()
    t = float(d @ curvature.directions[0, direction].flatten().double())
    s = float(d @ curvature.normal[0].flatten().double())
    np.testing.assert_allclose([star["x"][0], star["y"][0]], [t, s], rtol=1e-4, atol=1e-5)
    assert abs(s + float(curvature.boundary_distance[0])) > 1e-2  # the old placement, -||z - x||, was off


def _refusing(function):
    """A stand-in for ``function`` that fails when called; it keeps the function's module and annotations, which
    the cache key's code version and the result type are read from."""

    @functools.wraps(function)
    def refuse(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")

    return refuse


def test_second_view_comes_from_the_disk_cache(default_page, monkeypatch):
    entries = len(default_cache())
    for memoized in (
        geometry.cached_deepfool,
        geometry.cached_curvature,
        curvature_module.cached_curvature_profiles,
        curvature_module.cached_curvature_vulnerability,
    ):
        monkeypatch.setattr(memoized, "function", _refusing(memoized.function))
    at = _page()
    assert not at.exception and not at.error
    assert len(default_cache()) == entries


def test_choosing_a_target_class_recomputes_towards_it():
    at = _page()
    at.selectbox(key="curv_target").set_value(3).run()
    assert not at.exception
    assert _metrics(at)["Class change"].endswith("→ 3")
    assert any("Towards class 3" in c.value for c in at.caption)


def test_a_target_behind_another_class_is_said():
    # image #0 (predicted 1): the way to class 0 leaves 1's region into class 8 first; to class 3 it goes straight
    at = _page()
    at.selectbox(key="curv_target").set_value(0).run()
    assert not at.exception
    notes = [i.value for i in at.info if "leaves the region of" in i.value]
    assert len(notes) == 1 and "into class 8 first" in notes[0] and "not on one with 0" in notes[0]
    assert "F = f(8) − f(1)" in " ".join(m.value for m in at.markdown)  # the curvature is that of the 1 | 8 boundary
    at.selectbox(key="curv_target").set_value(3).run()
    assert not any("leaves the region of" in i.value for i in at.info)


def test_clip_is_stated(default_page):
    at = _page()
    at.toggle(key="curv_clip").set_value(True).run()
    assert not at.exception
    assert any("clipped to [0, 1]" in c.value for c in at.caption)


def test_relu_model_uses_softplus_offers_finite_differences_and_explains_an_all_zero_exact_spectrum():
    at = _page(builtin_model="digits-cnn-relu")
    assert not at.exception
    assert any("Measured by: Softplus" in i.value and "piecewise linear" in i.value for i in at.info)
    relu = geometry.load_model("digits-cnn-relu", device="cpu")
    x = geometry.load_dataset("digits").images[:1]
    soft = geometry.boundary_curvature(relu, x, k=10, num_random=300)
    _assert_x_is_projected(_figure(at, "most positive"), x, soft, 0)  # z on the smoothed boundary: its own plane
    _assert_x_is_projected(_figure(at, "most negative"), x, soft, soft.curvatures.shape[1] - 1)
    assert np.abs(decode(_figure(at, "Principal curvatures")["data"][0]["y"])).max() > 0
    at.selectbox(key="curv_method").set_value("finite-difference").run()
    assert not at.exception
    assert any("Measured by: Finite differences" in i.value for i in at.info)
    assert np.abs(decode(_figure(at, "Principal curvatures")["data"][0]["y"])).max() > 0
    relu = geometry.load_model("digits-cnn-relu", device="cpu")
    fd = geometry.boundary_curvature(
        relu, geometry.load_dataset("digits").images[:1], k=10, num_random=0, method="finite-difference"
    )
    kinked = any("far from symmetric" in w.value for w in at.warning)
    assert kinked == (float(fd.asymmetry[0]) > 0.3)
    assert any("Assembled from 63 finite-difference products" in c.value for c in at.caption)
    at.selectbox(key="curv_method").set_value("exact").run()
    assert not at.exception
    assert np.abs(decode(_figure(at, "Principal curvatures")["data"][0]["y"])).max() == 0
    assert any(
        "Every principal curvature is exactly 0" in w.value and "piecewise-linear" in w.value for w in at.warning
    )


def test_2d_toy_model_shows_the_curvature_of_the_boundary_curve():
    at = _page(builtin_model="moons-mlp")
    assert not at.exception
    bars = decode(_figure(at, "Principal curvatures")["data"][0]["y"])
    assert bars.shape == (1,)
    assert any("2D model's boundary is a curve" in i.value for i in at.info)
    assert any("this view needs image inputs" in i.value for i in at.info)
    assert _figure(at, "The boundary curve around z")


def test_a_failing_computation_is_an_error_message_not_a_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("expected a smooth boundary, got a broken one")

    monkeypatch.setattr(curvature_module, "boundary_curvature", broken)  # what cached_curvature computes with
    at = app().run()
    at.switch_page(PAGE)
    at.session_state["curv_seed"] = 4321  # a new cache key: nothing cached to fall back on
    at.run()
    assert not at.exception
    assert any("expected a smooth boundary, got a broken one" in e.value for e in at.error)


def test_the_flatness_caption_follows_the_measurement():
    kappa = np.array([2.0, 0.5, -0.1, -1.0])  # largest |κ| 2: |κ| < 0.2 counts as flat
    almost_all = ui_curvature.flatness_caption(np.r_[np.full(95, 0.05), np.full(5, 1.0)], kappa)
    assert almost_all.startswith("95% of the 100 random tangent directions have |κ| < 0.2 (10% of the largest")
    assert "flat along almost every direction and curved along a few" in almost_all
    most = ui_curvature.flatness_caption(np.r_[np.full(6, -0.1), np.full(4, -0.5)], kappa)
    assert most.startswith("60% of the 10 random") and "flat along most directions; 40% of them are more curved" in most
    few = ui_curvature.flatness_caption(np.r_[np.full(3, 0.19), np.full(7, 0.2), [np.nan]], kappa)  # 0.2 is not < 0.2
    assert few.startswith("30% of the 10 random") and "not flat along most directions" in few and "70%" in few
    flat = ui_curvature.flatness_caption(np.zeros(8), np.zeros(4))
    assert flat.startswith("Every computed principal curvature is 0, and 100% of the 8") and "no curvature" in flat
    assert ui_curvature.flatness_caption(np.zeros(0), kappa) == "No random tangent directions were sampled."


def test_the_page_and_the_train_view_share_one_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDARY_ATLAS_CACHE", str(tmp_path / "cache"))
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits").images[:1]
    # the page's options as the view builds them from its widgets (k = 1, nearest class, no clipping), here with no
    # random directions, which is what the Train view's comparison measures
    page = CurvatureOptions(
        k=1, method="auto", h=None, beta=10.0, num_random=0, seed=0, deepfool=DeepFoolOptions(target=None, clip=False)
    )
    assert len(default_cache()) == 0
    assert not geometry.cached_curvature.is_cached(handle, x, page)
    on_page = ui_curvature.run_curvature(handle, x, page)
    entries = len(default_cache())
    assert entries == 2  # the curvature and its DeepFool step

    def refuse(*args, **kwargs):
        raise AssertionError("the Train view recomputed what the page had cached")

    monkeypatch.setattr(curvature_module, "boundary_curvature", refuse)
    assert geometry.cached_curvature.is_cached(handle, x, ui_train.CURVATURE)
    assert not geometry.cached_curvature.is_cached(handle, x, CurvatureOptions(k=1, num_random=0, seed=1))
    in_train = ui_train.curvatures(handle, x)
    assert len(default_cache()) == entries
    np.testing.assert_array_equal(in_train.curvatures.numpy(), on_page.curvatures.numpy())
    np.testing.assert_array_equal(in_train.directions.numpy(), on_page.directions.numpy())

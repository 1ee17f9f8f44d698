"""AppTest of the Slices page: the default view, requests from other pages, shared links, two models, bad input."""

from __future__ import annotations

import pytest

import geometry
from geometry.planes import normal_plane, three_image_plane
from geometry.slice_stats import region_iou
from geometry.slices import evaluate_slice
from tests.ui.apptest import app, decode, figures

PAGE = "views/slices.py"


@pytest.fixture(scope="module")
def digits():
    return geometry.load_dataset("digits")


@pytest.fixture(scope="module")
def silu():
    return geometry.load_model("digits-cnn-silu", device="cpu")


def _slice_figure(at):
    figs = figures(at)
    return next(f for f in figs if f["layout"].get("images"))


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_default_view_is_the_deepfool_normal_plane_around_the_first_picked_image(silu, digits):
    at = app()
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Slices"
    assert at.selectbox(key="slices_kind").value == "normal"
    fig = _slice_figure(at)
    names = [t.get("name", "") for t in fig["data"]]
    assert "x0" in names and any(n.startswith("DeepFool point") for n in names)
    # the figure's anchors are the plane's: x0 at (0, 0) and the DeepFool point at the DeepFool distance
    plane = normal_plane(silu, digits.images[0], seed=0)
    ((name, (a, b)),) = [(k, c) for k, c in plane.anchors.items() if k != "x0"]
    trace = next(t for t in fig["data"] if t.get("name") == name)
    assert trace["x"][0] == pytest.approx(a, rel=1e-5) and trace["y"][0] == pytest.approx(b, abs=1e-5)
    metrics = _metrics(at)
    assert float(metrics["To the boundary"]) == pytest.approx(a, abs=2 * (4 * a) / 255)  # within 2 grid cells
    assert int(metrics["Classes in view"]) >= 2
    # the point panel starts at x0 and shows the model's prediction there
    pred = int(silu.predict(digits.images[:1]))
    assert any(m.value.startswith(f"Predicted **{silu.class_names[pred]}**") for m in at.markdown)
    # the URL reproduces the view
    qp = at.query_params
    assert qp["plane"] == "normal" and qp["x0"] == "0" and qp["model"] == "digits-cnn-silu"


def test_a_three_image_request_from_the_feature_space_page_is_honoured_and_cleared(silu, digits):
    at = app()
    at.run()
    at.session_state["slice_request"] = {"kind": "three_images", "indices": [5, 11, 42]}
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="slices_kind").value == "three"
    assert at.multiselect(key="slices_three").value == [5, 11, 42]
    assert "slice_request" not in at.session_state
    fig = _slice_figure(at)
    plane = three_image_plane(*digits.images[[5, 11, 42]])
    for name, (a, b) in zip(("#5", "#11", "#42"), plane.anchors.values(), strict=True):
        trace = next(t for t in fig["data"] if t.get("name") == name)
        assert trace["x"][0] == pytest.approx(a, rel=1e-5, abs=1e-6) and trace["y"][0] == pytest.approx(b, abs=1e-5)


def test_a_shared_link_reproduces_the_view():
    at = app()
    at.query_params["plane"] = "random"
    at.query_params["seed"] = "7"
    at.query_params["res"] = "128"
    at.query_params["extent"] = "-1.5,2,-1,1"
    at.query_params["adaptive"] = "0"
    at.query_params["x0"] = "2"
    at.query_params["a"] = "0.5"
    at.query_params["b"] = "-0.25"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="slices_kind").value == "random"
    assert at.number_input(key="slices_seed").value == 7
    assert at.select_slider(key="slices_res").value == 128
    assert at.toggle(key="slices_adaptive").value is False
    assert at.selectbox(key="slices_x0").value == 2
    assert at.checkbox(key="slices_manual_extent").value is True
    assert [at.number_input(key=f"slices_ext_{k}").value for k in ("a0", "a1", "b0", "b1")] == [-1.5, 2.0, -1.0, 1.0]
    assert _metrics(at)["Evaluations"] == f"{128 * 128:,}"  # dense
    assert at.number_input(key="slices_a").value == 0.5 and at.number_input(key="slices_b").value == -0.25
    fig = _slice_figure(at)
    image = fig["layout"]["images"][0]
    assert image["x"] == pytest.approx(-1.5 - 3.5 / 127 / 2) and image["sizex"] == pytest.approx(3.5 * 128 / 127)


def test_a_second_model_on_the_same_plane_shows_the_iou(silu, digits):
    at = app()
    at.run()
    at.session_state["slices_kind"] = "three"
    at.session_state["slices_three"] = [0, 1, 2]
    at.session_state["slices_res"] = 64
    at.session_state["slices_model2"] = "digits-mlp-relu"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    plane = three_image_plane(*digits.images[:3], names=("#0", "#1", "#2"))
    r1 = evaluate_slice(silu, plane, extent=plane.extent_hint, resolution=64)
    r2 = evaluate_slice(
        geometry.load_model("digits-mlp-relu", device="cpu"), plane, extent=plane.extent_hint, resolution=64
    )
    expected = region_iou(r1.labels, r2.labels, 10)
    metrics = _metrics(at)
    assert float(metrics["IoU of the regions"]) == pytest.approx(expected.mean_iou, abs=1e-3)
    assert metrics["Same label"] == f"{expected.agreement:.1%}"
    assert sum(1 for f in figures(at) if f["layout"].get("images")) == 2


def test_a_point_typed_in_shows_the_models_prediction_there(silu, digits):
    at = app()
    at.run()
    at.session_state["slices_kind"] = "random"
    at.session_state["slices_res"] = 64
    at.session_state["slices_a"] = 1.25
    at.session_state["slices_b"] = -0.5
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    plane = geometry.random_plane(digits.images[0], seed=0)
    probs = silu.probabilities(plane.point(1.25, -0.5).unsqueeze(0))[0].numpy()
    k = int(probs.argmax())
    assert any(m.value.startswith(f"Predicted **{silu.class_names[k]}** ({probs[k]:.1%})") for m in at.markdown)
    fig = _slice_figure(at)
    sel = next(t for t in fig["data"] if t.get("name") == "selected point")
    assert (sel["x"][0], sel["y"][0]) == (1.25, -0.5)


def test_a_toy_model_shows_its_whole_input_space_with_the_data():
    at = app(builtin_model="moons-mlp")
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="slices_kind").value == "input"
    fig = _slice_figure(at)
    data = next(t for t in fig["data"] if t.get("name") == "data")
    assert len(decode(data["x"])) == len(geometry.load_dataset("moons"))  # every test point lies in the view
    assert int(_metrics(at)["Classes in view"]) == 2


def test_the_upload_plane_without_a_file_and_a_bad_link_show_errors_not_tracebacks():
    at = app()
    at.run()
    at.session_state["slices_kind"] = "custom"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("upload an .npy file" in e.value for e in at.error)
    bad = app()
    bad.query_params["res"] = "many"
    bad.run()
    bad.switch_page(PAGE).run()
    assert not bad.exception, bad.exception
    assert any("parameter 'res' is invalid" in e.value for e in bad.error)


@pytest.mark.parametrize("kind", ["two", "dct", "curvature", "random"])
def test_every_plane_kind_renders_with_its_anchors(kind):
    at = app()
    at.run()
    at.session_state["slices_kind"] = kind
    at.session_state["slices_res"] = 64
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="slices_kind").value == kind
    fig = _slice_figure(at)
    names = {t.get("name", "") for t in fig["data"]}
    assert "x0" in names
    if kind == "two":
        assert sum(n.startswith("DeepFool → ") for n in names) == 2
    if kind == "curvature":
        assert any(n.startswith("boundary point") for n in names)
        assert "curvature" in fig["layout"]["title"]["text"]
    assert at.query_params["plane"] == kind


def test_a_link_to_another_model_switches_the_sidebar_to_it():
    at = app()
    at.query_params["model"] = "digits-cnn-relu"
    at.query_params["plane"] = "random"
    at.query_params["res"] = "64"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert _slice_figure(at)["layout"]["title"]["text"].startswith("digits-cnn-relu")
    assert at.query_params["model"] == "digits-cnn-relu"

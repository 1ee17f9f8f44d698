"""AppTest of the Slices page: the default view, requests from other pages, shared links, two models, bad input."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

import geometry
from geometry.figures.common import class_color
from geometry.slices.boundary_planes import normal_plane
from geometry.slices.planes import three_image_plane
from tests.ui.apptest import app, decode, figures
from ui import slices as U

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


def _dense_labels(handle, plane, extent, n):
    """Labels on the page's n x n grid straight from the model (not through evaluate_slice)."""
    a = np.linspace(extent[0], extent[1], n)
    b = np.linspace(extent[2], extent[3], n)
    aa, bb = np.meshgrid(a, b)
    return handle.predict(plane.points(aa.ravel(), bb.ravel())).numpy().reshape(n, n)


def test_a_second_model_on_the_same_plane_shows_the_iou(silu, digits):
    at = app()
    at.run()
    at.session_state["slices_kind"] = "three"
    at.session_state["slices_three"] = [0, 1, 2]
    at.session_state["slices_res"] = 64
    at.session_state["slices_adaptive"] = False
    at.session_state["slices_model2"] = "digits-mlp-relu"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    plane = three_image_plane(*digits.images[:3], names=("#0", "#1", "#2"))
    first = _dense_labels(silu, plane, plane.extent_hint, 64)
    second = _dense_labels(geometry.load_model("digits-mlp-relu", device="cpu"), plane, plane.extent_hint, 64)
    ious = [
        np.sum((first == c) & (second == c)) / np.sum((first == c) | (second == c))
        for c in range(10)
        if np.any((first == c) | (second == c))
    ]
    assert 0.0 < np.mean(ious) < 1.0  # the two models draw different regions here
    metrics = _metrics(at)
    # the model's own predictions may flip on a few points exactly at a boundary (float rounding of the inputs)
    assert float(metrics["IoU of the regions"]) == pytest.approx(np.mean(ious), abs=5e-3)
    assert float(metrics["Same label"].rstrip("%")) / 100 == pytest.approx(np.mean(first == second), abs=2e-3)
    slices = [f for f in figures(at) if f["layout"].get("images")]
    assert len(slices) == 2
    # one colour per class in both figures
    legends = [
        {t["name"].split(" (")[0]: t["marker"]["color"] for t in f["data"] if t.get("legendgroup")} for f in slices
    ]
    shared = legends[0].keys() & legends[1].keys()
    assert shared and all(legends[0][n] == legends[1][n] for n in shared)


def _image(fig) -> np.ndarray:
    source = fig["layout"]["images"][0]["source"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def test_a_link_carries_the_class_pair_and_the_display_toggles():
    at = app()
    for key, value in {"plane": "random", "res": "64", "pair": "3,5", "shade": "0", "dim": "0"}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert (at.selectbox(key="slices_pair_i").value, at.selectbox(key="slices_pair_j").value) == (3, 5)
    assert at.toggle(key="slices_shade").value is False and at.toggle(key="slices_dim").value is False
    fig = _slice_figure(at)
    assert any(t["type"] == "contour" and t["name"] == "f(3) = f(5)" for t in fig["data"])
    # neither shaded nor dimmed: every pixel of the regions is exactly a class colour
    colours = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in (class_color(k, 10) for k in range(10))}
    assert {tuple(p) for p in np.unique(_image(fig).reshape(-1, 3), axis=0)} <= colours
    # and the link the page writes back carries them
    qp = at.query_params
    assert (qp["pair"], qp["shade"], qp["dim"]) == ("3,5", "0", "0")
    # the default view is shaded: the same plane without the link's toggles has pixels of other colours
    plain = app()
    plain.query_params["plane"], plain.query_params["res"] = "random", "64"
    plain.run()
    plain.switch_page(PAGE).run()
    assert not plain.exception, plain.exception
    assert not {tuple(p) for p in np.unique(_image(_slice_figure(plain)).reshape(-1, 3), axis=0)} <= colours
    assert plain.query_params["shade"] == "1" and "pair" not in plain.query_params


def test_the_three_image_plane_has_its_origin_at_the_first_image():
    at = app()
    at.run()
    at.session_state["slices_kind"] = "three"
    at.session_state["slices_three"] = [5, 11, 42]
    at.session_state["slices_x0"] = 0  # a different origin picked before: must not be what the page shows
    at.session_state["slices_res"] = 64
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    origin = next(s for s in at.selectbox if s.label == "Origin x0")
    assert origin.value == 5 and origin.disabled
    fig = _slice_figure(at)
    star = next(t for t in fig["data"] if t.get("name") == "#5")
    assert (star["x"][0], star["y"][0]) == (0.0, 0.0) and star["marker"]["symbol"] == "star"
    assert at.query_params["x0"] == "5"


def test_an_upload_link_says_that_a_link_cannot_carry_the_file():
    at = app()
    at.query_params["plane"] = "custom"
    at.query_params["upload"] = "0123456789abcdef"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("a link cannot carry a file" in i.value and "0123456789abcdef" in i.value for i in at.info)
    assert any("upload an .npy file" in e.value for e in at.error)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seed", "-3", "parameter 'seed' is invalid"),
        ("pair", "4,4", "parameter 'pair' is invalid"),
        ("shade", "maybe", "parameter 'shade' is invalid"),
        ("which", "largest", "parameter 'which' is invalid"),
        ("a", "nan", "parameter 'a' is invalid"),
    ],
)
def test_a_bad_link_parameter_shows_an_error_not_a_traceback(key, value, message):
    at = app()
    at.query_params["plane"] = "random"
    at.query_params["res"] = "64"
    at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error)
    assert _slice_figure(at)  # the page still draws the default view


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


def test_a_toy_model_shows_its_whole_input_space_with_the_data_and_the_deepfool_point():
    at = app(builtin_model="moons-mlp")
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="slices_kind").value == "input"
    fig = _slice_figure(at)
    data = next(t for t in fig["data"] if t.get("name") == "data")
    moons = geometry.load_dataset("moons")
    assert len(decode(data["x"])) == len(moons)  # every test point lies in the view
    assert int(_metrics(at)["Classes in view"]) == 2
    # x0 at its own coordinates, and its DeepFool point: the label flips just past it and not just before it
    x0 = moons.images[0].double()
    star = next(t for t in fig["data"] if t.get("name") == "x0")
    assert (star["x"][0], star["y"][0]) == pytest.approx((float(x0[0]), float(x0[1])), abs=1e-6)
    marker = next(t for t in fig["data"] if t.get("name", "").startswith("DeepFool point"))
    z = torch.tensor([marker["x"][0], marker["y"][0]], dtype=torch.float64)
    handle = geometry.load_model("moons-mlp", device="cpu")
    before, beyond = handle.predict(torch.stack([x0 + 0.97 * (z - x0), x0 + 1.03 * (z - x0)]).float()).tolist()
    assert before == int(handle.predict(x0.float().unsqueeze(0))) != beyond


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


def test_out_of_range_numbers_in_a_link_are_brought_into_range_with_a_note(digits):
    """Issue 14 item 6: a link's numbers outside the page's ranges were clamped without a word."""
    at = app()
    for key, value in {"plane": "dct", "res": "1", "x0": "100000", "dct": "50"}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    notes = [i.value for i in at.info]
    assert "resolution 1 in the link is below the minimum 64: using 64" in notes
    assert "DCT band size 50 in the link is outside 1 to 4: using 4" in notes
    image_note = next(n for n in notes if n.startswith("image 100000 in the link is not among the"))
    last = int(image_note.rsplit(" ", 1)[1])
    assert at.select_slider(key="slices_res").value == 64
    assert at.slider(key="slices_dct").value == 4
    assert at.selectbox(key="slices_x0").value == last
    assert not at.error


def test_link_numbers_above_the_page_maximum_are_clamped_to_it(silu, digits):
    qp = {"res": 99999, "target": 42, "x0": -5}
    notes = U.clamp_link_values(qp, silu, digits)
    assert notes == [
        "resolution 99999 in the link is above the maximum 1024: using 1024",
        f"image -5 in the link is not among the {len(digits)} images of digits (0 to {len(digits) - 1}): using image 0",
        "class 42 in the link is not one of digits-cnn-silu's 10 classes: using the nearest class",
    ]
    assert qp == {"res": 1024, "x0": 0}
    assert U.clamp_link_values({"res": 300, "dct": 2}, silu, digits) == [
        "resolution 300 in the link is not one of the page's resolutions (64, 128, 192, 256, 384, 512, 768, 1024): "
        "using 256"
    ]

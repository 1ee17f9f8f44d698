"""AppTest of the Feature space page: what it draws matches the model's own predictions; bad cases show st.error."""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest
import torch

import geometry
from tests.ui.apptest import app, figures
from ui import features as ui

os.environ.setdefault("BOUNDARY_ATLAS_UMAP_WARMUP", "0")  # no background numba compile in the test process

PAGE = "views/features.py"


@pytest.fixture(scope="module")
def digits():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits", "test")
    return handle, data, handle.predict(data.images).numpy()


def _open(**session):
    at = app(**session).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _scatter(at) -> dict:
    return next(f for f in figures(at) if f["layout"].get("dragmode") == "lasso")


def _decode(value) -> np.ndarray:
    """Plotly 7's {"dtype", "bdata", "shape"} arrays (shape may be a string such as "45, 1") or plain lists."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def _points(fig: dict, name: str) -> np.ndarray:
    """Data set indices (customdata) of the points of the trace called ``name``."""
    trace = next(t for t in fig["data"] if t.get("name") == name)
    return _decode(trace["customdata"]).ravel().astype(int)


def test_default_view_draws_the_whole_test_set_with_the_models_predictions(digits):
    handle, data, pred = digits
    at = _open()
    assert at.title[0].value == "Feature space"
    m = _metrics(at)
    assert m["Samples"] == "450" and m["Dimension"] == "128"
    assert m["Accuracy"] == f"{(pred == data.labels.numpy()).mean():.1%}"
    assert m["Misclassified"] == str(int((pred != data.labels.numpy()).sum()))
    assert m["Agreement"].endswith("%") and m["Held-out"].endswith("%")
    scatter = _scatter(at)
    per_class = [_points(scatter, name) for name in handle.class_names]
    shown = np.concatenate(per_class)
    assert sorted(shown.tolist()) == list(range(450))  # every sample once, identified by its data set index
    for k, idx in enumerate(per_class):  # coloured by true class
        assert (data.labels.numpy()[idx] == k).all()
    wrong = np.flatnonzero(pred != data.labels.numpy())
    np.testing.assert_array_equal(np.sort(_points(scatter, "misclassified")), wrong)
    assert any(t["type"] == "heatmap" for t in scatter["data"])  # the painted background
    # the exact feature plane through the sidebar's picks #0, #1, #2 predicts each one's own class
    plane = next(f for f in figures(at) if "plane through the three" in str(f["layout"].get("title", "")))
    anchors = next(t for t in plane["data"] if t.get("name") == "chosen samples")
    assert anchors["text"] == [f"#{i} → {handle.class_names[pred[i]]}" for i in (0, 1, 2)]
    assert any(t.get("name") == "boundaries" for t in plane["data"])
    # beside it, the pixel-space slice through the same three images
    pixel = next(f for f in figures(at) if "Pixel space" in str(f["layout"].get("title", "")))
    anchors = next(t for t in pixel["data"] if t.get("name") == "chosen samples")
    assert anchors["text"] == [f"#{i} → {handle.class_names[pred[i]]}" for i in (0, 1, 2)]
    assert pixel["layout"]["xaxis"]["title"]["text"] == "a (L2 pixel units)"


def test_colouring_by_predicted_class(digits):
    handle, _, pred = digits
    at = _open(feat_color="predicted")
    scatter = _scatter(at)
    for k, name in enumerate(handle.class_names):
        assert (pred[_points(scatter, name)] == k).all()


def test_tsne_on_a_small_sample_and_the_pca_plane():
    at = _open(feat_sample=80, feat_embedding="tsne", feat_plane_kind="pca")
    assert _metrics(at)["Samples"] == "80"
    scatter = _scatter(at)
    assert scatter["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    assert sum(len(_points(scatter, n)) for n in map(str, range(10))) == 80
    assert any("top-2 PCA plane" in str(f["layout"].get("title", "")) for f in figures(at))


def test_the_hull_test_runs_on_request_and_is_cached():
    at = _open(feat_sample=60, feat_hull_n=15)
    assert "Outside the overall hull" not in _metrics(at)
    at.button(key="feat_hull_run").click().run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert m["Outside the overall hull"] == "100%"  # 128-d features: every test sample extrapolates
    assert m["Training features"] == "1,347"
    at.run()  # a plain rerun finds the report in the cache
    assert "Outside the overall hull" in _metrics(at)


def test_a_layer_without_an_affine_head_explains_why_there_are_no_regions():
    at = _open(feat_sample=50, feat_layer="network.body.4")
    assert _metrics(at)["Dimension"] == str(32 * 4 * 4)
    infos = " ".join(i.value for i in at.info)
    assert "No regions to paint at this layer" in infos and "not the input of the final affine layer" in infos
    assert not at.error


@pytest.mark.filterwarnings("ignore:`torch.jit.[a-z]*` is deprecated:FutureWarning")
def test_a_torchscript_model_shows_an_error_not_a_traceback(tmp_path):
    net = geometry.build_architecture("cnn", input_shape=(1, 8, 8), num_classes=10)
    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    at = _open(model_source="Path", model_path=str(path), model_shape="1, 8, 8")
    assert any("TorchScript" in e.value for e in at.error), [e.value for e in at.error]


def test_a_toy_2d_model():
    at = _open(builtin_model="moons-mlp")
    assert not at.error, [e.value for e in at.error]
    assert int(_metrics(at)["Samples"]) == len(geometry.load_dataset("moons", "test"))
    assert _scatter(at)


def test_selected_points_map_back_to_data_set_indices():
    import plotly.graph_objects as go

    fig = go.Figure([go.Scattergl(x=[0, 1], y=[0, 1], customdata=[[7], [9]]),
                     go.Scattergl(x=[2], y=[2], customdata=[[4]])])  # fmt: skip
    event = {"selection": {"points": [
        {"curve_number": 0, "point_index": 1, "customdata": {"0": 9}},  # how Streamlit reports a 2-D customdata row
        {"curve_number": 0, "point_index": 0, "customdata": [7]},
        {"curve_number": 1, "point_index": 0},  # WebGL points may come without customdata: looked up in the figure
        {"curve_number": 0, "point_index": 1, "customdata": 9},  # the same sample again (e.g. its ✗ marker)
    ]}}  # fmt: skip
    assert ui.selected_indices(event, fig) == [9, 7, 4]
    assert ui.selected_indices(event) == [9, 7]
    assert ui.selected_indices({"selection": {"points": []}}) == []
    assert ui.selected_indices(None) == []


def test_three_of_a_selection_are_of_different_classes_where_possible():
    classes = {1: 0, 2: 0, 3: 5, 4: 5, 5: 2}
    assert ui.pick_three([1, 2, 3, 4, 5], classes) == [1, 3, 5]
    assert ui.pick_three([1, 2, 3], classes) == [1, 3, 2]  # only two classes: the next one fills in
    assert ui.pick_three([4, 2], classes) == [4, 2]

"""AppTest of the Feature space page: what it draws matches the model's own predictions; bad cases show st.error."""

from __future__ import annotations

import base64
import io
import json
import os
import re

import numpy as np
import pytest
import torch
from streamlit.proto.WidgetStates_pb2 import WidgetState

import geometry
from geometry.features.embedding import embed
from geometry.features.extract import compute_features
from geometry.features.morph import morph
from geometry.features.regions import paint_regions
from tests.ui.apptest import app, figures
from ui import features as ui
from ui import hover_images

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


def _run_with_selection(at, indices: list[int]):
    """Run the page as if the user had lassoed the scatter's points of data set ``indices`` (in this order).

    AppTest (1.67) has no API for a plotly chart's selection: the chart's widget state is added to the states
    AppTest collects from the other widgets (private ``_tree``/``_run``), in the shape the browser sends.
    """
    chart = next(c for c in at.get("plotly_chart") if json.loads(c.proto.spec)["layout"].get("dragmode") == "lasso")
    fig = json.loads(chart.proto.spec)
    points = []
    for i in indices:
        curve, trace = next(
            (n, t)
            for n, t in enumerate(fig["data"])
            if t.get("type") == "scattergl" and i in _decode(t["customdata"]).ravel()
        )
        where = int(np.flatnonzero(_decode(trace["customdata"]).ravel() == i)[0])
        points.append({"curve_number": curve, "point_number": where, "point_index": where, "customdata": {"0": int(i)}})
    lasso = [{"xref": "x", "yref": "y", "x": [0, 1, 1], "y": [0, 0, 1]}]
    value = {
        "selection": {"points": points, "point_indices": [p["point_index"] for p in points], "box": [], "lasso": lasso}
    }
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(value)))
    return at._run(states)


def test_default_view_draws_the_whole_test_set_with_the_models_predictions(digits, tmp_path):
    handle, data, pred = digits
    at = _open()
    assert at.title[0].value == "Feature space"
    m = _metrics(at)
    assert m["Samples"] == "450" and m["Dimension"] == "128"
    assert m["Accuracy"] == f"{(pred == data.labels.numpy()).mean():.1%}"
    assert m["Misclassified"] == str(int((pred != data.labels.numpy()).sum()))
    # the painting agreement is the library's, computed here afresh (no cache) for the page's defaults
    fs = compute_features(handle, data, sample=450, cache=geometry.DiskCache(tmp_path))
    em = embed(fs.features, "pca", seed=0, cache=geometry.DiskCache(tmp_path))
    painted = paint_regions(em.coords, fs.features, fs.head, predictions=fs.predictions, resolution=200, method="knn")
    assert m["In-sample agreement"] == f"{painted.agreement:.1%}"
    assert m["Held-out agreement"] == f"{painted.heldout_agreement:.1%}"
    # the sentence on the held-out agreement (a PCA of a trained CNN's features predicts it well above chance)
    assert painted.heldout_better_than_chance
    assert painted.reading() in [c.value for c in at.caption]
    assert f"of the {len(fs):,} samples" in painted.reading() and "4 of 5 folds" in painted.reading()
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
    # the morphing section, from #0 to #1 by default: the class sequences are the library's
    r = morph(handle, data.images[0], data.images[1], steps=33)
    names = handle.class_names
    text = next(md.value for md in at.markdown if md.value.startswith("Pixel path:"))
    assert f"**{' → '.join(names[c] for c in r.pixel_classes)}**" in text
    assert f"feature path: **{' → '.join(names[c] for c in r.feature_classes)}**" in text
    strips = next(t for f in figures(at) for t in f["data"] if t.get("y") == ["feature path", "pixel path"])
    np.testing.assert_array_equal(_decode(strips["z"]).reshape(2, -1), np.stack([r.feature_pred, r.pixel_pred]))
    strip = [c for im in at.image for c in im.captions if c.startswith("t=")]
    assert len(strip) == 9 and strip[0] == f"t=0.00 → {names[pred[0]]}" and strip[-1] == f"t=1.00 → {names[pred[1]]}"
    # hovering the scatter shows each sample's image: one sprite tile per plotted sample, in data set order
    html = next(h.proto.body for h in at.get("html") if "ba-hover-images" in h.proto.body)
    config = json.loads(re.search(r"const cfg = (\{.*?\});", html).group(1))
    assert config["chart"] == "feat_scatter" and config["ids"] == [str(i) for i in range(450)]
    from PIL import Image

    png = base64.b64decode(config["src"].split(",", 1)[1])
    sheet = hover_images.SpriteSheet(
        png=png, count=450, columns=config["columns"], rows=config["rows"], tile_width=8, tile_height=8, exact=True
    )
    assert Image.open(io.BytesIO(png)).size == (8 * config["columns"], 8 * config["rows"])
    for i in (0, 17, 449):
        expected = np.round(data.images[i, 0].numpy() * 255).astype(np.uint8)
        np.testing.assert_array_equal(sheet.thumbnail(i)[..., 0], expected)


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
    data = geometry.load_dataset("moons", "test")
    assert int(_metrics(at)["Samples"]) == len(data)
    # the 2D inputs are their own features' source: PCA of the head's input; every sample plotted once, at the
    # embedding's coordinates of its own features
    handle = geometry.load_model("moons-mlp", device="cpu")
    fs = compute_features(handle, data, sample=len(data))
    coords = embed(fs.features, "pca", seed=0).coords
    scatter = _scatter(at)
    seen = []
    for name in handle.class_names:
        trace = next(t for t in scatter["data"] if t.get("name") == name)
        idx = _decode(trace["customdata"]).ravel().astype(int)
        xy = np.stack([_decode(trace["x"]), _decode(trace["y"])], axis=1)
        np.testing.assert_allclose(xy, coords[np.searchsorted(fs.indices, idx)], atol=1e-5)
        assert (data.labels.numpy()[idx] == handle.class_names.index(name)).all()
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(data)))
    assert not any("ba-hover-images" in h.proto.body for h in at.get("html"))  # 2D points have no images


def test_selecting_points_shows_them_and_sends_exactly_three_to_the_feature_plane_and_to_slices(digits):
    handle, data, pred = digits
    by_class = {c: [int(i) for i in np.flatnonzero(pred == c)] for c in range(10)}
    a, a2 = by_class[3][:2]
    b, c = by_class[5][0], by_class[8][0]
    at = _open()
    at = _run_with_selection(at, [a, a2, b, c])  # two of class 3 first: the three are of different classes
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Selected samples (4)"
    assert any(cap.value.endswith(f"#{a}, #{b}, #{c}.") for cap in at.caption), [cap.value for cap in at.caption]
    at.button(key="feat_use_selected").click()
    at = _run_with_selection(at, [a, a2, b, c])
    assert not at.exception, at.exception
    assert at.session_state[f"feat_three::digits::test::{len(data)}"] == [a, b, c]
    plane = next(f for f in figures(at) if "plane through the three" in str(f["layout"].get("title", "")))
    anchors = next(t for t in plane["data"] if t.get("name") == "chosen samples")
    assert anchors["text"] == [f"#{i} → {handle.class_names[pred[i]]}" for i in (a, b, c)]
    at.button(key="feat_send_slices").click()
    at = _run_with_selection(at, [a, a2, b, c])
    assert not at.exception, at.exception
    assert at.title[0].value == "Slices"
    assert at.session_state["slices_three"] == [a, b, c] and at.session_state["slices_kind"] == "three"
    assert "slice_request" not in at.session_state  # the Slices page took the request
    assert at.query_params["images"] == f"{a},{b},{c}" and at.query_params["plane"] == "three"


def test_a_failed_umap_warm_up_shows_an_error_not_a_traceback(monkeypatch):
    from geometry.features import embedding as emb

    def broken(*args: object, **kwargs: object) -> float:
        raise ImportError("No module named 'umap'")

    monkeypatch.setattr(emb, "warm_up_umap", broken)
    monkeypatch.setattr(emb, "_warm_state", {"state": "failed", "seconds": None, "error": "ImportError: x"})
    at = _open(feat_sample=40, feat_embedding="umap")
    errors = [e.value for e in at.error]
    assert any(
        "UMAP is not available in this server process (ImportError: No module named 'umap')" in e
        and "Pick PCA or t-SNE" in e
        for e in errors
    ), errors


def test_selected_points_map_back_to_data_set_indices():
    import plotly.graph_objects as go

    fig = go.Figure(
        [go.Scattergl(x=[0, 1], y=[0, 1], customdata=[[7], [9]]), go.Scattergl(x=[2], y=[2], customdata=[[4]])]
    )
    event = {
        "selection": {
            "points": [
                {
                    "curve_number": 0,
                    "point_index": 1,
                    "customdata": {"0": 9},
                },  # how Streamlit reports a 2-D customdata row
                {"curve_number": 0, "point_index": 0, "customdata": [7]},
                {
                    "curve_number": 1,
                    "point_index": 0,
                },  # WebGL points may come without customdata: looked up in the figure
                {"curve_number": 0, "point_index": 1, "customdata": 9},  # the same sample again (e.g. its ✗ marker)
            ]
        }
    }
    assert ui.selected_indices(event, fig) == [9, 7, 4]
    assert ui.selected_indices(event) == [9, 7]
    assert ui.selected_indices({"selection": {"points": []}}) == []
    assert ui.selected_indices(None) == []


def test_three_of_a_selection_are_of_different_classes_where_possible():
    classes = {1: 0, 2: 0, 3: 5, 4: 5, 5: 2}
    assert ui.pick_three([1, 2, 3, 4, 5], classes) == [1, 3, 5]
    assert ui.pick_three([1, 2, 3], classes) == [1, 3, 2]  # only two classes: the next one fills in
    assert ui.pick_three([4, 2], classes) == [4, 2]

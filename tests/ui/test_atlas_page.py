"""AppTest of the Atlas page: compute an atlas from the page, the scatter and R(eps) show the library's rows, a
selected image goes to the sidebar's picks, to Slices (as its origin) and to Curvature."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.proto.WidgetStates_pb2 import WidgetState

import geometry
from geometry.atlas import AtlasOptions, build_atlas, robustness_curve
from geometry.atlas.curves import eps_grid
from tests.ui.apptest import app, decode, figures

PAGE = "views/atlas.py"
LIMIT = 40


@pytest.fixture(scope="module")
def expected():
    """The atlas the page should show, computed here without any cache (margins only: the cheapest)."""
    torch.set_num_threads(1)
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits", "test")
    return build_atlas(handle, data, options=AtlasOptions(analyses=("margin",)), limit=LIMIT, cache=False)


def _open(*, computed: bool = False):
    """The page; ``computed``: press "Compute the atlas" if the atlas is not in the cache yet."""
    at = app(atlas_analyses=["margin"], atlas_limit=LIMIT).run()
    at.switch_page(PAGE).run()
    if computed and any(b.key == "atlas_run" for b in at.button):
        at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    return at


def _is_scatter(fig: dict) -> bool:
    return "images:" in str(fig["layout"].get("title", ""))


def _scatter(at) -> dict:
    return next(f for f in figures(at) if _is_scatter(f))


def _select(at, indices: list[int]):
    """Run the page as if the user had clicked / lassoed the scatter's points of data set ``indices`` (AppTest has no
    API for a plotly selection: the chart's widget state is sent as the browser would, as in test_features_page)."""
    chart = next(c for c in at.get("plotly_chart") if _is_scatter(json.loads(c.proto.spec)))
    fig = json.loads(chart.proto.spec)
    points = []
    for i in indices:
        curve, trace = next(
            (n, t) for n, t in enumerate(fig["data"]) if i in decode(t.get("customdata", [])).ravel().tolist()
        )
        where = int(np.flatnonzero(decode(trace["customdata"]).ravel() == i)[0])
        points.append({"curve_number": curve, "point_number": where, "point_index": where, "customdata": {"0": int(i)}})
    value = {
        "selection": {"points": points, "point_indices": [p["point_index"] for p in points], "box": [], "lasso": []}
    }
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(value)))
    return at._run(states)


def test_the_page_computes_and_shows_the_librarys_atlas(expected):
    at = _open()
    assert at.title[0].value == "Atlas"
    assert any("0 of 1 shards" in c.value for c in at.caption)
    at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    assert not any(b.key == "atlas_run" for b in at.button)  # computed: the button is gone
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == str(LIMIT)
    assert metrics["Accuracy"] == f"{expected['correct'].mean():.1%}"
    assert metrics["Median margin"] == f"{np.nanmedian(expected['margin']):.3f}"
    scatter = _scatter(at)
    classes = [t for t in scatter["data"] if t["name"] != "misclassified"]
    shown = np.concatenate([decode(t["customdata"]).ravel() for t in classes])
    assert sorted(shown.tolist()) == list(range(LIMIT))  # every image once, by its data set index
    for t in classes:  # x is each image's margin, y its logit margin (no curvature asked for)
        idx = decode(t["customdata"]).ravel()
        np.testing.assert_allclose(decode(t["x"]), expected["margin"].to_numpy()[idx], rtol=1e-6)
        np.testing.assert_allclose(decode(t["y"]), expected["logit_margin"].to_numpy()[idx], rtol=1e-6)
    robust = next(f for f in figures(at) if "Robustness curve" in str(f["layout"]["title"]))
    overall = next(t for t in robust["data"] if t["name"].endswith("all images"))
    want = robustness_curve(expected, eps_grid(expected["margin"]))
    np.testing.assert_allclose(decode(overall["y"]), want["all"].to_numpy())
    assert decode(overall["y"])[0] == pytest.approx(expected["correct"].mean())  # R(0): the accuracy
    # a second visit reads the cache: no button, the same figure
    at2 = _open()
    assert not any(b.key == "atlas_run" for b in at2.button)
    assert _scatter(at2)["data"][0]["customdata"] == scatter["data"][0]["customdata"]


def test_a_selected_image_goes_to_the_picks_to_slices_and_to_curvature(expected):
    at = _open(computed=True)
    closest = int(expected.sort_values("margin")["index"].iloc[0])  # the image nearest to the boundary
    at = _select(at, [closest, 5])
    assert not at.exception, at.exception
    assert "Selected images (2)" in [s.value for s in at.subheader]
    at.button(key="atlas_pick").click()
    at = _select(at, [closest, 5])
    assert at.session_state["picked::digits::test::450"] == [closest, 5]
    at.button(key="atlas_open_slices").click()
    at = _select(at, [closest, 5])
    assert not at.exception, at.exception
    assert at.title[0].value == "Slices"
    assert at.session_state["slices_x0"] == closest and at.query_params["x0"] == str(closest)

    at = _open(computed=True)
    at = _select(at, [7])
    at.button(key="atlas_open_curvature").click()
    at = _select(at, [7])
    assert not at.exception, at.exception
    assert at.title[0].value == "Curvature"
    picked = at.session_state["picked::digits::test::450"]
    assert picked[at.session_state["curv_image"]] == 7


def test_a_second_model_shares_the_robustness_plot_and_is_compared_image_by_image(expected):
    relu = geometry.load_model("digits-cnn-relu", device="cpu")
    data = geometry.load_dataset("digits", "test")
    other = build_atlas(relu, data, options=AtlasOptions(analyses=("margin",)), limit=LIMIT)  # into the app's cache
    at = app(atlas_analyses=["margin"], atlas_limit=LIMIT, atlas_model2="digits-cnn-relu").run()
    at.switch_page(PAGE).run()
    if any(b.key == "atlas_run" for b in at.button):
        at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    robust = next(f for f in figures(at) if "Robustness curve" in str(f["layout"]["title"]))
    lines = {t["name"]: decode(t["y"]) for t in robust["data"] if t["name"].endswith("all images")}
    assert set(lines) == {"digits-cnn-silu: all images", "digits-cnn-relu: all images"}
    eps = eps_grid(np.concatenate([expected["margin"].to_numpy(), other["margin"].to_numpy()]))
    np.testing.assert_allclose(lines["digits-cnn-relu: all images"], robustness_curve(other, eps)["all"].to_numpy())
    compare = next(f for f in figures(at) if "image by image" in str(f["layout"]["title"]))
    points = [t for t in compare["data"] if t.get("customdata") is not None]
    x = np.concatenate([decode(t["x"]) for t in points])
    idx = np.concatenate([decode(t["customdata"]).ravel() for t in points])
    y = np.concatenate([decode(t["y"]) for t in points])
    np.testing.assert_allclose(x, expected["margin"].to_numpy()[idx], rtol=1e-6)  # silu's margin across
    np.testing.assert_allclose(y, other["margin"].to_numpy()[idx], rtol=1e-6)  # relu's up

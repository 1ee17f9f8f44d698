"""AppTests of the inspection pages (frequency margins, connectivity, detection, robustness, report): what they show
equals the library's own results, widgets change the view, models they do not apply to get a message, not a
traceback."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import geometry
from geometry.report import SECTION_TITLES, report_images
from tests.ui.apptest import app, decode, figures
from ui.views import VIEWS

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"margins": "Frequency margins", "connectivity": "Connectivity", "detection": "Adversarial detection",
         "robustness": "Robustness", "report": "Report"}  # fmt: skip


def _open(page: str, **session):
    at = app(**session).run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def digits():
    return geometry.load_model("digits-cnn-silu", device="cpu"), geometry.load_dataset("digits")


def test_pages_are_registered_listed_and_free_of_torch():
    registered = {(v.script, v.title) for v in VIEWS}  # app.py makes a page of each, Home links to each
    for stem, title in PAGES.items():
        assert (f"views/{stem}.py", title) in registered
    for view in sorted((ROOT / "views").glob("*.py")):  # DESIGN: views are thin, torch stays in geometry/ and ui/
        tree = ast.parse(view.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "torch" not in imported, view.name


def test_frequency_margins_page_shows_the_librarys_margins_and_a_second_model(digits):
    handle, data = digits
    at = _open("margins", fm_n=4, fm_bands=2, fm_random=False)
    assert at.title[0].value == "Frequency margins"
    fig = figures(at)[0]
    boxes = [t for t in fig["data"] if t["type"] == "box"]
    assert len(boxes) == 1
    res = geometry.cached_frequency_margins(handle, report_images(data, 4, 0).images, bands=[0, 6], num_random=0)
    ys = decode(boxes[0]["y"]).astype(float)
    np.testing.assert_allclose(np.sort(ys), np.sort(np.r_[res.margins.numpy().ravel(), res.full_margins.numpy()]),
                               rtol=1e-5)  # fmt: skip
    assert set(boxes[0]["x"]) == {"0-1", "6-7", "full"}
    m = _metrics(at)
    assert m["Lowest band (0-1)"] == f"{res.band_median()[0]:.3g}"
    assert m["Highest band (6-7)"] == f"{res.band_median()[1]:.3g}"
    assert m["Not converged"] == "0 of 8"
    # a second model with the same inputs: one box trace per model
    at.selectbox(key="fm_compare").set_value("digits-mlp-relu").run()
    assert not at.exception, at.exception
    names = [t["name"] for t in figures(at)[0]["data"] if t["type"] == "box"]
    assert names == ["digits-cnn-silu", "digits-mlp-relu"]
    # the preview: original / dct_flip / low-pass for each picked image, with the model's predictions
    assert at.download_button(key="fm_download") is not None


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("margins", "need image inputs"),
        ("robustness", "transform images"),
        ("connectivity", None),
        ("detection", None),
        ("report", None),
    ],
)
def test_pages_work_or_explain_with_a_2d_toy_model(page, message):
    at = _open(page, builtin_model="moons-mlp", conn_pairs=2, conn_resolution=7, det_n=4, det_m=8)
    assert not at.error, [e.value for e in at.error]
    if message:
        assert any(message in i.value for i in at.info)
    else:
        assert len(at.title) == 1 and not any("image inputs" in i.value for i in at.info)


def test_connectivity_page_finds_the_path_and_the_batch_rate(digits):
    handle, data = digits
    at = _open("connectivity", conn_pairs=3, conn_resolution=7)
    m = _metrics(at)
    assert m["Inside the class all along"] in ("yes", "no")
    batch = geometry.cached_connectivity_batch(handle, report_images(data, 200, 0).images,
                                               report_images(data, 200, 0).labels, num_pairs=3, seed=0, resolution=7,
                                               max_depth=6, max_anchors=32, overshoot=1.0)  # fmt: skip
    assert m["Success rate"] == f"{batch.success_rate:.0%}"
    assert len(at.dataframe[0].value) == 3
    titles = [f["layout"]["title"]["text"] for f in figures(at) if f["layout"].get("title")]
    assert any(t.startswith("Path in class") for t in titles)
    # another class: the From/To choices follow it
    at.selectbox(key="conn_class").set_value(3).run()
    assert not at.exception, at.exception
    a, b = at.selectbox(key="conn_a").value, at.selectbox(key="conn_b").value
    assert int(data.labels[a]) == int(data.labels[b]) == 3


def test_detection_page_reports_the_librarys_auc_and_a_verdict(digits):
    handle, data = digits
    at = _open("detection", det_n=4, det_m=8)
    res = geometry.cached_evaluate_detection(handle, report_images(data, 4, 0).images, fpr=0.05, num_directions=8,
                                             h=0.5, seed=0)  # fmt: skip
    m = _metrics(at)
    assert m["AUC"] == f"{res.auc:.3f}"
    assert m["Perturbations"] == f"{int(res.attack_converged.sum())} of 4"
    verdicts = [md.value for md in at.markdown if "Looks" in md.value]
    assert len(verdicts) == 1
    at.radio(key="det_variant").set_value("DeepFool-perturbed").run()
    assert not at.exception, at.exception
    assert any("perturbation ‖r‖" in c.value for c in at.caption)


def test_robustness_page_sweeps_own_images_and_explains_shapes(digits):
    handle, data = digits
    at = _open("robustness", rob_n=3, rob_kind="rotate")
    fig = figures(at)[0]
    kept = next(t for t in fig["data"] if t["name"].endswith("kept"))
    sweep = geometry.cached_image_sweep(handle, report_images(data, 3, 0).images, "rotate",
                                        labels=report_images(data, 3, 0).labels)  # fmt: skip
    np.testing.assert_allclose(decode(kept["y"]).astype(float), sweep.kept)
    np.testing.assert_allclose(decode(kept["x"]).astype(float), sweep.values)
    assert any("shapes data set" in i.value for i in at.info)  # the shapes tab needs a shapes model
    at.radio(key="rob_kind").set_value("shift").run()
    assert not at.exception, at.exception
    assert figures(at)[0]["data"][0]["type"] == "heatmap"


def test_robustness_page_sweeps_generated_shapes_for_a_shapes_model():
    handle = geometry.load_model("shapes-resnet-silu", device="cpu")
    at = _open("robustness", builtin_model="shapes-resnet-silu", rob_n=2, rob_kind="resolution", rob_shapes_n=6,
               rob_factor="area")  # fmt: skip
    assert not at.error and not any("shapes data set" in i.value for i in at.info)
    title = "Object size (area fraction)"
    shapes_fig = next(f for f in figures(at) if f["layout"].get("title", {}).get("text") == title)
    acc = next(t for t in shapes_fig["data"] if t["name"].endswith("accuracy"))
    sweep = geometry.cached_shapes_sweep(handle, "area", n=6, seed=0, grid=7)
    np.testing.assert_allclose(decode(acc["y"]).astype(float), sweep.accuracy)
    at.radio(key="rob_factor").set_value("position").run()
    assert not at.exception, at.exception
    assert any(t["type"] == "heatmap" for f in figures(at) for t in f["data"])


def test_report_page_generates_a_downloadable_report():
    at = _open("report", rep_n=10, rep_bands=2)
    assert not at.get("download_button")
    at.button(key="rep_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("download_button")) == 1
    shown = [md.value for md in at.markdown]
    for title in SECTION_TITLES.values():
        assert f"**{title}**" in shown
    assert any(s.value.startswith("Report ready: 8 sections") for s in at.success)

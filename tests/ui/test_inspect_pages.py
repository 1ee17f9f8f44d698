"""AppTests of the inspection pages (frequency margins, connectivity, detection, robustness, report): what they show
equals the library's own results, widgets change the view, models they do not apply to get a message, not a
traceback."""

from __future__ import annotations

import ast
import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import geometry
from geometry.data.dct import dct_flip, low_pass
from geometry.figures import image_to_uint8
from geometry.figures.images import image_grid_figure
from geometry.report import SECTION_TITLES, report_images
from tests.ui.apptest import app, decode, figures
from ui.views import VIEWS

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "margins": "Frequency margins",
    "connectivity": "Connectivity",
    "detection": "Adversarial detection",
    "robustness": "Robustness",
    "report": "Report",
}


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
    for view in sorted((ROOT / "views").glob("*.py")):  # docs/DESIGN.md §7: views are thin (torch in geometry/, ui/)
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
    np.testing.assert_allclose(
        np.sort(ys), np.sort(np.r_[res.margins.numpy().ravel(), res.full_margins.numpy()]), rtol=1e-5
    )
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
    # the preview: original / dct_flip / low-pass of each picked image (the sidebar's first three: digits 0, 1, 2)
    for keep in (4, 2):  # half the 8 frequencies by default, then a smaller block
        if keep != 4:
            at.slider(key="fm_keep").set_value(keep).run()
            assert not at.exception, at.exception
        assert at.slider(key="fm_keep").value == keep
        picked = data.images[[0, 1, 2]]
        grid = torch.stack([picked, dct_flip(picked).clamp(0, 1), low_pass(picked, keep).clamp(0, 1)], dim=1)
        pred = handle.predict(grid.reshape(-1, 1, 8, 8)).reshape(3, 3).tolist()
        preview = next(f for f in figures(at) if _has_text(f, f"low-pass {keep}×{keep}"))
        pixels = _image_pixels(preview)
        for row in grid:  # every transformed image is drawn, pixel for pixel
            for img in row:
                assert _contains(pixels, image_to_uint8(img, min_size=80))
        np.testing.assert_array_equal(pixels, _image_pixels(_expected_preview(handle, data, grid, pred, keep)))
        names = handle.class_names
        texts = [a["text"] for a in preview["layout"]["annotations"]]
        assert [t for t in texts if t in names] == [names[p] for row in pred for p in row]  # predictions under each
    assert at.download_button(key="fm_download") is not None


def _has_text(fig: dict, text: str) -> bool:
    return any(text in a.get("text", "") for a in fig["layout"].get("annotations", []))


def _expected_preview(handle, data, grid: torch.Tensor, pred: list[list[int]], keep: int) -> dict:
    names = handle.class_names
    fig = image_grid_figure(
        grid,
        row_titles=[f"#{i} · {names[int(data.labels[i])]}" for i in range(3)],
        col_titles=["original", "dct_flip", f"low-pass {keep}×{keep}"],
        captions=[[names[p] for p in row] for row in pred],
        caption_colors=[["#2ca02c" if p == r[0] else "#d62728" for p in r] for r in pred],
        tile=80,
    )
    return json.loads(fig.to_json())


def _image_pixels(fig: dict) -> np.ndarray:
    """The pixels of a figure's image trace (a PNG data URI)."""
    src = next(t["source"] for t in fig["data"] if t["type"] == "image")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def _contains(canvas: np.ndarray, tile: np.ndarray) -> bool:
    """Whether ``tile`` appears somewhere in ``canvas`` (pixel for pixel)."""
    h, w = tile.shape[:2]
    ys, xs = np.nonzero((canvas[: canvas.shape[0] - h + 1, : canvas.shape[1] - w + 1] == tile[0, 0]).all(axis=2))
    return any(np.array_equal(canvas[y : y + h, x : x + w], tile) for y, x in zip(ys, xs, strict=True))


def test_frequency_margins_default_to_100_images():
    at = _open("margins", fm_bands=1, fm_random=False)
    slider = at.slider(key="fm_n")
    assert (slider.value, slider.max) == (100, 100)
    assert any(c.value.startswith("100 images × 1 bands") for c in at.caption)


def test_pages_work_or_explain_with_a_2d_toy_model():
    handle, data = geometry.load_model("moons-mlp", device="cpu"), geometry.load_dataset("moons")
    session = {"builtin_model": "moons-mlp", "conn_pairs": 2, "conn_resolution": 7, "det_n": 4, "det_m": 8, "rep_n": 10}
    for page, message in (("margins", "need image inputs"), ("robustness", "transform images")):
        at = _open(page, **session)
        assert not at.error, [e.value for e in at.error]
        assert any(message in i.value for i in at.info) and not figures(at)
    # connectivity: the library's rate on the page's sample of moons
    at = _open("connectivity", **session)
    assert not at.error, [e.value for e in at.error]
    pool = report_images(data, 200, 0)
    batch = geometry.cached_connectivity_batch(
        handle, pool.images, pool.labels, num_pairs=2, seed=0, resolution=7, max_depth=6, max_anchors=32, overshoot=1.0
    )
    m = _metrics(at)
    assert m["Success rate"] == f"{batch.success_rate:.0%}"
    assert m["Straight segment enough"] == f"{batch.straight_rate:.0%}"
    # detection: the library's AUC on the page's 4 clean points
    at = _open("detection", **session)
    assert not at.error, [e.value for e in at.error]
    res = geometry.cached_evaluate_detection(
        handle, report_images(data, 4, 0).images, fpr=0.05, num_directions=8, h=0.5, seed=0
    )
    assert _metrics(at)["AUC"] == f"{res.auc:.3f}"
    # report: every section, the image-only ones marked not applicable
    at = _open("report", **session)
    at.button(key="rep_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    shown = [md.value for md in at.markdown]
    assert f"**{SECTION_TITLES['frequency']}** · not applicable" in shown
    assert f"**{SECTION_TITLES['robustness']}** · not applicable" in shown
    assert f"**{SECTION_TITLES['detection']}**" in shown
    assert any(s.value.startswith("Report ready: 8 sections") for s in at.success)


def test_connectivity_page_finds_the_path_and_the_batch_rate(digits):
    handle, data = digits
    at = _open("connectivity", conn_pairs=3, conn_resolution=7)
    m = _metrics(at)
    options = {"resolution": 7, "max_depth": 6, "max_anchors": 32, "overshoot": 1.0}
    # the single path: between the first and the last test digit of the first picked digit's class
    a, b = at.selectbox(key="conn_a").value, at.selectbox(key="conn_b").value
    c = int(handle.predict(data.images[:1])[0])
    pred = handle.predict(data.images)
    members = [i for i in range(len(data)) if int(data.labels[i]) == c and int(pred[i]) == c]
    assert (a, b) == (members[0], members[-1])
    one = geometry.inspection.connectivity.cached_find_path(handle, data.images[a], data.images[b], **options)
    assert m["Inside the class all along"] == ("yes" if bool(one.success[0]) else "no")
    assert m["Anchors"] == str(int(one.num_anchors[0]))
    batch = geometry.cached_connectivity_batch(
        handle, report_images(data, 200, 0).images, report_images(data, 200, 0).labels, num_pairs=3, seed=0, **options
    )
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
    res = geometry.cached_evaluate_detection(
        handle, report_images(data, 4, 0).images, fpr=0.05, num_directions=8, h=0.5, seed=0
    )
    m = _metrics(at)
    assert m["AUC"] == f"{res.auc:.3f}"
    assert res.n_held_out == 2 and res.n_calibration == 2  # 4 clean inputs: half set the threshold, half held out
    assert m["Perturbations"] == f"{int(res.attack_converged.sum())} of 2"
    assert m["False alarms"] == f"{res.fpr_at_threshold:.0%}"
    # the sentence on whether the detector works, from the held-out AUC (a warning when it is below 0.5)
    shown = [w.value for w in at.warning] if res.worse_than_chance else [md.value for md in at.markdown]
    assert res.reading(handle.name) in shown
    assert any(c.value.startswith(f"Threshold {res.threshold:.3g} set on 2 calibration inputs") for c in at.caption)
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
    sweep = geometry.cached_image_sweep(
        handle, report_images(data, 3, 0).images, "rotate", labels=report_images(data, 3, 0).labels
    )
    np.testing.assert_allclose(decode(kept["y"]).astype(float), sweep.kept)
    np.testing.assert_allclose(decode(kept["x"]).astype(float), sweep.values)
    assert any("shapes data set" in i.value for i in at.info)  # the shapes tab needs a shapes model
    at.radio(key="rob_kind").set_value("shift").run()
    assert not at.exception, at.exception
    assert figures(at)[0]["data"][0]["type"] == "heatmap"


def test_robustness_page_sweeps_generated_shapes_for_a_shapes_model():
    handle = geometry.load_model("shapes-resnet-silu", device="cpu")
    at = _open(
        "robustness",
        builtin_model="shapes-resnet-silu",
        rob_n=2,
        rob_kind="resolution",
        rob_shapes_n=6,
        rob_factor="area",
    )
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


def test_connectivity_page_counts_only_joined_pairs_as_straight():
    """With no anchors allowed, a pair whose segment leaves the class fails with 0 anchors: it is not 'straight
    segment enough' (the two moons are curved, so some same-class segments leave their class)."""
    handle, data = geometry.load_model("moons-mlp", device="cpu"), geometry.load_dataset("moons")
    at = _open("connectivity", builtin_model="moons-mlp", conn_pairs=12, conn_resolution=31, conn_anchors=0)
    pool = report_images(data, 200, 0)
    batch = geometry.cached_connectivity_batch(
        handle, pool.images, pool.labels, num_pairs=12, seed=0, resolution=31, max_depth=6, max_anchors=0, overshoot=1.0
    )
    assert bool((batch.num_anchors == 0).all()) and 0 < int(batch.success.sum()) < 12  # some pairs failed
    m = _metrics(at)
    assert m["Straight segment enough"] == f"{int(batch.success.sum()) / 12:.0%}"  # the joined ones only
    assert m["Success rate"] == m["Straight segment enough"]


# -- uploaded images: one or two ---------------------------------------------------------------------------------------


def _png(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((image[0].numpy() * 255 + 0.5).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def uploads(digits):
    """Two test digits of one class that the model predicts as that class, as PNG uploads, and what they load as."""
    handle, data = digits
    files, c = [], int(data.labels[10])
    for i in range(len(data)):
        if int(data.labels[i]) == c and len(files) < 2:
            png = _png(data.images[i])
            loaded = geometry.load_uploaded_images([(f"d{i}.png", png)], input_shape=(1, 8, 8)).images
            if int(handle.predict(loaded)[0]) == c:
                files.append((f"digit-{i}.png", png, "image/png"))
    return files


def _open_uploads(page: str, files, **session):
    at = app(dataset="Upload images…", **session).run()
    at.file_uploader(key="image_upload").set_value(files).run()
    assert not at.exception, at.exception
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _loaded(files) -> geometry.Dataset:
    return geometry.load_uploaded_images([(name, data) for name, data, _ in files], input_shape=(1, 8, 8))


@pytest.mark.parametrize("count", [1, 2])
def test_frequency_margins_page_with_one_or_two_uploads(count, uploads, digits):
    handle, _ = digits
    at = _open_uploads("margins", uploads[:count], fm_bands=2, fm_random=False)
    if count == 1:
        assert any(i.value.startswith("Only 1 input in upload") for i in at.info)
        assert not [w for w in at.slider if w.key == "fm_n"]
    else:
        slider = at.slider(key="fm_n")
        assert (slider.value, slider.max) == (2, 2)  # the default 100, clamped to the uploads
    res = geometry.cached_frequency_margins(handle, _loaded(uploads[:count]).images, bands=[0, 6], num_random=0)
    box = next(t for t in figures(at)[0]["data"] if t["type"] == "box")
    expected = np.r_[res.margins.numpy().ravel(), res.full_margins.numpy()]
    np.testing.assert_allclose(np.sort(decode(box["y"]).astype(float)), np.sort(expected), rtol=1e-5)


@pytest.mark.parametrize("count", [1, 2])
def test_robustness_page_with_one_or_two_uploads(count, uploads, digits):
    handle, _ = digits
    at = _open_uploads("robustness", uploads[:count], rob_kind="rotate")
    if count == 1:
        assert any(i.value.startswith("Only 1 input in upload") for i in at.info)
    else:
        assert (at.slider(key="rob_n").value, at.slider(key="rob_n").max) == (2, 2)
    sweep = geometry.cached_image_sweep(handle, _loaded(uploads[:count]).images, "rotate")
    kept = next(t for t in figures(at)[0]["data"] if t["name"].endswith("kept"))
    np.testing.assert_allclose(decode(kept["y"]).astype(float), sweep.kept)


@pytest.mark.parametrize("count", [1, 2])
def test_detection_verdict_on_uploads_uses_a_threshold_from_clean_digits(count, uploads, digits):
    handle, data = digits
    at = _open_uploads("detection", uploads[:count], det_n=4, det_m=8)
    assert any("set on clean images of **digits**" in i.value for i in at.info)
    clean = geometry.cached_evaluate_detection(
        handle, report_images(data, 4, 0).images, fpr=0.05, num_directions=8, h=0.5, seed=0
    )
    assert _metrics(at)["AUC"] == f"{clean.auc:.3f}"
    x = _loaded(uploads[:count]).images
    if count == 2:  # a threshold set on the uploads themselves would differ
        own = geometry.evaluate_detection(handle, x, fpr=0.05, num_directions=8, h=0.5, seed=0)
        assert f"{own.threshold:.3g}" != f"{clean.threshold:.3g}"
    for pos in range(count):
        if pos:
            at.selectbox(key="det_image").set_value(pos).run()
            assert not at.exception, at.exception
        v = geometry.detect(handle, x[pos : pos + 1], clean.threshold, num_directions=8, h=0.5, seed=0)
        (verdict,) = [md.value for md in at.markdown if "Looks" in md.value]
        assert ("Looks perturbed" if bool(v.flagged[0]) else "Looks clean") in verdict
        assert f"score {float(v.score[0]):.3g}" in verdict and f"threshold {clean.threshold:.3g}" in verdict


@pytest.mark.parametrize("count", [1, 2])
def test_connectivity_page_with_one_or_two_uploads(count, uploads, digits):
    handle, _ = digits
    at = _open_uploads("connectivity", uploads[:count], conn_pairs=2, conn_resolution=7)
    if count == 1:
        assert any("Fewer than two inputs of upload" in i.value for i in at.info)
        assert any(i.value.startswith("No two of the 1 input of upload") for i in at.info)
        return
    batch = geometry.cached_connectivity_batch(
        handle,
        _loaded(uploads).images,
        None,
        num_pairs=2,
        seed=0,
        resolution=7,
        max_depth=6,
        max_anchors=32,
        overshoot=1.0,
    )
    assert len(batch) == 1  # two uploads of one class: one pair
    assert _metrics(at)["Success rate"] == f"{batch.success_rate:.0%}"


@pytest.mark.parametrize("count", [1, 2])
def test_report_page_with_one_or_two_uploads(count, uploads):
    at = _open_uploads("report", uploads[:count])
    needs_two = [i.value for i in at.info if "needs at least 2" in i.value]
    assert at.button(key="rep_go").disabled == (count == 1)
    assert len(needs_two) == (count == 1)


class _Tiny(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)
        return torch.stack([v.mean(1), v.pow(2).mean(1), v[:, :10].sum(1)], dim=1)


def test_detection_without_a_clean_data_set_gives_no_verdict(tmp_path):
    """A model of 3x16x16 inputs (no built-in data set has them) on one uploaded image: no threshold can be set, the
    page says so and shows the score only."""
    path = tmp_path / "tiny.ts"
    torch.jit.script(_Tiny()).save(str(path))
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG")
    files = [("noise.png", buf.getvalue(), "image/png")]
    at = _open_uploads("detection", files, model_source="Path", model_path=str(path), model_shape="3, 16, 16")
    assert any("No clean data set" in w.value for w in at.warning)
    handle = geometry.load_model(str(path), input_shape=(3, 16, 16), device="cpu")
    x = geometry.load_uploaded_images([("noise.png", buf.getvalue())], input_shape=(3, 16, 16)).images
    v = geometry.detect(handle, x, float("inf"), num_directions=32, h=0.5, seed=0)
    (line,) = [md.value for md in at.markdown if "No verdict" in md.value]
    assert f"score {float(v.score[0]):.3g}" in line and "Looks" not in line
    assert not at.get("metric")  # no ROC, no AUC

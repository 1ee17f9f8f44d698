"""AppTests of the Train view: what it trains is what the library trains, what it shows is measured on those models."""

from __future__ import annotations

import numpy as np
import pytest

import geometry
from geometry.boundary.deepfool import deepfool
from geometry.slices.planes import input_space_plane
from geometry.slices.stats import region_iou
from tests.ui.apptest import app, decode, figures
from ui.train import TrainSettings, configs


def _open(**session):
    at = app(timeout=600, **session).run()
    at.switch_page("views/train.py").run()
    assert not at.exception, [str(e.value)[:500] for e in at.exception]
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_gradient_activation_figure_is_alpha_arctan_beta_g():
    at = _open(train_seed=101)  # a seed no other test trains with: nothing is trained yet
    assert at.title[0].value == "Train"
    assert [b.key for b in at.button if b.key == "train_go"] == ["train_go"]  # nothing trained yet: a Train button
    at.slider(key="train_alpha").set_value(0.5).run()
    at.slider(key="train_beta").set_value(2.0).run()
    curve = next(t for t in figures(at)[0]["data"] if "arctan" in t["name"])
    g, y = decode(curve["x"]).astype(float), decode(curve["y"]).astype(float)
    np.testing.assert_allclose(y, 0.5 * np.arctan(2.0 * g), rtol=1e-6, atol=1e-9)


def test_adam_and_the_momentum_variant_are_explained_not_trained():
    at = _open(train_optimizer="adam")
    assert any("Adam's normalisation undoes" in i.value for i in at.info)
    at.radio(key="train_on").set_value("momentum").run()
    assert any("needs the SGD optimizer" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "train_go"]


def test_training_on_moons_shows_both_models_their_regions_and_agreement():
    session = {"train_dataset": "moons", "train_epochs_toy": 4, "train_seed": 102}
    at = _open(**session)
    at.button(key="train_go").click().run()
    assert not at.exception, [str(e.value)[:500] for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # the page's defaults (SGD at 0.05, alpha 0.3, beta 4.5 on the raw gradient) with 4 epochs and seed 102
    plain, activated = (
        c.name for c in configs(TrainSettings("moons", "mlp", "silu", 4, 0.05, "sgd", 102, 0.3, 4.5, "gradient", True))
    )
    assert {plain, activated} <= set(geometry.user_models())
    test = geometry.load_dataset("moons", split="test")
    metrics = _metrics(at)
    for label, name in (("plain", plain), ("with activated gradients", activated)):
        handle = geometry.load_model(name, device="cpu")
        measured = handle.accuracy(test.images, test.labels)  # measured here, not read from the card
        shown = float(metrics[f"Test accuracy, {label}"].rstrip("%")) / 100
        assert shown == pytest.approx(measured, abs=0.0006)  # shown to 0.1%
        assert geometry.model_card(name)["training"]["grad_activation"] == ("none" if label == "plain" else "arctan")
    # the two region maps, and their agreement measured on the same plane by the library
    slices = [
        geometry.cached_slice(
            geometry.load_model(n, device="cpu"),
            plane := input_space_plane(test.images),
            extent=plane.extent_hint,
            resolution=256,
        )
        for n in (plain, activated)
    ]
    assert (
        metrics["Agreement of the two region maps"]
        == f"{region_iou(slices[0].labels, slices[1].labels, 2).agreement:.1%}"
    )
    titles = [f["layout"].get("title", {}).get("text") for f in figures(at)]
    assert "plain" in titles and "with activated gradients" in titles
    # the training curves hold every epoch of both models' histories
    curves = next(f for f in figures(at) if any(t.get("name") == "plain" for t in f["data"]))
    loss = next(t for t in curves["data"] if t.get("name") == "plain")
    np.testing.assert_allclose(
        decode(loss["y"]).astype(float), [h["loss"] for h in geometry.model_card(plain)["history"]], atol=1e-5
    )
    # the same settings again: no Train button, the models come back at once
    at = _open(**session)
    assert not [b for b in at.button if b.key == "train_go"]
    at.button(key=f"train_use_{activated}").click().run()
    assert at.session_state["builtin_model"] == activated
    # both can be the second model of Slices and Frequency margins for the built-in moons model, not for digits
    from ui.state import comparable_models

    assert {plain, activated} <= set(comparable_models(geometry.load_model("moons-mlp", device="cpu")))
    assert not {plain, activated} & set(comparable_models(geometry.load_model("digits-cnn-silu", device="cpu")))


@pytest.mark.slow
def test_training_on_digits_compares_distances_to_the_boundary():
    at = _open(train_dataset="digits", train_arch="mlp", train_epochs_digits=1, train_n=10, train_seed=103)
    at.button(key="train_go").click().run()
    assert not at.exception, [str(e.value)[:500] for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    fig = next(
        f for f in figures(at) if "Distance to the nearest boundary" in f["layout"].get("title", {}).get("text", "")
    )
    test = geometry.load_dataset("digits", split="test")
    for trace in fig["data"]:
        plain, activated = (
            c.name
            for c in configs(TrainSettings("digits", "mlp", "silu", 1, 0.1, "sgd", 103, 0.3, 4.5, "gradient", True))
        )
        name = plain if trace["name"].startswith("plain") else activated
        fool = deepfool(geometry.load_model(name, device="cpu"), test.images[:10], clip=True)
        expected = fool.boundary_distance.numpy()[fool.converged.numpy()]
        np.testing.assert_allclose(np.sort(decode(trace["y"]).astype(float)), np.sort(expected), rtol=1e-5)

"""AppTest of app.py and the Home page: every built-in model, image picking, and bad input."""

from __future__ import annotations

import pytest
import torch

import geometry
from tests.ui.apptest import app, decode, figures


def _predictions(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("Predicted")]


def test_home_shows_the_default_model_and_its_predictions():
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Boundary Atlas"
    assert at.selectbox(key="builtin_model").value == "digits-cnn-silu"
    # The three default picks (#0, #1, #2 of digits' test split) with predictions that match the model's own.
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    test = geometry.load_dataset("digits", split="test")
    expected = handle.predict(test.images[:3]).tolist()
    shown = _predictions(at)
    assert len(shown) == 3
    for text, label in zip(shown, expected, strict=True):
        assert text.startswith(f"Predicted **{handle.class_names[label]}**")
    top = [decode(f["data"][0]["x"]).max() for f in figures(at)]
    probs = handle.probabilities(test.images[:3]).max(1).values
    assert top == pytest.approx(probs.tolist(), abs=1e-4)


@pytest.mark.parametrize("name", [n for n in geometry.builtin_models() if n != "digits-cnn-silu"])
def test_home_with_each_builtin_model(name):
    at = app(builtin_model=name).run()
    assert not at.exception
    card = geometry.model_card(name)
    assert at.subheader[0].value == f"Model: {name}"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{card['test_accuracy']:.1%}"
    assert metrics["Classes"] == str(len(card["class_names"]))
    assert at.selectbox(key="dataset").value == card["dataset"]
    assert len(_predictions(at)) == 3


def test_picked_images_come_from_the_sidebar_selection():
    at = app(**{"picked::digits::test::450": [17, 4]}).run()
    assert not at.exception
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    test = geometry.load_dataset("digits", split="test")
    expected = handle.predict(test.images[[17, 4]]).tolist()
    shown = _predictions(at)
    assert [s.split("**")[1] for s in shown] == [handle.class_names[k] for k in expected]


def test_a_corrupt_checkpoint_path_shows_an_error_and_keeps_the_app_working(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint at all")
    at = app(model_source="Path", model_path=str(bad), model_arch="resnet18").run()
    assert not at.exception
    assert any("not a PyTorch checkpoint" in e.value for e in at.error)
    assert at.subheader[0].value == "Model: digits-cnn-silu"  # falls back to the default, nothing lost


def test_a_state_dict_path_loads_a_users_model(tmp_path):
    net = geometry.build_architecture("cnn", input_shape=(1, 8, 8), num_classes=10)
    path = tmp_path / "mine.pt"
    torch.save(net.state_dict(), path)
    at = app(
        model_source="Path",
        model_path=str(path),
        model_arch="cnn",
        model_shape="1, 8, 8",
        model_activation="relu",  # what a bare state dict cannot tell: the sidebar asks
        model_pool="max",
    ).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("Model: cnn (mine.pt)")
    assert at.selectbox(key="dataset").value == "digits"  # the compatible built-in data set is offered

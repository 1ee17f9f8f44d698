"""Every shipped model meets its model card: accuracy re-measured on a freshly generated test split."""

from __future__ import annotations

import pytest

import geometry
from geometry.models.handle import parameter_count

TARGETS = {"digits-cnn": 0.97, "shapes-resnet": 0.95}  # issue 2's accuracy targets


@pytest.mark.parametrize("name", geometry.builtin_models())
def test_builtin_model_meets_its_card(name):
    handle = geometry.load_model(name, device="cpu")
    card = handle.card
    for key in (
        "name",
        "architecture",
        "activation",
        "dataset",
        "seed",
        "training_command",
        "test_accuracy",
        "parameter_count",
        "class_names",
        "input_shape",
    ):
        assert key in card, f"model card of {name} lacks {key!r}"
    test = geometry.load_dataset(card["dataset"], split="test")
    accuracy = handle.accuracy(test.images, test.labels)
    assert accuracy == pytest.approx(card["test_accuracy"], abs=0.005)
    assert parameter_count(handle.network) == card["parameter_count"]
    for prefix, target in TARGETS.items():
        if name.startswith(prefix):
            assert accuracy >= target


def test_each_image_dataset_has_a_smooth_and_a_relu_model():
    cards = [geometry.model_card(n) for n in geometry.builtin_models()]
    for dataset in {c["dataset"] for c in cards if len(c["input_shape"]) == 3}:
        kinds = {c["smooth"] for c in cards if c["dataset"] == dataset}
        assert kinds == {True, False}, f"{dataset} needs a smooth model for curvature and a ReLU one for contrast"

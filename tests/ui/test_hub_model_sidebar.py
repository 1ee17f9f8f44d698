"""The sidebar loads a Hugging Face folder and a timm model typed as a Path (issue 12): the library's own config
gives the preprocessing, and the Home page shows the model's classes by name."""

from __future__ import annotations

import pytest
import torch

from tests.ui.apptest import app


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> str:
    """A tiny random ViT on 32x32 RGB images with six named classes (the built-in shapes' size)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    labels = dict(enumerate(["circle", "square", "triangle", "star", "cross", "ring"]))
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=6,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    ViTForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def test_a_hugging_face_folder_typed_as_a_path_loads_with_its_own_classes(hf_folder):
    at = app(timeout=300, model_source="Path", model_path=f"hf:{hf_folder}", dataset="shapes")
    at.run()
    assert not at.exception, [str(e.value)[:300] for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric if m.label == "Classes"] == ["6"]
    assert [m.value for m in at.metric if m.label == "Input"] == ["3x32x32"]


def test_a_timm_name_that_timm_does_not_know_is_a_sentence():
    at = app(timeout=300, model_source="Path", model_path="timm:no_such_net_xyz")
    at.run()
    assert not at.exception
    assert any("no_such_net_xyz" in e.value for e in at.error)

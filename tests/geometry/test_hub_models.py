"""timm (``timm:<name>``), Hugging Face (``hf:<folder>``) and ``torch.export`` models: logits equal each library's own
preprocessing + forward on the same [0, 1] image, class names, and errors in sentences. All offline, tiny models."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import geometry

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def timm_resnet(tmp_path_factory):
    """A random resnet18 with 5 classes, its weights saved as safetensors."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    path = tmp_path_factory.mktemp("timm") / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


def test_timm_logits_equal_timms_own_normalisation_and_forward(timm_resnet):
    model, path = timm_resnet
    handle = geometry.load_model("timm:resnet18", weights=path, device="cpu")
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)
    normalize = next(t for t in transform.transforms if type(t).__name__ == "Normalize")
    assert handle.input_shape == tuple(config["input_size"]) == (3, 224, 224)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(torch.stack([normalize(img) for img in x]))
    assert torch.allclose(handle.logits(x), expected, atol=1e-4, rtol=1e-4)
    assert handle.class_names == tuple(f"class {i}" for i in range(5))
    assert handle.card["image_pipeline"]["interpolation"] == "bicubic"
    assert handle.smooth is False and handle.card["smooth"] is False  # resnet18 has ReLUs
    assert "bicubic" in handle.pipeline and "0.485" in handle.pipeline


def test_timm_class_names_given_and_classes_read_from_the_checkpoint(timm_resnet):
    _, path = timm_resnet
    names = ["a", "b", "c", "d", "e"]
    assert geometry.load_model("timm:resnet18", weights=path, class_names=names, device="cpu").class_names == tuple(
        names
    )
    with pytest.raises(ValueError, match="does not match"):
        geometry.load_model("timm:resnet18", weights=path, num_classes=7, device="cpu")


def test_timm_1000_class_model_gets_imagenet_names():
    handle = geometry.load_model("timm:resnet18", device="cpu")  # random init, timm's default 1000 classes
    assert handle.num_classes == 1000
    assert "tench" in handle.class_names[0].lower()


def test_timm_unknown_name_is_a_sentence_with_a_suggestion():
    with pytest.raises(ValueError, match="not a timm architecture.*resnet18"):
        geometry.load_model("timm:resnet81", device="cpu")


def test_timm_pretrained_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="offline.*weights="):
        geometry.load_model("timm:resnet18", weights="pretrained", device="cpu")


def test_hub_models_refuse_a_normalisation_that_contradicts_the_library(timm_resnet):
    with pytest.raises(ValueError, match="leave out mean"):
        geometry.load_model("timm:resnet18", weights=timm_resnet[1], mean=(0.5, 0.5, 0.5), device="cpu")


@pytest.fixture(scope="module")
def hf_vit_folder(tmp_path_factory):
    """A tiny random ViT (32x32, 3 classes) and its processor, saved with save_pretrained."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    labels = {0: "cat", 1: "dog", 2: "bird"}
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = ViTForImageClassification(config).eval()
    processor = ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3]
    )
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, folder


def test_hf_logits_equal_the_processors_normalisation_and_forward(hf_vit_folder):
    model, processor, folder = hf_vit_folder
    handle = geometry.load_model(f"hf:{folder}", device="cpu")
    assert handle.input_shape == (3, 32, 32)
    assert handle.class_names == ("cat", "dog", "bird")
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    pixels = processor(
        images=list(x.numpy()),
        do_resize=False,
        do_rescale=False,
        return_tensors="pt",
        input_data_format="channels_first",
    )["pixel_values"]
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits
    assert torch.allclose(handle.logits(x), expected, atol=1e-5, rtol=1e-4)
    assert "image processor" in handle.pipeline
    assert handle.smooth is True and handle.card["smooth"] is True  # GELU, LayerNorm, softmax: no kinks


def test_hf_missing_folder_is_a_sentence(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        geometry.load_model(f"hf:{tmp_path / 'nowhere' / 'model'}", device="cpu")


def test_hf_folder_without_a_model_is_a_sentence(tmp_path):
    with pytest.raises(ValueError, match="save_pretrained"):
        geometry.load_model(f"hf:{tmp_path}", device="cpu")


def test_hf_hub_id_offline_is_a_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="Hugging Face hub.*needs internet"):
        geometry.load_model("hf:nobody-here/no-such-model-xyz", device="cpu")


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).reshape(x.shape[0], -1))


@pytest.fixture()
def exported_archive(tmp_path):
    torch.manual_seed(0)
    net = SmallNet().eval()
    program = torch.export.export(net, (torch.zeros(2, 3, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "small.pt2"
    torch.export.save(program, str(path))
    return net, path


def test_torch_export_archive_round_trips_with_any_batch_size(exported_archive):
    net, path = exported_archive
    handle = geometry.load_model(path, mean=(0.5,), std=(0.25,), class_names=["x", "y", "z"], device="cpu")
    assert handle.input_shape == (3, 8, 8)  # from the example input
    assert handle.smooth is False  # the graph calls relu
    for n in (1, 5):
        x = torch.rand(n, 3, 8, 8)
        with torch.no_grad():
            expected = net((x - 0.5) / 0.25)
        assert torch.allclose(handle.logits(x), expected, atol=1e-5)
    assert "torch.export" in handle.name


def test_torch_export_archive_refused_where_code_is_not_allowed(exported_archive):
    with pytest.raises(ValueError, match="torch.export archive.*BOUNDARY_ATLAS_ALLOW_CODE"):
        geometry.load_model(exported_archive[1], allow_code=False, device="cpu")

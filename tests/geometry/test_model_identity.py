"""The model the user gave is the model measured: architecture options, fingerprints, the input pipeline."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import geometry
from geometry.models import cards
from geometry.models.architectures import build_architecture


def _silu_cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_architecture(
        "cnn", input_shape=(1, 8, 8), num_classes=10, channels=(4, 8), hidden=16, activation="silu", pool="avg"
    ).eval()


def _digits(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


# -- architecture options ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_state_dict_without_its_options_is_refused_not_built_as_relu(tmp_path, suffix):
    net = _silu_cnn()
    path = tmp_path / f"silu{suffix}"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    with pytest.raises(ValueError, match=r"activation.*pool.*arch_options"):
        geometry.load_model(path, arch="cnn", input_shape=(1, 8, 8), device="cpu")


def test_stated_options_build_the_checkpoints_function(tmp_path):
    net = _silu_cnn()
    path = tmp_path / "silu.pt"
    torch.save(net.state_dict(), path)
    handle = geometry.load_model(
        path, arch="cnn", input_shape=(1, 8, 8), arch_options={"activation": "silu", "pool": "avg"}, device="cpu"
    )
    x = _digits()
    torch.testing.assert_close(handle.logits(x), net(x))  # the widths (4, 8) and 16 are read from the weights
    assert handle.smooth is True


def test_saved_weights_carry_every_option_and_load_back_as_the_same_function(tmp_path):
    net = _silu_cnn()
    path = tmp_path / "mine.safetensors"
    cards.save_model(
        net,
        path,
        arch="cnn",
        options={"activation": "silu", "pool": "avg", "channels": (4, 8), "hidden": 16},
        input_shape=(1, 8, 8),
        class_names=[str(i) for i in range(10)],
        mean=[0.3],
        std=[0.4],
    )
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    recorded = cards.architecture_metadata(
        "cnn", {"activation": "silu", "pool": "avg", "channels": (4, 8), "hidden": 16}, input_shape=(1, 8, 8)
    )
    assert '"pool": "avg"' in meta["boundary_atlas"] and '"activation": "silu"' in meta["boundary_atlas"]
    assert '"channels": [4, 8]' in recorded["boundary_atlas"]  # defaults are written out too, not left implicit
    for arch in (None, "cnn"):
        handle = geometry.load_model(path, arch=arch, device="cpu")
        x = _digits()
        normalised = (x - 0.3) / 0.4
        torch.testing.assert_close(handle.logits(x), net(normalised))
        assert handle.input_shape == (1, 8, 8) and handle.class_names[3] == "3"


def test_stated_options_that_contradict_the_file_are_refused(tmp_path):
    path = tmp_path / "mine.safetensors"
    cards.save_model(
        _silu_cnn(),
        path,
        arch="cnn",
        options={"activation": "silu", "pool": "avg", "channels": (4, 8), "hidden": 16},
        input_shape=(1, 8, 8),
    )
    with pytest.raises(ValueError, match=r"records activation='silu'.*'relu'"):
        geometry.load_model(path, arch="cnn", arch_options={"activation": "relu"}, device="cpu")


def test_unknown_option_names_are_refused():
    with pytest.raises(ValueError, match=r"unknown option.*'activaton'.*activation"):
        cards.architecture_metadata("cnn", {"activaton": "silu"})


# -- fingerprints --------------------------------------------------------------------------------


def _mlp(activation: str) -> nn.Module:
    torch.manual_seed(0)
    return build_architecture("mlp", input_shape=(4,), num_classes=3, hidden=(8,), activation=activation)


def test_same_weights_other_activation_other_fingerprint():
    relu, silu = _mlp("relu"), _mlp("silu")
    assert all(torch.equal(a, b) for a, b in zip(relu.state_dict().values(), silu.state_dict().values(), strict=True))
    a = geometry.ModelHandle.from_module(relu, input_shape=(4,), name="net", input_range=None, device="cpu")
    b = geometry.ModelHandle.from_module(silu, input_shape=(4,), name="net", input_range=None, device="cpu")
    assert a.fingerprint != b.fingerprint


def test_softplus_sharpness_is_part_of_the_fingerprint():
    def net(beta: float) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.Softplus(beta=beta), nn.Linear(8, 3))

    a = geometry.ModelHandle.from_module(net(1.0), input_shape=(4,), name="n", input_range=None, device="cpu")
    b = geometry.ModelHandle.from_module(net(5.0), input_shape=(4,), name="n", input_range=None, device="cpu")
    assert a.fingerprint != b.fingerprint


def test_same_model_loaded_twice_same_fingerprint(tmp_path):
    path = tmp_path / "mine.safetensors"
    cards.save_model(
        _silu_cnn(),
        path,
        arch="cnn",
        options={"activation": "silu", "pool": "avg", "channels": (4, 8), "hidden": 16},
        input_shape=(1, 8, 8),
    )
    a = geometry.load_model(path, device="cpu")
    b = geometry.load_model(path, device="cpu")
    assert a.fingerprint == b.fingerprint
    assert geometry.load_model("digits-cnn-silu", device="cpu").fingerprint != (
        geometry.load_model("digits-cnn-relu", device="cpu").fingerprint
    )


def test_resizing_is_part_of_the_fingerprint():
    def handle(resize):
        torch.manual_seed(0)
        net = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4, 2))
        return geometry.ModelHandle.from_module(net, input_shape=(1, 4, 4), name="n", resize=resize, device="cpu")

    assert handle(None).fingerprint != handle((8, 8)).fingerprint
    assert handle((8, 8)).fingerprint == handle((8, 8)).fingerprint


# -- the input pipeline of torchvision state dicts -----------------------------------------------


@pytest.fixture(scope="module")
def resnet_at_32(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=4).eval()
    path = tmp_path_factory.mktemp("tv") / "resnet18-32px.pt"
    torch.save(net.state_dict(), path)
    return net, path


def test_the_stated_input_size_and_normalisation_win(resnet_at_32):
    net, path = resnet_at_32
    handle = geometry.load_model(
        path, arch="resnet18", input_shape=(3, 32, 32), mean=[0, 0, 0], std=[1, 1, 1], device="cpu"
    )
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x)  # no resize to 224, no ImageNet normalisation
    torch.testing.assert_close(handle.logits(x), expected, rtol=1e-4, atol=1e-4)
    assert handle.pipeline == "input 3x32x32 in [0, 1]; no normalisation"


def test_a_resize_happens_only_when_asked(resnet_at_32):
    net, path = resnet_at_32
    handle = geometry.load_model(path, arch="resnet18", input_shape=(3, 32, 32), resize=64, device="cpu")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    up = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = net((up - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    torch.testing.assert_close(handle.logits(x), expected, rtol=1e-4, atol=1e-4)
    assert "resize 32x32 -> 64x64 bilinear" in handle.pipeline
    assert "torchvision's ImageNet preset" in handle.pipeline  # a normalisation nobody stated is named as such


def test_a_trained_models_weights_file_alone_loads_as_the_same_function(tmp_path):
    # the Train view's "Download the weights" then the sidebar's upload: no model card travels with the file
    from geometry.models.training import TrainConfig, train

    config = TrainConfig(
        "tiny-silu", arch="mlp", dataset="moons", activation="silu", architecture_options={"hidden": [8]}, epochs=1
    )
    result = train(config, out_dir=tmp_path / "trained")
    alone = tmp_path / "downloaded" / "weights.safetensors"
    alone.parent.mkdir()
    alone.write_bytes(result.weights_path.read_bytes())
    for arch in (None, "mlp"):
        mine = geometry.load_model(alone, arch=arch, device="cpu")
        trained = geometry.load_model(result.weights_path, device="cpu")  # with its card
        x = geometry.load_dataset("moons", split="test").images[:32]
        torch.testing.assert_close(mine.logits(x), trained.logits(x))
        assert mine.smooth is True and mine.input_range == trained.input_range is None  # 2D points, unbounded

"""Loading classifiers: built-in models, state dicts, TorchScript, torchvision architectures, and their errors."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import geometry
from geometry.models.architectures import build_architecture
from geometry.models.loading import load_state_dict_checked, read_state_dict


def test_builtin_model_loads_with_its_card():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    card = geometry.model_card("digits-cnn-silu")
    assert handle.input_shape == (1, 8, 8)
    assert handle.class_names == tuple(card["class_names"])
    assert handle.smooth is True and card["smooth"] is True
    assert handle.card["test_accuracy"] == card["test_accuracy"]


def test_builtin_list_contains_default():
    assert "digits-cnn-silu" in geometry.builtin_models()


def test_same_weights_same_fingerprint_and_changed_weight_changes_it():
    a = geometry.load_model("digits-cnn-silu", device="cpu")
    b = geometry.load_model("digits-cnn-silu", device="cpu")
    assert a.fingerprint == b.fingerprint
    with torch.no_grad():
        b.network.head.bias[0] += 1e-3
    rewrapped = geometry.ModelHandle.from_module(
        b.network, input_shape=(1, 8, 8), name="digits-cnn-silu", mean=a.card["mean"], std=a.card["std"]
    )
    assert rewrapped.fingerprint != a.fingerprint


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_architecture("cnn", input_shape=(1, 8, 8), num_classes=10, channels=(4, 8), hidden=16)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_state_dict_round_trip_gives_identical_logits(tmp_path, suffix):
    net = _tiny_cnn()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    # The wrapped checkpoint and DataParallel prefix are unwrapped.
    state = read_state_dict(path)
    fresh = build_architecture("cnn", input_shape=(1, 8, 8), num_classes=10, channels=(4, 8), hidden=16)
    load_state_dict_checked(fresh, state, source=path.name)
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(fresh.eval()(x), net.eval()(x))


def test_torchvision_architecture_with_local_weights(tmp_path):
    import torchvision

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=7)
    path = tmp_path / "resnet18-7.pth"
    torch.save(net.state_dict(), path)
    handle = geometry.load_model("resnet18", weights=path, input_shape=(3, 32, 32), device="cpu")
    assert handle.num_classes == 7  # read from the checkpoint's head
    assert handle.input_shape == (3, 32, 32)
    assert handle.logits(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_torchvision_imagenet_head_gets_class_names(tmp_path):
    import torchvision

    net = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    handle = geometry.load_model(path, arch="mobilenet_v3_small", device="cpu")
    assert handle.num_classes == 1000
    assert handle.class_names[0] == "tench"
    assert handle.input_shape == (3, 224, 224)


def test_torchscript_archive(tmp_path):
    net = _tiny_cnn().eval()
    path = tmp_path / "model.ts"
    torch.jit.script(net).save(str(path))
    handle = geometry.load_model(path, input_shape=(1, 8, 8), device="cpu")
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(handle.logits(x), net(x))
    assert handle.smooth is None  # cannot tell what a scripted module contains


def test_unknown_architecture_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean.*resnet18"):
        geometry.load_model("resnet81", weights="x.pth")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such model file"):
        geometry.load_model("/nonexistent/model.pt")


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = _tiny_cnn().state_dict()
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing keys \(e.g. head.bias\); 1 unexpected keys \(e.g. extra.weight\)"):
        load_state_dict_checked(_tiny_cnn(), state, source="ckpt.pt")


def test_shape_mismatch_is_named(tmp_path):
    state = _tiny_cnn().state_dict()
    state["head.weight"] = torch.zeros(3, 16)
    with pytest.raises(ValueError, match=r"head.weight: checkpoint \(3, 16\) vs model \(10, 16\)"):
        load_state_dict_checked(_tiny_cnn(), state, source="ckpt.pt")


def test_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("this is not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        geometry.load_model(path, arch="resnet18")


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a readable safetensors checkpoint"):
        geometry.load_model(path, arch="resnet18")


class _Evil:
    def __reduce__(self):  # would run code if unpickled
        return (print, ("this must never run",))


def test_pickle_with_objects_is_refused_not_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil()}, path)
    with pytest.raises(ValueError, match="never unpickles arbitrary objects"):
        geometry.load_model(path, arch="resnet18")
    assert "this must never run" not in capsys.readouterr().out


def test_state_dict_without_arch_asks_for_it(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_tiny_cnn().state_dict(), path)
    with pytest.raises(ValueError, match="say which architecture"):
        geometry.load_model(path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="is not a state dict"):
        geometry.load_model(path, arch="resnet18")


def test_torchscript_needs_input_shape(tmp_path):
    path = tmp_path / "model.ts"
    torch.jit.script(_tiny_cnn().eval()).save(str(path))
    with pytest.raises(ValueError, match="give its input_shape"):
        geometry.load_model(path)


def test_zip_that_is_neither(tmp_path):
    path = tmp_path / "archive.pt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        geometry.load_model(path, arch="resnet18")


@pytest.mark.parametrize("arch", [None, "cnn"])
def test_a_card_beside_the_file_wins_even_when_the_architecture_is_named(tmp_path, arch):
    # a SiLU checkpoint loaded as a plain "cnn" would load without error and silently compute a ReLU network
    import shutil

    from geometry.models.cards import ASSETS

    for suffix in (".safetensors", ".json"):
        shutil.copy(ASSETS / f"digits-cnn-silu{suffix}", tmp_path / f"mine{suffix}")
    mine = geometry.load_model(str(tmp_path / "mine.safetensors"), arch=arch, input_shape=(1, 8, 8), device="cpu")
    builtin = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits", split="test").images[:16]
    torch.testing.assert_close(mine.logits(x), builtin.logits(x))
    assert mine.smooth is True

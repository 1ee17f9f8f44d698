"""ModelHandle: preprocessing folded in, batched predictions, input checks, NaN detection."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import geometry
from geometry.models.handle import NonFiniteOutputError
from tests.geometry.analytic import Affine


def test_preprocessing_is_folded_into_the_module():
    torch.manual_seed(0)
    w, b = torch.randn(3, 2 * 2 * 2), torch.randn(3)
    mean, std = [0.2, 0.6], [0.5, 0.25]
    handle = geometry.ModelHandle.from_module(Affine(w, b), input_shape=(2, 2, 2), mean=mean, std=std, device="cpu")
    x = torch.rand(4, 2, 2, 2)
    normalised = (x - torch.tensor(mean).view(1, 2, 1, 1)) / torch.tensor(std).view(1, 2, 1, 1)
    torch.testing.assert_close(handle.logits(x), normalised.flatten(1) @ w.T + b)


def test_batched_logits_equal_one_pass():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = torch.rand(37, 1, 8, 8)
    with torch.no_grad():
        expected = handle.module(x)
    torch.testing.assert_close(handle.logits(x, batch_size=5), expected, rtol=1e-5, atol=1e-5)
    assert handle.predict(x, batch_size=8).tolist() == expected.argmax(1).tolist()
    torch.testing.assert_close(handle.probabilities(x).sum(1), torch.ones(37))


def test_single_image_is_accepted_as_a_batch_of_one():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    assert handle.logits(torch.rand(1, 8, 8)).shape == (1, 10)


def test_class_names_default_from_output_size():
    handle = geometry.ModelHandle.from_module(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), input_shape=(1, 2, 2))
    assert handle.class_names == ("class 0", "class 1", "class 2")


def test_wrong_input_shape_says_what_was_expected():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 1, 8, 8\), got \(2, 3, 32, 32\)"):
        handle.logits(torch.rand(2, 3, 32, 32))


def test_not_a_tensor():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        handle.logits([[0.0] * 64])  # type: ignore[arg-type]


def test_out_of_range_images_flagged_when_asked():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    with pytest.raises(ValueError, match=r"expected images in \[0, 1\]"):
        handle.check_inputs(torch.full((1, 1, 8, 8), 1.5), check_range=True)


def test_model_that_returns_nan_gets_a_clear_error():
    class Broken(nn.Module):
        def forward(self, x):
            out = x.flatten(1)[:, :3].clone()
            out[1] = float("nan")
            return out

    handle = geometry.ModelHandle.from_module(Broken(), input_shape=(1, 2, 2), num_classes=3, device="cpu")
    with pytest.raises(NonFiniteOutputError, match=r"NaN or infinite logits for 1 of 4 inputs \(first at index 1\)"):
        handle.logits(torch.rand(4, 1, 2, 2))


def test_not_a_module():
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        geometry.ModelHandle.from_module(lambda x: x, input_shape=(1, 2, 2))  # type: ignore[arg-type]


def test_bad_std():
    with pytest.raises(ValueError, match="std must be positive"):
        geometry.ModelHandle.from_module(nn.Flatten(), input_shape=(1, 2, 2), std=[0.0])


def test_smoothness_is_detected():
    relu = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    silu = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.SiLU(), nn.Linear(4, 2))
    assert geometry.ModelHandle.from_module(relu, input_shape=(1, 2, 2)).smooth is False
    assert geometry.ModelHandle.from_module(silu, input_shape=(1, 2, 2)).smooth is True


def test_resize_is_folded_in():
    handle = geometry.ModelHandle.from_module(nn.Flatten(), input_shape=(1, 4, 4), resize=(2, 2), num_classes=4)
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    # Bilinear halving of a linear ramp averages 2x2 blocks exactly.
    expected = x.view(1, 2, 2, 2, 2).mean(dim=(2, 4)).flatten(1)
    torch.testing.assert_close(handle.logits(x), expected)

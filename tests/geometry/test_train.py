"""The training command: reproducible, writes a loadable model + card, activated gradients as in the paper."""

from __future__ import annotations

import json
import math

import pytest
import torch

import geometry
from geometry.train import GradientActivation, TrainConfig, main, train


def test_gradient_activation_is_alpha_arctan_beta_g():
    p = torch.nn.Parameter(torch.zeros(5))
    p.grad = torch.tensor([-100.0, -0.01, 0.0, 0.01, 100.0])
    GradientActivation(alpha=0.3, beta=4.5)([p])
    expected = [0.3 * math.atan(4.5 * g) for g in (-100.0, -0.01, 0.0, 0.01, 100.0)]
    torch.testing.assert_close(p.grad, torch.tensor(expected))
    assert abs(float(p.grad[-1])) < 0.3 * math.pi / 2  # bounded
    assert float(p.grad[3]) > 0.01  # small gradients enlarged (slope alpha * beta = 1.35 at 0)


def test_gradient_activation_rejects_bad_parameters():
    with pytest.raises(ValueError, match="alpha > 0 and beta > 0"):
        GradientActivation(alpha=0.0, beta=1.0)


@pytest.mark.parametrize("grad_activation", ["none", "arctan"])
def test_training_is_reproducible_and_loadable(tmp_path, grad_activation):
    config = TrainConfig(
        "tiny-moons",
        "mlp",
        "moons",
        "silu",
        {"hidden": [16]},
        epochs=3,
        batch_size=100,
        grad_activation=grad_activation,
    )
    first = train(config, out_dir=tmp_path / "a")
    second = train(config, out_dir=tmp_path / "b")
    assert (tmp_path / "a" / "tiny-moons.safetensors").read_bytes() == (
        tmp_path / "b" / "tiny-moons.safetensors"
    ).read_bytes()
    assert first.history == second.history
    card = json.loads((tmp_path / "a" / "tiny-moons.json").read_text())
    assert card["training"]["grad_activation"] == grad_activation
    handle = geometry.load_model(tmp_path / "a" / "tiny-moons.safetensors", device="cpu")
    test = geometry.load_dataset("moons", split="test")
    assert handle.accuracy(test.images, test.labels) == pytest.approx(card["test_accuracy"], abs=1e-4)
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_command_line_needs_a_model_description(capsys):
    assert main(["--name", "x"]) == 2
    assert "--arch" in capsys.readouterr().err

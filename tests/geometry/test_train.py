"""The training command: reproducible, writes a loadable model + card, activated gradients as in the paper."""

from __future__ import annotations

import json
import math
import shlex

import pytest
import torch

import geometry
from geometry.cli import main as cli_main
from geometry.models.training import (
    ActivatedMomentumSGD,
    GradientActivation,
    TrainConfig,
    config_to_argv,
    train,
    train_cached,
    trained_model,
)
from geometry.runtime.compute import Cancelled, CancelToken


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


def main(argv: list[str]) -> int:
    """``python -m geometry train <argv>``, in this process."""
    return cli_main(["train", *argv])


def test_command_line_needs_a_model_description(capsys):
    assert main(["--name", "x"]) == 2
    assert "--arch" in capsys.readouterr().err


# -- the second variant, options, caching, cancelling, user models ----------------------------------------------------


def _tiny(name: str = "tiny", **options) -> TrainConfig:
    base = dict(arch="mlp", dataset="moons", activation="silu", architecture_options={"hidden": [8]}, epochs=2)
    return TrainConfig(name, **{**base, "batch_size": 200, **options})


def test_activated_momentum_sgd_follows_the_formula_in_float64():
    torch.manual_seed(0)
    w0 = torch.randn(6, dtype=torch.float64)
    grads = [torch.randn(6, dtype=torch.float64) * s for s in (0.01, 1.0, 5.0)]
    lr, mu, wd, alpha, beta = 0.1, 0.9, 0.01, 0.3, 4.5
    p = torch.nn.Parameter(w0.clone())
    opt = ActivatedMomentumSGD([p], lr=lr, momentum=mu, weight_decay=wd, alpha=alpha, beta=beta)
    w, buf = w0.clone(), None
    for g in grads:
        p.grad = g.clone()
        opt.step()
        d = g + wd * w  # reference: plain float64 arithmetic, written out
        buf = d.clone() if buf is None else mu * buf + d
        w = w - lr * alpha * torch.atan(beta * buf)
    torch.testing.assert_close(p.detach(), w, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"name": "a/b"}, "expected name as a file-name-safe string"),
        ({"arch": "transformer"}, "expected arch as one of"),
        ({"dataset": ""}, "expected dataset as a built-in data set name"),
        ({"epochs": 0}, "expected epochs as an int >= 1"),
        ({"batch_size": 0}, "expected batch_size as an int >= 1"),
        ({"augment_shift": -1}, "expected augment_shift as an int >= 0"),
        ({"lr": 0.0}, "expected lr as a positive number"),
        ({"weight_decay": -1.0}, "expected weight_decay as a number >= 0"),
        ({"optimizer": "lbfgs"}, "expected optimizer as one of adam, sgd"),
        ({"grad_activation": "tanh"}, "expected grad_activation as one of none, arctan"),
        ({"ga_alpha": -0.3}, "expected ga_alpha as a positive number"),
        ({"ga_beta": 0}, "expected ga_beta as a positive number"),
        ({"grad_activation_on": "weights"}, "expected grad_activation_on as one of gradient, momentum"),
        ({"grad_activation": "arctan", "grad_activation_on": "momentum"}, "expected optimizer 'sgd'"),
        ({"seed": -1}, "expected seed as an int >= 0"),
    ],
)
def test_bad_training_options_are_named(tmp_path, options, match):
    config = TrainConfig(**{**_tiny().__dict__, **options})
    with pytest.raises(ValueError, match=match):
        train(config, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_unknown_dataset_says_which_exist(tmp_path):
    with pytest.raises(ValueError, match="expected a dataset name among"):
        train(_tiny(dataset="cifar-1000"), out_dir=tmp_path)


def test_the_momentum_variant_trains_and_differs_from_plain_sgd(tmp_path):
    plain = train(_tiny("plain", optimizer="sgd", lr=0.05), out_dir=tmp_path)
    activated = train(
        _tiny("activated", optimizer="sgd", lr=0.05, grad_activation="arctan", grad_activation_on="momentum"),
        out_dir=tmp_path,
    )
    assert activated.card["training"]["grad_activation_on"] == "momentum"
    assert activated.history != plain.history
    assert all(math.isfinite(h["loss"]) for h in activated.history)


def test_history_records_test_accuracy_each_epoch_and_the_card_keeps_it(tmp_path):
    result = train(_tiny(), out_dir=tmp_path)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.history[-1]["test_accuracy"] == pytest.approx(result.card["test_accuracy"], abs=1e-4)
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card["history"][-1]["loss"] == pytest.approx(result.history[-1]["loss"], abs=1e-5)


def test_train_cached_finds_the_same_options_and_retrains_for_others(tmp_path, monkeypatch):
    first = train_cached(_tiny(), out_dir=tmp_path)
    import geometry.models.training as train_module

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although the same options were trained before")

    monkeypatch.setattr(train_module, "train", refuse)
    again = train_cached(_tiny(), out_dir=tmp_path)
    assert again.card == first.card and again.weights_path == first.weights_path
    assert trained_model(_tiny(seed=1), out_dir=tmp_path) is None  # other options: not the same model
    monkeypatch.undo()
    (tmp_path / "tiny.json").write_text("{ not json")  # a damaged card is trained again
    assert trained_model(_tiny(), out_dir=tmp_path) is None
    redone = train_cached(_tiny(), out_dir=tmp_path)
    assert redone.card["test_accuracy"] == first.card["test_accuracy"]


def test_cancelling_stops_between_batches_and_writes_nothing(tmp_path):
    token = CancelToken()
    epochs_seen = []

    def progress(fraction, text):
        epochs_seen.append(fraction)
        token.cancel()  # the user presses Stop during the first epoch's report

    with pytest.raises(Cancelled, match="training tiny"):
        train(_tiny(epochs=5), out_dir=tmp_path, progress=progress, cancel=token)
    assert len(epochs_seen) == 1
    assert not list(tmp_path.iterdir())


def test_trained_models_are_found_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDARY_ATLAS_MODELS", str(tmp_path))
    assert geometry.user_models_dir() == tmp_path
    result = train_cached(_tiny("my-moons"))
    assert result.weights_path == tmp_path / "my-moons.safetensors"
    assert geometry.user_models() == ["my-moons"]
    assert geometry.model_card("my-moons")["test_accuracy"] == result.card["test_accuracy"]
    handle = geometry.load_model("my-moons", device="cpu")
    test = geometry.load_dataset("moons", split="test")
    assert handle.accuracy(test.images, test.labels) == pytest.approx(result.card["test_accuracy"], abs=1e-4)
    # a trained model never shadows a built-in one of the same name
    (tmp_path / "moons-mlp.json").write_text((tmp_path / "my-moons.json").read_text())
    (tmp_path / "moons-mlp.safetensors").write_bytes((tmp_path / "my-moons.safetensors").read_bytes())
    assert "moons-mlp" not in geometry.user_models()
    assert geometry.model_card("moons-mlp")["training_command"] == "python -m geometry train --preset moons-mlp"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        geometry.model_card("nope")


def test_the_recorded_command_trains_the_same_model(tmp_path, monkeypatch):
    """The card's command line, run again, reproduces the weights byte for byte."""
    monkeypatch.setenv("BOUNDARY_ATLAS_MODELS", str(tmp_path / "cli"))
    config = TrainConfig(
        "cmd",
        "mlp",
        "moons",
        "tanh",
        {"hidden": [8, 4]},
        epochs=2,
        batch_size=100,
        optimizer="sgd",
        lr=0.05,
        weight_decay=0.0,
        grad_activation="arctan",
        ga_alpha=0.2,
        ga_beta=3.0,
        grad_activation_on="momentum",
        seed=3,
    )
    result = train_cached(config, out_dir=tmp_path / "lib")
    command = shlex.split(result.card["training_command"])
    assert command[:4] == ["python", "-m", "geometry", "train"]
    argv = command[4:]
    assert argv == config_to_argv(config)
    assert cli_main(command[3:]) == 0  # python -m geometry train ..., without --out: the user model folder
    assert (tmp_path / "cli" / "cmd.safetensors").read_bytes() == result.weights_path.read_bytes()


def test_command_line_rejects_bad_options_with_a_message(capsys, tmp_path):
    assert main(["--name", "x", "--arch", "mlp", "--dataset", "moons", "--hidden", "8,a", "--out", str(tmp_path)]) == 2
    assert "--hidden expects comma-separated ints" in capsys.readouterr().err
    argv = ["--name", "x", "--arch", "mlp", "--dataset", "moons", "--grad-activation", "arctan", "--ga-on", "momentum"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "expected optimizer 'sgd'" in capsys.readouterr().err


def test_a_diverging_run_says_so_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"diverged in epoch \d+: the loss became nan; lower the learning rate"):
        train(_tiny(optimizer="sgd", lr=1e12, epochs=5), out_dir=tmp_path)
    assert not list(tmp_path.iterdir())

"""The command line ``python -m geometry``: both commands listed, ``train`` with the flags the model cards
record, a tiny training run through it that reproduces the library's weights, and the report's options passed on."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import geometry
import geometry.cli.train as train_command
import geometry.report
from geometry.boundary.options import CurvatureOptions
from geometry.cli import main
from geometry.models.cards import ASSETS
from geometry.models.training import PRESETS, TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
TRAIN_FLAGS = (
    "--preset",
    "--all-presets",
    "--name",
    "--arch",
    "--dataset",
    "--activation",
    "--pool",
    "--hidden",
    "--epochs",
    "--batch-size",
    "--lr",
    "--weight-decay",
    "--optimizer",
    "--augment-shift",
    "--grad-activation",
    "--ga-alpha",
    "--ga-beta",
    "--ga-on",
    "--seed",
    "--out",
)


def _python_m_geometry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geometry", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )


def test_help_lists_both_commands_and_train_help_lists_every_flag():
    top = _python_m_geometry("--help")
    assert top.returncode == 0
    assert "train" in top.stdout and "report" in top.stdout
    assert "train a model" in top.stdout and "HTML report" in top.stdout
    sub = _python_m_geometry("train", "--help")
    assert sub.returncode == 0
    for flag in TRAIN_FLAGS:
        assert flag in sub.stdout, flag
    assert "python -m geometry train --preset digits-cnn-silu" in sub.stdout  # the examples of the description


def test_a_tiny_training_run_through_the_command_line_writes_the_librarys_model(tmp_path):
    argv = ["--name", "cli-tiny", "--arch", "mlp", "--dataset", "moons", "--activation", "silu", "--hidden", "8"]
    argv += ["--epochs", "2", "--batch-size", "200", "--seed", "1", "--out", str(tmp_path / "cli")]
    run = _python_m_geometry("train", *argv)
    assert run.returncode == 0, run.stderr
    # the progress bar on stderr, the result on stdout
    assert "[" + "#" * 30 + "] 100%" in run.stderr and "epoch 2/2" in run.stderr
    assert "cli-tiny: test accuracy" in run.stdout and "[" not in run.stdout
    card = json.loads((tmp_path / "cli" / "cli-tiny.json").read_text())
    assert card["training_command"] == "python -m geometry train " + shlex.join(argv)
    # the same options through the library give the same bytes
    config = TrainConfig("cli-tiny", "mlp", "moons", "silu", {"hidden": [8]}, epochs=2, batch_size=200, seed=1)
    lib = train(config, out_dir=tmp_path / "lib")
    assert (tmp_path / "cli" / "cli-tiny.safetensors").read_bytes() == lib.weights_path.read_bytes()
    assert card["training"] == json.loads(json.dumps(config.training_options()))
    handle = geometry.load_model(tmp_path / "cli" / "cli-tiny.safetensors", device="cpu")
    test = geometry.load_dataset("moons", split="test")
    assert handle.accuracy(test.images, test.labels) == pytest.approx(card["test_accuracy"], abs=1e-4)


@pytest.fixture
def recorded_training(monkeypatch):
    """`train` replaced by a recorder: (config, out_dir, command) of each call."""
    calls: list[tuple[TrainConfig, str, str]] = []

    def record(config, *, out_dir, command, progress=None, cancel=None):
        calls.append((config, str(out_dir), command))
        return geometry.TrainResult(card={"test_accuracy": 0.5}, weights_path=Path(out_dir) / "w", history=[])

    monkeypatch.setattr(train_command, "train", record)
    return calls


def test_presets_go_to_the_assets_and_record_their_short_command(recorded_training, capsys):
    assert main(["train", "--all-presets", "--no-progress"]) == 0
    assert [c for c, _, _ in recorded_training] == list(PRESETS.values())
    assert {out for _, out, _ in recorded_training} == {str(ASSETS)}
    assert [cmd for _, _, cmd in recorded_training] == [f"python -m geometry train --preset {n}" for n in PRESETS]
    recorded_training.clear()
    assert main(["train", "--preset", "moons-mlp", "--out", "/somewhere"]) == 0
    assert recorded_training == [(PRESETS["moons-mlp"], "/somewhere", "python -m geometry train --preset moons-mlp")]
    assert capsys.readouterr().out.count("test accuracy 0.5000") == len(PRESETS) + 1


def test_own_models_go_to_the_user_folder_with_the_flags_as_given(recorded_training, tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDARY_ATLAS_MODELS", str(tmp_path))
    argv = ["--name", "m", "--arch", "cnn", "--dataset", "digits", "--pool", "avg", "--optimizer", "sgd"]
    argv += ["--grad-activation", "arctan", "--ga-on", "momentum", "--ga-alpha", "0.2", "--lr", "0.1", "--no-progress"]
    assert main(["train", *argv]) == 0
    ((config, out, command),) = recorded_training
    assert out == str(tmp_path)
    assert command == "python -m geometry train " + shlex.join(argv)
    assert config == TrainConfig(
        "m",
        "cnn",
        "digits",
        "relu",
        {"pool": "avg"},
        lr=0.1,
        optimizer="sgd",
        grad_activation="arctan",
        ga_alpha=0.2,
        grad_activation_on="momentum",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "x", "--dataset", "moons"], "give --preset/--all-presets, or --arch"),
        (["--name", "x", "--arch", "mlp", "--dataset", "moons", "--hidden", "8,a"], "--hidden expects"),
        (["--name", "x", "--arch", "mlp", "--dataset", "moons", "--epochs", "0"], "expected epochs as an int >= 1"),
    ],
)
def test_bad_training_flags_get_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_the_report_command_passes_its_options_on(monkeypatch, tmp_path):
    seen = {}

    def record(path, handle, dataset, config, *, progress=None):
        seen.update(path=path, model=handle.name, dataset=(dataset.name, dataset.split), config=config)
        return geometry.Report("m", "d", config, [], "now", 0.0)

    monkeypatch.setattr(geometry.report, "write_report", record)
    out = str(tmp_path / "r.html")
    argv = ["report", "--model", "digits-cnn-silu", "--out", out, "--quick", "--bands", "2", "--seed", "3"]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 0
    config = seen["config"]
    assert seen["model"] == "digits-cnn-silu" and seen["dataset"] == ("digits", "test")  # the card's data set
    assert (config.n_images, config.bands, config.seed) == (8, 2, 3)
    assert config.curvature == CurvatureOptions(k=2, num_random=50, seed=3)  # --seed reaches the curvature too
    assert main(["report", "--model", "digits-cnn-silu", "--out", out, "--n", "30", "--no-progress"]) == 0
    assert (seen["config"].n_images, seen["config"].curvature_images, seen["config"].bands) == (30, 10, None)
    assert seen["config"].curvature == geometry.report.PAGE_CURVATURE

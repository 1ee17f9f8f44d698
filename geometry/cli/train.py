"""``python -m geometry train``: the reproducible training command that produced the built-in models.

    python -m geometry train --preset digits-cnn-silu          # re-train one shipped model
    python -m geometry train --all-presets                     # re-train every shipped model
    python -m geometry train --name my-cnn --arch cnn --dataset digits --activation gelu --epochs 20 \\
        --grad-activation arctan --ga-alpha 0.3 --ga-beta 4.5  # your own, with activated gradients

Each run writes ``<out>/<name>.safetensors`` (weights of the network, without preprocessing) and ``<out>/<name>.json``
(the model card: architecture, data, seed, this command, measured test accuracy, and the loss and accuracies of every
epoch). Without ``--out``, your own models go to `user_models_dir()`, where `load_model(name)` and the app's model
picker find them; presets go to assets/models. The card's ``training_command``, run again, trains the same weights.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from geometry.cli.progress import ProgressBar
from geometry.models.architectures import ARCHITECTURES
from geometry.models.training import (
    GRAD_ACTIVATION_ON,
    GRAD_ACTIVATIONS,
    OPTIMIZERS,
    PRESETS,
    TRAIN_COMMAND,
    TrainConfig,
    train,
)

HELP = "train a model (a shipped preset or your own) and write its weights and model card"
DESCRIPTION = __doc__


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), help="re-train one of the shipped models")
    p.add_argument("--all-presets", action="store_true", help="re-train every shipped model")
    p.add_argument("--name", help="the model's name (its file names and the name load_model finds it by)")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), help="architecture")
    p.add_argument("--dataset", help="a built-in data set name (e.g. digits, shapes, moons)")
    p.add_argument("--activation", default="relu", choices=["relu", "silu", "gelu", "softplus", "tanh"])
    p.add_argument("--pool", choices=["max", "avg"], help="pooling of the cnn architecture")
    p.add_argument("--hidden", help="hidden widths of the mlp architecture, comma-separated (e.g. 64,64)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS))
    p.add_argument("--augment-shift", type=int, default=0, help="random translation by up to this many pixels")
    p.add_argument("--grad-activation", default="none", choices=list(GRAD_ACTIVATIONS))
    p.add_argument("--ga-alpha", type=float, default=0.3)
    p.add_argument("--ga-beta", type=float, default=4.5)
    p.add_argument(
        "--ga-on",
        default="gradient",
        choices=list(GRAD_ACTIVATION_ON),
        help="activate the raw gradient or SGD's momentum",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", help="output folder (default: assets/models for presets, the user model folder for your own)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _hidden(text: str) -> list[int]:
    try:
        return [int(h) for h in text.split(",") if h.strip()]
    except ValueError:
        raise ValueError(f"--hidden expects comma-separated ints, got {text!r}") from None


def configs_of(args: argparse.Namespace) -> list[TrainConfig]:
    """The models the arguments ask for: every preset, one preset, or one model described by the flags."""
    if args.all_presets:
        return list(PRESETS.values())
    if args.preset:
        return [PRESETS[args.preset]]
    missing = [flag for flag, v in (("--name", args.name), ("--arch", args.arch), ("--dataset", args.dataset)) if not v]
    if missing:
        raise ValueError(f"give --preset/--all-presets, or {', '.join(missing)}")
    options: dict[str, Any] = {"pool": args.pool} if args.pool else {}
    if args.hidden:
        options["hidden"] = _hidden(args.hidden)
    return [
        TrainConfig(
            args.name,
            args.arch,
            args.dataset,
            args.activation,
            options,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            optimizer=args.optimizer,
            augment_shift=args.augment_shift,
            grad_activation=args.grad_activation,
            ga_alpha=args.ga_alpha,
            ga_beta=args.ga_beta,
            grad_activation_on=args.ga_on,
            seed=args.seed,
        )
    ]


def run(args: argparse.Namespace) -> int:
    from geometry.models.cards import ASSETS, user_models_dir

    configs = configs_of(args)
    preset = bool(args.preset or args.all_presets)
    out = args.out or (str(ASSETS) if preset else str(user_models_dir()))
    for config in configs:
        # what the card records: the preset's short form, or exactly the flags given (they trained these weights)
        command = f"{TRAIN_COMMAND} " + (f"--preset {config.name}" if preset else shlex.join(args.argv))
        bar = None if args.no_progress else ProgressBar()
        try:
            result = train(config, out_dir=out, command=command, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        print(f"{config.name}: test accuracy {result.card['test_accuracy']:.4f} -> {result.weights_path}", flush=True)
    return 0

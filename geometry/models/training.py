"""Training the models: `TrainConfig` (everything that determines a model), `train`, and the shipped `PRESETS`.

Each run writes ``<out>/<name>.safetensors`` (weights of the network, without preprocessing) and
``<out>/<name>.json`` (the model card: architecture, data, seed, the command that reproduces it, measured test
accuracy, and the loss and accuracies of every epoch). The command line is ``python -m geometry train``
(`geometry.cli.train`); `config_to_argv` gives its arguments for a config.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geometry.data.datasets import load_dataset
from geometry.models.architectures import ARCHITECTURES, SMOOTH_ACTIVATIONS, build_architecture
from geometry.models.cards import ASSETS, card_metadata, user_models_dir
from geometry.models.handle import ModelHandle, parameter_count
from geometry.runtime.cache import cache_key
from geometry.runtime.compute import CancelToken
from geometry.runtime.validate import check_int, check_positive

OPTIMIZERS = ("adam", "sgd")
GRAD_ACTIVATIONS = ("none", "arctan")
# Where the gradient activation acts (Liu et al. give both variants): on the raw gradient before the optimizer
# (before weight decay and momentum for SGD, before Adam's moments), or on SGD's momentum update.
GRAD_ACTIVATION_ON = ("gradient", "momentum")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (the model card records all of it)."""

    name: str
    arch: str  # "mlp" | "cnn" | "resnet-small"
    dataset: str  # a built-in dataset name (see geometry.data.datasets.builtin_datasets)
    activation: str = "relu"
    architecture_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"  # "adam" | "sgd"
    augment_shift: int = 0  # random translation by up to this many pixels (images only)
    grad_activation: str = "none"  # "none" | "arctan": g -> alpha * arctan(beta * g) before the optimizer step
    ga_alpha: float = 0.3
    ga_beta: float = 4.5
    grad_activation_on: str = "gradient"  # "gradient" | "momentum" (SGD only: the activated momentum update)
    seed: int = 0
    description: str = ""

    def check(self) -> None:
        """Raise ValueError naming the first option that cannot be trained, and what it expected."""
        if (
            not isinstance(self.name, str)
            or not self.name
            or any(c in self.name for c in "/\\:")
            or self.name[0] == "."
        ):
            raise ValueError(f"expected name as a file-name-safe string, got {self.name!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"expected arch as one of {', '.join(sorted(ARCHITECTURES))}, got {self.arch!r}")
        if not isinstance(self.dataset, str) or not self.dataset:  # load_dataset says which names it knows
            raise ValueError(f"expected dataset as a built-in data set name, got {self.dataset!r}")
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("augment_shift", self.augment_shift, 0)
        check_positive("lr", self.lr)
        if isinstance(self.weight_decay, bool) or not (
            isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < math.inf
        ):
            raise ValueError(f"expected weight_decay as a number >= 0, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer as one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.grad_activation not in GRAD_ACTIVATIONS:
            raise ValueError(
                f"expected grad_activation as one of {', '.join(GRAD_ACTIVATIONS)}, got {self.grad_activation!r}"
            )
        check_positive("ga_alpha", self.ga_alpha)
        check_positive("ga_beta", self.ga_beta)
        if self.grad_activation_on not in GRAD_ACTIVATION_ON:
            raise ValueError(
                f"expected grad_activation_on as one of {', '.join(GRAD_ACTIVATION_ON)}, "
                f"got {self.grad_activation_on!r}"
            )
        if self.grad_activation == "arctan" and self.grad_activation_on == "momentum" and self.optimizer != "sgd":
            raise ValueError("grad_activation_on='momentum' activates SGD's momentum update: expected optimizer 'sgd'")
        check_int("seed", self.seed, 0)

    def training_options(self) -> dict[str, Any]:
        """What the model card records under "training" (everything but the name and the description)."""
        return {k: v for k, v in asdict(self).items() if k not in ("name", "description")}

    def fingerprint(self) -> str:
        """A short hash of the training options: same options, same seed, same model (training is deterministic)."""
        return cache_key("geometry.models.training", TRAIN_VERSION, params=self.training_options())[:10]


PRESETS: dict[str, TrainConfig] = {
    c.name: c
    for c in [
        TrainConfig(
            "digits-cnn-silu",
            "cnn",
            "digits",
            "silu",
            {"pool": "avg"},
            epochs=40,
            augment_shift=1,
            description="Small CNN on 8x8 digits, smooth (SiLU + average pooling): the default, good for curvature.",
        ),
        TrainConfig(
            "digits-cnn-relu",
            "cnn",
            "digits",
            "relu",
            {"pool": "max"},
            epochs=40,
            augment_shift=1,
            description="The same CNN with ReLU + max-pooling: piecewise linear, for contrast.",
        ),
        TrainConfig(
            "digits-mlp-relu",
            "mlp",
            "digits",
            "relu",
            {"hidden": [256, 128]},
            epochs=60,
            augment_shift=1,
            description="Two-layer ReLU MLP on 8x8 digits.",
        ),
        TrainConfig(
            "shapes-resnet-silu",
            "resnet-small",
            "shapes",
            "silu",
            {"widths": [16, 32, 64]},
            epochs=15,
            batch_size=128,
            description="ResNet-style CNN on 32x32 RGB shapes, smooth (SiLU).",
        ),
        TrainConfig(
            "shapes-resnet-relu",
            "resnet-small",
            "shapes",
            "relu",
            {"widths": [16, 32, 64]},
            epochs=15,
            batch_size=128,
            description="The same ResNet-style CNN with ReLU, for contrast.",
        ),
        TrainConfig(
            "moons-mlp",
            "mlp",
            "moons",
            "silu",
            {"hidden": [64, 64, 64]},
            epochs=200,
            batch_size=64,
            lr=3e-3,
            description="MLP on two moons (2D: the slice is the whole input space).",
        ),
        TrainConfig(
            "circles-mlp",
            "mlp",
            "circles",
            "silu",
            {"hidden": [64, 64, 64]},
            epochs=200,
            batch_size=64,
            lr=3e-3,
            description="MLP on two concentric circles (2D).",
        ),
        TrainConfig(
            "spirals-mlp",
            "mlp",
            "spirals-3",
            "silu",
            {"hidden": [64, 64, 64]},
            epochs=150,
            batch_size=64,
            lr=3e-3,
            description="MLP on three interleaved spirals (2D).",
        ),
        TrainConfig(
            "blobs-mlp",
            "mlp",
            "blobs-4",
            "silu",
            {"hidden": [32, 32]},
            epochs=100,
            batch_size=64,
            lr=3e-3,
            description="MLP on four Gaussian blobs (2D).",
        ),
    ]
}


TRAIN_VERSION = "2"  # bump when the same options would train a different model
TRAIN_COMMAND = "python -m geometry train"  # the command line (geometry.cli.train) the model cards record


class GradientActivation:
    """Activated gradients (Liu et al.): replace each gradient g by ``alpha * arctan(beta * g)`` in place.

    Called between ``backward()`` and ``optimizer.step()``, so it acts on the raw gradient, before
    weight decay and momentum (SGD) or before Adam's moments: tiny gradients are enlarged (slope
    alpha*beta at 0) and large ones bounded by alpha*pi/2.
    """

    def __init__(self, alpha: float, beta: float) -> None:
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"gradient activation needs alpha > 0 and beta > 0, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = alpha, beta

    @torch.no_grad()
    def __call__(self, parameters: Sequence[nn.Parameter]) -> None:
        for p in parameters:
            if p.grad is not None:
                p.grad.copy_(self.alpha * torch.atan(self.beta * p.grad))


class ActivatedMomentumSGD(torch.optim.Optimizer):
    """SGD whose *momentum update* is activated: ``buf = mu buf + (g + wd w)``, ``w -= lr alpha arctan(beta buf)``.

    The second variant of Liu et al. (the first, on the raw gradient, is `GradientActivation` before any
    optimizer). ``momentum`` and ``lr`` live in the param groups, so learning-rate schedules (OneCycleLR) drive them.
    """

    def __init__(
        self, params: Any, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, alpha: float, beta: float
    ) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.activate = GradientActivation(alpha, beta)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("ActivatedMomentumSGD does not take a closure")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                buf = state["momentum_buffer"]
                p.add_(self.activate.alpha * torch.atan(self.activate.beta * buf), alpha=-group["lr"])


@dataclass(frozen=True)
class TrainResult:
    card: dict[str, Any]  # the model card written next to the weights
    weights_path: Path  # <out>/<name>.safetensors
    history: list[dict[str, float]]  # per epoch: epoch, loss, train_accuracy, test_accuracy


def train(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike = ASSETS,
    progress: Callable[[float, str], None] | None = None,
    command: str | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train ``config`` on its dataset's train split, measure test accuracy, write weights + card.

    ``progress(fraction, text)`` after every epoch; ``cancel`` is checked between batches (raises `Cancelled`,
    and nothing is written: weights and card are only written, atomically, once training has finished).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a geometry.models.training.TrainConfig, got {type(config).__name__}")
    config.check()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_set = load_dataset(config.dataset, split="train")
    test_set = load_dataset(config.dataset, split="test")
    x, y = train_set.images, train_set.labels
    is_image = x.dim() == 4
    mean, std = _normalisation(x) if is_image else (None, None)

    network = build_architecture(
        config.arch,
        input_shape=train_set.input_shape,
        num_classes=len(train_set.class_names),
        activation=config.activation,
        **_tuples(config.architecture_options),
    )
    model = ModelHandle.from_module(
        network,
        input_shape=train_set.input_shape,
        class_names=train_set.class_names,
        mean=mean,
        std=std,
        name=config.name,
        device="cpu",
    ).module
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    on_momentum = config.grad_activation == "arctan" and config.grad_activation_on == "momentum"
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    elif on_momentum:
        optimizer = ActivatedMomentumSGD(
            params,
            lr=config.lr,
            momentum=0.9,
            weight_decay=config.weight_decay,
            alpha=config.ga_alpha,
            beta=config.ga_beta,
        )
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    activate = (
        GradientActivation(config.ga_alpha, config.ga_beta)
        if config.grad_activation == "arctan" and not on_momentum
        else None
    )

    history = []
    started = time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), config.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled(f"training {config.name}")
            idx = order[start : start + config.batch_size]
            xb, yb = x[idx], y[idx]
            if is_image and config.augment_shift:
                xb = _random_shift(xb, config.augment_shift, generator)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if not torch.isfinite(loss.detach()):  # diverged: nothing is written, and the message says what to change
                raise ValueError(
                    f"training {config.name} diverged in epoch {epoch + 1}: the loss became {float(loss.detach())}; "
                    f"lower the learning rate (now {config.lr:g})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if activate is not None:
                activate(params)
            optimizer.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        test_accuracy = _accuracy(model, test_set.images, test_set.labels)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total_loss / len(x),
                "train_accuracy": correct / len(x),
                "test_accuracy": test_accuracy,
            }
        )
        if progress is not None:
            progress(
                (epoch + 1) / config.epochs,
                f"{config.name}: epoch {epoch + 1}/{config.epochs}, "
                f"loss {total_loss / len(x):.4f}, train acc {correct / len(x):.3f}, test acc {test_accuracy:.3f}",
            )
    model.eval()

    card = {
        "name": config.name,
        "description": config.description,
        "architecture": config.arch,
        "architecture_options": {**config.architecture_options, "activation": config.activation},
        "activation": config.activation,
        "smooth": config.activation in SMOOTH_ACTIVATIONS and config.architecture_options.get("pool", "avg") != "max",
        "dataset": config.dataset,
        "input_shape": list(train_set.input_shape),
        "input_range": list(train_set.input_range) if train_set.input_range else None,
        "class_names": list(train_set.class_names),
        "mean": mean,
        "std": std,
        "seed": config.seed,
        "training": config.training_options(),
        "training_command": command or f"{TRAIN_COMMAND} --preset {config.name}",
        "training_seconds": round(time.perf_counter() - started, 1),
        "train_size": len(train_set),
        "test_size": len(test_set),
        "test_accuracy": round(test_accuracy, 4),
        "parameter_count": parameter_count(network),
        "train_version": TRAIN_VERSION,
        "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in h.items()} for h in history],
    }
    weights_path = _write_atomically(Path(out_dir), config.name, network, card)
    return TrainResult(card=card, weights_path=weights_path, history=history)


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Test accuracy in eval mode (the model goes back to train mode afterwards)."""
    model.eval()
    with torch.inference_mode():
        correct = sum(
            int((model(images[s : s + 4096]).argmax(1) == labels[s : s + 4096]).sum())
            for s in range(0, len(images), 4096)
        )
    model.train()
    return correct / max(len(images), 1)


def trained_model(config: TrainConfig, *, out_dir: str | os.PathLike | None = None) -> TrainResult | None:
    """The model ``config.name`` in ``out_dir`` (default `user_models_dir()`) if it was trained with exactly the options
    of ``config`` by this version of the training code; else None (nothing there, other options, a damaged card)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a geometry.models.training.TrainConfig, got {type(config).__name__}")
    folder = Path(out_dir) if out_dir is not None else user_models_dir()
    card_path, weights_path = folder / f"{config.name}.json", folder / f"{config.name}.safetensors"
    if not (card_path.is_file() and weights_path.is_file()):
        return None
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return None  # a damaged card is trained again (and replaced atomically)
    if (
        isinstance(card, dict)
        and card.get("training") == json.loads(json.dumps(config.training_options()))
        and card.get("train_version") == TRAIN_VERSION
        and isinstance(card.get("history"), list)
    ):
        return TrainResult(card=card, weights_path=weights_path, history=card["history"])
    return None


def train_cached(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """`train` unless ``out_dir`` (default `user_models_dir()`) already holds ``config.name`` trained with the same
    options (`trained_model`), which is then returned at once: training is deterministic for a given seed."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a geometry.models.training.TrainConfig, got {type(config).__name__}")
    config.check()
    folder = Path(out_dir) if out_dir is not None else user_models_dir()
    found = trained_model(config, out_dir=folder)
    if found is not None:
        if progress is not None:
            progress(1.0, f"{config.name}: trained before, loaded")
        return found
    command = f"{TRAIN_COMMAND} " + shlex.join(config_to_argv(config))
    return train(config, out_dir=folder, progress=progress, command=command, cancel=cancel)


def config_to_argv(config: TrainConfig) -> list[str]:
    """The arguments of ``python -m geometry train`` that train ``config`` (architecture options: --pool, --hidden)."""
    argv = ["--name", config.name, "--arch", config.arch, "--dataset", config.dataset]
    argv += ["--activation", config.activation, "--epochs", str(config.epochs), "--batch-size", str(config.batch_size)]
    argv += ["--lr", repr(config.lr), "--weight-decay", repr(config.weight_decay), "--optimizer", config.optimizer]
    if config.augment_shift:
        argv += ["--augment-shift", str(config.augment_shift)]
    if "pool" in config.architecture_options:
        argv += ["--pool", str(config.architecture_options["pool"])]
    if "hidden" in config.architecture_options:
        argv += ["--hidden", ",".join(str(h) for h in config.architecture_options["hidden"])]
    if config.grad_activation != "none":
        argv += ["--grad-activation", config.grad_activation, "--ga-alpha", repr(config.ga_alpha)]
        argv += ["--ga-beta", repr(config.ga_beta), "--ga-on", config.grad_activation_on]
    argv += ["--seed", str(config.seed)]
    return argv


def _normalisation(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images (rounded, so the card stays readable)."""
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in std]


def _random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (zero padding, random crop)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chan = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, chan, rows, cols]


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _write_atomically(out_dir: Path, name: str, network: nn.Module, card: dict[str, Any]) -> Path:
    """Write weights and card via temp files + rename, so a crash never leaves a half-written model."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{name}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".tmp", delete=False) as tmp:
        tmp_weights = Path(tmp.name)
    save_file(state, str(tmp_weights), metadata=card_metadata(card))  # the file describes itself
    with tempfile.NamedTemporaryFile("w", dir=out_dir, suffix=".tmp", delete=False) as tmp:
        json.dump(card, tmp, indent=2)
        tmp.write("\n")
    for path in (tmp_weights, Path(tmp.name)):
        os.chmod(path, 0o644)  # temp files are created private; models are meant to be shared
    os.replace(tmp_weights, weights_path)
    os.replace(tmp.name, out_dir / f"{name}.json")
    return weights_path

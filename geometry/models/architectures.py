"""The built-in network architectures: small MLPs, CNNs and a ResNet-style CNN.

Every network ends in an ``nn.Linear`` called ``head`` whose input is the penultimate-layer
feature vector, so feature-space views can find the final affine layer without guessing.
The activation is a parameter because curvature views need smooth networks (SiLU, GELU,
softplus) while ReLU networks are piecewise linear (zero input Hessian almost everywhere).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import nn

Activation = Literal["relu", "silu", "gelu", "softplus", "tanh", "sigmoid"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "softplus": lambda: nn.Softplus(beta=5.0),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,  # the Playground offers it (TensorFlow Playground's classic)
}

SMOOTH_ACTIVATIONS = frozenset({"silu", "gelu", "softplus", "tanh", "sigmoid"})


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of ``relu, silu, gelu, softplus, tanh``)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}") from None


class MLP(nn.Module):
    """Fully connected classifier on flattened inputs: ``hidden`` layers, then ``head``."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        hidden: tuple[int, ...] = (128, 128),
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), make_activation(activation)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class SmallCNN(nn.Module):
    """Two conv blocks (conv-act-conv-act-pool), a hidden linear layer, then ``head``.

    ``pool="avg"`` keeps the whole network smooth when the activation is smooth;
    ``pool="max"`` is the classic piecewise-linear choice.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        activation: Activation = "relu",
        pool: Literal["max", "avg"] = "max",
    ) -> None:
        super().__init__()
        c_in, h, w = input_shape
        pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c1, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(c1, c1, 3, padding=1),
            make_activation(activation),
            pool_layer(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(c2, c2, 3, padding=1),
            make_activation(activation),
            pool_layer(2),
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), hidden),
            make_activation(activation),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, activation: Activation) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.act2 = make_activation(activation)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.act2(y + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A ResNet-style CNN for small RGB images: stem, three residual stages, global average pool, ``head``."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        widths: tuple[int, int, int] = (32, 64, 128),
        activation: Activation = "relu",
    ) -> None:
        super().__init__()
        c_in = input_shape[0]
        w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(c_in, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), make_activation(activation)
        )
        self.stages = nn.Sequential(
            _ResidualBlock(w1, w1, 1, activation),
            _ResidualBlock(w1, w2, 2, activation),
            _ResidualBlock(w2, w3, 2, activation),
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(w3, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": SmallCNN, "resnet-small": ResNetSmall}


FUNCTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "mlp": ("activation",),
    "cnn": ("activation", "pool"),
    "resnet-small": ("activation",),
}
"""Per built-in architecture, the options that change its function but not its weights' shapes: a checkpoint
cannot reveal them, so they must be recorded with it or stated (`infer_width_options` reads the rest)."""

_OPTION_CHOICES: dict[str, tuple[str, ...]] = {"activation": tuple(_ACTIVATIONS), "pool": ("max", "avg")}


def option_choices(option: str) -> tuple[str, ...]:
    """The values a string option (``activation``, ``pool``) may take, e.g. ``("max", "avg")``."""
    return _OPTION_CHOICES[option]


def architecture_options(arch: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of ``arch`` (its defaults, updated with ``options``), checked: unknown names and values are
    refused, lists become tuples. E.g. ``architecture_options("cnn", {"pool": "avg"})`` ->
    ``{"channels": (32, 64), "hidden": 128, "activation": "relu", "pool": "avg"}``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown built-in architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    params = inspect.signature(ARCHITECTURES[arch].__init__).parameters
    defaults = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    given = dict(options or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown option {', '.join(map(repr, unknown))} for architecture {arch!r}; its options are "
            f"{', '.join(defaults)}"
        )
    resolved = {**defaults, **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}}
    for name, choices in _OPTION_CHOICES.items():
        if name in resolved and resolved[name] not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {resolved[name]!r}")
    return resolved


def infer_width_options(arch: str, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The layer widths of a built-in architecture read from its state dict's weight shapes (what is present).

    E.g. a ``cnn`` checkpoint with ``body.0.weight`` of shape (4, 1, 3, 3) has ``channels[0] == 4``.
    """

    def out(key: str) -> int | None:
        return int(state[key].shape[0]) if key in state and state[key].dim() >= 1 else None

    found: dict[str, Any] = {}
    if arch == "mlp":
        hidden, index = [], 1  # body = Flatten, then (Linear, activation) pairs
        while (width := out(f"body.{index}.weight")) is not None:
            hidden.append(width)
            index += 2
        found["hidden"] = tuple(hidden)
    elif arch == "cnn":
        c1, c2, hidden = out("body.0.weight"), out("body.5.weight"), out("body.11.weight")
        if c1 is not None and c2 is not None:
            found["channels"] = (c1, c2)
        if hidden is not None:
            found["hidden"] = hidden
    elif arch == "resnet-small":
        widths = (out("stem.0.weight"), out("stages.1.conv1.weight"), out("stages.2.conv1.weight"))
        if all(w is not None for w in widths):
            found["widths"] = widths
    return found


def build_architecture(arch: str, *, input_shape: tuple[int, ...], num_classes: int, **options: object) -> nn.Module:
    """Instantiate a built-in architecture (``mlp``, ``cnn``, ``resnet-small``) with fresh weights."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown built-in architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    if "pool" in options and options["pool"] not in _OPTION_CHOICES["pool"]:
        raise ValueError(f"pool must be one of max, avg; got {options['pool']!r}")
    if arch in ("cnn", "resnet-small") and len(input_shape) != 3:
        raise ValueError(f"architecture {arch!r} needs images (C, H, W), got input shape {tuple(input_shape)}")
    return ARCHITECTURES[arch](tuple(input_shape), num_classes, **options)  # type: ignore[arg-type]

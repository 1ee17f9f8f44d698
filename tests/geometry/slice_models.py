"""Analytic classifiers for the slice tests: boundaries known in closed form."""

from __future__ import annotations

import torch
from torch import nn

import geometry


class Affine(nn.Module):
    """logits = W x + b on flattened inputs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone().float())
        self.bias = nn.Parameter(bias.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias


class Ball(nn.Module):
    """Class 1 inside the ball ||x - c|| < R, class 0 outside: logits (0, R^2 - ||x - c||^2)."""

    def __init__(self, center: torch.Tensor, radius: float) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().clone().float())
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x.flatten(1) - self.center) ** 2).sum(dim=1)
        return torch.stack([torch.zeros_like(d2), self.radius**2 - d2], dim=1)


class NaNAfter(nn.Module):
    """Zero logits, NaN where the first input coordinate exceeds a threshold."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        out = torch.zeros(len(f), 2)
        out[f[:, 0] > self.threshold] = float("nan")
        return out


def affine_handle(weight: torch.Tensor, bias: torch.Tensor, shape: tuple[int, ...], **kw) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(Affine(weight, bias), input_shape=shape, device="cpu", **kw)


def ball_handle(center: torch.Tensor, radius: float, **kw) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(Ball(center, radius), input_shape=tuple(center.shape), device="cpu", **kw)


class CircleUnderAConstant(nn.Module):
    """2D inputs; logits (R^2 - ||x - c||^2, 0, top): with ``top`` larger than both, class 2 wins everywhere, and
    f_0 - f_1 = R^2 - ||x - c||^2 changes sign on the circle ||x - c|| = R although neither class is top-1 there."""

    def __init__(self, center: tuple[float, float], radius: float, top: float = 100.0) -> None:
        super().__init__()
        self.register_buffer("center", torch.tensor(center, dtype=torch.float32))
        self.radius, self.top = radius, top

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x.flatten(1) - self.center) ** 2).sum(dim=1)
        return torch.stack([self.radius**2 - d2, torch.zeros_like(d2), torch.full_like(d2, self.top)], dim=1)


def toy_handle(module: nn.Module, **kw) -> geometry.ModelHandle:
    """A handle on unbounded 2D inputs (like the toy data sets)."""
    return geometry.ModelHandle.from_module(module, input_shape=(2,), device="cpu", input_range=None, **kw)

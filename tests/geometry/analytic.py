"""Classifiers whose boundaries are known in closed form, for the DeepFool / Hessian / curvature tests.

Each has two classes and logits ``(0, F(x))`` or ``(-F, 0)`` so that ``F = f_1 - f_0`` is the stated function and
class 0 is the region ``{F < 0}``.
"""

from __future__ import annotations

import torch
from torch import nn

import geometry


class Ball(nn.Module):
    """Class 0 inside the ball ||x - c|| < R (``inside=True``) or outside it: F = +-(||x - c|| - R)."""

    def __init__(self, center: torch.Tensor, radius: float, *, inside: bool = True) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().clone())
        self.radius = radius
        self.sign = 1.0 if inside else -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.sign * ((x.flatten(1) - self.center).norm(dim=1) - self.radius)
        return torch.stack([torch.zeros_like(f), f], dim=1)


class Cylinder(nn.Module):
    """Class 0 inside the cylinder of radius R around the axis through c spanned by every coordinate but the first
    two: F = ||(x - c)[:2]|| - R."""

    def __init__(self, center: torch.Tensor, radius: float) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().clone())
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = (x.flatten(1) - self.center)[:, :2].norm(dim=1) - self.radius
        return torch.stack([torch.zeros_like(f), f], dim=1)


class Quadratic(nn.Module):
    """F = a . x + x^T A x / 2 (constant Hessian A); with A a = 0 the boundary point from x = -d a/||a|| is 0 and the
    principal curvatures there are the eigenvalues of A / ||a||."""

    def __init__(self, a: torch.Tensor, hessian: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a.flatten().clone())
        self.register_buffer("hessian", hessian.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)
        f = v @ self.a + 0.5 * ((v @ self.hessian) * v).sum(dim=1)
        return torch.stack([torch.zeros_like(f), f], dim=1)


class Affine(nn.Module):
    """logits = W x + b on flattened inputs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias


def quadratic_with_spectrum(eigenvalues: list[float], grad_norm: float = 2.0, seed: int = 0):
    """A `Quadratic` in D = len(eigenvalues) + 1 dims whose Hessian has ``eigenvalues`` on a random tangent basis
    and 0 along the normal a; returns (module, a, tangent_basis (D, D-1))."""
    d = len(eigenvalues) + 1
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    a = grad_norm * q[:, 0]
    tangent = q[:, 1:]
    hessian = tangent @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ tangent.T
    return Quadratic(a.float(), hessian.float()), a.float(), tangent.float()


def handle_of(module: nn.Module, dim: int) -> geometry.ModelHandle:
    """A handle on unbounded vector inputs of dimension ``dim``."""
    return geometry.ModelHandle.from_module(module, input_shape=(dim,), device="cpu", input_range=None)


def dense_logit_difference_hessian(module: nn.Module, z: torch.Tensor, source: int, target: int):
    """float64 reference: the gradient (D,) and dense Hessian (D, D) of F = f_target - f_source at one point z."""
    import copy

    model64 = copy.deepcopy(module).double()
    shape = tuple(z.shape)

    def f(v: torch.Tensor) -> torch.Tensor:
        logits = model64(v.reshape(1, *shape))[0]
        return logits[target] - logits[source]

    point = z.detach().reshape(-1).double()
    grad = torch.autograd.functional.jacobian(f, point)
    hessian = torch.autograd.functional.hessian(f, point, vectorize=True)
    return grad.detach(), hessian.detach()

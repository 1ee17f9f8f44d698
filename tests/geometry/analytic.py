"""Classifiers whose boundaries are known in closed form: the one place the tests take their analytic models from.

Two-class models return logits ``(0, F(x))`` so that ``F = f_1 - f_0`` is the stated function and class 0 is the
region ``{F < 0}`` (docs/DESIGN.md §3). A ball's name says which class is inside it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

import geometry

# -- balls and other curved regions --------------------------------------------------------------------------------


class BallInsideClass0(nn.Module):
    """Class 0 inside the ball ||x - c|| < R, class 1 outside: F = ||x - c|| - R (so kappa = +1/R on its boundary,
    seen from inside)."""

    sign = 1.0  # F = sign * (||x - c|| - R)

    def __init__(self, center: torch.Tensor, radius: float) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().clone())
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.sign * ((x.flatten(1) - self.center).norm(dim=1) - self.radius)
        return torch.stack([torch.zeros_like(f), f], dim=1)


class BallInsideClass1(BallInsideClass0):
    """The same ball with the classes swapped: class 1 inside, class 0 outside, F = R - ||x - c||."""

    sign = -1.0


class TwoBalls(nn.Module):
    """Class 0 inside either of two disjoint unit balls centred at -c and +c (a region that is not connected)."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)
        f = torch.minimum((v - self.c).norm(dim=1), (v + self.c).norm(dim=1)) - 1.0
        return torch.stack([torch.zeros_like(f), f], dim=1)


class Ring(nn.Module):
    """Class 0 on the ring r_in < ||x|| < r_out (connected, not convex): F = (||x|| - r_in)(||x|| - r_out)."""

    def __init__(self, r_in: float = 1.0, r_out: float = 3.0) -> None:
        super().__init__()
        self.r_in, self.r_out = r_in, r_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x.flatten(1).norm(dim=1)
        f = (r - self.r_in) * (r - self.r_out)
        return torch.stack([torch.zeros_like(f), f], dim=1)


class BallAndHalfSpaces(nn.Module):
    """Three classes: class 0 in the convex set ||x|| + c|x_0| < R; outside it class 1 where x_0 > 0 and class 2
    where x_0 < 0."""

    def __init__(self, radius: float = 1.0, c: float = 0.3) -> None:
        super().__init__()
        self.radius, self.c = radius, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)
        f = v.norm(dim=1) - self.radius
        return torch.stack([torch.zeros_like(f), f + self.c * v[:, 0], f - self.c * v[:, 0]], dim=1)


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


# -- quadratic forms -----------------------------------------------------------------------------------------------


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


# -- affine models and a broken one --------------------------------------------------------------------------------


class Affine(nn.Module):
    """logits = W x + b on flattened inputs (float32 parameters, copied from the caller's tensors)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias


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


# -- handles -------------------------------------------------------------------------------------------------------


def handle_of(module: nn.Module, dim: int) -> geometry.ModelHandle:
    """A handle on unbounded vector inputs of dimension ``dim``."""
    return geometry.ModelHandle.from_module(module, input_shape=(dim,), device="cpu", input_range=None)


def toy_handle(module: nn.Module, **kw) -> geometry.ModelHandle:
    """A handle on unbounded 2D inputs (like the toy data sets)."""
    return geometry.ModelHandle.from_module(module, input_shape=(2,), device="cpu", input_range=None, **kw)


def affine_handle(
    weight: torch.Tensor, bias: torch.Tensor, shape: tuple[int, ...] = (1, 2, 2), **kw
) -> geometry.ModelHandle:
    """A handle on `Affine(weight, bias)` for inputs of ``shape`` (images in [0, 1] unless ``input_range=None``)."""
    return geometry.ModelHandle.from_module(Affine(weight, bias), input_shape=shape, device="cpu", **kw)


def ball_handle(center: torch.Tensor, radius: float, **kw) -> geometry.ModelHandle:
    """A handle on `BallInsideClass1(center, radius)` for inputs shaped like ``center`` (class 1 inside)."""
    module = BallInsideClass1(center.float(), radius)
    return geometry.ModelHandle.from_module(module, input_shape=tuple(center.shape), device="cpu", **kw)


# -- float64 references --------------------------------------------------------------------------------------------


def dense_logit_difference_hessian(module: nn.Module, z: torch.Tensor, source: int, target: int):
    """float64 reference: the gradient (D,) and dense Hessian (D, D) of F = f_target - f_source at one point z."""
    model64 = copy.deepcopy(module).double()
    shape = tuple(z.shape)

    def f(v: torch.Tensor) -> torch.Tensor:
        logits = model64(v.reshape(1, *shape))[0]
        return logits[target] - logits[source]

    point = z.detach().reshape(-1).double()
    grad = torch.autograd.functional.jacobian(f, point)
    hessian = torch.autograd.functional.hessian(f, point, vectorize=True)
    return grad.detach(), hessian.detach()

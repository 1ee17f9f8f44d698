"""Input-space Hessian-vector products of a logit difference ``F = f_k - f_j``, matrix-free and batched.

`HessianOperator` applies ``H_F(z_i) v_i`` for a batch of points (row i of the batch -> image i) either exactly
(double backprop; the graph of ``grad F`` is built once and reused for every product) or by central differences
of gradients at a scale ``h`` (the approach of the original curvature research code; it also sees the "curvature
at scale h" of piecewise-linear networks, whose exact Hessian is zero almost everywhere). `smooth_handle` makes a
softplus copy of a ReLU network (never modifying the caller's model), the third way of measuring curvature.
`hvp_check` cross-checks the exact products against central differences.

Vectors are flat ``(N, D)`` tensors with D = prod(input_shape); distances in input units (L2 pixels).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from geometry.boundary.deepfool import evaluation_mode
from geometry.boundary.options import CURVATURE_METHODS, DEFAULT_BETA, CurvatureMethod
from geometry.models.handle import ModelHandle
from geometry.runtime.validate import check_positive

__all__ = [
    "HVPCheck",
    "HessianOperator",
    "Method",
    "SoftMaxPool2d",
    "default_step",
    "hvp_check",
    "resolve_method",
    "smooth_copy",
    "smooth_handle",
    "smoothable",
]

Method = CurvatureMethod
METHODS = CURVATURE_METHODS
_FD_FRACTION = 1e-2  # default finite-difference step: 1% of the input range (L2, in input units)


def default_step(handle: ModelHandle) -> float:
    """The default finite-difference step h: 1% of the input range (0.01 for [0, 1] images; 0.01 if unbounded)."""
    if handle.input_range is None:
        return _FD_FRACTION
    lo, hi = handle.input_range
    return _FD_FRACTION * float(hi - lo)


def _is_smooth(handle: ModelHandle) -> bool:
    if handle.smooth is not None:
        return bool(handle.smooth)
    return bool(handle.card.get("smooth", False))


def resolve_method(handle: ModelHandle, method: str = "auto") -> tuple[str, str]:
    """The curvature method to use for ``handle`` and why: ``(method, reason)``.

    ``auto`` is ``exact`` for smooth models (no ReLU / max-pooling: handle.smooth or the model card says so). A
    piecewise-linear network's input Hessian is zero almost everywhere, and finite differences of its gradients are
    dominated by the kinks between linear pieces unless h is as large as the view (the principal curvatures then
    disagree with the boundary's own cross-sections, `curvature_profiles`). So ``auto`` is ``softplus`` when every
    piecewise-linear layer can be swapped for a smooth one (`smoothable`): the softplus copy (beta 10) predicts like
    the model on almost every input (bench/bench_softplus_agreement.py measures how often) and has a well-defined
    curvature. Otherwise (TorchScript, ReLU6, functional ReLU, ...) ``finite-difference``.
    """
    if method not in METHODS:
        raise ValueError(f"expected method to be one of {', '.join(METHODS)}, got {method!r}")
    smooth = _is_smooth(handle)
    if method == "auto":
        if smooth:
            return "exact", "the model is smooth, so the exact Hessian (double backprop) is meaningful"
        if smoothable(handle.module):
            return "softplus", (
                "the model is piecewise linear (ReLU / max-pooling): its exact input Hessian is zero almost everywhere "
                "and finite differences of its gradients measure the kinks between linear pieces more than the "
                "boundary's bend. So the curvature is that of a copy with ReLU → softplus(β) and max-pooling → a "
                "smooth maximum, which predicts like the model on almost every input at β = 10; the cross-sections "
                "are drawn on the same copy. Finite differences at a chosen scale h are in the settings"
            )
        return "finite-difference", (
            "the model is piecewise linear (ReLU / max-pooling) or of unknown smoothness: its exact input Hessian is "
            "zero almost everywhere, so curvature is measured by finite differences of gradients at scale h"
        )
    if method == "exact":
        if smooth:
            return "exact", "exact Hessian by double backprop, as requested (the model is smooth)"
        return "exact", (
            "exact Hessian by double backprop, as requested; the model is piecewise linear, so the exact Hessian is "
            "zero almost everywhere and the boundary looks flat (use finite differences or softplus smoothing)"
        )
    if method == "finite-difference":
        return "finite-difference", "finite differences of gradients at scale h, as requested"
    return "softplus", "exact Hessian of a copy of the network with ReLU replaced by softplus(beta), as requested"


# ---------------------------------------------------------------------------------------------
# the operator


class HessianOperator:
    """``v -> H_F(z) v`` for ``F = f_target - f_source`` at a batch of points z, matrix-free.

    ``z``: (N, *input_shape); ``source``/``target``: (N,) class indices j and k. ``method``: ``"exact"`` (double
    backprop) or ``"finite-difference"`` (``(g(z + h v) - g(z - h v)) / 2h`` with v scaled to unit length, g the
    gradient of F). Attributes: ``value`` (N,) F(z), ``gradient`` (N, D) grad F(z), ``grad_norm`` (N,), ``normal``
    (N, D) = gradient / grad_norm, ``dim`` D, ``products`` the number of Hessian-vector products applied per point.
    The operator is called with ``(N, D)`` (one vector per point) or ``(N, B, D)`` (B vectors per point). Every
    forward pass runs ``module`` in eval mode and restores its submodules' own modes afterwards. It is a
    `geometry.boundary.operator.LinearOperator` (``size`` D, ``batch`` N, ``device``, ``dtype``, ``matvec``), which
    is all the eigen-solvers see of it.
    """

    def __init__(
        self,
        module: nn.Module,
        z: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        *,
        input_shape: tuple[int, ...],
        method: Literal["exact", "finite-difference"] = "exact",
        h: float | None = None,
        chunk: int = 64,
    ) -> None:
        if method not in ("exact", "finite-difference"):
            raise ValueError(f"expected method 'exact' or 'finite-difference', got {method!r}")
        if method == "finite-difference" and (h is None or not (h > 0 and math.isfinite(h))):
            raise ValueError(f"expected a positive finite-difference step h, got {h!r}")
        self.module = module
        self.input_shape = tuple(input_shape)
        self.dim = math.prod(self.input_shape)
        z = z.detach().reshape(len(z), self.dim)
        if not torch.isfinite(z).all():
            raise ValueError("expected finite points z, got NaN or infinite values")
        self.z = z
        self.n = len(z)
        self.source = source.to(z.device, torch.int64).reshape(-1)
        self.target = target.to(z.device, torch.int64).reshape(-1)
        if len(self.source) != self.n or len(self.target) != self.n:
            raise ValueError(
                f"expected one source and one target class per point ({self.n}), "
                f"got {len(self.source)} and {len(self.target)}"
            )
        self.method = method
        self.h = float(h) if h is not None else math.nan
        self.chunk = max(1, int(chunk))
        self.products = 0
        self._zero_hessian = False
        if method == "exact":
            self._z = z.clone().requires_grad_(True)
            with torch.enable_grad():
                value = self._difference(self._z, self.source, self.target)
                (g,) = torch.autograd.grad(value.sum(), self._z, create_graph=True)
            self._g = g
            self._zero_hessian = not g.requires_grad  # F is affine in z: the graph of grad F is constant
            self.value = value.detach()
            self.gradient = g.detach()
        else:
            value, g = self._gradients(z, self.source, self.target)
            self.value, self.gradient = value, g
        self.grad_norm = self.gradient.norm(dim=1)
        self.normal = self.gradient / self.grad_norm.clamp_min(1e-30)[:, None]

    # the LinearOperator protocol (geometry.boundary.operator): what the eigen-solvers need to know

    @property
    def size(self) -> int:
        """D, the input dimension."""
        return self.dim

    @property
    def batch(self) -> int:
        """N, one operator per point z."""
        return self.n

    @property
    def device(self) -> torch.device:
        return self.z.device

    @property
    def dtype(self) -> torch.dtype:
        return self.z.dtype

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H_F(z_i) v_i``: (N, D) -> (N, D), or (N, B, D) -> (N, B, D)."""
        return self(v)

    def _difference(self, points: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with evaluation_mode(self.module):  # eval semantics; the caller's own modes are restored afterwards
            logits = self.module(points.reshape(len(points), *self.input_shape))
        return logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, source[:, None]).squeeze(1)

    def _gradients(
        self, points: torch.Tensor, source: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """F and grad F at many points (M, D), in chunks; no graph is kept."""
        values, grads = [], []
        step = max(1, self.chunk * 4)
        for s in range(0, len(points), step):
            p = points[s : s + step].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                f = self._difference(p, source[s : s + step], target[s : s + step])
                (g,) = torch.autograd.grad(f.sum(), p)
            values.append(f.detach())
            grads.append(g.detach())
        return torch.cat(values), torch.cat(grads)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        squeeze = v.dim() == 2
        vv = v.unsqueeze(1) if squeeze else v
        if vv.dim() != 3 or vv.shape[0] != self.n or vv.shape[2] != self.dim:
            raise ValueError(
                f"expected vectors of shape ({self.n}, {self.dim}) or ({self.n}, B, {self.dim}), got {tuple(v.shape)}"
            )
        vv = vv.to(self.device, self.z.dtype)
        self.products += vv.shape[1]
        out = self._exact(vv) if self.method == "exact" else self._finite_difference(vv)
        return out.squeeze(1) if squeeze else out

    def _exact(self, v: torch.Tensor) -> torch.Tensor:
        if self._zero_hessian:
            return torch.zeros_like(v)
        outs = []
        for b in range(v.shape[1]):
            (hv,) = torch.autograd.grad(self._g, self._z, grad_outputs=v[:, b], retain_graph=True, allow_unused=True)
            outs.append(torch.zeros_like(v[:, b]) if hv is None else hv.detach())
        return torch.stack(outs, dim=1)

    def _finite_difference(self, v: torch.Tensor) -> torch.Tensor:
        n, b, d = v.shape
        norms = v.norm(dim=2, keepdim=True)
        unit = v / norms.clamp_min(1e-30)
        h = self.h
        pts = torch.cat(
            [(self.z[:, None] + h * unit).reshape(n * b, d), (self.z[:, None] - h * unit).reshape(n * b, d)]
        )
        src = self.source.repeat_interleave(b).repeat(2)
        tgt = self.target.repeat_interleave(b).repeat(2)
        _, g = self._gradients(pts, src, tgt)
        plus, minus = g[: n * b].reshape(n, b, d), g[n * b :].reshape(n, b, d)
        return (plus - minus) / (2.0 * h) * norms

    def release(self) -> None:
        """Free the retained double-backprop graph."""
        self._g = None  # type: ignore[assignment]
        self._z = None  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------
# cross-check


@dataclass(frozen=True)
class HVPCheck:
    """Exact Hessian-vector products against central differences of exact gradients."""

    relative_error: torch.Tensor  # (N, B) ||Hv_exact - Hv_fd|| / max(||Hv_exact||, ||Hv_fd||, floor)
    exact_norm: torch.Tensor  # (N, B) ||Hv_exact||
    h: float  # the central-difference step (input units)

    @property
    def max_error(self) -> float:
        return float(self.relative_error.max()) if self.relative_error.numel() else 0.0


def hvp_check(operator: HessianOperator, *, num: int = 4, h: float = 1e-3, seed: int = 0) -> HVPCheck:
    """Compare ``operator`` (exact) with central differences of gradients at step ``h`` along ``num`` random unit
    tangent directions per point (the error of a smooth model is O(h^2))."""
    if operator.method != "exact":
        raise ValueError(f"expected an exact operator to check, got method {operator.method!r}")
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(operator.n, num, operator.dim, generator=gen, dtype=torch.float64).to(operator.device)
    v = v.to(operator.z.dtype)
    v = v / v.norm(dim=2, keepdim=True)
    exact = operator(v)
    fd = HessianOperator(
        operator.module,
        operator.z,
        operator.source,
        operator.target,
        input_shape=operator.input_shape,
        method="finite-difference",
        h=h,
    )(v)
    scale = torch.maximum(exact.norm(dim=2), fd.norm(dim=2)).clamp_min(1e-6)
    return HVPCheck(relative_error=((exact - fd).norm(dim=2) / scale).cpu(), exact_norm=exact.norm(dim=2).cpu(), h=h)


# ---------------------------------------------------------------------------------------------
# softplus smoothing


class SoftMaxPool2d(nn.Module):
    """Smooth max-pooling: ``log(sum(exp(beta x))) / beta`` over each window (-> max-pooling as beta grows)."""

    def __init__(self, pool: nn.MaxPool2d, beta: float) -> None:
        super().__init__()
        if pool.ceil_mode or pool.return_indices:
            raise ValueError("SoftMaxPool2d supports max-pooling without ceil_mode / return_indices")
        pair = nn.modules.utils._pair
        self.kernel_size = pair(pool.kernel_size)
        self.stride = pair(pool.stride if pool.stride is not None else pool.kernel_size)
        self.padding = pair(pool.padding)
        self.dilation = pair(pool.dilation)
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=-1e4)
        cols = F.unfold(
            x.reshape(n * c, 1, *x.shape[-2:]), self.kernel_size, dilation=self.dilation, stride=self.stride
        )
        out = torch.logsumexp(self.beta * cols, dim=1) / self.beta
        kh, kw = self.kernel_size
        dh, dw = self.dilation
        sh, sw = self.stride
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return out.reshape(n, c, oh, ow)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, beta={self.beta}"


class _SmoothLeakyReLU(nn.Module):
    """``a x + (1 - a) softplus_beta(x)``: the smooth counterpart of LeakyReLU(a)."""

    def __init__(self, slope: float, beta: float) -> None:
        super().__init__()
        self.slope = float(slope)
        self.softplus = nn.Softplus(beta=beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.slope * x + (1.0 - self.slope) * self.softplus(x)


_PIECEWISE_LINEAR = (nn.ReLU6, nn.Hardtanh, nn.PReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)


def _smooth_replacement(child: nn.Module, beta: float, pool: bool) -> nn.Module | None:
    """The smooth layer `smooth_copy` puts in place of ``child``, or None when it keeps it."""
    if type(child) is nn.ReLU:
        return nn.Softplus(beta=beta)
    if type(child) is nn.LeakyReLU:
        return _SmoothLeakyReLU(child.negative_slope, beta)
    if pool and type(child) is nn.MaxPool2d and not child.ceil_mode and not child.return_indices:
        return SoftMaxPool2d(child, beta)
    return None


def smoothable(module: nn.Module) -> bool:
    """True when `smooth_copy` would leave no piecewise-linear layer it can see (without copying the model).

    ReLU called as a function inside ``forward`` cannot be seen; such a model still gets a (partly) smooth copy.
    """
    if isinstance(module, torch.jit.ScriptModule):
        return False
    replaced, remaining = 0, 0
    for child in module.modules():
        if _smooth_replacement(child, DEFAULT_BETA, True) is not None:
            replaced += 1
        elif isinstance(child, _PIECEWISE_LINEAR):
            remaining += 1
    return replaced > 0 and remaining == 0


def smooth_copy(
    module: nn.Module, *, beta: float = DEFAULT_BETA, pool: bool = True
) -> tuple[nn.Module, int, list[str]]:
    """A deep copy of ``module`` with ``nn.ReLU`` -> ``nn.Softplus(beta)``, ``nn.LeakyReLU`` -> its smooth
    counterpart and (``pool=True``) ``nn.MaxPool2d`` -> `SoftMaxPool2d`. The caller's module is not modified.

    Returns ``(copy, replaced, remaining)``: the number of layers replaced and the names of the piecewise-linear
    layers left (e.g. ReLU6, max-pooling with ceil_mode; ReLU called as a function cannot be seen at all).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
    check_positive("beta", beta)
    if isinstance(module, torch.jit.ScriptModule):
        raise ValueError(
            "a TorchScript model cannot be smoothed (its layers cannot be replaced); use finite differences"
        )
    clone = copy.deepcopy(module)
    replaced = 0
    remaining: list[str] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        nonlocal replaced
        for name, child in list(parent.named_children()):
            full = f"{prefix}{name}"
            new = _smooth_replacement(child, float(beta), pool)
            if new is not None:
                setattr(parent, name, new)
                replaced += 1
                continue
            if isinstance(child, _PIECEWISE_LINEAR):
                remaining.append(f"{full} ({type(child).__name__})")
            visit(child, f"{full}.")

    visit(clone, "")
    return clone, replaced, remaining


def smooth_handle(handle: ModelHandle, *, beta: float = DEFAULT_BETA, pool: bool = True) -> ModelHandle:
    """A new handle whose module is `smooth_copy` of ``handle.module`` (same preprocessing, classes and device).

    Its fingerprint extends the original's with the smoothing, its card gains ``"smoothing"`` (beta, layers replaced,
    piecewise-linear layers remaining), and ``smooth`` is True only when nothing piecewise-linear remains.
    """
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    clone, replaced, remaining = smooth_copy(handle.module, beta=beta, pool=pool)
    clone.eval()
    fingerprint = hashlib.sha256(f"{handle.fingerprint}|softplus|{float(beta)!r}|{pool}".encode()).hexdigest()
    card = dict(handle.card)
    card["smoothing"] = {"beta": float(beta), "replaced": replaced, "remaining": remaining}
    return dataclasses.replace(
        handle,
        module=clone,
        name=f"{handle.name} (softplus β={beta:g})",
        fingerprint=fingerprint,
        card=card,
        smooth=not remaining,
    )

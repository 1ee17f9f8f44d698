"""How far each training point is from the boundary (DeepFool), and how the boundary bends there.

Both act on a `ModelHandle` of the Playground's network on the plane (`Playground.handle`), so distances are
Euclidean in plane units and curvatures in 1 / plane units.

Curvature in 2D: the boundary between x's class j and the class k across is the curve {F = 0}, F = f_k - f_j. Its
curvature at z, with the unit tangent u (perpendicular to grad F), is ``kappa = u^T H_F u / |grad F|``
(docs/DESIGN.md §3's sign: kappa > 0 where x's own region {F < 0} is locally convex, 1/R on a disc of radius R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geometry.boundary.deepfool import deepfool
from geometry.boundary.options import DeepFoolOptions
from geometry.models.handle import ModelHandle

__all__ = ["PointMargins", "boundary_curvature_2d", "point_margins"]


@dataclass(frozen=True)
class PointMargins:
    """Per point: its distance to the nearest boundary and the boundary point DeepFool found."""

    margin: np.ndarray  # (N,) float64: ||z - x|| in plane units (NaN where DeepFool did not converge)
    boundary_point: np.ndarray  # (N, 2) float64: z on the boundary of x's region (NaN where not converged)
    boundary_class: np.ndarray  # (N,) int64: the class across the boundary at z (-1 where none)
    predicted: np.ndarray  # (N,) int64: the model's class at x
    correct: np.ndarray  # (N,) bool: the prediction at x is the point's label

    @property
    def converged(self) -> np.ndarray:
        return np.isfinite(self.margin)


def point_margins(handle: ModelHandle, points: torch.Tensor, labels: torch.Tensor) -> PointMargins:
    """Untargeted DeepFool from each point ``(N, 2)`` (no clipping: the plane is unbounded)."""
    result = deepfool(handle, points.float(), options=DeepFoolOptions(clip=False, max_iter=100))
    predicted = result.original_label.numpy()
    return PointMargins(
        margin=result.boundary_distance.double().numpy(),
        boundary_point=result.boundary_point.double().numpy(),
        boundary_class=result.boundary_class.numpy(),
        predicted=predicted,
        correct=predicted == labels.numpy(),
    )


def boundary_curvature_2d(handle: ModelHandle, margins: PointMargins) -> np.ndarray:
    """The boundary's signed curvature at each DeepFool boundary point (1 / plane units; NaN where there is none).

    Exact (autograd Hessian of F = f_k - f_j in float64); for ReLU networks it is 0 almost everywhere.
    """
    module = handle.module
    params = list(module.parameters())
    saved = [p.requires_grad for p in params]
    out = np.full(len(margins.margin), np.nan)
    try:
        for p in params:
            p.requires_grad_(False)
        double = _as_double(module)
        for i in np.flatnonzero(margins.converged & (margins.boundary_class >= 0)):
            j, k = int(margins.predicted[i]), int(margins.boundary_class[i])
            z = torch.tensor(margins.boundary_point[i], dtype=torch.float64)

            def f(x: torch.Tensor, j: int = j, k: int = k) -> torch.Tensor:
                logits = double(x[None])[0]
                return logits[k] - logits[j]

            grad = torch.autograd.functional.jacobian(f, z)
            hess = torch.autograd.functional.hessian(f, z)
            norm = float(grad.norm())
            if norm == 0:
                continue
            tangent = torch.stack([-grad[1], grad[0]]) / norm
            out[i] = float(tangent @ hess @ tangent) / norm
    finally:
        for p, flag in zip(params, saved, strict=True):
            p.requires_grad_(flag)
    return out


def _as_double(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module).double().eval()

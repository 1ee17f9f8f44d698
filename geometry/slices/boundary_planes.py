"""Planes that ask the model where its boundary is: the DeepFool normal, the principal curvature directions.

``"normal + random"`` (`normal_plane`: the DeepFool boundary normal plus a seeded random tangent), ``"two normals"``
(`two_class_plane`: the DeepFool directions towards two chosen classes) and ``"normal + curvature"``
(`curvature_plane`: the normal at DeepFool's boundary point plus a principal curvature direction there). Each runs
DeepFool (`geometry.boundary.deepfool`) or the curvature engine (`geometry.boundary.curvature`), so each is also
memoized (``cached_normal_plane``, ...): a page or a report asking for the same plane twice computes it once. The
model-free planes and the `Plane` type live in `geometry.slices.planes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geometry.boundary.curvature import principal_directions
from geometry.boundary.deepfool import deepfool
from geometry.models.handle import ModelHandle
from geometry.runtime.memo import memoize
from geometry.slices.planes import Plane, _as_image, _gaussian, _generator, _symmetric_hint, orthonormal_pair

__all__ = [
    "cached_curvature_plane",
    "cached_normal_plane",
    "cached_two_class_plane",
    "curvature_plane",
    "normal_plane",
    "two_class_plane",
]


def _deepfool_one(handle: ModelHandle, x0: torch.Tensor, target: int | None, **kwargs: Any) -> Any:
    return deepfool(handle, x0.unsqueeze(0), target=target, **kwargs)


def _check_class(handle: ModelHandle, k: Any, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{what}: expected a class index (int), got {type(k).__name__}")
    if not 0 <= int(k) < handle.num_classes:
        raise ValueError(f"{what}: expected a class index in [0, {handle.num_classes}), got {k}")
    return int(k)


def normal_plane(
    handle: ModelHandle,
    x0: torch.Tensor,
    *,
    target: int | None = None,
    seed: int = 0,
    overshoot: float = 0.02,
    max_iter: int = 50,
) -> Plane:
    """The DeepFool boundary normal at x0 (towards the nearest class, or ``target``) plus a random tangent.

    u = the DeepFool perturbation direction, v = a seeded Gaussian direction orthogonalised to u.
    Anchors: x0 at (0, 0) and the DeepFool boundary point at about (distance, 0). ``extent_hint`` is
    +-2x the DeepFool distance, so the first view shows the boundary and the region beyond it.
    """
    x0 = _as_image(x0, "x0", handle.input_shape)
    if target is not None:
        target = _check_class(handle, target, "target")
    res = _deepfool_one(handle, x0, target, overshoot=overshoot, max_iter=max_iter)
    r = res.perturbation[0].detach().cpu().double()
    if not float(r.norm()) > 0:
        raise ValueError("DeepFool found no perturbation at x0 (zero norm): the model's output may be constant here")
    g = _generator(seed)
    d2 = _gaussian(tuple(x0.shape), g)
    u, v = orthonormal_pair(r, d2)
    name, bp_coords = _deepfool_anchor(handle, x0, res, u, v, "DeepFool point")
    dist = max(abs(bp_coords[0]), abs(bp_coords[1]))
    towards = f"towards {handle.class_names[target]}" if target is not None else "to the nearest class"
    note = "" if bool(res.converged[0]) else f" (DeepFool did not converge in {int(res.iterations[0])} steps)"
    return Plane(
        x0,
        u,
        v,
        "normal + random",
        {"x0": (0.0, 0.0), name: bp_coords},
        _symmetric_hint(2.0 * dist),
        f"DeepFool normal {towards} + random direction (seed {seed}){note}",
    )


def _deepfool_anchor(
    handle: ModelHandle, x0: torch.Tensor, res: Any, u: torch.Tensor, v: torch.Tensor, prefix: str
) -> tuple[str, tuple[float, float]]:
    """Name and plane coordinates of DeepFool's boundary point (x0 + r where the bisection has none)."""
    z = res.boundary_point[0].detach().cpu().double()
    if not bool(torch.isfinite(z).all()):
        z = x0.double() + res.perturbation[0].detach().cpu().double()
    d = z.flatten() - x0.double().flatten()
    coords = (float(d @ u.double().flatten()), float(d @ v.double().flatten()))
    k = int(getattr(res, "boundary_class", res.label_reached)[0])
    if k < 0:
        k = int(res.label_reached[0])
    return f"{prefix} ({handle.class_names[k]})", coords


def two_class_plane(
    handle: ModelHandle,
    x0: torch.Tensor,
    class_a: int,
    class_b: int,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
) -> Plane:
    """The plane of the DeepFool directions from x0 towards ``class_a`` (u) and ``class_b`` (v, orthogonalised).

    Anchors: x0 and the two targeted DeepFool points at their plane coordinates.
    """
    x0 = _as_image(x0, "x0", handle.input_shape)
    class_a = _check_class(handle, class_a, "class_a")
    class_b = _check_class(handle, class_b, "class_b")
    if class_a == class_b:
        raise ValueError(f"expected two different classes, got {class_a} twice")
    ra = _deepfool_one(handle, x0, class_a, overshoot=overshoot, max_iter=max_iter)
    rb = _deepfool_one(handle, x0, class_b, overshoot=overshoot, max_iter=max_iter)
    da, db = ra.perturbation[0].detach().cpu().double(), rb.perturbation[0].detach().cpu().double()
    try:
        u, v = orthonormal_pair(da, db)
    except ValueError as err:
        raise ValueError(
            f"the DeepFool directions towards {handle.class_names[class_a]} and "
            f"{handle.class_names[class_b]} are degenerate here ({err})"
        ) from None
    anchors = {"x0": (0.0, 0.0)}
    for cls, res in ((class_a, ra), (class_b, rb)):
        _, coords = _deepfool_anchor(handle, x0, res, u, v, "")
        anchors[f"DeepFool → {handle.class_names[cls]}"] = coords
    r = max(max(abs(a), abs(b)) for a, b in anchors.values())
    return Plane(
        x0,
        u,
        v,
        "two normals",
        anchors,
        _symmetric_hint(1.6 * r if r > 0 else 1.0),
        f"DeepFool normals towards {handle.class_names[class_a]} (u) and {handle.class_names[class_b]} (v)",
    )


def curvature_plane(
    handle: ModelHandle,
    x0: torch.Tensor,
    *,
    which: str = "positive",
    seed: int = 0,
) -> Plane:
    """The boundary normal at DeepFool's boundary point z plus a principal curvature direction there.

    Origin x0; u = the unit normal n at z (pointing out of x0's region), v = the principal direction of
    the most positive (``which="positive"``) or most negative (``"negative"``) normal curvature.
    Anchors: x0 and z.
    """
    if which not in ("positive", "negative"):
        raise ValueError(f"which: expected 'positive' or 'negative', got {which!r}")
    x0 = _as_image(x0, "x0", handle.input_shape)
    pd = principal_directions(handle, x0.unsqueeze(0), k=1, seed=seed)
    col = 0 if which == "positive" else -1
    n = pd.normal[0].detach().cpu().double()
    d = pd.directions[0, col].detach().cpu().double()
    kappa = float(pd.curvatures[0, col])
    if not (torch.isfinite(n).all() and torch.isfinite(d).all() and np.isfinite(kappa)):
        raise ValueError(
            "no boundary point was found from x0 (DeepFool did not converge), so there is no curvature "
            "direction; try another image or plane kind"
        )
    u, v = orthonormal_pair(n, d)
    z = pd.boundary_point[0].detach().cpu().double().flatten() - x0.double().flatten()
    zc = (float(z @ u.double().flatten()), float(z @ v.double().flatten()))
    k = int(pd.boundary_class[0])
    name = f"boundary point ({handle.class_names[k]})" if 0 <= k < handle.num_classes else "boundary point"
    r = max(abs(zc[0]), abs(zc[1]), 1e-3)
    return Plane(
        x0,
        u,
        v,
        "normal + curvature",
        {"x0": (0.0, 0.0), name: zc},
        _symmetric_hint(2.0 * r),
        f"boundary normal (u) + principal direction of the most {which} curvature (v, kappa = {kappa:.3g} per L2 unit)",
    )


# The same constructors through the disk cache (key: the model's fingerprint, x0's bytes and every option; version:
# this module's code and DeepFool's / the curvature engine's).
cached_normal_plane = memoize(name="geometry.slices.boundary_planes.normal_plane")(normal_plane)
cached_two_class_plane = memoize(name="geometry.slices.boundary_planes.two_class_plane")(two_class_plane)
cached_curvature_plane = memoize(name="geometry.slices.boundary_planes.curvature_plane")(curvature_plane)

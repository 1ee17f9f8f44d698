"""Curvature of the decision boundary at DeepFool boundary points, along its principal directions.

At the boundary point z between x's class j and the class k across (``F = f_k - f_j``, x's region ``{F < 0}``):
``g = grad F(z)``, ``n = g / ||g||`` (pointing out of x's region), ``P = I - n n^T``. The principal curvatures are
the eigenvalues of ``P H_F P / ||g||`` on the tangent space, the normal curvature along a unit tangent u is
``kappa(u) = u^T H_F u / ||g||``. Sign (docs/DESIGN.md §3): kappa > 0 means x's own region is locally convex there — the
boundary bends towards x — and a ball of radius R around x's class gives kappa = 1/R in every direction. In the plane
(u, n) the boundary is ``s(t) = -kappa t^2 / 2 + O(t^3)`` along n: it comes towards x's side by ``kappa t^2 / 2``.

- `boundary_curvature`: principal curvatures and directions (Lanczos, top-k and bottom-k) plus normal curvatures
  along random tangent directions, batched over images.
- `principal_directions`: the normal and the most curved directions only (the Slices page's plane).
- `curvature_profiles`: the boundary's cross-section in the planes (u_i, n) with the osculating parabolas.
- `curvature_vulnerability`: DeepFool restricted to the m most curved directions vs to random m-dim subspaces.

Curvature is in 1 / input units (1 / L2 pixels); distances in input units.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from geometry.boundary.deepfool import DeepFoolResult, cached_deepfool, deepfool, evaluation_mode, subspace_deepfool
from geometry.boundary.hessian import HessianOperator, default_step, resolve_method, smooth_handle
from geometry.boundary.lanczos import assembled_eigs, lanczos
from geometry.boundary.operator import ScaledOperator
from geometry.boundary.options import CurvatureMethod, CurvatureOptions
from geometry.models.handle import ModelHandle
from geometry.runtime.budget import check_budget
from geometry.runtime.compute import CancelToken, scaled_progress
from geometry.runtime.memo import memoize
from geometry.runtime.options import with_overrides
from geometry.runtime.validate import check_int, check_positive

__all__ = [
    "CurvatureProfile",
    "CurvatureResult",
    "PrincipalDirections",
    "VulnerabilityResult",
    "boundary_curvature",
    "cached_curvature",
    "cached_curvature_profiles",
    "cached_curvature_vulnerability",
    "curvature_profiles",
    "curvature_vulnerability",
    "principal_directions",
]

Progress = Callable[[float, str], None]
PRINCIPAL_OPTIONS = CurvatureOptions(k=1, num_random=0)  # `principal_directions`: the most curved pair only
_EVALUATIONS_PER_PRODUCT = 3  # a Hessian-vector product (double backprop) costs about three forward passes


@dataclass(frozen=True)
class CurvatureResult:
    """Curvature of the boundary at the boundary points of N images (rows of NaN where DeepFool failed).

    m = min(2k, D - 1) principal pairs (k from each end); S = input_shape; D = prod(S).
    """

    boundary_point: (
        torch.Tensor
    )  # (N, *S) float32: z, where curvature is measured (on the smoothed copy's boundary for softplus)
    normal: torch.Tensor  # (N, *S) float32: unit n = grad F / ||grad F|| at z, pointing out of x's region
    grad_norm: torch.Tensor  # (N,) float32: ||grad F(z)|| (logits per input unit)
    boundary_gap: torch.Tensor  # (N,) float32: |F(z)| (logits)
    original_label: torch.Tensor  # (N,) int64: j, the prediction at x
    boundary_class: torch.Tensor  # (N,) int64: k, the class across the boundary (-1 where DeepFool failed)
    boundary_distance: torch.Tensor  # (N,) float32: ||z - x|| for the z above (input units; softplus: the moved z)
    curvatures: torch.Tensor  # (N, m) float64: principal curvatures, decreasing (1 / input units)
    directions: torch.Tensor  # (N, m, *S) float32: unit principal directions, orthogonal to n
    residuals: torch.Tensor  # (N, m) float64: ||P H P u / ||g|| - kappa u|| (1 / input units)
    converged: torch.Tensor  # (N, m) bool
    random_curvatures: torch.Tensor  # (N, M) float32: kappa(v) for M random unit tangent directions v
    deepfool_norm: torch.Tensor  # (N,) float32: ||r|| of the DeepFool perturbation
    deepfool_converged: torch.Tensor  # (N,) bool
    smoothing_shift: torch.Tensor  # (N,) float32: ||z - DeepFool's z|| (softplus moves z onto the smooth boundary)
    asymmetry: torch.Tensor  # (N,) float32: ||A - A^T|| / ||A|| of an assembled finite-difference matrix, else NaN
    target: torch.Tensor  # (N,) int64: requested target class, -1 when untargeted
    method: str  # "exact" | "finite-difference" | "softplus"
    method_reason: str  # why that method (shown on the page)
    h: float  # finite-difference step (input units), NaN unless method is finite-difference
    beta: float  # softplus beta, NaN unless method is softplus
    k: int  # requested pairs from each end
    lanczos_iterations: int  # Hessian-vector products per image for the spectrum (Krylov steps, or D - 1 assembled)
    hessian_products: int  # all Hessian-vector products per image (spectrum + random directions)
    seed: int
    seconds: float  # wall time of the computation

    def __len__(self) -> int:
        return len(self.grad_norm)


@dataclass(frozen=True)
class PrincipalDirections:
    """The boundary normal and the most curved tangent directions at each image's boundary point."""

    boundary_point: torch.Tensor  # (N, *S) float32: z
    normal: torch.Tensor  # (N, *S) float32: unit normal at z, pointing out of x's region (towards class k)
    directions: torch.Tensor  # (N, m, *S) float32: unit principal directions, most positive curvature first
    curvatures: torch.Tensor  # (N, m) float64: their curvatures, decreasing (the last ones the most negative)
    original_label: torch.Tensor  # (N,) int64
    boundary_class: torch.Tensor  # (N,) int64
    method: str


@dataclass(frozen=True)
class CurvatureProfile:
    """Cross-sections of the boundary of one image in the planes (u_i, n) through z, with osculating parabolas.

    Plane coordinates: t along the principal direction u_i, s along the normal n (s > 0: towards class k).
    """

    t: torch.Tensor  # (T,) float64: offsets along u_i (input units)
    boundary: torch.Tensor  # (P, T) float64: s with F(z + t u_i + s n) = 0 nearest to s = 0 (NaN: none in the window)
    parabola: torch.Tensor  # (P, T) float64: the osculating parabola -kappa_i t^2 / 2
    logit_difference: torch.Tensor  # (P, T) float64: F(z + t u_i), the 1D profile along u_i (logits)
    logit_quadratic: torch.Tensor  # (P, T) float64: its second-order model F(z) + ||g|| kappa_i t^2 / 2
    curvatures: torch.Tensor  # (P,) float64: kappa_i
    direction_index: torch.Tensor  # (P,) int64: i, index into the result's directions
    window: float  # the boundary is searched for s in [-window, window]
    image: int  # which image of the curvature result


@dataclass(frozen=True)
class VulnerabilityResult:
    """DeepFool norms in the span of the m most curved directions vs in random m-dimensional subspaces."""

    dims: torch.Tensor  # (M,) int64: subspace dimensions m
    curved_norm: torch.Tensor  # (N, M) float32: ||r|| restricted to the m most curved principal directions
    curved_converged: torch.Tensor  # (N, M) bool
    random_norm: torch.Tensor  # (N, M, R) float32: ||r|| restricted to R random m-dim subspaces
    random_converged: torch.Tensor  # (N, M, R) bool
    full_norm: torch.Tensor  # (N,) float32: unrestricted DeepFool norm
    order: str  # "absolute" (largest |kappa| first) or "positive" (largest kappa first)
    seed: int


# ---------------------------------------------------------------------------------------------


def _difference(
    module: torch.nn.Module, shape: tuple[int, ...], points: torch.Tensor, source: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    logits = module(points.reshape(len(points), *shape))
    return logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, source[:, None]).squeeze(1)


def _project_to_boundary(
    module: torch.nn.Module,
    shape: tuple[int, ...],
    z: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    steps: int = 8,
) -> torch.Tensor:
    """Newton steps along the gradient onto {F = 0} of ``module`` (used for the softplus copy)."""
    z = z.detach().clone()
    for _ in range(steps):
        p = z.clone().requires_grad_(True)
        with torch.enable_grad():
            f = _difference(module, shape, p, source, target)
            (g,) = torch.autograd.grad(f.sum(), p)
        gn2 = (g * g).sum(dim=1).clamp_min(1e-30)
        z = (z - (f.detach() / gn2)[:, None] * g).detach()
        if float((f.detach().abs() / gn2.sqrt()).max()) < 1e-7:
            break
    return z


def boundary_curvature(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    options: CurvatureOptions | None = None,
    target: int | torch.Tensor | None = None,
    k: int | None = None,
    method: CurvatureMethod | None = None,
    h: float | None = None,
    beta: float | None = None,
    num_random: int | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    dense_limit: int | None = None,
    seed: int | None = None,
    clip: bool | None = None,
    overshoot: float | None = None,
    deepfool_result: DeepFoolResult | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CurvatureResult:
    """Principal curvatures of the boundary at each image's DeepFool boundary point, and random-direction curvatures.

    ``x``: (N, *input_shape). ``options``: a `CurvatureOptions` (its defaults are this function's defaults); a
    keyword that is not None overrides the option of the same name (``target``, ``clip`` and ``overshoot`` those of
    ``options.deepfool``). ``target``: as in `deepfool`. ``k``: eigenpairs from each end of the spectrum.
    ``method``: ``"auto"`` (exact for smooth models, softplus for ReLU / max-pooling ones; see `resolve_method`),
    ``"exact"`` (double backprop), ``"finite-difference"`` (gradients at z +- h v; ``h`` default: 1% of the input
    range) or ``"softplus"`` (exact, on a copy with ReLU -> softplus(``beta``), at z moved onto its boundary).
    ``num_random``: random unit tangent directions per image for the distribution of normal curvatures.
    ``max_iter``/``tol``: Lanczos steps and relative residual tolerance (Lanczos starts from a block of vectors so
    that a close pair of principal curvatures at the end of the top or bottom k is resolved; see `lanczos`). Finite
    differences: up to ``dense_limit`` input dimensions the scale-h Hessian is assembled on a tangent basis (D - 1
    products) and diagonalised exactly, because a piecewise-linear network's difference quotient is not linear in the
    direction (Lanczos would not converge); above it, Lanczos runs on the difference quotients and reports its
    residuals. ``deepfool_result``: reuse a DeepFool run of the same x (it must match). Batched over images: every
    Hessian-vector product serves all N at once.
    """
    start = time.perf_counter()
    if not isinstance(handle, ModelHandle):
        raise TypeError(f"expected a ModelHandle, got {type(handle).__name__}")
    per_image_target = isinstance(target, torch.Tensor)
    base = options if options is not None else CurvatureOptions()
    if not isinstance(base, CurvatureOptions):
        raise TypeError(f"expected options to be a CurvatureOptions, got {type(base).__name__}")
    opts = with_overrides(
        base,
        k=k,
        method=method,
        h=h,
        beta=beta,
        num_random=num_random,
        max_iter=max_iter,
        tol=tol,
        dense_limit=dense_limit,
        seed=seed,
        deepfool=with_overrides(
            base.deepfool, target=None if per_image_target else target, clip=clip, overshoot=overshoot
        ),
    )
    k, num_random, seed, beta = opts.k, opts.num_random, opts.seed, opts.beta
    resolved, reason = resolve_method(handle, opts.method)
    step = opts.h if opts.h is not None else default_step(handle)
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    n = len(x)
    shape = handle.input_shape
    dim = math.prod(shape)
    if dim < 2:
        raise ValueError(f"curvature needs inputs of at least 2 dimensions, got input shape {shape}")
    if num_random:  # drawn at once as (N, num_random, D) floats, twice (drawn and projected): check before DeepFool
        check_budget(
            f"curvature along {num_random:,} random directions at {n:,} image{'s' * (n != 1)} of {dim:,} dimensions",
            evaluations=n * num_random * _EVALUATIONS_PER_PRODUCT,
            bytes=2 * n * num_random * dim * 4,
            handle=handle,
            lower="ask for fewer random directions (num_random) or fewer images",
        )
    df = deepfool_result
    if df is None:
        df = deepfool(
            handle,
            x,
            options=opts.deepfool,
            target=target if per_image_target else None,
            progress=scaled_progress(progress, 0.0, 0.15),
            cancel=cancel,
        )
    elif not isinstance(df, DeepFoolResult) or len(df) != n:
        raise ValueError(f"expected deepfool_result to be a DeepFoolResult for the {n} images of x")
    rows = torch.nonzero(df.converged & torch.isfinite(df.boundary_distance)).flatten()
    m = min(2 * k, dim - 1)

    z_all = torch.full((n, dim), math.nan)
    normal = torch.full((n, dim), math.nan)
    grad_norm = torch.full((n,), math.nan)
    gap = torch.full((n,), math.nan)
    curv = torch.full((n, m), math.nan, dtype=torch.float64)
    dirs = torch.full((n, m, dim), math.nan)
    res = torch.full((n, m), math.nan, dtype=torch.float64)
    conv = torch.zeros((n, m), dtype=torch.bool)
    rand = torch.full((n, num_random), math.nan)
    shift = torch.full((n,), math.nan)
    distance = torch.full((n,), math.nan)
    asymmetry = torch.full((n,), math.nan)
    iterations = 0
    products = 0

    if len(rows):
        dev = handle.device
        module = handle.module
        if resolved == "softplus":
            module = smooth_handle(handle, beta=beta).module
        z0 = df.boundary_point[rows].reshape(len(rows), dim).to(dev)
        j = df.original_label[rows].to(dev)
        kk = df.boundary_class[rows].to(dev)
        z = _project_to_boundary(module, shape, z0, j, kk) if resolved == "softplus" else z0
        op = HessianOperator(
            module,
            z,
            j,
            kk,
            input_shape=shape,
            method="finite-difference" if resolved == "finite-difference" else "exact",
            h=step,
        )
        shape_operator = ScaledOperator(op, op.grad_norm.clamp_min(1e-30))  # H_F / ||grad F||: curvatures

        eig_progress = scaled_progress(progress, 0.15, 0.85 if num_random else 1.0)
        if resolved == "finite-difference" and dim - 1 <= opts.dense_limit:
            # finite differences of a piecewise-linear network are not a linear operator of v (the activation
            # pattern at z +- h v depends on v): assemble the scale-h Hessian on a tangent basis instead
            eig, asym = assembled_eigs(shape_operator, k=k, normal=op.normal, progress=eig_progress, cancel=cancel)
            asymmetry[rows] = asym.float()
        else:
            eig = lanczos(
                shape_operator,
                k=k,
                which="both",
                constraints=op.normal[:, None, :],
                max_iter=opts.max_iter,
                tol=opts.tol,
                seed=seed,
                progress=eig_progress,
                cancel=cancel,
            )
        iterations = eig.iterations
        z_all[rows] = z.cpu()
        normal[rows] = op.normal.cpu()
        grad_norm[rows] = op.grad_norm.cpu()
        gap[rows] = op.value.abs().cpu()
        curv[rows] = eig.eigenvalues
        dirs[rows] = eig.eigenvectors
        res[rows] = eig.residuals
        conv[rows] = eig.converged
        shift[rows] = (z - z0).norm(dim=1).cpu()
        distance[rows] = (z - x.reshape(n, dim)[rows].to(dev, z.dtype)).norm(dim=1).cpu()
        if num_random:
            rand[rows] = _random_curvatures(
                shape_operator, op.normal, num_random, seed, cancel, scaled_progress(progress, 0.85, 1.0)
            ).cpu()
        products = op.products
        op.release()
    if progress is not None:
        progress(1.0, "curvature: done")
    return CurvatureResult(
        boundary_point=z_all.reshape(n, *shape),
        normal=normal.reshape(n, *shape),
        grad_norm=grad_norm,
        boundary_gap=gap,
        original_label=df.original_label.clone(),
        boundary_class=df.boundary_class.clone(),
        boundary_distance=distance,
        curvatures=curv,
        directions=dirs.reshape(n, m, *shape),
        residuals=res,
        converged=conv,
        random_curvatures=rand,
        deepfool_norm=df.norm.clone(),
        deepfool_converged=df.converged.clone(),
        smoothing_shift=shift,
        asymmetry=asymmetry,
        target=df.target.clone(),
        method=resolved,
        method_reason=reason,
        h=step if resolved == "finite-difference" else math.nan,
        beta=float(beta) if resolved == "softplus" else math.nan,
        k=k,
        lanczos_iterations=iterations,
        hessian_products=products,
        seed=seed,
        seconds=time.perf_counter() - start,
    )


@memoize
def cached_curvature(
    handle: ModelHandle,
    x: torch.Tensor,
    options: CurvatureOptions = CurvatureOptions(),  # noqa: B008 (frozen: a shared default is safe)
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CurvatureResult:
    """`boundary_curvature` through the disk cache, keyed by the model's and the images' fingerprints and ``options``.

    Every caller with the same model, images (N, *input_shape) and options (the Curvature page, the Train view, the
    report) reads the same entry. Its DeepFool step is `cached_deepfool` with ``options.deepfool``, in the default
    cache, so the page's own DeepFool step and this one are computed once.
    """
    df = cached_deepfool(handle, x, options.deepfool, progress=scaled_progress(progress, 0.0, 0.15), cancel=cancel)
    return boundary_curvature(handle, x, options=options, deepfool_result=df, progress=progress, cancel=cancel)


def _random_curvatures(
    shape_operator: Callable[[torch.Tensor], torch.Tensor],
    normal: torch.Tensor,
    num: int,
    seed: int,
    cancel: CancelToken | None,
    progress: Progress | None,
    chunk: int = 32,
) -> torch.Tensor:
    """kappa(v) = v^T (H / ||g||) v for ``num`` seeded Gaussian directions projected on the tangent space."""
    n, dim = normal.shape
    gen = torch.Generator().manual_seed(seed + 1)
    v = torch.randn(n, num, dim, generator=gen).to(normal.device)
    v = v - (v @ normal[:, :, None]) * normal[:, None, :]
    v = v / v.norm(dim=2, keepdim=True).clamp_min(1e-30)
    out = []
    for s in range(0, num, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled("random-direction curvature")
        vb = v[:, s : s + chunk]
        out.append((vb * shape_operator(vb)).sum(dim=2))
        if progress is not None:
            progress(min(1.0, (s + chunk) / num), "curvature along random directions")
    return torch.cat(out, dim=1)


def principal_directions(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    options: CurvatureOptions | None = None,
    k: int | None = None,
    target: int | torch.Tensor | None = None,
    method: CurvatureMethod | None = None,
    h: float | None = None,
    beta: float | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> PrincipalDirections:
    """The boundary normal and the ``k`` most positively and ``k`` most negatively curved directions at each image's
    boundary point (for planes such as "boundary normal + principal direction"). See `boundary_curvature`.

    ``options``: as in `boundary_curvature` (default: `PRINCIPAL_OPTIONS`, k = 1); no random directions are drawn.
    A keyword that is not None overrides the option of the same name.
    """
    base = options if options is not None else PRINCIPAL_OPTIONS
    res = boundary_curvature(
        handle,
        x,
        options=dataclasses.replace(base, num_random=0),
        k=k,
        target=target,
        method=method,
        h=h,
        beta=beta,
        seed=seed,
        progress=progress,
        cancel=cancel,
    )
    return PrincipalDirections(
        boundary_point=res.boundary_point,
        normal=res.normal,
        directions=res.directions,
        curvatures=res.curvatures,
        original_label=res.original_label,
        boundary_class=res.boundary_class,
        method=res.method,
    )


# ---------------------------------------------------------------------------------------------
# profiles


def curvature_profiles(
    handle: ModelHandle,
    result: CurvatureResult,
    *,
    image: int = 0,
    directions: Sequence[int] | None = None,
    extent: float | None = None,
    resolution: int = 61,
    samples: int = 24,
    model: ModelHandle | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CurvatureProfile:
    """Cross-sections of the boundary ``{F = 0}`` of image ``image`` in the planes (u_i, n) through z.

    ``directions``: indices into ``result.directions`` (default: the most positive and the most negative one).
    ``extent``: half-width of t and of the s-window (default: the distance from x to z, so x is at the window's
    edge). For each t the zero of ``s -> F(z + t u_i + s n)`` nearest to 0 is bracketed on ``samples`` points and
    refined by bisection. ``model``: the model whose boundary is drawn (default: the one the curvature was measured
    on, i.e. ``handle``, or its softplus copy `smooth_handle` (``beta=result.beta``) when ``result.method`` is
    ``"softplus"``, so the boundary through z matches the curvatures and parabolas). Cost: about
    P * resolution * (samples + 20) forward passes (P directions).
    """
    if not isinstance(result, CurvatureResult):
        raise TypeError(f"expected a CurvatureResult, got {type(result).__name__}")
    if isinstance(image, bool) or not isinstance(image, int) or not 0 <= image < len(result):
        raise ValueError(f"expected image as an index in [0, {len(result)}), got {image!r}")
    if not bool(torch.isfinite(result.curvatures[image]).all()):
        raise ValueError(f"image {image} has no curvature (DeepFool did not reach the boundary)")
    m = result.curvatures.shape[1]
    idx = [0, m - 1] if directions is None else list(directions)
    if not idx or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < m for i in idx):
        raise ValueError(f"expected direction indices in [0, {m}), got {idx}")
    idx = list(dict.fromkeys(idx))
    resolution = check_int("resolution", resolution, 3)
    samples = check_int("samples", samples, 4)
    if extent is None:
        extent = float(result.boundary_distance[image])
        if not extent > 0:
            extent = 1.0
    extent = check_positive("extent", extent)
    if model is not None:
        mdl = model
    elif result.method == "softplus":
        mdl = smooth_handle(handle, beta=result.beta)
    else:
        mdl = handle
    shape = handle.input_shape
    dim = math.prod(shape)
    dev = mdl.device
    z = result.boundary_point[image].reshape(dim).to(dev, torch.float32)
    nvec = result.normal[image].reshape(dim).to(dev, torch.float32)
    j = int(result.original_label[image])
    kk = int(result.boundary_class[image])
    u = result.directions[image, idx].reshape(len(idx), dim).to(dev, torch.float32)
    kappa = result.curvatures[image, idx].to(torch.float64)
    t = torch.linspace(-extent, extent, resolution, dtype=torch.float64)
    s_grid = torch.linspace(-extent, extent, samples, dtype=torch.float64)
    p = len(idx)

    def f_at(tt: torch.Tensor, ss: torch.Tensor) -> torch.Tensor:
        """F at z + t u_p + s n for tt, ss of shape (P, ...) -> same shape."""
        pts = (
            z
            + tt[..., None].float().to(dev) * u.view(p, *([1] * (tt.dim() - 1)), dim)
            + ss[..., None].float().to(dev) * nvec
        )
        flat = pts.reshape(-1, dim)
        src = torch.full((len(flat),), j, device=dev)
        tgt = torch.full((len(flat),), kk, device=dev)
        with torch.inference_mode(), evaluation_mode(mdl.module):
            vals = []
            for s0 in range(0, len(flat), 4096):
                vals.append(
                    _difference(
                        mdl.module, shape, flat[s0 : s0 + 4096], src[s0 : s0 + 4096], tgt[s0 : s0 + 4096]
                    ).double()
                )
        return torch.cat(vals).cpu().reshape(tt.shape)

    tt = t.expand(p, resolution)
    if progress is not None:
        progress(0.0, "cross-sections: bracketing the boundary")
    grid_f = f_at(tt[:, :, None].expand(p, resolution, samples), s_grid.expand(p, resolution, samples))
    sign = grid_f > 0
    change = sign[:, :, 1:] != sign[:, :, :-1]  # (P, T, S-1): bracket [s_i, s_i+1]
    mids = 0.5 * (s_grid[1:] + s_grid[:-1])
    dist = torch.where(change, mids.abs().expand_as(change), torch.inf)
    best = dist.argmin(dim=2)
    found = torch.isfinite(dist.gather(2, best[:, :, None]).squeeze(2))
    lo = s_grid[best].clone()
    hi = s_grid[best + 1].clone()
    f_lo = grid_f.gather(2, best[:, :, None]).squeeze(2)
    for step in range(24):
        if cancel is not None:
            cancel.raise_if_cancelled("cross-sections")
        if progress is not None:
            progress(0.4 + 0.6 * step / 24, "cross-sections: bisection")
        mid = 0.5 * (lo + hi)
        fm = f_at(tt, mid)
        same = (fm > 0) == (f_lo > 0)
        lo = torch.where(same, mid, lo)
        f_lo = torch.where(same, fm, f_lo)
        hi = torch.where(same, hi, mid)
        if float((hi - lo).max()) < 1e-5 * extent:
            break
    boundary = torch.where(found, 0.5 * (lo + hi), torch.nan)
    if progress is not None:
        progress(1.0, "cross-sections: done")
    along = f_at(tt, torch.zeros_like(tt))
    f0 = f_at(torch.zeros(p, 1, dtype=torch.float64), torch.zeros(p, 1, dtype=torch.float64))  # F(z), (P, 1)
    gn = float(result.grad_norm[image])
    return CurvatureProfile(
        t=t,
        boundary=boundary,
        parabola=-0.5 * kappa[:, None] * t[None] ** 2,
        logit_difference=along,
        logit_quadratic=f0 + 0.5 * gn * kappa[:, None] * t[None] ** 2,
        curvatures=kappa,
        direction_index=torch.tensor(idx, dtype=torch.int64),
        window=extent,
        image=image,
    )


# ---------------------------------------------------------------------------------------------
# curvature <-> vulnerability


def curvature_vulnerability(
    handle: ModelHandle,
    x: torch.Tensor,
    result: CurvatureResult,
    *,
    dims: Sequence[int] = (1, 2, 5, 10),
    num_random: int = 3,
    order: Literal["absolute", "positive"] = "absolute",
    max_iter: int = 100,
    overshoot: float = 0.02,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> VulnerabilityResult:
    """DeepFool restricted to span(u_1..u_m) (the m most curved principal directions) vs to ``num_random`` random
    m-dimensional subspaces, for each m in ``dims`` (at most the number of principal directions in ``result``).

    ``order="absolute"``: u_i by decreasing |kappa| (the most curved, either way); ``"positive"``: by decreasing kappa
    (where the boundary bends towards x). ``dims`` at most k (the pairs computed at each end). All runs of all images
    go through one batched subspace DeepFool.
    """
    if not isinstance(result, CurvatureResult):
        raise TypeError(f"expected a CurvatureResult, got {type(result).__name__}")
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    n = len(x)
    if len(result) != n:
        raise ValueError(f"expected the curvature result of the same {n} images, got one of {len(result)}")
    if order not in ("positive", "absolute"):
        raise ValueError(f"expected order 'positive' or 'absolute', got {order!r}")
    num_random = check_int("num_random", num_random, 0)
    m_avail = result.curvatures.shape[1]
    dim = math.prod(handle.input_shape)
    # the m most curved directions are known for m <= k (or all of them when the whole spectrum was computed)
    limit = m_avail if m_avail >= dim - 1 else min(result.k, m_avail)
    dims_list = [int(d) for d in dims]
    if not dims_list or any(d < 1 or d > limit for d in dims_list):
        raise ValueError(
            f"expected subspace dimensions in [1, {limit}] (k = {result.k} principal directions at each end were "
            f"computed), got {list(dims)}"
        )
    dmax = max(dims_list)
    nd, r = len(dims_list), num_random
    curv = result.curvatures.clone()
    key = curv if order == "positive" else curv.abs()
    key = torch.nan_to_num(key, nan=-math.inf)
    ranks = key.argsort(dim=1, descending=True)
    dirs = result.directions.reshape(n, m_avail, dim)
    gen = torch.Generator().manual_seed(seed)
    bases, images = [], []
    for i in range(n):
        ordered = dirs[i, ranks[i]]  # (m, D)
        for d in dims_list:
            basis = torch.zeros(dim, dmax)
            if bool(torch.isfinite(ordered[:d]).all()):
                basis[:, :d] = ordered[:d].T
            bases.append(basis)
            images.append(i)
            for _ in range(r):
                q, _ = torch.linalg.qr(torch.randn(dim, d, generator=gen, dtype=torch.float64))
                rb = torch.zeros(dim, dmax)
                rb[:, :d] = q.float()
                bases.append(rb)
                images.append(i)
    xs = x[torch.tensor(images)]
    sub = subspace_deepfool(
        handle, xs, torch.stack(bases), max_iter=max_iter, overshoot=overshoot, progress=progress, cancel=cancel
    )
    norms = sub.norm.reshape(n, nd, 1 + r)
    conv = sub.converged.reshape(n, nd, 1 + r)
    ok = torch.isfinite(result.curvatures).all(dim=1)
    curved_norm = torch.where(ok[:, None], norms[:, :, 0], torch.nan)
    return VulnerabilityResult(
        dims=torch.tensor(dims_list, dtype=torch.int64),
        curved_norm=curved_norm,
        curved_converged=conv[:, :, 0] & ok[:, None],
        random_norm=norms[:, :, 1:],
        random_converged=conv[:, :, 1:],
        full_norm=result.deepfool_norm.clone(),
        order=order,
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# cached forms of the views of a curvature result (keyed by the result's tensors and every option)

cached_curvature_profiles = memoize(curvature_profiles)
cached_curvature_vulnerability = memoize(curvature_vulnerability)

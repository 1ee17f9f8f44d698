"""DeepFool (Moosavi-Dezfooli et al. 2016), batched, and the boundary point it brackets.

`deepfool` finds a small L2 perturbation ``r`` that changes the model's prediction; `subspace_deepfool`
restricts it to the span of an orthonormal basis S (the "Hold me tight" margins and the curvature <->
vulnerability view). Both run every image of a batch at once (one vectorised backward pass for all
candidate classes per iteration, no Python loop over images) and then refine the crossing by bisection
on the segment ``x -> x + r`` into a point ``z`` on the boundary of x's region: where the prediction stops being
j, on ``{F = 0}``, ``F = f_k - f_j`` with k the class across. That is where curvature is measured (not at the
overshoot point). For a targeted run k is the target only when the path reaches the target's region straight from
x's (``boundary_is_target``); otherwise it is the class in between.

All distances are L2 in the handle's input space ([0, 1] pixels for images).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from geometry.boundary.options import DeepFoolOptions
from geometry.models.handle import ModelHandle, NonFiniteOutputError
from geometry.runtime.compute import CancelToken, map_batches
from geometry.runtime.memo import memoize
from geometry.runtime.options import with_overrides
from geometry.runtime.validate import check_int

__all__ = ["DeepFoolOptions", "DeepFoolResult", "cached_deepfool", "deepfool", "evaluation_mode", "subspace_deepfool"]

Progress = Callable[[float, str], None]

_STEP_EPS = 1e-4  # the original DeepFool's extra step length, in input units
_DEFAULT_BATCH = 256  # images per vectorised DeepFool run (halved on device out-of-memory) ...
_DEFAULT_BATCH_ELEMENTS = 2**21  # ... and at most this many input values per run (13 images of 3x224x224)


@dataclass(frozen=True)
class DeepFoolResult:
    """Per-image DeepFool result; N images of shape S = handle.input_shape, all tensors on the CPU."""

    perturbation: torch.Tensor  # (N, *S) float32: r, overshot (and clipped with clip=True); x + r is adversarial
    norm: torch.Tensor  # (N,) float32: ||r||_2 in input units (L2 pixels)
    boundary_point: torch.Tensor  # (N, *S) float32: z on the boundary of x's region, between x and x + r (NaN where
    # not converged): where the prediction stops being j along the path, so the two largest logits at z are j and k
    boundary_distance: torch.Tensor  # (N,) float32: ||z - x||_2 (NaN where not converged)
    boundary_class: torch.Tensor  # (N,) int64: k of F = f_k - f_j at z (the class across the boundary); -1 if none
    boundary_gap: torch.Tensor  # (N,) float32: |F(z)| in logits, how far from exactly on the boundary z is
    boundary_is_target: torch.Tensor  # (N,) bool: the class across at z is the requested target (targeted runs;
    # False where the path to the target first crosses into another class, or did not converge); untargeted: converged
    original_label: torch.Tensor  # (N,) int64: j, the model's prediction at x (not the true label)
    label_reached: torch.Tensor  # (N,) int64: the prediction at x + r
    iterations: torch.Tensor  # (N,) int64: DeepFool steps taken
    converged: torch.Tensor  # (N,) bool: x + r is classified otherwise than x (as `target` when targeted)
    target: torch.Tensor  # (N,) int64: the requested target class, -1 when untargeted
    overshoot: float  # r = (1 + overshoot) * (sum of the steps)
    clip: bool  # True: the path was kept inside the input range (x + r in [0, 1])
    subspace_dim: int  # dimension of the subspace the search was restricted to (input dimension if none)

    def __len__(self) -> int:
        return len(self.norm)


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode (no dropout, batch-norm running statistics used and not updated) and give every
    submodule its own ``training`` flag back afterwards, also on an error or a cancellation: the caller's model is
    left exactly as it was, whatever mode it was in."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        if any(training for _, training in modes):
            module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training


def deepfool(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    options: DeepFoolOptions | None = None,
    target: int | torch.Tensor | None = None,
    candidates: int | None = None,
    overshoot: float | None = None,
    max_iter: int | None = None,
    clip: bool | None = None,
    tol: float | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DeepFoolResult:
    """DeepFool on a batch ``x`` (N, *input_shape) (or one input); returns a `DeepFoolResult`.

    Untargeted: leaves the region of the class predicted at x (so misclassified inputs work too), among the
    ``candidates`` classes with the highest logits at x. ``target`` (an int, or one per image): stops on reaching
    that class; the boundary point is still where the path leaves x's region, whose class across may be another
    (``boundary_is_target`` says where it is the target). ``clip=True`` keeps every iterate inside the input range
    (each step is clipped back into it; its margins match foolbox 3's clipped DeepFool, bench/bench_peers.py).
    ``tol``: bisection tolerance on ||z - x|| for the boundary point, in input units.
    ``batch_size``: images per vectorised run (default: up to 256, fewer for large inputs; halved on device
    out-of-memory). Each iteration costs one forward and one backward per candidate class (untargeted) or a single
    backward (targeted: only the target is a candidate) on the images still running. The model runs in eval mode
    (`evaluation_mode`: every submodule's own mode is restored afterwards), so images in a batch do not mix.

    ``options``: a `DeepFoolOptions` (its defaults are this function's defaults); a keyword that is not None
    overrides the option of the same name. ``target`` may also be a tensor of one class per image.
    """
    per_image_target = isinstance(target, torch.Tensor)
    opts = with_overrides(
        options if options is not None else DeepFoolOptions(),
        target=None if per_image_target else target,
        candidates=candidates,
        overshoot=overshoot,
        max_iter=max_iter,
        clip=clip,
        tol=tol,
    )
    return _run(
        handle,
        x,
        basis=None,
        target=target if per_image_target else opts.target,
        candidates=opts.candidates,
        overshoot=opts.overshoot,
        max_iter=opts.max_iter,
        clip=opts.clip,
        tol=opts.tol,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
        what="DeepFool",
    )


@memoize
def cached_deepfool(
    handle: ModelHandle,
    x: torch.Tensor,
    options: DeepFoolOptions = DeepFoolOptions(),  # noqa: B008 (frozen: a shared default is safe)
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DeepFoolResult:
    """`deepfool` through the disk cache, keyed by the model's and the images' fingerprints and ``options``.

    ``handle.fingerprint`` names the weights, ``x`` (N, *input_shape) is keyed by its bytes; ``cached_deepfool.
    is_cached(handle, x, options)`` answers without computing (see `geometry.runtime.memo`).
    """
    return deepfool(handle, x, options=options, progress=progress, cancel=cancel)


def subspace_deepfool(
    handle: ModelHandle,
    x: torch.Tensor,
    basis: torch.Tensor,
    *,
    target: int | torch.Tensor | None = None,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 100,
    tol: float = 1e-5,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DeepFoolResult:
    """DeepFool restricted to span(S): gradients projected on the orthonormal basis S.

    ``basis``: (D, m) orthonormal columns shared by all images, or (N, D, m) one basis per image (D = the input
    dimension; all-zero columns are allowed and ignored, so bases of different sizes can be padded to one m).
    Selects ``|f_k - f_j| / ||S^T w_k||`` and steps along ``S S^T w``. A run that does not reach another class
    reports its accumulated norm with ``converged = False``.
    """
    x_batch = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x)
    dim = math.prod(handle.input_shape)
    if not isinstance(basis, torch.Tensor):
        raise TypeError(f"expected basis as a torch.Tensor of shape (D, m) or (N, D, m), got {type(basis).__name__}")
    if basis.dim() == 2:
        basis = basis.unsqueeze(0).expand(len(x_batch), -1, -1)
    if basis.dim() != 3 or basis.shape[0] != len(x_batch) or basis.shape[1] != dim or basis.shape[2] < 1:
        raise ValueError(
            f"expected basis of shape (D, m) or (N, D, m) with D = {dim} and N = {len(x_batch)}, "
            f"got {tuple(basis.shape)}"
        )
    basis = basis.detach().to(torch.float32)
    if not torch.isfinite(basis).all():
        raise ValueError("expected a finite basis, got NaN or infinite entries")
    gram = basis.transpose(1, 2) @ basis
    nonzero = basis.norm(dim=1) > 0  # (N, m)
    eye = torch.diag_embed(nonzero.to(gram.dtype))
    if (gram - eye).abs().max() > 1e-3:
        raise ValueError(
            "expected a basis with orthonormal columns (S^T S = I); orthonormalise it first (e.g. torch.linalg.qr)"
        )
    return _run(
        handle,
        x_batch,
        basis=basis,
        target=target,
        candidates=candidates,
        overshoot=overshoot,
        max_iter=max_iter,
        clip=False,
        tol=tol,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
        what="subspace DeepFool",
    )


# ---------------------------------------------------------------------------------------------


def _targets(target: int | torch.Tensor | None, n: int, num_classes: int) -> torch.Tensor:
    if target is None:
        return torch.full((n,), -1, dtype=torch.int64)
    if isinstance(target, bool):
        raise TypeError(f"expected target as an int class index or a tensor of N indices, got {target!r}")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.int64)
    elif isinstance(target, torch.Tensor) and not target.is_floating_point() and target.dtype != torch.bool:
        t = target.detach().to("cpu", torch.int64).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n).clone()
        if t.numel() != n:
            raise ValueError(f"expected one target per image ({n}), got {t.numel()}")
    else:
        raise TypeError(f"expected target as an int class index or an integer tensor, got {type(target).__name__}")
    if n and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"expected target classes in [0, {num_classes - 1}], got {t.tolist()[:10]}")
    return t


def _run(
    handle: ModelHandle,
    x: torch.Tensor,
    *,
    basis: torch.Tensor | None,
    target: int | torch.Tensor | None,
    candidates: int,
    overshoot: float,
    max_iter: int,
    clip: bool,
    tol: float,
    batch_size: int | None,
    progress: Progress | None,
    cancel: CancelToken | None,
    what: str,
) -> DeepFoolResult:
    if not isinstance(handle, ModelHandle):
        raise TypeError(
            f"expected a ModelHandle (geometry.load_model / ModelHandle.from_module), got {type(handle).__name__}"
        )
    if not isinstance(clip, bool):
        raise TypeError(f"expected clip to be True or False, got {clip!r}")
    if clip and handle.input_range is None:
        raise ValueError(f"clip=True needs a bounded input range, but {handle.name} takes unbounded inputs")
    x = handle.check_inputs(x.detach() if isinstance(x, torch.Tensor) else x, check_range=clip)
    candidates = check_int("candidates", candidates, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    if isinstance(overshoot, bool) or not isinstance(overshoot, (int, float)) or not 0 <= overshoot < 10:
        raise ValueError(f"expected overshoot as a number in [0, 10), got {overshoot!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"expected tol as a positive number, got {tol!r}")
    if not torch.isfinite(x).all():
        raise ValueError("expected finite inputs, got NaN or infinite values")
    n, k_classes = len(x), handle.num_classes
    if k_classes < 2:
        raise ValueError(f"DeepFool needs at least 2 classes, got a model with {k_classes}")
    targets = _targets(target, n, k_classes)
    with evaluation_mode(handle.module):
        return _run_checked(
            handle, x, targets, basis, candidates, overshoot, max_iter, clip, tol, batch_size, progress, cancel, what
        )


def _run_checked(
    handle: ModelHandle,
    x: torch.Tensor,
    targets: torch.Tensor,
    basis: torch.Tensor | None,
    candidates: int,
    overshoot: float,
    max_iter: int,
    clip: bool,
    tol: float,
    batch_size: int | None,
    progress: Progress | None,
    cancel: CancelToken | None,
    what: str,
) -> DeepFoolResult:
    n = len(x)
    if bool((targets >= 0).any()):
        predicted = handle.predict(x, batch_size=batch_size)
        same = torch.nonzero((targets >= 0) & (targets == predicted)).flatten().tolist()
        if same:
            raise ValueError(
                f"expected a target class other than the predicted one; image(s) {same[:10]} are already "
                "classified as their target (choose another target, or target=None)"
            )
    lo, hi = handle.input_range if (clip and handle.input_range is not None) else (None, None)
    module = handle.module
    dim = math.prod(handle.input_shape)
    done = [0]

    def run_batch(index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        idx = index.to("cpu")
        xb = x[idx].to(handle.device).reshape(len(idx), dim)
        sb = basis[idx].to(handle.device) if basis is not None else None

        def inner(fraction: float, text: str) -> None:
            if progress is not None:
                progress(min(1.0, (done[0] + fraction * len(idx)) / max(n, 1)), text)

        out = _deepfool_batch(
            module,
            handle.input_shape,
            xb,
            targets[idx].to(handle.device),
            sb,
            candidates=candidates,
            overshoot=float(overshoot),
            max_iter=max_iter,
            lo=lo,
            hi=hi,
            tol=float(tol),
            progress=inner,
            cancel=cancel,
            what=what,
        )
        done[0] += len(idx)
        return out

    size = batch_size or max(1, min(_DEFAULT_BATCH, _DEFAULT_BATCH_ELEMENTS // dim))
    parts = map_batches(
        run_batch,
        torch.arange(n),
        batch_size=min(size, max(n, 1)),
        device=handle.device,
        cancel=cancel,
        desc=what,
        inference=False,
    )
    r, z, gap, j, reached, k_cross, iters, conv = parts
    if progress is not None:
        progress(1.0, f"{what}: {n} image{'s' if n != 1 else ''} done")
    shape = (n, *handle.input_shape)
    z_dist = (z - x.reshape(n, dim)).norm(dim=1)
    return DeepFoolResult(
        perturbation=r.reshape(shape),
        norm=r.norm(dim=1),
        boundary_point=z.reshape(shape),
        boundary_distance=z_dist,
        boundary_class=k_cross,
        boundary_gap=gap,
        boundary_is_target=conv & ((targets < 0) | (k_cross == targets)),
        original_label=j,
        label_reached=reached,
        iterations=iters,
        converged=conv,
        target=targets,
        overshoot=float(overshoot),
        clip=bool(clip),
        subspace_dim=dim if basis is None else int(basis.shape[2]),
    )


def _logits(module: torch.nn.Module, shape: tuple[int, ...], x_flat: torch.Tensor) -> torch.Tensor:
    return module(x_flat.reshape(len(x_flat), *shape))


def _candidate_gradients(logits: torch.Tensor, inputs: torch.Tensor, onehots: torch.Tensor) -> torch.Tensor:
    """Gradients of ``onehots[c] . logits`` for every candidate c: (C, B, D).

    On accelerators one vmapped backward for all candidates; on the CPU (where that measured slower) and for ops
    without a batching rule, one backward per candidate.
    """
    if len(onehots) > 1 and inputs.device.type != "cpu":
        try:
            (grads,) = torch.autograd.grad(
                logits, inputs, grad_outputs=onehots, is_grads_batched=True, retain_graph=True
            )
            return grads
        except RuntimeError:
            pass
    out = []
    for c in range(len(onehots)):
        (g,) = torch.autograd.grad(logits, inputs, grad_outputs=onehots[c], retain_graph=c < len(onehots) - 1)
        out.append(g)
    return torch.stack(out)


def _deepfool_batch(
    module: torch.nn.Module,
    shape: tuple[int, ...],
    x: torch.Tensor,
    target: torch.Tensor,
    basis: torch.Tensor | None,
    *,
    candidates: int,
    overshoot: float,
    max_iter: int,
    lo: float | None,
    hi: float | None,
    tol: float,
    progress: Progress,
    cancel: CancelToken | None,
    what: str,
) -> tuple[torch.Tensor, ...]:
    """DeepFool on flat inputs x (B, D) on the module's device; see `_run` for the outputs."""
    b, dim = x.shape
    dev = x.device
    targeted = target >= 0
    with torch.no_grad():
        f0 = _logits(module, shape, x)
    if not torch.isfinite(f0).all():  # NaN logits would make every point silently unmovable
        bad = int((~torch.isfinite(f0).all(dim=1)).sum())
        raise NonFiniteOutputError(
            f"the model returned NaN or infinite logits for {bad} of {len(f0)} inputs, so DeepFool cannot start "
            "there; check its weights and that the inputs are in its input range"
        )
    k_classes = f0.shape[1]
    j0 = f0.argmax(dim=1)
    # candidate classes, chosen once at x: the target alone (targeted; one backward per iteration), or the c classes
    # other than j with the highest logits (untargeted). j is masked out before sorting, so a class tied with j at
    # the top is a candidate and j never is (argsort need not put argmax's pick first among ties).
    if bool(targeted.all()):
        cand = target[:, None]
    else:
        c = min(candidates, k_classes - 1)
        others = f0.scatter(1, j0[:, None], -math.inf).argsort(dim=1, descending=True)[:, :c]
        cand = torch.where(targeted[:, None], target[:, None].expand(b, c), others)
    r_tot = torch.zeros_like(x)
    x_adv = x.clone()
    active = torch.ones(b, dtype=torch.bool, device=dev)
    iters = torch.zeros(b, dtype=torch.int64, device=dev)
    eye = torch.eye(k_classes, device=dev, dtype=f0.dtype)

    def point(r: torch.Tensor, x_rows: torch.Tensor) -> torch.Tensor:
        p = x_rows + (1.0 + overshoot) * r
        return p.clamp(lo, hi) if lo is not None else p

    for it in range(max_iter + 1):
        if cancel is not None:
            cancel.raise_if_cancelled(what)
        rows = torch.nonzero(active).flatten()
        if len(rows) == 0:
            break
        xa = x_adv[rows].detach().requires_grad_(True)
        with torch.enable_grad():
            logits = _logits(module, shape, xa)
            label = logits.argmax(dim=1)
            tr = targeted[rows]
            reached = torch.where(tr, label == target[rows], label != j0[rows])
            if it == max_iter or bool(reached.all()):
                active[rows[reached]] = False
                break
            # untargeted: F_k = f_k - f_j with j the original class; targeted: f_t - f_current
            j = torch.where(tr, label, j0[rows])
            ck = cand[rows]  # (A, C)
            onehots = (eye[ck] - eye[j][:, None, :]).transpose(0, 1).contiguous()  # (C, A, K)
            grads = _candidate_gradients(logits, xa, onehots)  # (C, A, D)
        with torch.no_grad():
            fvals = (onehots * logits.detach()[None]).sum(dim=2)  # (C, A): f_k - f_j, <= 0 while not reached
            grads = grads.detach()
            if basis is not None:
                coeff = torch.einsum("cad,adm->cam", grads, basis[rows])
                wnorm = coeff.norm(dim=2)
                # a projection at round-off level (gradient orthogonal to the subspace) cannot move the point
                wnorm = torch.where(wnorm > 1e-5 * grads.norm(dim=2), wnorm, 0.0)
                step_dirs = torch.einsum("adm,cam->cad", basis[rows], coeff)
            else:
                wnorm = grads.norm(dim=2)
                step_dirs = grads
            dist = fvals.abs() / wnorm
            dist = torch.where(wnorm > 0, dist, torch.inf)
            best = dist.argmin(dim=0)  # (A,)
            pos = torch.arange(len(rows), device=dev)
            d = dist[best, pos]
            movable = torch.isfinite(d) & ~reached
            w = step_dirs[best, pos]  # (A, D)
            wn = wnorm[best, pos].clamp_min(1e-30)
            step = ((d + _STEP_EPS) / wn)[:, None] * w
            step = torch.where(movable[:, None], step, 0.0)
            new_r = r_tot[rows] + step
            if lo is not None:
                # clip: the full-gradient step, then back into the box. The clipped part of a step is lost, so the next
                # steps come at the boundary in shorter strides, each from a fresh linearisation, as foolbox 3's
                # DeepFool does; zeroing the gradient at the bounds instead (a projected step) crossed in one long
                # stride and overshot the boundary (bench/bench_peers.py compares the margins with foolbox's)
                new_r = (x[rows] + new_r).clamp(lo, hi) - x[rows]
            r_tot[rows] = new_r
            x_adv[rows] = point(new_r, x[rows])
            iters[rows] += movable.to(torch.int64)
            done_now = reached | ~movable
            active[rows[done_now]] = False
        progress((it + 1) / (max_iter + 1), f"{what}: step {it + 1}")

    with torch.no_grad():
        final = _logits(module, shape, x_adv)
        reached_label = final.argmax(dim=1)
        converged = torch.where(targeted, reached_label == target, reached_label != j0)
        r = x_adv - x
        z, gap, k_cross = _bisect(module, shape, x, r, j0, converged, tol)
    return r, z, gap, j0, reached_label, k_cross, iters, converged


def _bisect(
    module: torch.nn.Module,
    shape: tuple[int, ...],
    x: torch.Tensor,
    r: torch.Tensor,
    j: torch.Tensor,
    converged: torch.Tensor,
    tol: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boundary points of x's region on the segments x + t r, t in [0, 1], for the converged rows.

    Targeted or not, z is where the prediction stops being j: bisection on "argmax == j", then one secant step on
    F = f_k - f_j with k the class across the final bracket. For a targeted run k need not be the target: the
    zero of f_t - f_j can lie inside a third class's region, which is not on the boundary of x's region at all.
    Returns z (B, D) (NaN rows where not converged), |F(z)| (B,) and k (B,) (-1 where not converged).
    """
    b = len(x)
    dev = x.device
    z = torch.full_like(x, torch.nan)
    gap = torch.full((b,), torch.nan, device=dev)
    k_out = torch.full((b,), -1, dtype=torch.int64, device=dev)
    rows = torch.nonzero(converged).flatten()
    if len(rows) == 0:
        return z, gap, k_out
    xr, rr, jr = x[rows], r[rows], j[rows]
    norms = rr.norm(dim=1)
    steps = int(min(60, max(1, math.ceil(math.log2(max(float(norms.max()), tol) / tol)))))
    a = torch.zeros(len(rows), device=dev)
    c = torch.ones(len(rows), device=dev)

    def inside(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = _logits(module, shape, xr + t[:, None] * rr)
        return logits.argmax(dim=1) == jr, logits

    for _ in range(steps):
        mid = 0.5 * (a + c)
        ins, _ = inside(mid)
        a = torch.where(ins, mid, a)
        c = torch.where(ins, c, mid)
    _, logits_c = inside(c)
    k = logits_c.argmax(dim=1)
    _, logits_a = inside(a)
    fa = logits_a.gather(1, k[:, None]).squeeze(1) - logits_a.gather(1, jr[:, None]).squeeze(1)
    fc = logits_c.gather(1, k[:, None]).squeeze(1) - logits_c.gather(1, jr[:, None]).squeeze(1)
    denom = fa - fc
    frac = torch.where(denom.abs() > 0, fa / denom, torch.full_like(fa, 0.5)).clamp(0.0, 1.0)
    t_star = a + frac * (c - a)
    zr = xr + t_star[:, None] * rr
    logits_z = _logits(module, shape, zr)
    fz = logits_z.gather(1, k[:, None]).squeeze(1) - logits_z.gather(1, jr[:, None]).squeeze(1)
    z[rows] = zr
    gap[rows] = fz.abs()
    k_out[rows] = k
    return z, gap, k_out

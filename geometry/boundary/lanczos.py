"""Extreme eigenpairs of symmetric matrix-free operators: Lanczos with full reorthogonalisation, batched, in torch.

Every solver takes one `geometry.boundary.operator.LinearOperator` (its ``size`` D, ``batch`` N, ``device`` and
``dtype`` come with it), never a model. `lanczos` runs the N independent Krylov processes at once (row i of every
vector belongs to operator i), so the curvature of N boundary points costs one batched Hessian-vector product per
iteration, and everything stays on the operator's device (no host copy per iteration). It projects out optional
constraint vectors (the boundary normal: the tangent space), forms the Rayleigh-Ritz matrix ``Q^T A Q`` explicitly
(robust to breakdown and to slightly non-symmetric operators such as finite differences of gradients), and reports
true residuals ``||A y - theta y||``.

`scipy_lanczos` is the same computation through SciPy's ARPACK ``eigsh`` on a ``LinearOperator`` (one operator,
on the CPU), kept as a reference and for the benchmark (bench/bench_curvature.py measures both).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from geometry.boundary.operator import LinearOperator, check_operator
from geometry.runtime.compute import CancelToken
from geometry.runtime.validate import check_int

__all__ = ["EigenResult", "assembled_eigs", "lanczos", "scipy_lanczos"]

Which = Literal["both", "largest", "smallest"]


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs of N operators restricted to the complement of their constraint vectors."""

    eigenvalues: torch.Tensor  # (N, m) float64, sorted in decreasing order
    eigenvectors: torch.Tensor  # (N, m, D) float32, unit, orthogonal to the constraints
    residuals: torch.Tensor  # (N, m) float64: ||A y - theta y||, in the operator's units
    converged: torch.Tensor  # (N, m) bool: residual <= tol * max(|theta|) of that operator
    iterations: int  # Krylov dimension reached (operator applications per row)
    matvecs: int  # operator calls (each on N vectors)

    def __len__(self) -> int:
        return len(self.eigenvalues)


def _selected(m: int, k: int, which: Which) -> list[int]:
    """Indices into m eigenvalues sorted in decreasing order that `which` asks for."""
    if which == "largest":
        return list(range(min(k, m)))
    if which == "smallest":
        return list(range(max(0, m - k), m))
    if 2 * k >= m:
        return list(range(m))
    return [*range(k), *range(m - k, m)]


def _take(t: torch.Tensor, k: int, which: Which, dim: int = -1) -> torch.Tensor:
    """The `_selected` entries of ``t`` along ``dim`` (sorted in decreasing order there), by slicing: no index tensor,
    so nothing is copied to the device."""
    m = t.shape[dim]
    if which == "largest":
        return t.narrow(dim, 0, min(k, m))
    if which == "smallest":
        return t.narrow(dim, max(0, m - k), m - max(0, m - k))
    if 2 * k >= m:
        return t
    return torch.cat([t.narrow(dim, 0, k), t.narrow(dim, m - k, k)], dim=dim)


def _orthogonalise(r: torch.Tensor, basis: torch.Tensor | None) -> torch.Tensor:
    """Remove the components of r (N, D) along the orthonormal rows of basis (N, j, D), twice (stable)."""
    if basis is None or basis.shape[1] == 0:
        return r
    for _ in range(2):
        r = r - torch.einsum("njd,nj->nd", basis, torch.einsum("njd,nd->nj", basis, r))
    return r


def _check_args(dim: int, k: int, which: str, tol: float) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"expected dim as a positive int, got {dim!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"expected k as a positive int, got {k!r}")
    if which not in ("both", "largest", "smallest"):
        raise ValueError(f"expected which to be 'both', 'largest' or 'smallest', got {which!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"expected tol as a positive number, got {tol!r}")


def lanczos(
    operator: LinearOperator,
    *,
    k: int = 10,
    which: Which = "both",
    constraints: torch.Tensor | None = None,
    max_iter: int | None = None,
    tol: float = 1e-4,
    check_every: int = 5,
    guard: int = 2,
    block: int = 2,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> EigenResult:
    """Top-``k`` and/or bottom-``k`` eigenpairs of the N = ``operator.batch`` symmetric operators on R^D, batched.

    ``operator``: a `LinearOperator` mapping (N, D) -> (N, D), D = ``operator.size``; vectors are handed to it in
    ``operator.dtype`` on ``operator.device``. ``constraints`` (N, c, D) or (c, D): orthonormal vectors whose span is
    projected out, so the eigenpairs are those of ``P A P`` on the complement (dimension D - c), without the spurious
    zero eigenvalues of the constraint directions.
    ``which="both"`` returns k from each end (all eigenpairs when 2k >= D - c), sorted in decreasing order.
    Stops when every requested pair and ``guard`` more at each wanted end have ``residual <= tol * max|theta|``
    (checked every ``check_every`` steps), at ``max_iter`` steps (default ``min(D - c, 6k + 40)``), or when the whole
    space is spanned (then exact). Each value is then within about ``tol * max|theta|`` of an eigenvalue. A single
    start vector can stop while only one of a close pair of eigenvalues has entered the Krylov space (then the k-th
    value is really the (k+1)-th, and no residual test sees it; an exactly repeated eigenvalue is never found twice),
    so the process starts from a ``block`` of random vectors (band Lanczos: still one product per step; clusters of
    up to ``block`` values enter together) and waits for ``guard`` converged pairs past each end. With the defaults
    (block 2, guard 2) a close pair at the end of the wanted range is resolved for every seed tried, at tol 1e-4 and
    1e-3, at the cost of a few more products than from a single start vector (tests/geometry/test_lanczos.py). On a
    GPU the steps run without waiting for the device: random vectors come from a generator on the device, breakdowns
    are handled with ``torch.where``, and the host reads device memory only at a convergence check (one small ``eigh``
    and one "all converged?") and for the result (the tests count them).
    """
    operator = check_operator(operator)
    dim, n, dev, dtype = operator.size, operator.batch, torch.device(operator.device), operator.dtype
    _check_args(dim, k, which, tol)
    cons = None
    if constraints is not None:
        cons = constraints.detach().to(dev, torch.float64)
        if cons.dim() == 2:
            cons = cons.unsqueeze(0).expand(n, -1, -1)
        if cons.dim() != 3 or cons.shape[0] != n or cons.shape[2] != dim:
            raise ValueError(
                f"expected constraints of shape (c, {dim}) or ({n}, c, {dim}), got {tuple(constraints.shape)}"
            )
        if not torch.isfinite(cons).all():
            raise ValueError("expected finite constraint vectors, got NaN or infinite values")
        gram = cons @ cons.transpose(1, 2)
        if (gram - torch.eye(cons.shape[1], dtype=gram.dtype, device=dev)).abs().max() > 1e-4:
            raise ValueError("expected orthonormal constraint vectors (C C^T = I)")
    c = 0 if cons is None else cons.shape[1]
    d_eff = dim - c
    if d_eff < 1:
        raise ValueError(f"nothing left to solve: {c} constraints in dimension {dim}")
    total = d_eff if max_iter is None else max_iter
    if max_iter is None:
        total = min(d_eff, 6 * k + 40)
    elif isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"expected max_iter as a positive int, got {max_iter!r}")
    total = min(total, d_eff)
    guard = check_int("guard", guard, 0)
    block = check_int("block", block, 1)

    # random vectors are drawn on the device itself: nothing crosses to or from the host inside the loop
    gen = torch.Generator(device=dev).manual_seed(seed)

    def random_vectors() -> torch.Tensor:
        return torch.randn(n, dim, generator=gen, dtype=torch.float64, device=dev)

    q_basis = torch.zeros(n, total, dim, dtype=torch.float64, device=dev)
    a_basis = torch.zeros(n, total, dim, dtype=torch.float64, device=dev)
    t_mat = torch.zeros(n, total, total, dtype=torch.float64, device=dev)
    # a block of b random start vectors (band Lanczos: one product per step, the basis grows like the block Krylov
    # space of the start block), so a cluster of up to b nearly equal eigenvalues enters the basis together
    block = min(block, total)
    for i in range(block):
        q = _orthogonalise(_orthogonalise(random_vectors(), cons), q_basis[:, :i])
        q_basis[:, i] = q / q.norm(dim=1, keepdim=True)
    scale = torch.zeros(n, dtype=torch.float64, device=dev)
    matvecs = 0
    result: tuple[torch.Tensor, ...] | None = None
    steps = 0
    for j in range(total):
        if cancel is not None:
            cancel.raise_if_cancelled("Lanczos")
        q = q_basis[:, j]
        w = operator.matvec(q.to(dtype)).detach().to(torch.float64)
        matvecs += 1
        if w.shape != (n, dim):
            raise ValueError(f"the operator returned shape {tuple(w.shape)} for input ({n}, {dim})")
        w = _orthogonalise(w, cons)  # P A q: the operator restricted to the complement of the constraints
        a_basis[:, j] = w
        # Rayleigh-Ritz matrix T = Q^T A Q on the vectors applied so far, symmetrised: T_ij = (q_i . A q_j + A q_i .
        # q_j) / 2
        col = torch.einsum("njd,nd->nj", q_basis[:, : j + 1], w)
        row = torch.einsum("njd,nd->nj", a_basis[:, : j + 1], q)
        sym = 0.5 * (col + row)
        t_mat[:, : j + 1, j] = sym
        t_mat[:, j, : j + 1] = sym
        scale = torch.maximum(scale, w.norm(dim=1))
        steps = j + 1
        last = steps == total
        if last or (steps >= 2 * k and steps % check_every == 0):
            result, settled = _ritz(
                t_mat[:, :steps, :steps], q_basis[:, :steps], a_basis[:, :steps], k, guard, which, tol
            )
            if last or bool(settled.all()):
                break
        filled = j + block  # vectors in the basis: the j + 1 applied ones and the block - 1 waiting
        if filled >= total:
            continue  # the waiting vectors already fill the basis up to the last step
        r = _orthogonalise(_orthogonalise(w, q_basis[:, :filled]), cons)
        beta = r.norm(dim=1)
        # invariant subspace reached (beta ~ 0): continue with a fresh random direction. The replacement is computed
        # for every row and selected with torch.where, so there is no host synchronisation here.
        fresh = beta <= 1e-10 * scale.clamp_min(1e-300)
        rnd = _orthogonalise(_orthogonalise(random_vectors(), cons), q_basis[:, :filled])
        r = torch.where(fresh[:, None], rnd, r)
        beta = r.norm(dim=1)
        q_basis[:, filled] = r / beta.clamp_min(1e-300)[:, None]
        if progress is not None:
            progress(steps / total, f"Lanczos: {steps} of at most {total} steps")
    assert result is not None
    values, vectors, residuals, converged = result
    if progress is not None:
        progress(1.0, f"Lanczos: {steps} steps")
    return EigenResult(
        eigenvalues=values.cpu(),
        eigenvectors=vectors.to(torch.float32).cpu(),
        residuals=residuals.cpu(),
        converged=converged.cpu(),
        iterations=steps,
        matvecs=matvecs,
    )


def _ritz(
    t_mat: torch.Tensor,
    q_basis: torch.Tensor,
    a_basis: torch.Tensor,
    k: int,
    guard: int,
    which: Which,
    tol: float,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The Ritz pairs asked for (values decreasing, vectors, residuals, converged flags) and, per row, whether
    they and ``guard`` more pairs beyond each wanted end have converged (the stopping test)."""
    theta, s = torch.linalg.eigh(t_mat)  # ascending
    theta, s = theta.flip(-1), s.flip(-1)  # decreasing
    theta, s = _take(theta, k + guard, which), _take(s, k + guard, which)
    y = torch.einsum("njm,njd->nmd", s, q_basis)
    ay = torch.einsum("njm,njd->nmd", s, a_basis)
    residuals = (ay - theta[:, :, None] * y).norm(dim=2)
    spread = theta.abs().amax(dim=1, keepdim=True)
    converged = residuals <= tol * spread
    settled = converged.all(dim=1)
    if guard:
        theta, y, residuals, converged = (
            _take(theta, k, which),
            _take(y, k, which, dim=1),
            _take(residuals, k, which),
            _take(converged, k, which),
        )
    return (theta, y, residuals, converged), settled


def _householder(normal: torch.Tensor) -> torch.Tensor:
    """w (N, D) with (I - 2 w w^T) normal = e_1 (w = 0 where normal is already e_1); normal unit (N, D)."""
    w = normal.clone()
    w[:, 0] -= 1.0
    norm = w.norm(dim=1, keepdim=True)
    return torch.where(norm > 1e-12, w / norm.clamp_min(1e-300), torch.zeros_like(w))


def assembled_eigs(
    operator: LinearOperator,
    *,
    k: int = 10,
    which: Which = "both",
    normal: torch.Tensor | None = None,
    chunk: int = 128,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> tuple[EigenResult, torch.Tensor]:
    """Eigenpairs of the N = ``operator.batch`` operators, assembled as matrices on an orthonormal basis of the
    complement of ``normal`` (the dense fallback of `lanczos`).

    For operators that are only approximately linear or symmetric (finite differences of gradients of a piecewise-
    linear network: the product along v depends on v non-linearly), Krylov methods do not converge; assembling
    ``A_B = B^T A B`` column by column on a fixed basis B (Householder: B maps onto the complement of the unit
    ``normal`` (N, D), or the standard basis when None; D = ``operator.size``), symmetrising it and diagonalising
    it densely is well defined. Costs D - 1 operator columns per row (``operator.matvec`` takes ``(N, C, D)`` chunks
    of ``chunk`` vectors in ``operator.dtype``). Returns the result (residuals of the symmetrised matrix) and the
    relative asymmetry ``||A_B - A_B^T|| / ||A_B||`` (N,) of each assembled matrix.
    """
    operator = check_operator(operator)
    dim, n, dev, dtype = operator.size, operator.batch, torch.device(operator.device), operator.dtype
    _check_args(dim, k, which, 1.0)
    if normal is not None:
        nv = normal.detach().to(dev, torch.float64).reshape(n, dim)
        w = _householder(nv / nv.norm(dim=1, keepdim=True))
        m = dim - 1
        first = 1
    else:
        w = torch.zeros(n, dim, dtype=torch.float64, device=dev)
        m = dim
        first = 0

    def basis_vectors(cols: torch.Tensor) -> torch.Tensor:
        """(N, C, dim): the basis vectors H e_c = e_c - 2 w w_c for the (0-based) coordinates cols."""
        eye = torch.zeros(len(cols), dim, dtype=torch.float64, device=dev)
        eye[torch.arange(len(cols)), cols] = 1.0
        return eye[None] - 2.0 * w[:, None, :] * w[:, cols][:, :, None]

    def to_basis(x: torch.Tensor) -> torch.Tensor:
        """Coordinates (N, C, m) of vectors x (N, C, dim) in the basis (apply H, drop the normal's coordinate)."""
        hx = x - 2.0 * (x @ w[:, :, None]) * w[:, None, :]
        return hx[:, :, first:]

    mat = torch.zeros(n, m, m, dtype=torch.float64, device=dev)
    coords = torch.arange(first, dim, device=dev)
    for s in range(0, m, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled("assembling the matrix")
        cols = coords[s : s + chunk]
        applied = operator.matvec(basis_vectors(cols).to(dtype)).detach().to(torch.float64)
        if applied.shape != (n, len(cols), dim):
            raise ValueError(f"the operator returned shape {tuple(applied.shape)} for input ({n}, {len(cols)}, {dim})")
        mat[:, :, s : s + len(cols)] = to_basis(applied).transpose(1, 2)  # column j = B^T A b_j
        if progress is not None:
            progress(min(1.0, (s + len(cols)) / m), f"assembling the matrix: {s + len(cols)} of {m} columns")
    sym = 0.5 * (mat + mat.transpose(1, 2))
    asym = (mat - mat.transpose(1, 2)).flatten(1).norm(dim=1) / mat.flatten(1).norm(dim=1).clamp_min(1e-300)
    theta, s_vec = torch.linalg.eigh(sym)
    theta, s_vec = theta.flip(-1), s_vec.flip(-1)
    theta, s_vec = _take(theta, k, which), _take(s_vec, k, which)
    residuals = (sym @ s_vec - s_vec * theta[:, None, :]).norm(dim=1)
    full = torch.zeros(n, theta.shape[1], dim, dtype=torch.float64, device=dev)
    full[:, :, first:] = s_vec.transpose(1, 2)
    vectors = full - 2.0 * (full @ w[:, :, None]) * w[:, None, :]  # back from basis coordinates (H is its inverse)
    spread = theta.abs().amax(dim=1, keepdim=True)
    result = EigenResult(
        eigenvalues=theta.cpu(),
        eigenvectors=vectors.to(torch.float32).cpu(),
        residuals=residuals.cpu(),
        converged=((residuals <= 1e-8 * spread) | (residuals == 0)).cpu(),
        iterations=m,
        matvecs=m,
    )
    return result, asym.cpu()


def scipy_lanczos(
    operator: LinearOperator,
    *,
    k: int = 10,
    which: Which = "both",
    constraint: torch.Tensor | None = None,
    tol: float = 1e-4,
    seed: int = 0,
) -> EigenResult:
    """The same eigenpairs for ONE operator (``operator.batch`` 1) through SciPy's ``eigsh`` (ARPACK) on SciPy's
    ``LinearOperator``.

    A unit ``constraint`` vector (dim,) is removed exactly by a Householder reflection that maps it to e_1, so the
    operator ARPACK sees acts on its (dim - 1)-dimensional complement. Vectors cross to the host every iteration.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh
    from scipy.sparse.linalg import LinearOperator as ScipyOperator

    operator = check_operator(operator)
    if operator.batch != 1:
        raise ValueError(f"scipy_lanczos solves one operator at a time, got a batch of {operator.batch}")
    dim, dev, dtype = operator.size, torch.device(operator.device), operator.dtype
    _check_args(dim, k, which, tol)
    house: np.ndarray | None = None
    if constraint is not None:
        nvec = constraint.detach().to(torch.float64).cpu().reshape(-1).numpy()
        if nvec.shape != (dim,) or abs(np.linalg.norm(nvec) - 1) > 1e-4:
            raise ValueError(f"expected one unit constraint vector of length {dim}")
        house = nvec.copy()
        house[0] -= 1.0
        hn = np.linalg.norm(house)
        house = house / hn if hn > 1e-12 else None
    d_eff = dim - (constraint is not None)
    count = [0]

    def reflect(v: np.ndarray) -> np.ndarray:
        return v if house is None else v - 2.0 * house * (house @ v)

    def embed(y: np.ndarray) -> np.ndarray:
        if constraint is None:
            return y
        return reflect(np.concatenate([[0.0], y]))

    def matvec(y: np.ndarray) -> np.ndarray:
        count[0] += 1
        v = torch.as_tensor(embed(np.asarray(y, dtype=np.float64).ravel()), dtype=dtype, device=dev)[None]
        w = operator.matvec(v)[0].detach().to(torch.float64).cpu().numpy()
        return w if constraint is None else reflect(w)[1:]

    lin = ScipyOperator((d_eff, d_eff), matvec=matvec, dtype=np.float64)
    if 2 * k >= d_eff or d_eff <= 3:  # ARPACK needs k < n: assemble the (small) matrix
        mat = np.stack([matvec(e) for e in np.eye(d_eff)], axis=1)
        mat = 0.5 * (mat + mat.T)
        vals, vecs = np.linalg.eigh(mat)
    else:
        arpack_which = {"both": "BE", "largest": "LA", "smallest": "SA"}[which]
        kk = 2 * k if which == "both" else k
        v0 = np.random.default_rng(seed).standard_normal(d_eff)
        try:
            vals, vecs = eigsh(lin, k=kk, which=arpack_which, tol=tol, v0=v0, maxiter=20 * d_eff)
        except ArpackNoConvergence as err:
            vals, vecs = err.eigenvalues, err.eigenvectors
    order = np.argsort(-vals)
    vals, vecs = vals[order], vecs[:, order]
    sel = np.array(_selected(len(vals), k, which)) if 2 * k >= d_eff else np.arange(len(vals))
    vals, vecs = vals[sel], vecs[:, sel]
    full = np.stack([embed(vecs[:, i]) for i in range(vecs.shape[1])]) if vecs.size else np.zeros((0, dim))
    applied = np.stack([matvec(vecs[:, i]) for i in range(vecs.shape[1])]) if vecs.size else np.zeros((0, d_eff))
    count[0] -= vecs.shape[1]  # residual checks are not part of the solve
    residuals = np.linalg.norm(applied - vals[:, None] * vecs.T, axis=1)
    spread = np.abs(vals).max() if len(vals) else 0.0
    converged = residuals <= tol * spread
    wanted = len(_selected(d_eff, k, which))
    if len(vals) < wanted:  # ARPACK gave up early and returned fewer pairs: pad (NaN, not converged) in the middle
        missing = wanted - len(vals)
        top = sum(v >= 0 for v in vals) if which == "both" else (len(vals) if which == "largest" else 0)
        vals = np.insert(vals, top, np.full(missing, np.nan))
        residuals = np.insert(residuals, top, np.full(missing, np.nan))
        converged = np.insert(converged, top, np.zeros(missing, dtype=bool))
        full = np.insert(full, top, np.full((missing, dim), np.nan), axis=0)
    return EigenResult(
        eigenvalues=torch.as_tensor(vals, dtype=torch.float64)[None],
        eigenvectors=torch.as_tensor(full, dtype=torch.float32)[None],
        residuals=torch.as_tensor(residuals, dtype=torch.float64)[None],
        converged=torch.as_tensor(converged)[None],
        iterations=count[0],
        matvecs=count[0],
    )

"""Principal curvatures (top-k and bottom-k) at DeepFool boundary points: time, Hessian-vector products, accuracy.

For each built-in model and curvature method (exact double backprop for smooth models; the softplus-smoothed copy
and finite differences of gradients for ReLU ones; finite differences on a smooth model too, to see their error):

- ``boundary_curvature`` end to end (DeepFool, the boundary point, the spectrum; no random directions), as the page
  runs it;
- the eigensolvers on the same operator: our torch Lanczos batched over all images (at the library's default
  tolerance 1e-4 and at 1e-3), the same one image at a time, SciPy's ARPACK ``eigsh`` on a ``LinearOperator`` (one
  image at a time, vectors cross to the host each product) at both tolerances (their meanings differ: compare the
  errors), and
  the dense reference (the operator applied to every basis vector, then a dense symmetric eigendecomposition on the
  tangent space). For finite differences the library assembles the scale-h matrix on a tangent basis (that *is* the
  dense reference of that operator) and Lanczos runs on the difference quotients only above ``dense_limit``.

Error: the largest error of the 2k curvatures against the dense reference of the same operator, relative to the
largest |kappa|; for the smooth model also against the exact Hessian's dense reference ("vs exact"), which shows the
finite-difference discretisation error. Times are the best of ``--repeat`` runs (the dense reference: one run), as
wall time and as this process's CPU time (all threads; on a shared machine, with ``--threads 1``, the steadier one).

Run: ``python bench/bench_curvature.py [--k 10] [--images 8] [--shapes-images 2] [--repeat 2] [--no-dense-shapes]
[--shapes-fd]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable

import torch

import geometry
from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.deepfool import DeepFoolResult, deepfool
from geometry.boundary.hessian import HessianOperator, default_step, smooth_handle
from geometry.boundary.lanczos import assembled_eigs, lanczos, scipy_lanczos
from geometry.boundary.operator import ScaledOperator

Row = tuple[str, str, str, int, float, float, float, float, float]


def _operator(handle, df: DeepFoolResult, method: str, h: float | None) -> HessianOperator:  # noqa: ANN001
    dim = math.prod(handle.input_shape)
    z = df.boundary_point.reshape(len(df), dim).to(handle.device)
    return HessianOperator(
        handle.module,
        z,
        df.original_label.to(handle.device),
        df.boundary_class.to(handle.device),
        input_shape=handle.input_shape,
        method=method,
        h=h,
    )


def _shape_operator(op: HessianOperator) -> ScaledOperator:
    return ScaledOperator(op, op.grad_norm.clamp_min(1e-30))


def _dense_reference(op: HessianOperator, k: int, chunk: int = 64) -> torch.Tensor:
    """Top-k and bottom-k eigenvalues of P H P / ||g|| on the tangent space, from the operator on every basis vector."""
    dim, out = op.dim, []
    for i in range(op.n):
        single = HessianOperator(
            op.module,
            op.z[i : i + 1],
            op.source[i : i + 1],
            op.target[i : i + 1],
            input_shape=op.input_shape,
            method=op.method,
            h=op.h if op.method == "finite-difference" else None,
        )
        cols = []
        for s in range(0, dim, chunk):
            eye = torch.eye(dim, device=op.device)[s : s + chunk][None]
            cols.append(single(eye)[0].double().cpu())
        hess = torch.cat(cols).T  # column j = H e_j
        hess = 0.5 * (hess + hess.T)
        n = single.normal[0].double().cpu()
        basis, _ = torch.linalg.qr(torch.cat([n[:, None], torch.eye(dim, dtype=torch.float64)[:, : dim - 1]], dim=1))
        tangent = basis[:, 1:]
        values = torch.linalg.eigvalsh(tangent.T @ hess @ tangent / float(single.grad_norm[0])).flip(0)
        out.append(torch.cat([values[:k], values[-k:]]))
    return torch.stack(out)


def _error(values: torch.Tensor, reference: torch.Tensor | None) -> float:
    if reference is None:
        return math.nan
    err = (values - reference).abs()
    if torch.isnan(err).any():  # a solver that returned fewer pairs: compare the ones it returned
        err = torch.nan_to_num(err, nan=0.0)
    return float((err.amax(dim=1) / reference.abs().amax(dim=1)).max())


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls (a float that also carries the best CPU time) and the last result."""
    best, best_cpu, out = math.inf, math.inf, None
    for _ in range(repeat):
        _sync()
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        _sync()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return _Seconds(best, best_cpu), out


class _Seconds(float):
    """Wall seconds that also carry the CPU seconds (this process, all threads) of the same measurement."""

    def __new__(cls, wall: float, cpu: float) -> _Seconds:
        obj = super().__new__(cls, wall)
        obj.cpu = cpu
        return obj

    def __truediv__(self, other: object) -> _Seconds:
        return _Seconds(float(self) / other, self.cpu / other)  # type: ignore[operator]


def _sub(df: DeepFoolResult, rows: list[int]) -> DeepFoolResult:
    idx = torch.tensor(rows)
    fields = {}
    for f in dataclasses.fields(df):
        v = getattr(df, f.name)
        fields[f.name] = v[idx] if isinstance(v, torch.Tensor) and v.dim() > 0 and len(v) == len(df) else v
    return type(df)(**fields)


def bench_case(
    name: str,
    handle,  # noqa: ANN001
    x: torch.Tensor,
    *,
    method: str,
    k: int,
    dense: bool,
    repeat: int,
    exact_reference: torch.Tensor | None = None,
    tol: float = 1e-4,
    scipy: bool = True,
) -> tuple[list[Row], torch.Tensor | None]:
    """Rows of the table for one model and method; returns them and the dense reference (for "vs exact")."""
    n, dim = len(x), math.prod(handle.input_shape)
    h = default_step(handle) if method == "finite-difference" else None
    rows: list[Row] = []

    # what the page runs: DeepFool on the model, then the spectrum (softplus: on the smoothed copy, z moved onto it)
    t_end, end = _best(lambda: boundary_curvature(handle, x, k=k, method=method, num_random=0, tol=tol), repeat)

    # the eigensolvers on the operator at DeepFool's boundary point (softplus: the smoothed copy's own DeepFool)
    work = smooth_handle(handle, beta=10.0) if method == "softplus" else handle
    op_method = "finite-difference" if method == "finite-difference" else "exact"
    df = deepfool(work, x)
    assert bool(df.converged.all()), f"{name}: DeepFool did not converge on every image"
    op = _operator(work, df, op_method, h)

    def run_torch(idx: list[int], torch_tol: float = tol) -> tuple[torch.Tensor, int, float]:
        sub = _operator(work, _sub(df, idx), op_method, h)
        out = lanczos(_shape_operator(sub), k=k, constraints=sub.normal[:, None], tol=torch_tol)
        return out.eigenvalues, out.iterations, float(out.converged.float().mean())

    def run_scipy(scipy_tol: float) -> tuple[torch.Tensor, float, float]:
        vals, mv, convs = [], 0, 0.0
        for i in range(n):
            sub = _operator(work, _sub(df, [i]), op_method, h)
            out = scipy_lanczos(_shape_operator(sub), k=k, constraint=sub.normal[0], tol=scipy_tol)
            vals.append(out.eigenvalues)
            mv += out.matvecs
            convs += float(out.converged.float().mean())
        return torch.cat(vals), mv / n, convs / n

    reference = None
    if method == "finite-difference":
        # the library's default up to dense_limit: the scale-h Hessian assembled on a tangent basis (= dense reference)
        t, (assembled, _) = _best(lambda: assembled_eigs(_shape_operator(op), k=k, normal=op.normal), repeat)
        reference = assembled.eigenvalues
        rows.append(
            (
                name,
                method,
                "assembled on a tangent basis (library default, = dense reference)",
                n,
                t / n,
                dim - 1,
                0.0,
                _error(reference, exact_reference),
                float(assembled.converged.float().mean()),
            )
        )
    elif dense:
        t_dense, reference = _best(lambda: _dense_reference(op, k), 1)
    if method == "exact" and exact_reference is None:
        exact_reference = reference  # the exact Hessian's dense reference is this one
    # end to end: the same z as here except for softplus (z moved onto the smoothed boundary: another point)
    rows.insert(
        0,
        (
            name,
            method,
            "boundary_curvature, end to end (DeepFool + solver)",
            n,
            t_end / n,
            end.hessian_products,
            _error(end.curvatures, reference) if method != "softplus" else math.nan,
            _error(end.curvatures, exact_reference),
            float(end.converged.float().mean()),
        ),
    )

    t, (values, iters, conv) = _best(lambda: run_torch(list(range(n))), repeat)
    rows.append(
        (
            name,
            method,
            f"torch Lanczos, batched (library), tol {tol:g}",
            n,
            t / n,
            iters,
            _error(values, reference),
            _error(values, exact_reference),
            conv,
        )
    )
    t, (values, iters, conv) = _best(lambda: run_torch(list(range(n)), tol * 10), repeat)
    rows.append(
        (
            name,
            method,
            f"torch Lanczos, batched, tol {tol * 10:g}",
            n,
            t / n,
            iters,
            _error(values, reference),
            _error(values, exact_reference),
            conv,
        )
    )
    t, singles = _best(lambda: [run_torch([i]) for i in range(n)], repeat)
    values = torch.cat([s[0] for s in singles])
    steps, conv = sum(s[1] for s in singles) / n, sum(s[2] for s in singles) / n
    rows.append(
        (
            name,
            method,
            f"torch Lanczos, one image at a time, tol {tol:g}",
            n,
            t / n,
            steps,
            _error(values, reference),
            _error(values, exact_reference),
            conv,
        )
    )
    for scipy_tol in (tol * 10, tol) if scipy else ():
        t, (values, mv, conv) = _best(lambda st=scipy_tol: run_scipy(st), repeat)
        rows.append(
            (
                name,
                method,
                f"SciPy eigsh (ARPACK), tol {scipy_tol:g}",
                n,
                t / n,
                mv,
                _error(values, reference),
                _error(values, exact_reference),
                conv,
            )
        )
    if method != "finite-difference" and reference is not None:
        rows.append(
            (
                name,
                method,
                "dense reference (D products + eigh)",
                n,
                t_dense / n,
                dim,
                0.0,
                _error(reference, exact_reference),
                1.0,
            )
        )
    return rows, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=10, help="eigenpairs from each end")
    parser.add_argument("--images", type=int, default=8, help="digits images")
    parser.add_argument("--shapes-images", type=int, default=2, help="shapes images (3x32x32)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs (not the dense reference)")
    parser.add_argument("--no-dense-shapes", action="store_true", help="skip the 3072-product dense references")
    parser.add_argument("--shapes-fd", action="store_true", help="also finite differences on shapes-resnet-relu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[Row] = []
    digits = geometry.load_dataset("digits").images[: args.images]
    silu = geometry.load_model("digits-cnn-silu", device=args.device)
    exact_rows, exact_ref = bench_case(
        "digits-cnn-silu", silu, digits, method="exact", k=args.k, dense=True, repeat=args.repeat
    )
    rows += exact_rows
    rows += bench_case(
        "digits-cnn-silu",
        silu,
        digits,
        method="finite-difference",
        k=args.k,
        dense=True,
        repeat=args.repeat,
        exact_reference=exact_ref,
    )[0]
    relu = geometry.load_model("digits-cnn-relu", device=args.device)
    rows += bench_case("digits-cnn-relu", relu, digits, method="softplus", k=args.k, dense=True, repeat=args.repeat)[0]
    rows += bench_case(
        "digits-cnn-relu", relu, digits, method="finite-difference", k=args.k, dense=True, repeat=args.repeat
    )[0]
    if args.shapes_images > 0:
        shapes = geometry.load_dataset("shapes").images[: args.shapes_images]
        resnet = geometry.load_model("shapes-resnet-silu", device=args.device)
        rows += bench_case(
            "shapes-resnet-silu",
            resnet,
            shapes,
            method="exact",
            k=args.k,
            dense=not args.no_dense_shapes,
            repeat=args.repeat,
        )[0]
        resnet_relu = geometry.load_model("shapes-resnet-relu", device=args.device)
        rows += bench_case(
            "shapes-resnet-relu",
            resnet_relu,
            shapes,
            method="softplus",
            k=args.k,
            dense=not args.no_dense_shapes,
            repeat=args.repeat,
        )[0]
        if args.shapes_fd:
            rows += bench_case(
                "shapes-resnet-relu",
                resnet_relu,
                shapes,
                method="finite-difference",
                k=args.k,
                dense=True,
                repeat=1,
                scipy=False,
            )[0]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    device = args.device or str(geometry.default_device())
    print(
        f"Curvature top-{args.k} and bottom-{args.k} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, device {device}, load average {load:.1f}; "
        f"best of {args.repeat}\n"
    )
    print(
        "| model | method | eigensolver | images | s / image (wall / CPU) | HVPs / image | max rel. error vs dense "
        "reference | vs exact | pairs converged |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, method, backend, n, t, hvps, err, err_exact, conv in rows:
        e1 = "—" if math.isnan(err) else f"{err:.1e}"
        e2 = "—" if math.isnan(err_exact) else f"{err_exact:.1e}"
        print(
            f"| {name} | {method} | {backend} | {n} | {t:.3f} / {t.cpu:.3f} | {hvps:.0f} | {e1} | {e2} | {conv:.0%} |"
        )


if __name__ == "__main__":
    main()

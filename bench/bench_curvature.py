"""Principal curvatures (top-k and bottom-k) at DeepFool boundary points: time, Hessian-vector products, accuracy.

Backends: our torch Lanczos batched over all images, the same one image at a time, and SciPy's ARPACK ``eigsh`` on
a ``LinearOperator`` (one image at a time, vectors cross to the host each product). Accuracy: the largest error of
the 2k curvatures against the dense reference (the same operator applied to every basis vector, then a dense
symmetric eigendecomposition on the tangent space), relative to the largest |kappa|.

Run: ``python bench/bench_curvature.py [--k 10] [--images 8] [--shapes-images 2] [--no-dense-shapes]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import geometry  # noqa: E402
from geometry.deepfool import deepfool  # noqa: E402
from geometry.hessian import HessianOperator, default_step, smooth_handle  # noqa: E402
from geometry.lanczos import assembled_eigs, lanczos, scipy_lanczos  # noqa: E402


def _operator(handle, df, method: str, h: float | None) -> HessianOperator:
    dim = math.prod(handle.input_shape)
    z = df.boundary_point.reshape(len(df), dim).to(handle.device)
    return HessianOperator(handle.module, z, df.original_label.to(handle.device), df.boundary_class.to(handle.device),
                           input_shape=handle.input_shape, method=method, h=h)  # fmt: skip


def _shape_operator(op: HessianOperator):
    gn = op.grad_norm.clamp_min(1e-30)
    return lambda v: op(v) / gn.reshape(-1, *([1] * (v.dim() - 1)))


def _dense_reference(op: HessianOperator, k: int, chunk: int = 64) -> torch.Tensor:
    """Top-k and bottom-k eigenvalues of P H P / ||g|| on the tangent space, from the operator on every basis vector."""
    dim, out = op.dim, []
    for i in range(op.n):
        single = HessianOperator(op.module, op.z[i : i + 1], op.source[i : i + 1], op.target[i : i + 1],
                                 input_shape=op.input_shape, method=op.method,
                                 h=op.h if op.method == "finite-difference" else None)  # fmt: skip
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


def bench_case(name: str, handle, x: torch.Tensor, *, k: int, method: str, h: float | None, dense: bool,
               scipy: bool = True, tol: float = 1e-3) -> list[tuple]:  # fmt: skip
    df = deepfool(handle, x)
    assert bool(df.converged.all()), f"{name}: DeepFool did not converge on every image"
    op = _operator(handle, df, method, h)
    dim = op.dim
    n = len(x)
    rows = []
    t0 = time.perf_counter()
    if method == "finite-difference":
        # the library's default for finite differences: the scale-h Hessian assembled on a tangent basis
        res, _ = assembled_eigs(_shape_operator(op), dim, n=n, k=k, normal=op.normal, device=handle.device)
        reference = res.eigenvalues
        _sync()
        t_dense = time.perf_counter() - t0
        rows.append((name, method, "assembled on a tangent basis (default)", n, t_dense / n, dim - 1, 0.0,
                     float(res.converged.float().mean())))  # fmt: skip
        dense, scipy = False, False
    else:
        reference = _dense_reference(op, k) if dense else None
        t_dense = time.perf_counter() - t0

    def run_torch(rows_idx: list[int]) -> tuple[torch.Tensor, int, float]:
        sub = _operator(handle, _sub(df, rows_idx), method, h)
        res = lanczos(_shape_operator(sub), dim, n=len(rows_idx), k=k, constraints=sub.normal[:, None], tol=tol,
                      device=handle.device)  # fmt: skip
        return res.eigenvalues, res.iterations, float(res.converged.float().mean())

    _sync()
    t0 = time.perf_counter()
    values, iters, conv = run_torch(list(range(n)))
    _sync()
    t = time.perf_counter() - t0
    rows.append((name, method, "torch Lanczos, batched", n, t / n, iters, _error(values, reference), conv))

    t0 = time.perf_counter()
    singles = [run_torch([i]) for i in range(n)]
    _sync()
    t = time.perf_counter() - t0
    values = torch.cat([s[0] for s in singles])
    rows.append((name, method, "torch Lanczos, per image", n, t / n, sum(s[1] for s in singles) / n,
                 _error(values, reference), sum(s[2] for s in singles) / n))  # fmt: skip
    if scipy:
        t0 = time.perf_counter()
        vals, mv, convs = [], 0, 0.0
        for i in range(n):
            sub = _operator(handle, _sub(df, [i]), method, h)
            res = scipy_lanczos(_shape_operator(sub), dim, k=k, constraint=sub.normal[0], tol=tol, device=handle.device)
            vals.append(res.eigenvalues)
            mv += res.matvecs
            convs += float(res.converged.float().mean())
        t = time.perf_counter() - t0
        rows.append(
            (name, method, "SciPy eigsh (ARPACK)", n, t / n, mv / n, _error(torch.cat(vals), reference), convs / n)
        )
    if dense:
        rows.append((name, method, "dense reference (D products)", n, t_dense / n, dim, 0.0, 1.0))
    return rows


def _sub(df, rows: list[int]):
    import dataclasses

    idx = torch.tensor(rows)
    fields = {}
    for f in dataclasses.fields(df):
        v = getattr(df, f.name)
        fields[f.name] = v[idx] if isinstance(v, torch.Tensor) and v.dim() > 0 and len(v) == len(df) else v
    return type(df)(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=10, help="eigenpairs from each end")
    parser.add_argument("--images", type=int, default=8, help="digits images")
    parser.add_argument("--shapes-images", type=int, default=2, help="shapes images (3x32x32)")
    parser.add_argument("--no-dense-shapes", action="store_true", help="skip the 3072-product dense reference")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple] = []
    digits = geometry.load_dataset("digits").images[: args.images]
    silu = geometry.load_model("digits-cnn-silu", device=args.device)
    rows += bench_case("digits-cnn-silu", silu, digits, k=args.k, method="exact", h=None, dense=True)
    relu = geometry.load_model("digits-cnn-relu", device=args.device)
    rows += bench_case("digits-cnn-relu", relu, digits, k=args.k, method="finite-difference", h=default_step(relu),
                       dense=True)  # fmt: skip
    soft = smooth_handle(relu, beta=10.0)
    rows += bench_case("digits-cnn-relu (softplus β=10)", soft, digits, k=args.k, method="exact", h=None, dense=True)
    if "shapes-resnet-silu" in geometry.builtin_models() and args.shapes_images > 0:
        shapes = geometry.load_dataset("shapes").images[: args.shapes_images]
        resnet = geometry.load_model("shapes-resnet-silu", device=args.device)
        rows += bench_case("shapes-resnet-silu", resnet, shapes, k=args.k, method="exact", h=None,
                           dense=not args.no_dense_shapes)  # fmt: skip

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    device = args.device or str(geometry.default_device())
    print(f"Curvature top-{args.k} and bottom-{args.k} (tol 1e-3) on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, device {device}, load average {load:.1f}\n")  # fmt: skip
    print("| model | Hessian | eigensolver | images | s / image | Hessian-vector products / image | "
          "max error vs dense (rel.) | pairs converged |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, method, backend, n, t, hvps, err, conv in rows:
        err_text = "—" if math.isnan(err) else f"{err:.1e}"
        print(f"| {name} | {method} | {backend} | {n} | {t:.3f} | {hvps:.0f} | {err_text} | {conv:.0%} |")


if __name__ == "__main__":
    main()

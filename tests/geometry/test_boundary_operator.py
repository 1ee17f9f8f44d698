"""The matrix-free operator protocol: the eigen-solvers on plain symmetric matrices with known spectra, batched,
against float64 references (torch.linalg.eigvalsh), and the Hessian operator as one such operator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geometry.boundary.hessian import HessianOperator
from geometry.boundary.lanczos import assembled_eigs, lanczos, scipy_lanczos
from geometry.boundary.operator import FunctionOperator, LinearOperator, MatrixOperator, ScaledOperator

SPECTRA = torch.tensor(
    [
        [6.0, 4.0, 2.5, 0.1, 0.05, 0.0, -0.05, -0.1, -1.5, -3.0, -5.0, 0.02],
        [9.0, 1.0, 0.5, 0.3, 0.2, 0.1, -0.1, -0.2, -0.3, -2.0, -7.0, 0.0],
        [3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0],
    ],
    dtype=torch.float64,
)


def with_spectrum(values: torch.Tensor, seed: int) -> torch.Tensor:
    """Q diag(values) Q^T for a random orthogonal Q: a symmetric matrix whose eigenvalues are known exactly."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=gen, dtype=torch.float64))
    return q @ torch.diag(values) @ q.T


def batch_of_matrices() -> torch.Tensor:
    return torch.stack([with_spectrum(v, seed=i) for i, v in enumerate(SPECTRA)])


def test_matrix_operator_carries_its_size_batch_device_and_dtype():
    mats = batch_of_matrices()
    op = MatrixOperator(mats, dtype=torch.float32)
    assert isinstance(op, LinearOperator)
    assert (op.size, op.batch, op.device, op.dtype) == (12, 3, torch.device("cpu"), torch.float32)
    v = torch.randn(3, 12, dtype=torch.float32)
    torch.testing.assert_close(op.matvec(v), torch.einsum("nij,nj->ni", mats.float(), v))
    shared = MatrixOperator(mats[0], batch=4)
    assert (shared.size, shared.batch, shared.dtype) == (12, 4, torch.float64)


def test_lanczos_on_a_batch_of_matrices_finds_their_known_extreme_eigenvalues():
    mats = batch_of_matrices()
    res = lanczos(MatrixOperator(mats), k=3, tol=1e-10)
    known = SPECTRA.sort(dim=1, descending=True).values
    reference = torch.linalg.eigvalsh(mats).flip(-1)  # float64, decreasing
    torch.testing.assert_close(reference, known, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.eigenvalues, torch.cat([known[:, :3], known[:, -3:]], dim=1), atol=1e-8, rtol=0)
    assert res.converged.all()
    vecs = res.eigenvectors.double()  # A v = lambda v for each returned pair, each operator its own
    applied = torch.einsum("nij,nmj->nmi", mats, vecs)
    torch.testing.assert_close(applied, res.eigenvalues[:, :, None] * vecs, atol=1e-5, rtol=0)


def test_lanczos_in_float32_keeps_float32_accuracy():
    mats = batch_of_matrices()
    res = lanczos(MatrixOperator(mats, dtype=torch.float32), k=2, tol=1e-5)
    reference = torch.linalg.eigvalsh(mats).flip(-1)
    torch.testing.assert_close(
        res.eigenvalues, torch.cat([reference[:, :2], reference[:, -2:]], dim=1), atol=5e-5, rtol=0
    )


def test_the_dense_fallback_on_a_batch_matches_the_float64_restricted_spectrum():
    mats = batch_of_matrices()
    gen = torch.Generator().manual_seed(7)
    normals = torch.randn(3, 12, generator=gen, dtype=torch.float64)
    normals = normals / normals.norm(dim=1, keepdim=True)
    res, asym = assembled_eigs(MatrixOperator(mats), k=20, normal=normals)
    for i in range(3):
        # float64 reference: A on an orthonormal basis of the normal's complement (QR of [n, e_1 .. e_11])
        q, _ = torch.linalg.qr(torch.cat([normals[i][:, None], torch.eye(12, dtype=torch.float64)[:, :11]], dim=1))
        basis = q[:, 1:]
        restricted = torch.linalg.eigvalsh(basis.T @ mats[i] @ basis).flip(0)
        torch.testing.assert_close(res.eigenvalues[i], restricted, atol=1e-9, rtol=0)
        assert (res.eigenvectors[i].double() @ normals[i]).abs().max() < 1e-6
    assert res.eigenvalues.shape == (3, 11) and asym.abs().max() < 1e-12


def test_scaled_operator_divides_each_row_by_its_scale():
    mats = batch_of_matrices()
    scale = torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64)
    res = lanczos(ScaledOperator(MatrixOperator(mats), scale), k=1, tol=1e-10)
    known = SPECTRA.sort(dim=1, descending=True).values / scale[:, None]
    torch.testing.assert_close(res.eigenvalues, known[:, [0, -1]], atol=1e-8, rtol=0)


def test_scipy_reference_takes_the_same_operator():
    a = with_spectrum(SPECTRA[1], seed=1)
    res = scipy_lanczos(MatrixOperator(a), k=2, tol=1e-10)
    known = SPECTRA[1].sort(descending=True).values
    torch.testing.assert_close(res.eigenvalues[0], torch.cat([known[:2], known[-2:]]), atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="one operator at a time, got a batch of 3"):
        scipy_lanczos(MatrixOperator(batch_of_matrices()), k=2)


class Quadratic(nn.Module):
    """Logits (0, x^T A x / 2): F = f_1 - f_0 has the Hessian A everywhere."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quad = 0.5 * torch.einsum("ni,ij,nj->n", x, self.a, x)
        return torch.stack([torch.zeros_like(quad), quad], dim=1)


def test_the_hessian_operator_is_a_linear_operator_whose_spectrum_is_the_models_hessian():
    a = with_spectrum(SPECTRA[0], seed=0)
    z = torch.randn(2, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    op = HessianOperator(Quadratic(a), z, torch.zeros(2), torch.ones(2), input_shape=(12,))
    assert isinstance(op, LinearOperator)
    assert (op.size, op.batch, op.device, op.dtype) == (12, 2, torch.device("cpu"), torch.float64)
    res = lanczos(op, k=2, tol=1e-10)
    known = SPECTRA[0].sort(descending=True).values
    expected = torch.cat([known[:2], known[-2:]]).expand(2, -1)
    torch.testing.assert_close(res.eigenvalues, expected, atol=1e-8, rtol=0)


def test_a_plain_function_is_not_an_operator():
    with pytest.raises(TypeError, match=r"expected a LinearOperator \(size, batch, device, dtype, matvec\)"):
        lanczos(lambda v: v, k=1)  # type: ignore[arg-type]
    op = FunctionOperator(lambda v: 2.0 * v, 5, batch=2, dtype=torch.float64)
    res = lanczos(op, k=1)
    torch.testing.assert_close(res.eigenvalues, torch.full((2, 2), 2.0, dtype=torch.float64), atol=1e-12, rtol=0)

"""Frequency margins ("Hold me tight!"): the DCT bands, subspace margins against closed forms, the baselines, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

import geometry
from geometry.data.dct import dct2, dct_flip, idct2, low_pass
from geometry.inspection import margins as M
from geometry.inspection.margins import (
    band_basis,
    band_image,
    cached_frequency_margins,
    frequency_bands,
    frequency_margins,
    random_subspace,
    subspace_margins,
)
from tests.geometry.analytic import Affine

OVERSHOOT = 0.02
STEP_EPS = 1e-4  # DeepFool's extra step length (geometry.boundary.deepfool._STEP_EPS)


def _linear(weight: torch.Tensor, bias: torch.Tensor, shape=(1, 8, 8)) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(Affine(weight, bias), input_shape=shape, device="cpu")


def _linear_margin(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, basis: torch.Tensor) -> np.ndarray:
    """float64 closed form of DeepFool in span(S) for an affine classifier: one step to the nearest hyperplane,
    ``(1 + overshoot) (min_k |f_k - f_j| / ||S^T (w_k - w_j)|| + eps)``."""
    w, b = weight.double(), bias.double()
    s = basis.double()
    out = []
    for xi in x.reshape(len(x), -1).double():
        f = w @ xi + b
        j = int(f.argmax())
        d = [abs(float(f[k] - f[j])) / float((s.T @ (w[k] - w[j])).norm()) for k in range(len(f)) if k != j]
        out.append((1 + OVERSHOOT) * (min(d) + STEP_EPS))
    return np.array(out)


# -- the DCT pieces the margins are built on ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 12, 12)])
def test_band_bases_are_orthonormal_and_are_dct_frequencies(shape):
    layout = frequency_bands(shape)
    for start in layout.starts:
        q = band_basis(shape, start, layout.block).double()
        assert q.shape == (math.prod(shape), layout.subspace_dim)
        torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1], dtype=torch.float64), atol=1e-6, rtol=0)
        # each column is one DCT frequency inside the block: its scipy DCT has a single 1 there
        coeffs = scipy.fft.dctn(q.T.reshape(-1, *shape).numpy(), type=2, norm="ortho", axes=(-2, -1))
        rows, cols = np.nonzero(np.abs(coeffs).max(axis=(0, 1)) > 1e-6)
        assert rows.min() >= start and rows.max() < start + layout.block
        assert cols.min() >= start and cols.max() < start + layout.block
    # bands with stride == block tile the diagonal without overlap: their union is orthonormal too
    block = layout.block
    tiled = frequency_bands(shape, block=block, stride=block)
    q = torch.cat([band_basis(shape, s, block) for s in tiled.starts], dim=1).double()
    torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1], dtype=torch.float64), atol=1e-6, rtol=0)


def test_dct_matches_scipy_and_dct_flip_is_an_involution_that_keeps_norms():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    ref = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(dct2(x).numpy(), ref, atol=1e-12)
    torch.testing.assert_close(idct2(dct2(x)), x, atol=1e-12, rtol=0)
    flipped = dct_flip(x)
    torch.testing.assert_close(dct_flip(flipped), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(flipped.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), atol=1e-12, rtol=0)
    # the flip moves the DC energy to the highest frequency
    assert float(dct2(flipped)[..., -1, -1].abs().sum()) == pytest.approx(float(dct2(x)[..., 0, 0].abs().sum()))
    # low-pass: only the top-left block survives, and it is kept exactly
    lp = dct2(low_pass(x, 3))
    assert float(lp[..., 3:, :].abs().max()) < 1e-12 and float(lp[..., :, 3:].abs().max()) < 1e-12
    torch.testing.assert_close(lp[..., :3, :3], dct2(x)[..., :3, :3], atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("size", "block", "stride", "count"), [(28, 8, 1, 21), (32, 8, 2, 13), (224, 16, 16, 14), (8, 2, 1, 7)]
)
def test_default_bands_follow_the_papers_settings(size, block, stride, count):
    layout = frequency_bands((3, size, size))
    assert (layout.block, layout.stride, len(layout)) == (block, stride, count)
    assert layout.starts[0] == 0 and layout.starts[-1] + block <= size
    assert layout.subspace_dim == 3 * block * block
    assert layout.label(0) == f"0-{block - 1}"


def test_random_subspace_is_orthonormal_and_seeded():
    q = random_subspace(50, 7, seed=3)
    torch.testing.assert_close(q.T @ q, torch.eye(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(random_subspace(50, 7, seed=3), q)
    assert not torch.allclose(random_subspace(50, 7, seed=4), q)
    with pytest.raises(ValueError, match="m <= dim"):
        random_subspace(5, 6)


# -- margins against closed forms -----------------------------------------------------------------------------------


def test_subspace_margins_of_a_linear_model_equal_the_analytic_value():
    gen = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(10, 64, generator=gen), torch.randn(10, generator=gen)
    handle = _linear(weight, bias)
    x = torch.rand(6, 1, 8, 8, generator=gen)
    res = frequency_margins(handle, x, num_random=2, seed=5)
    assert res.margins.shape == (6, 7) and res.random_margins.shape == (6, 2)
    assert bool(res.converged.all()) and bool(res.random_converged.all())
    assert bool((res.iterations == 1).all())  # one DeepFool step reaches a hyperplane of an affine model
    for b, start in enumerate(res.band_starts.tolist()):
        expected = _linear_margin(weight, bias, x, band_basis((1, 8, 8), start, res.block))
        np.testing.assert_allclose(res.margins[:, b].numpy(), expected, rtol=2e-4)
    for r in range(2):
        expected = _linear_margin(weight, bias, x, random_subspace(64, res.subspace_dim, seed=5 + r))
        np.testing.assert_allclose(res.random_margins[:, r].numpy(), expected, rtol=2e-4)
    np.testing.assert_allclose(res.full_margins.numpy(), _linear_margin(weight, bias, x, torch.eye(64)), rtol=2e-4)
    # a subspace can only make the margin larger than the unconstrained one
    assert bool((res.margins >= res.full_margins[:, None] * (1 - 1e-5)).all())
    assert res.original_label.tolist() == handle.predict(x).tolist()


def test_a_band_that_cannot_reach_the_boundary_is_flagged_not_converged():
    """F depends on the DC coefficient only: every band but the first is orthogonal to the boundary normal."""
    dc = torch.full((64,), 1 / 8.0)  # the (0, 0) DCT image, unit norm
    weight = torch.stack([torch.zeros(64), 3.0 * dc])
    handle = _linear(weight, torch.tensor([0.0, -1.0]))
    x = torch.full((3, 1, 8, 8), 0.1)  # F = 3 * 0.8 - 1 < 0: class 0
    res = frequency_margins(handle, x, full=False)
    assert bool(res.converged[:, 0].all())
    np.testing.assert_allclose(
        res.margins[:, 0].numpy(), (1 + OVERSHOOT) * (1.0 - 2.4) / -3.0 + (1 + OVERSHOOT) * STEP_EPS, rtol=1e-4
    )
    assert not bool(res.converged[:, 1:].any())
    assert bool((res.margins[:, 1:] == 0).all())  # nothing moved: the accumulated norm is reported, a lower bound
    np.testing.assert_array_equal(res.converged_share(), [1.0] + [0.0] * 6)
    assert bool(torch.isnan(res.full_margins).all()) and not bool(res.full_converged.any())


def test_subspace_margins_run_many_subspaces_in_few_batched_calls(monkeypatch):
    gen = torch.Generator().manual_seed(2)
    weight, bias = torch.randn(3, 64, generator=gen), torch.randn(3, generator=gen)
    handle = _linear(weight, bias)
    x = torch.rand(5, 1, 8, 8, generator=gen)
    bases = torch.stack([band_basis((1, 8, 8), s, 2) for s in (0, 3, 6)])
    calls = []
    real = M.subspace_deepfool
    monkeypatch.setattr(M, "subspace_deepfool", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    margins, conv, iters = subspace_margins(handle, x, bases)
    assert calls == [15]  # 5 images x 3 subspaces in one call
    for b in range(3):
        np.testing.assert_allclose(margins[:, b].numpy(), _linear_margin(weight, bias, x, bases[b]), rtol=2e-4)
    monkeypatch.setattr(M, "_BASIS_BUDGET", 64 * 4 * 4 * 4)  # room for 4 rows of (64 x 4) bases per call
    calls.clear()
    again, _, _ = subspace_margins(handle, x, bases)
    assert calls == [4, 4, 4, 3]
    torch.testing.assert_close(again, margins)


def _subspace_rows(monkeypatch) -> list[int]:
    """Record the rows of each coefficient-space DeepFool call of the margins (not the unconstrained 'full' run)."""
    rows: list[int] = []
    real = M.deepfool

    def spy(handle, x, **options):
        if handle.name.endswith("in a subspace"):
            rows.append(len(x))
        return real(handle, x, **options)

    monkeypatch.setattr(M, "deepfool", spy)
    return rows


def test_band_margins_need_no_dense_basis_and_equal_subspace_deepfool_on_a_real_model(monkeypatch):
    """The DCT bands run in coefficient space; on a nonlinear model they agree with subspace DeepFool on the dense
    band bases, in any number of calls."""
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits").images[:4]
    layout = frequency_bands(handle.input_shape)
    dense = torch.stack([band_basis((1, 8, 8), layout.starts[b], layout.block) for b in (0, 3, 6)])
    reference, ref_conv, _ = subspace_margins(handle, x, dense)
    monkeypatch.setattr(M, "dct_basis_block", lambda *a, **k: pytest.fail("a dense DCT basis was built"))
    rows = _subspace_rows(monkeypatch)
    res = frequency_margins(handle, x, bands=[0, 3, 6], num_random=0, full=False)
    assert rows == [12]  # 4 images x 3 bands in one call
    assert res.converged.tolist() == ref_conv.tolist()
    np.testing.assert_allclose(res.margins.numpy(), reference.numpy(), rtol=1e-3)
    monkeypatch.setattr(M, "_ROW_BUDGET", 5 * (4 + 64 + 1))  # room for 5 rows per call
    rows.clear()
    again = frequency_margins(handle, x, bands=[0, 3, 6], num_random=0, full=False)
    assert rows == [5, 5, 2]
    torch.testing.assert_close(again.margins, res.margins)


def test_real_model_margins_grow_from_low_to_high_frequency():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits").images[:6]
    res = frequency_margins(handle, x, bands=[0, 6], num_random=0, full=False)
    assert res.band_labels() == ["0-1", "6-7"]
    assert bool(res.converged.all())
    low, high = res.band_median()
    assert high > 3 * low  # "small margins at low frequency, large at high"


# -- cache ----------------------------------------------------------------------------------------------------------


def test_cached_margins_equal_the_direct_ones_and_new_bands_compute_only_themselves(tmp_path, monkeypatch):
    cache = geometry.DiskCache(tmp_path / "c")
    gen = torch.Generator().manual_seed(4)
    weight, bias = torch.randn(4, 64, generator=gen), torch.randn(4, generator=gen)
    handle = _linear(weight, bias)
    x = torch.rand(3, 1, 8, 8, generator=gen)
    direct = frequency_margins(handle, x, bands=[1, 4], seed=2)
    cached = cached_frequency_margins(handle, x, bands=[1, 4], seed=2, cache=cache)
    for f in ("margins", "converged", "iterations", "random_margins", "full_margins", "band_starts"):
        torch.testing.assert_close(getattr(cached, f), getattr(direct, f))
    rows = _subspace_rows(monkeypatch)
    again = cached_frequency_margins(handle, x, bands=[1, 4], seed=2, cache=cache)
    assert rows == []  # everything from the cache
    torch.testing.assert_close(again.margins, direct.margins)
    more = cached_frequency_margins(handle, x, bands=[0, 1, 4], seed=2, cache=cache)
    assert rows == [3]  # only the new band: its 3 images
    torch.testing.assert_close(more.margins[:, 1:], direct.margins)


# -- bad input ------------------------------------------------------------------------------------------------------


def test_bad_inputs_are_rejected_with_clear_messages():
    toy = geometry.load_model("moons-mlp", device="cpu")
    with pytest.raises(ValueError, match="need image inputs"):
        frequency_margins(toy, torch.zeros(2, 2))
    handle = _linear(torch.randn(3, 64), torch.zeros(3))
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"band indices in \[0, 7\)"):
        frequency_margins(handle, x, bands=[7])
    with pytest.raises(ValueError, match="num_random"):
        frequency_margins(handle, x, num_random=-1)
    with pytest.raises(ValueError, match="block"):
        frequency_margins(handle, x, block=9)
    with pytest.raises(ValueError, match="expects inputs of shape"):
        frequency_margins(handle, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"bases of shape \(B, 64, m\)"):
        subspace_margins(handle, x, torch.zeros(2, 10, 3))


def test_band_image_is_an_image_in_the_band():
    img = band_image((1, 8, 8), 6, 2, seed=1)
    assert img.shape == (1, 8, 8) and float(img.min()) >= 0 and float(img.max()) <= 1
    coeffs = dct2((img - 0.5).double())
    assert float(coeffs[..., :6, :6].abs().max()) < 1e-6  # only the high block has energy

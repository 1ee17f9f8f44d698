"""The orthonormal 2D DCT against scipy, its basis images, diagonal blocks and frequency manipulations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from geometry.data import dct as D


@pytest.mark.parametrize("n", [1, 2, 7, 8, 32])
def test_dct_matrix_is_orthonormal_and_matches_scipy(n):
    c = D.dct_matrix(n)
    torch.testing.assert_close(c @ c.T, torch.eye(n, dtype=torch.float64), atol=1e-12, rtol=0)
    ref = scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0)  # columns = DCT of unit vectors
    np.testing.assert_allclose(c.numpy(), ref, atol=1e-12)


def test_dct2_matches_scipy_dctn_and_inverts():
    x = torch.rand(2, 3, 8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = D.dct2(x)
    ref = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    torch.testing.assert_close(D.idct2(got), x, atol=1e-12, rtol=0)
    # Parseval: an orthonormal transform keeps L2 norms
    assert float(got.norm()) == pytest.approx(float(x.norm()), rel=1e-12)


def test_dct2_is_differentiable_and_keeps_dtype():
    x = torch.rand(1, 1, 4, 4, requires_grad=True)
    y = D.dct2(x)
    assert y.dtype == torch.float32
    y[..., 0, 0].sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 0.25))  # DC coefficient = sum / sqrt(H W)


def test_basis_image_has_a_one_hot_spectrum():
    img = D.dct_basis_image((3, 8, 8), 2, 5)
    assert float(img.double().norm()) == pytest.approx(1.0, abs=1e-6)
    spec = D.dct2(img.double())
    expected = torch.zeros(3, 8, 8, dtype=torch.float64)
    expected[:, 2, 5] = 1 / np.sqrt(3)
    torch.testing.assert_close(spec, expected, atol=1e-6, rtol=0)
    one = D.dct_basis_image((3, 8, 8), 0, 0, channel=1)
    assert float(one[0].abs().max()) == 0 and float(one[2].abs().max()) == 0
    torch.testing.assert_close(one[1], torch.full((8, 8), 1 / 8))


@pytest.mark.parametrize("per_channel", [True, False])
def test_basis_block_is_orthonormal_and_spans_the_block(per_channel):
    basis = D.dct_basis_block((3, 8, 8), range(1, 3), range(0, 3), per_channel=per_channel).double()
    m = 2 * 3 * (3 if per_channel else 1)
    assert basis.shape == (m, 3, 8, 8)
    flat = basis.flatten(1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(m, dtype=torch.float64), atol=1e-6, rtol=0)
    spec = D.dct2(basis)
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[1:3, 0:3] = False
    assert float(spec[..., outside].abs().max()) < 1e-6


def test_basis_block_accepts_slices_and_ints():
    a = D.dct_basis_block((1, 8, 8), slice(0, 2), 3)
    b = D.dct_basis_block((1, 8, 8), [0, 1], [3])
    torch.testing.assert_close(a, b)


def test_diagonal_blocks_match_the_authors_counts():
    assert len(D.dct_diagonal_blocks(28, 8, 1)) == 21
    assert len(D.dct_diagonal_blocks(32, 8, 2)) == 13
    assert len(D.dct_diagonal_blocks(224, 16, 16)) == 14
    first, last = D.dct_diagonal_blocks(32, 8, 2)[0], D.dct_diagonal_blocks(32, 8, 2)[-1]
    assert first == (range(0, 8), range(0, 8)) and last == (range(24, 32), range(24, 32))


@pytest.mark.parametrize(("size", "expected"), [(28, (8, 1)), (32, (8, 2)), (224, (16, 16))])
def test_default_blocks_keep_the_papers_settings(size, expected):
    assert D.default_dct_blocks(size) == expected


@pytest.mark.parametrize("size", range(8, 513))
def test_default_blocks_cover_the_whole_diagonal_without_gaps(size):
    block, stride = D.default_dct_blocks(size)
    blocks = D.dct_diagonal_blocks(size, block, stride)
    starts = [rows.start for rows, _ in blocks]
    assert all(rows == cols and len(rows) == block for rows, cols in blocks)
    assert starts[0] == 0  # from the lowest frequency ...
    assert blocks[-1][0][-1] == size - 1  # ... to the highest one
    assert set(np.diff(starts)) <= {stride} and 1 <= stride <= block  # equal steps, none longer than a block
    covered = set().union(*(set(rows) for rows, _ in blocks))
    assert covered == set(range(size))  # every frequency of the diagonal is in some band
    if size >= 12:  # room for 10 bands of the target block
        assert 10 <= len(blocks) <= 25
    else:  # too small: stride 1, as many bands as fit
        assert stride == 1 and len(blocks) == size - block + 1
    k0 = D.target_dct_block(size)
    assert abs(block - k0) <= max(2, 0.2 * k0)  # the block stays near the target


@pytest.mark.parametrize(("size", "expected"), [(8, (2, 1)), (96, (16, 8)), (299, (23, 23)), (512, (37, 25))])
def test_default_blocks_of_other_sizes(size, expected):
    """Worked examples of the rule: 96 px -> 11 bands of 16 frequencies (the old rule stopped at 93), 299 px -> 13
    bands of 23 (old: 291), 512 px -> 20 bands of 37 (old: stride 41 > block 16, gaps, last at 507)."""
    assert D.default_dct_blocks(size) == expected


def test_dct_flip_swaps_low_and_high_frequencies():
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(D.dct_flip(D.dct_flip(x)), x, atol=1e-12, rtol=0)
    flat = torch.full((1, 8, 8), 0.5, dtype=torch.float64)  # only the DC coefficient
    spec = D.dct2(D.dct_flip(flat))
    assert float(spec[0, 7, 7]) == pytest.approx(4.0)  # 0.5 * sqrt(64) moved to the highest frequency
    spec[0, 7, 7] = 0
    assert float(spec.abs().max()) < 1e-12


def test_low_pass_keeps_the_top_left_block():
    x = torch.rand(1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(D.low_pass(x, 8), x, atol=1e-12, rtol=0)
    assert float(D.low_pass(x, 0).abs().max()) < 1e-12
    spec = D.dct2(D.low_pass(x, 3))
    ref = D.dct2(x)
    torch.testing.assert_close(spec[..., :3, :3], ref[..., :3, :3], atol=1e-12, rtol=0)
    assert float(spec[..., 3:, :].abs().max()) < 1e-12 and float(spec[..., :, 3:].abs().max()) < 1e-12


def test_dct_matrix_rejects_a_bad_size():
    with pytest.raises(ValueError, match="positive int"):
        D.dct_matrix(0)


def test_dct2_rejects_a_vector():
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        D.dct2(torch.rand(8))


def test_dct2_rejects_a_list():
    with pytest.raises(TypeError, match="torch.Tensor"):
        D.dct2([[1.0, 2.0]])


def test_basis_image_rejects_an_out_of_range_frequency():
    with pytest.raises(ValueError, match=r"frequencies in \[0, 8\)"):
        D.dct_basis_image((1, 8, 8), 8, 0)


def test_basis_image_rejects_a_bad_channel():
    with pytest.raises(ValueError, match="channel"):
        D.dct_basis_image((3, 8, 8), 0, 0, channel=3)


def test_basis_block_rejects_a_bad_shape():
    with pytest.raises(ValueError, match=r"expected \(C, H, W\)"):
        D.dct_basis_block((8, 8), [0], [0])


def test_basis_block_rejects_repeated_frequencies():
    with pytest.raises(ValueError, match="distinct"):
        D.dct_basis_block((1, 8, 8), [1, 1], [0])


def test_default_blocks_reject_a_bad_size():
    with pytest.raises(ValueError, match="size: expected a positive int"):
        D.default_dct_blocks(0)


def test_diagonal_blocks_reject_a_block_larger_than_the_image():
    with pytest.raises(ValueError, match="at most size"):
        D.dct_diagonal_blocks(8, 9, 1)


def test_low_pass_rejects_a_negative_size():
    with pytest.raises(ValueError, match="non-negative"):
        D.low_pass(torch.rand(1, 4, 4), -1)

"""evaluate_slice against closed-form boundaries (linear, ball), the built-in models, and the slice figure."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

import geometry
from geometry.figures.common import class_color
from geometry.figures.slices import boundary_lines, slice_colors, slice_figure, slice_image
from geometry.models.handle import NonFiniteOutputError
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import Cancelled, CancelToken
from geometry.slices import boundary_planes as BP
from geometry.slices import evaluate as S
from geometry.slices import grid
from geometry.slices import planes as P
from geometry.slices.grid import point_stats, point_stats_torch
from tests.geometry.analytic import CircleUnderAConstant, NaNAfter, affine_handle, ball_handle, toy_handle

SHAPE = (1, 4, 4)


def _img(seed: int, shape=SHAPE) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _linear_slice_setup(gamma: float = 0.7, classes: int = 2):
    """A linear classifier and a plane on which F = f1 - f0 = alpha a + beta b + gamma (float64)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(classes, 16, generator=gen, dtype=torch.float64)
    x0 = _img(3)
    wd = (w[1] - w[0]).view(SHAPE)
    plane = P.plane_from_directions(
        x0,
        wd + 0.5 * torch.randn(SHAPE, generator=gen, dtype=torch.float64),
        torch.randn(SHAPE, generator=gen, dtype=torch.float64),
    )
    o = x0.double().flatten()
    bias = torch.zeros(classes, dtype=torch.float64)
    bias[1] = -(wd.flatten() @ o) + gamma  # so that F(0, 0) = gamma
    handle = affine_handle(w.float(), bias.float(), SHAPE)
    alpha = float(wd.flatten() @ plane.u.double().flatten())
    beta = float(wd.flatten() @ plane.v.double().flatten())
    return handle, plane, alpha, beta


# -- correctness on known boundaries --------------------------------------------------------------------------------


@pytest.mark.parametrize("adaptive", [False, True])
def test_linear_boundary_is_the_analytic_line_within_one_cell(adaptive):
    handle, plane, alpha, beta = _linear_slice_setup()
    extent = (-3.0, 2.0, -1.5, 2.5)  # asymmetric on purpose
    res = S.evaluate_slice(handle, plane, extent=extent, resolution=(81, 57), adaptive=adaptive, target_pair=(1, 0))
    assert res.shape == (57, 81)
    np.testing.assert_allclose(res.a, np.linspace(-3, 2, 81))
    np.testing.assert_allclose(res.b, np.linspace(-1.5, 2.5, 57))
    aa, bb = np.meshgrid(res.a, res.b)
    f = alpha * aa + beta * bb + 0.7
    dist = np.abs(f) / np.hypot(alpha, beta)  # distance of each grid point to the analytic boundary line
    assert 0.05 < (f > 0).mean() < 0.95  # the line crosses the view
    cell = np.hypot(*res.cell)
    wrong = res.labels != (f > 0)
    assert not wrong[dist > cell].any()  # every mistake lies within one grid cell of the analytic line
    if not adaptive:
        assert not wrong[dist > 1e-4].any()  # dense evaluation is exact away from float rounding
        np.testing.assert_allclose(res.pair_margin, f, atol=1e-4)
        np.testing.assert_allclose(res.margin, np.abs(f), atol=1e-4)
        np.testing.assert_allclose(res.probability, 1 / (1 + np.exp(-np.abs(f))), atol=1e-5)
        assert res.evaluations == res.labels.size and res.evaluated.all()
    # per row, the label switches at the analytic crossing a* = -(beta b + 0.7) / alpha, within one cell
    for row, b in enumerate(res.b):
        a_star = -(beta * b + 0.7) / alpha
        if res.a[0] + res.cell[0] < a_star < res.a[-1] - res.cell[0]:
            switch = np.flatnonzero(np.diff(res.labels[row].astype(int)))
            assert len(switch) == 1
            assert abs(0.5 * (res.a[switch[0]] + res.a[switch[0] + 1]) - a_star) <= res.cell[0]


def test_adaptive_equals_dense_on_a_ball_with_far_fewer_evaluations():
    c = _img(1)
    handle = ball_handle(c, 1.3)
    plane = P.random_plane(c + 0.2 * _img(2), seed=5)  # off-centre: the circle's centre is not the origin
    dense = S.evaluate_slice(handle, plane, extent=2.0, resolution=257, adaptive=False)
    adapt = S.evaluate_slice(handle, plane, extent=2.0, resolution=257, adaptive=True)
    assert 0.1 < dense.labels.mean() < 0.9
    np.testing.assert_array_equal(adapt.labels, dense.labels)
    assert adapt.evaluations == int(adapt.evaluated.sum())
    assert adapt.evaluations * 3 < dense.evaluations
    ev = adapt.evaluated
    np.testing.assert_array_equal(adapt.probability[ev], dense.probability[ev])  # the same inputs, bit for bit
    np.testing.assert_array_equal(adapt.margin[ev], dense.margin[ev])
    # interpolated values stay between their neighbours' extremes
    assert adapt.probability.min() >= dense.probability.min() - 1e-6
    assert adapt.probability.max() <= dense.probability.max() + 1e-6


def test_batches_that_split_rows_and_both_point_constructions_give_the_same_slice(monkeypatch):
    handle, plane, _, _ = _linear_slice_setup(classes=3)
    kw = dict(extent=(-3.0, 2.0, -1.5, 2.5), resolution=(23, 17), target_pair=(2, 0))
    ref = S.evaluate_slice(handle, plane, adaptive=False, **kw)  # one batch: whole rows, one broadcast add
    assert len(np.unique(ref.labels)) == 3
    fields = ("labels", "probability", "margin", "pair_margin")
    for batch in (7, 23, 50):  # batches that start and end inside rows, exactly one row, rows and a half
        split = S.evaluate_slice(handle, plane, adaptive=False, batch_size=batch, **kw)
        for field in fields:
            np.testing.assert_array_equal(getattr(split, field), getattr(ref, field))
    adapt = S.evaluate_slice(handle, plane, adaptive=True, coarse=4, **kw)  # gathered points: bit-identical
    for field in fields:
        np.testing.assert_array_equal(getattr(adapt, field)[adapt.evaluated], getattr(ref, field)[adapt.evaluated])
    # inputs too large for the row / column tables are built by addmm on (a, b): the same slice up to rounding
    monkeypatch.setattr(grid, "_GRID_TABLE_BYTES", 0)
    big = S.evaluate_slice(handle, plane, adaptive=False, batch_size=7, **kw)
    np.testing.assert_array_equal(big.labels, ref.labels)
    np.testing.assert_allclose(big.pair_margin, ref.pair_margin, atol=1e-5)
    # every value against a float64 reference of the linear model
    aa, bb = np.meshgrid(ref.a, ref.b)
    x = (
        plane.origin.double().flatten()
        + torch.from_numpy(aa.ravel())[:, None] * plane.u.double().flatten()
        + torch.from_numpy(bb.ravel())[:, None] * plane.v.double().flatten()
    )
    module = handle.network
    logits = (x @ module.weight.detach().double().T + module.bias.detach().double()).numpy().reshape(*ref.shape, 3)
    np.testing.assert_array_equal(ref.labels, logits.argmax(-1))
    top = np.sort(logits, axis=-1)
    np.testing.assert_allclose(ref.margin, top[..., -1] - top[..., -2], atol=1e-4)
    soft = np.exp(logits - top[..., -1:]) / np.exp(logits - top[..., -1:]).sum(-1, keepdims=True)
    np.testing.assert_allclose(ref.probability, soft.max(-1), atol=1e-5)
    np.testing.assert_allclose(ref.pair_margin, logits[..., 2] - logits[..., 0], atol=1e-4)


def test_the_cpu_batch_size_follows_the_largest_activation():
    wide = geometry.ModelHandle.from_module(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4096), torch.nn.Linear(4096, 2)),
        input_shape=SHAPE,
        device="cpu",
    )
    narrow, plane, _, _ = _linear_slice_setup()
    assert S.default_batch_size(wide, plane) == 4 * 2**20 // (4 * 4096)  # 4 MB of its largest layer output
    assert S.default_batch_size(narrow, plane) == 16384  # the cap
    assert not any(m._forward_hooks for m in wide.module.modules())  # the probe's hooks are gone


def test_adaptive_equals_dense_where_three_regions_meet():
    handle, plane, _, _ = _linear_slice_setup(classes=3)
    dense = S.evaluate_slice(handle, plane, extent=4.0, resolution=(130, 97), adaptive=False)
    adapt = S.evaluate_slice(handle, plane, extent=4.0, resolution=(130, 97), adaptive=True, coarse=8)
    assert len(np.unique(dense.labels)) == 3
    np.testing.assert_array_equal(adapt.labels, dense.labels)
    assert adapt.evaluations < dense.evaluations / 2


def test_adaptive_with_a_pair_evaluates_the_pair_line_where_the_pair_is_not_the_top_two():
    # class 2 wins everywhere; f_0 - f_1 = R^2 - |x - c|^2 changes sign on a circle no label boundary follows
    center, radius = (0.3, -0.2), 1.1
    handle = toy_handle(CircleUnderAConstant(center, radius))
    plane = P.input_space_plane()
    kw = dict(extent=2.0, resolution=257, adaptive=True)
    adapt = S.evaluate_slice(handle, plane, target_pair=(0, 1), **kw)
    assert (adapt.labels == 2).all()
    aa, bb = np.meshgrid(adapt.a, adapt.b)
    r = np.hypot(aa - center[0], bb - center[1])
    exact = radius**2 - r**2  # float64 reference of f_0 - f_1
    near = np.abs(r - radius) <= np.hypot(*adapt.cell)  # within one grid cell of the circle
    assert near.sum() > 500
    assert adapt.evaluated[near].all()  # the line itself is evaluated, not interpolated
    clear = np.abs(exact) > 1e-4
    np.testing.assert_array_equal(np.sign(adapt.pair_margin[clear]), np.sign(exact[clear]))
    np.testing.assert_allclose(adapt.pair_margin[adapt.evaluated], exact[adapt.evaluated], atol=2e-5)
    assert adapt.evaluations * 4 < adapt.labels.size  # still far fewer than dense
    # without a pair only the coarse grid runs (the labels are uniform): the refinement above is the pair's
    plain = S.evaluate_slice(handle, plane, **kw)
    assert plain.evaluations == 33 * 33 and not plain.evaluated[near].all()


def test_the_label_at_x0_is_the_models_label_for_x0():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits")
    for i in (0, 9):
        x0 = data.images[i]
        plane = BP.normal_plane(handle, x0, seed=0)
        res = S.evaluate_slice(handle, plane, extent=plane.extent_hint, resolution=33, adaptive=True)
        assert res.a[16] == pytest.approx(0.0, abs=1e-12) and res.b[16] == pytest.approx(0.0, abs=1e-12)
        assert res.labels[16, 16] == int(handle.predict(x0.unsqueeze(0)))
        # the DeepFool point sits on the boundary: just before it x0's class, just beyond it another
        ((name, (a, _)),) = [(k, c) for k, c in plane.anchors.items() if k != "x0"]
        before, beyond = handle.predict(plane.points([0.97 * a, 1.03 * a], [0.0, 0.0])).tolist()
        assert before == res.labels[16, 16] != beyond


def test_the_three_image_plane_predicts_each_images_own_label_at_its_coordinates():
    handle = geometry.load_model("digits-cnn-relu", device="cpu")
    data = geometry.load_dataset("digits")
    idx = [int(np.flatnonzero(data.labels.numpy() == c)[0]) for c in (0, 3, 7)]
    plane = P.three_image_plane(*data.images[idx], names=("a", "b", "c"))
    res = S.evaluate_slice(handle, plane, extent=plane.extent_hint, resolution=129)
    expected = handle.predict(data.images[idx]).tolist()
    assert len(set(expected)) == 3
    for name, label in zip(("a", "b", "c"), expected, strict=True):
        assert res.label_at(*plane.anchors[name]) == label
    # the triangle of the three images is inside [0, 1]; points far outside it are not
    centroid = np.mean(list(plane.anchors.values()), axis=0)
    assert res.valid[res.index_of(*centroid)]
    assert not res.valid[0, 0]


def test_the_input_space_slice_of_a_toy_model_is_its_prediction_on_the_grid():
    handle = geometry.load_model("moons-mlp", device="cpu")
    data = geometry.load_dataset("moons")
    plane = P.input_space_plane(data.images)
    res = S.evaluate_slice(handle, plane, extent=plane.extent_hint, resolution=(41, 31), adaptive=False)
    aa, bb = np.meshgrid(res.a, res.b)
    grid = torch.from_numpy(np.stack([aa.ravel(), bb.ravel()], 1).astype(np.float32))
    np.testing.assert_array_equal(res.labels.ravel(), handle.predict(grid).numpy())
    assert res.valid.all()  # unbounded inputs
    assert len(np.unique(res.labels)) == 2


def test_valid_mask_is_exact_against_brute_force():
    x0 = 0.3 + 0.4 * _img(4)  # pixels in [0.3, 0.7]
    plane = P.random_plane(x0, seed=1)
    res = S.evaluate_slice(
        affine_handle(torch.randn(2, 16), torch.zeros(2), SHAPE), plane, extent=1.5, resolution=45, adaptive=False
    )
    aa, bb = np.meshgrid(res.a, res.b)
    pts = plane.points(aa.ravel(), bb.ravel()).double().flatten(1)
    lo, hi = pts.min(1).values.numpy(), pts.max(1).values.numpy()
    brute = ((lo >= 0) & (hi <= 1)).reshape(res.shape)
    clear = ((np.abs(lo) > 1e-5) & (np.abs(hi - 1) > 1e-5)).reshape(res.shape)  # not on the edge
    assert 0.02 < brute.mean() < 0.98
    np.testing.assert_array_equal(res.valid[clear], brute[clear])


def test_one_hot_directions_give_a_rectangle_of_valid_inputs():
    x0 = torch.full(SHAPE, 0.5)
    x0[0, 0, 0], x0[0, 0, 1] = 0.3, 0.9
    e0, e1 = torch.zeros(SHAPE), torch.zeros(SHAPE)
    e0[0, 0, 0], e1[0, 0, 1] = 1, 1
    plane = P.custom_plane(x0, e0, e1)
    res = S.evaluate_slice(
        affine_handle(torch.randn(2, 16), torch.zeros(2), SHAPE),
        plane,
        extent=(-1, 1, -1, 1),
        resolution=41,
        adaptive=False,
    )
    aa, bb = np.meshgrid(res.a, res.b)
    expected = (aa >= -0.3 - 1e-9) & (aa <= 0.7 + 1e-9) & (bb >= -0.9 - 1e-9) & (bb <= 0.1 + 1e-9)
    np.testing.assert_array_equal(res.valid, expected)


def test_progress_reports_fractions_up_to_one_and_cancel_stops():
    handle, plane, _, _ = _linear_slice_setup()
    calls = []
    S.evaluate_slice(handle, plane, extent=2.0, resolution=65, progress=lambda f, t: calls.append((f, t)))
    assert calls and all(0.0 <= f <= 1.0 for f, _ in calls)
    assert calls[-1][0] == 1.0 and "slice" in calls[-1][1]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        S.evaluate_slice(handle, plane, extent=2.0, resolution=65, cancel=token)


def test_nan_logits_raise_a_clear_error():
    handle = geometry.ModelHandle.from_module(NaNAfter(0.5), input_shape=(2,), device="cpu", input_range=None)
    plane = P.input_space_plane()
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite logits"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=9, adaptive=False)


def test_cached_slice_comes_back_from_the_disk_cache(tmp_path, monkeypatch):
    handle, plane, _, _ = _linear_slice_setup()
    cache = DiskCache(tmp_path)
    first = S.cached_slice(handle, plane, extent=(-2, 2, -1, 1), resolution=(33, 17), target_pair=(1, 0), cache=cache)
    assert len(cache) == 1

    def boom(*args, **kwargs):
        raise AssertionError("evaluate_slice called although the result is cached")

    monkeypatch.setattr(S, "evaluate_slice", boom)
    second = S.cached_slice(handle, plane, extent=(-2, 2, -1, 1), resolution=(33, 17), target_pair=(1, 0), cache=cache)
    for field in ("a", "b", "labels", "probability", "margin", "pair_margin", "valid", "evaluated"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))
    assert second.target_pair == (1, 0) and second.extent == (-2.0, 2.0, -1.0, 1.0)
    with pytest.raises(AssertionError, match="called although"):  # another resolution is a different entry
        S.cached_slice(handle, plane, extent=(-2, 2, -1, 1), resolution=(35, 17), target_pair=(1, 0), cache=cache)


def test_point_statistics_agree_between_numpy_and_torch():
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(500, 7, generator=gen)
    logits[:5, 2] = logits[:5].max(1).values + 1e-3  # near-ties
    ref = torch.softmax(logits.double(), 1).max(1).values
    np_out = point_stats(logits.numpy(), (2, 5))
    t_out = point_stats_torch(logits, (2, 5))
    np.testing.assert_array_equal(np_out[0], t_out[0].numpy())
    np.testing.assert_allclose(np_out[1], ref.numpy(), rtol=1e-6)
    np.testing.assert_allclose(t_out[1].numpy(), ref.numpy(), rtol=1e-6)
    top2 = logits.topk(2, 1).values
    np.testing.assert_allclose(np_out[2], (top2[:, 0] - top2[:, 1]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(t_out[2].numpy(), np_out[2], rtol=1e-6)
    assert np_out[3].all() and t_out[3].all()
    np.testing.assert_allclose(np_out[4], (logits[:, 2] - logits[:, 5]).numpy())
    bad = logits.clone()
    bad[3, 1], bad[7, 4], bad[9, 0] = float("nan"), float("inf"), float("-inf")
    for finite in (point_stats(bad.numpy(), None)[3], point_stats_torch(bad, None)[3].numpy()):
        assert not finite[3] and not finite[7]


def test_to_arrays_round_trips_through_an_npz_file():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=(-3.0, 2.0, -1.0, 1.5), resolution=(65, 41), target_pair=(0, 1))
    assert not res.evaluated.all()  # adaptive: some values are interpolated, and the file must say so
    buf = io.BytesIO()
    np.savez(buf, **res.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        for field in ("a", "b", "labels", "probability", "margin", "pair_margin", "valid", "evaluated"):
            np.testing.assert_array_equal(z[field], getattr(res, field))
            assert z[field].dtype == getattr(res, field).dtype
        assert int(z["evaluations"]) == res.evaluations == int(z["evaluated"].sum())
        assert bool(z["adaptive"]) is True and int(z["num_classes"]) == 2
        assert tuple(z["extent"]) == (-3.0, 2.0, -1.0, 1.5) and tuple(z["target_pair"]) == (0, 1)
        assert "interpolat" in str(z["notes"]) and "`evaluated`" in str(z["notes"])


# -- bad input: one per parameter -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup():
    handle, plane, _, _ = _linear_slice_setup()
    return handle, plane


def test_handle_must_be_a_model_handle(setup):
    _, plane = setup
    with pytest.raises(TypeError, match="expected a geometry.ModelHandle"):
        S.evaluate_slice(torch.nn.Linear(16, 2), plane, extent=1.0, resolution=8)


def test_plane_must_be_a_plane(setup):
    handle, _ = setup
    with pytest.raises(TypeError, match="expected a geometry.slices.planes.Plane"):
        S.evaluate_slice(handle, (torch.zeros(SHAPE),) * 3, extent=1.0, resolution=8)


def test_plane_must_live_in_the_models_input_space(setup):
    handle, _ = setup
    with pytest.raises(ValueError, match=r"model's input space \(1, 4, 4\)"):
        S.evaluate_slice(handle, P.random_plane(torch.rand(1, 5, 5)), extent=1.0, resolution=8)


@pytest.mark.parametrize(
    ("extent", "match"),
    [
        (-1.0, "positive finite half-width"),
        ((1.0, 2.0, 3.0), "1, 2 or 4 numbers"),
        ((1.0, -1.0, 0.0, 1.0), "a_min < a_max"),
        ((0.0, float("nan")), "positive finite half-widths"),
    ],
)
def test_extent_is_checked(setup, extent, match):
    handle, plane = setup
    with pytest.raises(ValueError, match=match):
        S.evaluate_slice(handle, plane, extent=extent, resolution=8)


def test_extent_must_be_numbers(setup):
    handle, plane = setup
    with pytest.raises(TypeError, match="extent"):
        S.evaluate_slice(handle, plane, extent="wide", resolution=8)


@pytest.mark.parametrize(
    ("resolution", "error", "match"),
    [
        (1, ValueError, "between 2 and 4096"),
        (5000, ValueError, "between 2 and 4096"),
        (64.0, TypeError, "expected an int"),
        (True, TypeError, "expected an int"),
        ((8, 8, 8), ValueError, r"expected \(na, nb\)"),
    ],
)
def test_resolution_is_checked(setup, resolution, error, match):
    handle, plane = setup
    with pytest.raises(error, match=match):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=resolution)


def test_adaptive_must_be_a_bool(setup):
    handle, plane = setup
    with pytest.raises(TypeError, match="adaptive"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, adaptive="yes")


@pytest.mark.parametrize(
    ("pair", "error", "match"),
    [
        ((1, 1), ValueError, "two different classes"),
        ((0, 2), ValueError, r"class indices in \[0, 2\)"),
        (1, TypeError, "pair of class indices"),
        ((0.0, 1.0), TypeError, "int class indices"),
    ],
)
def test_target_pair_is_checked(setup, pair, error, match):
    handle, plane = setup
    with pytest.raises(error, match=match):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, target_pair=pair)


def test_coarse_must_be_positive(setup):
    handle, plane = setup
    with pytest.raises(ValueError, match="coarse"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, coarse=0)


def test_guard_must_be_non_negative(setup):
    handle, plane = setup
    with pytest.raises(ValueError, match="guard"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, guard=-1)


def test_batch_size_must_be_positive(setup):
    handle, plane = setup
    with pytest.raises(ValueError, match="batch_size"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, batch_size=0)


def test_progress_must_be_callable(setup):
    handle, plane = setup
    with pytest.raises(TypeError, match="progress"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, progress="bar")


def test_cancel_must_be_a_cancel_token(setup):
    handle, plane = setup
    with pytest.raises(TypeError, match="cancel: expected a geometry.runtime.compute.CancelToken or None, got str"):
        S.evaluate_slice(handle, plane, extent=1.0, resolution=8, cancel="stop")


# -- the figure -----------------------------------------------------------------------------------------------------


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)])


def test_slice_image_uses_the_app_wide_class_colours_and_marks_boundaries():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=3.0, resolution=40, adaptive=False)
    plain = slice_image(res, shade=False, dim_invalid=False, boundaries=False)
    for k in (0, 1):
        assert (plain[res.labels == k] == _hex(class_color(k, 2))).all()
    lines = slice_image(res, shade=False, dim_invalid=False)
    edge = np.zeros(res.shape, dtype=bool)
    edge[:, 1:] |= res.labels[:, 1:] != res.labels[:, :-1]
    assert edge.any() and (lines[edge] == 25).all() and (lines[~edge] == plain[~edge]).all()
    shaded = slice_image(res, dim_invalid=False, boundaries=False).astype(int)
    weak, strong = (
        np.unravel_index(res.probability.argmin(), res.shape),
        np.unravel_index(res.probability.argmax(), res.shape),
    )
    assert shaded[weak].sum() > shaded[strong].sum()  # less confident = paler
    faded = slice_image(res, shade=False, boundaries=False).astype(int)
    sat = faded.max(-1) - faded.min(-1)
    assert (~res.valid).any() and res.valid.any()
    assert sat[~res.valid].mean() < sat[res.valid].mean()  # inputs outside [0, 1] are visibly faded


def _png_pixels(source: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def _polylines(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Split NaN-separated coordinates into polylines (n, 2); the data must end with a NaN."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    assert np.isnan(x[-1]) and (np.isnan(x) == np.isnan(y)).all()
    cuts = np.flatnonzero(np.isnan(x))
    return [np.stack([x[s + 1 : e], y[s + 1 : e]], 1) for s, e in zip(np.r_[-1, cuts[:-1]], cuts, strict=True)]


def _segments(fig) -> np.ndarray:
    """The boundary trace's straight pieces (S, 2, 2): [[x0, y0], [x1, y1]]."""
    trace = next(t for t in fig.data if t.name == "boundaries")
    lines = _polylines(trace.x, trace.y)
    assert all(len(p) >= 2 for p in lines)
    return np.concatenate([np.stack([p[:-1], p[1:]], axis=1) for p in lines])


def test_boundary_lines_run_along_the_pixel_edges_and_merge_collinear_edges():
    a, b = np.linspace(0.0, 3.0, 4), np.linspace(0.0, 1.0, 3)  # pixels 1 x 0.5: edges at -0.5, 0.5, ...
    vertical = np.array([[0, 0, 1, 1]] * 3)
    x, y = boundary_lines(vertical, a, b)
    np.testing.assert_allclose(x, [1.5, 1.5, np.nan])  # one segment over the full height
    np.testing.assert_allclose(y, [-0.25, 1.25, np.nan])
    horizontal = np.array([[0, 0, 0, 0], [2, 2, 2, 2], [2, 2, 2, 2]])
    x, y = boundary_lines(horizontal, a, b)
    np.testing.assert_allclose(x, [-0.5, 3.5, np.nan])
    np.testing.assert_allclose(y, [0.25, 0.25, np.nan])
    corner = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]])  # an L: one polyline of two segments
    (line,) = _polylines(*boundary_lines(corner, a, b))
    assert {tuple(line[0]), tuple(line[-1])} == {(1.5, -0.25), (3.5, 0.75)} and tuple(line[1]) == (1.5, 0.75)
    stairs = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]])  # a staircase: one point per step
    (line,) = _polylines(*boundary_lines(stairs, a, b))
    assert len(line) == 6 and (np.diff(line, axis=0) != 0).sum(axis=1).tolist() == [1] * 5  # 3 up, 2 across
    island = np.zeros((3, 4), dtype=int)
    island[1, 1] = 1  # a closed square around one pixel
    (line,) = _polylines(*boundary_lines(island, a, b))
    assert len(line) == 5 and tuple(line[0]) == tuple(line[-1])
    assert boundary_lines(np.zeros((3, 4), dtype=int), a, b)[0].size == 0


def test_slice_figure_draws_the_boundary_as_lines_on_the_analytic_line_and_not_in_the_image():
    handle, plane, alpha, beta = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=3.0, resolution=60, adaptive=False)
    fig = slice_figure(res, ("zero", "one"), shade=False, dim_invalid=False)
    segs = _segments(fig)
    da, db = res.cell
    horizontal = segs[:, 0, 1] == segs[:, 1, 1]
    vertical = segs[:, 0, 0] == segs[:, 1, 0]
    assert (horizontal ^ vertical).all()  # axis-aligned
    # every edge lies on a pixel edge: half a cell from the grid points
    xs = np.concatenate([segs[vertical, 0, 0], segs[horizontal][:, :, 0].ravel()])
    ys = np.concatenate([segs[horizontal, 0, 1], segs[vertical][:, :, 1].ravel()])
    np.testing.assert_allclose(np.abs((xs - res.a[0]) / da - np.round((xs - res.a[0]) / da)), 0.5, atol=1e-4)
    np.testing.assert_allclose(np.abs((ys - res.b[0]) / db - np.round((ys - res.b[0]) / db)), 0.5, atol=1e-4)
    # every segment end lies within one cell of the analytic line alpha a + beta b + 0.7 = 0
    ends = segs.reshape(-1, 2)
    dist = np.abs(alpha * ends[:, 0] + beta * ends[:, 1] + 0.7) / np.hypot(alpha, beta)
    assert dist.max() <= np.hypot(da, db)
    # their total length covers the staircase: |da| per column change plus |db| per row change
    length = np.abs(segs[:, 1] - segs[:, 0]).sum()
    changes = (res.labels[:, 1:] != res.labels[:, :-1]).sum() * db + (res.labels[1:] != res.labels[:-1]).sum() * da
    assert length == pytest.approx(changes, rel=1e-5)
    assert len(segs) < (res.labels[:, 1:] != res.labels[:, :-1]).sum() + (res.labels[1:] != res.labels[:-1]).sum()
    # the image holds only the two class colours: no dark boundary pixels
    pixels = _png_pixels(fig.layout.images[0].source).reshape(-1, 3)
    assert {tuple(p) for p in np.unique(pixels, axis=0)} == {tuple(_hex(class_color(k, 2))) for k in (0, 1)}


def test_a_speckled_map_falls_back_to_boundary_pixels():
    labels = (np.random.default_rng(0).random((300, 300)) < 0.5).astype(np.int16)
    res = S.SliceResult(
        a=np.linspace(-1, 1, 300),
        b=np.linspace(-1, 1, 300),
        labels=labels,
        probability=np.ones((300, 300), np.float32),
        margin=np.ones((300, 300), np.float32),
        pair_margin=None,
        target_pair=None,
        valid=np.ones((300, 300), bool),
        evaluated=np.ones((300, 300), bool),
        evaluations=90000,
        adaptive=False,
        num_classes=2,
        extent=(-1.0, 1.0, -1.0, 1.0),
        seconds=0.0,
    )
    fig = slice_figure(res, ("zero", "one"), shade=False, dim_invalid=False)
    assert "boundaries" not in [t.name for t in fig.data]
    pixels = _png_pixels(fig.layout.images[0].source)
    assert (pixels == 25).all(axis=-1).mean() > 0.3  # dark edge pixels instead of 100,000 segments


def test_slice_figure_has_the_regions_hover_grid_anchors_and_legend():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=3.0, resolution=50, adaptive=False, target_pair=(1, 0))
    fig = slice_figure(
        res, ("zero", "one"), anchors={"far": (1.0, 1.0), "x0": (0.0, 0.0)}, selected=(0.5, -0.5), hover_grid=10
    )
    symbols = {t.name: t.marker.symbol for t in fig.data if t.name in ("x0", "far")}
    assert symbols == {"x0": "star", "far": "diamond"}  # by role, not by order
    assert len(fig.layout.images) == 1 and fig.layout.images[0].source.startswith("data:image/png;base64,")
    grid = next(t for t in fig.data if t.name == "grid")
    custom = np.asarray(grid.customdata, dtype=object)
    assert custom.shape == (100, 6)
    for a, b, name, prob, _, _ in custom:
        row, col = res.index_of(a, b)
        assert name == ("zero", "one")[res.labels[row, col]]
        assert prob == pytest.approx(res.probability[row, col], abs=1e-4)
    assert "class" in grid.hovertemplate and "margin" in grid.hovertemplate
    names = [t.name for t in fig.data]
    assert "x0" in names and "far" in names and "selected point" in names
    assert any(n.startswith("zero (") for n in names) and any(n.startswith("one (") for n in names)
    assert any(t.type == "contour" for t in fig.data)  # the f(one) = f(zero) line
    assert fig.layout.xaxis.title.text.startswith("a: along u (L2")


def test_many_classes_get_distinct_colours_for_the_classes_in_view():
    labels = np.arange(30).repeat(3).reshape(9, 10) + 70  # 30 of 100 classes present
    colors = slice_colors(labels, 100)
    assert set(colors) == set(range(70, 100))
    assert len(set(colors.values())) == 30


def _result_of(labels: np.ndarray, num_classes: int) -> S.SliceResult:
    nb, na = labels.shape
    ones = np.ones(labels.shape, np.float32)
    return S.SliceResult(
        a=np.linspace(-1, 1, na),
        b=np.linspace(-1, 1, nb),
        labels=labels.astype(np.int16),
        probability=ones,
        margin=ones,
        pair_margin=None,
        target_pair=None,
        valid=ones.astype(bool),
        evaluated=ones.astype(bool),
        evaluations=labels.size,
        adaptive=False,
        num_classes=num_classes,
        extent=(-1.0, 1.0, -1.0, 1.0),
        seconds=0.0,
    )


def _legend_colors(fig) -> dict[str, str]:
    return {t.name.split(" (")[0]: t.marker.color for t in fig.data if t.legendgroup == "classes"}


def test_two_figures_with_many_classes_colour_each_class_alike():
    k = 40
    names = tuple(f"c{i}" for i in range(k))
    first = np.repeat(np.arange(30), np.arange(1, 31))[:400]  # class 29 largest here ...
    second = np.repeat(np.arange(29, -1, -1), np.arange(1, 31))[:400]  # ... and class 0 here
    r1, r2 = _result_of(first[:400].reshape(20, 20), k), _result_of(second[:400].reshape(20, 20), k)
    alone1, alone2 = _legend_colors(slice_figure(r1, names)), _legend_colors(slice_figure(r2, names))
    assert any(alone1[n] != alone2[n] for n in alone1.keys() & alone2.keys())  # each figure for itself: they differ
    colors = slice_colors([r1.labels, r2.labels], k)
    f1, f2 = slice_figure(r1, names, colors=colors), slice_figure(r2, names, colors=colors)
    c1, c2 = _legend_colors(f1), _legend_colors(f2)
    assert c1.keys() & c2.keys() and all(c1[n] == c2[n] for n in c1.keys() & c2.keys())
    present = sorted(set(np.unique(r1.labels)) | set(np.unique(r2.labels)))
    assert len({colors[c] for c in present}) == len(present)  # distinct colours for the classes in view
    # the images use exactly these colours
    for res, fig in ((r1, f1), (r2, f2)):
        pixels = _png_pixels(fig.layout.images[0].source)[::-1]  # the image's top row is the largest b
        for c in np.unique(res.labels):
            assert (pixels[res.labels == c] == _hex(colors[int(c)])).all()


def test_slice_colors_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        slice_colors([np.zeros((2, 2), int), np.full((2, 2), 3)], 3)


def test_hover_marks_interpolated_and_out_of_range_points():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=3.0, resolution=65, adaptive=True)
    fig = slice_figure(res, ("zero", "one"), hover_grid=65)
    seen = 0
    for name, evaluated in (("grid", True), ("grid (interpolated)", False)):
        trace = next(t for t in fig.data if t.name == name)
        assert ("interpolated" in trace.hovertemplate) == (not evaluated)
        for a, b, label, prob, _, note in np.asarray(trace.customdata, dtype=object):
            row, col = res.index_of(a, b)
            assert res.evaluated[row, col] == evaluated
            assert label == ("zero", "one")[res.labels[row, col]]
            assert prob == pytest.approx(res.probability[row, col], abs=1e-4)
            assert ("outside the input range" in note) == (not res.valid[row, col])
            seen += 1
    assert seen == 65 * 65
    dense = S.evaluate_slice(handle, plane, extent=3.0, resolution=65, adaptive=False)
    assert "grid (interpolated)" not in [t.name for t in slice_figure(dense, ("zero", "one")).data]


def test_slice_figure_rejects_the_wrong_number_of_class_names():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=1.0, resolution=8)
    with pytest.raises(ValueError, match="expected 2 names"):
        slice_figure(res, ("only one",))


@pytest.mark.parametrize("hover_grid", [1, 10.0, True])
def test_slice_figure_rejects_a_bad_hover_grid(hover_grid):
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=1.0, resolution=8)
    with pytest.raises(ValueError, match=f"hover_grid: expected an int >= 2, got {hover_grid!r}"):
        slice_figure(res, ("zero", "one"), hover_grid=hover_grid)


def test_slice_figure_needs_a_colour_for_every_class_in_view():
    handle, plane, _, _ = _linear_slice_setup()
    res = S.evaluate_slice(handle, plane, extent=3.0, resolution=16)
    with pytest.raises(ValueError, match=r"missing \[1\]"):
        slice_figure(res, ("zero", "one"), colors={0: "#000000"})


def test_slice_options_normalise_so_equal_slices_share_one_cache_key():
    handle, plane, _, _ = _linear_slice_setup()
    square = S.SliceOptions(extent=2, resolution=65)
    assert square.extent == (-2.0, 2.0, -2.0, 2.0) and square.resolution == (65, 65)
    assert square == S.SliceOptions(extent=(-2, 2, -2, 2), resolution=(65, 65), adaptive=True, coarse=32)
    key = S.cached_slice.key(handle, plane, extent=2.0, resolution=65)
    assert key == S.cached_slice.key(handle, plane, options=square)
    assert key != S.cached_slice.key(handle, plane, extent=2.0, resolution=65, adaptive=False)
    with pytest.raises(ValueError, match="two different classes"):
        S.SliceOptions(extent=1, resolution=8, target_pair=(1, 1))

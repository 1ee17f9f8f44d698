"""Robustness sweeps: the transforms move pixels where they should, the identity keeps the model's own prediction,
and shapes sweeps of a model with a known answer (an area detector) give that answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import geometry
from geometry.data.shapes import render_shapes, sample_factors, with_factor
from geometry.inspection.robustness import (
    ROTATION_SIZES,
    cached_image_sweep,
    cached_shapes_rotation_sweeps,
    cached_shapes_sweep,
    default_values,
    image_sweep,
    is_shapes_model,
    logit_margin,
    shapes_rotation_sweeps,
    shapes_sweep,
    transform_images,
)


def _dot(size: int = 9, row: int = 4, col: int = 7) -> torch.Tensor:
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row, col] = 1.0
    return x


@pytest.mark.parametrize(
    ("kind", "value"), [("scale", 1.0), ("shift", (0.0, 0.0)), ("rotate", 0.0), ("rotate", 360.0), ("resolution", 1.0)]
)
def test_the_identity_transform_returns_the_image_exactly(kind, value):
    x = torch.rand(3, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    out = transform_images(x, kind, value)
    assert torch.equal(out, x) and out is not x


def test_rotation_is_counter_clockwise_on_screen_and_shift_moves_right_and_down():
    up = transform_images(_dot(), "rotate", 90.0, fill=0.0)  # right of centre -> above it
    assert (up[0, 0] > 0.99).nonzero().tolist() == [[1, 4]]
    left = transform_images(_dot(), "rotate", 180.0, fill=0.0)
    assert (left[0, 0] > 0.99).nonzero().tolist() == [[4, 1]]
    down = transform_images(_dot(), "shift", (0.0, 2 / 9), fill=0.0)  # exactly two pixels
    assert (down[0, 0] > 0.99).nonzero().tolist() == [[6, 7]] and float(down.sum()) == pytest.approx(1.0)
    right = transform_images(_dot(col=2), "shift", (3 / 9, 0.0), fill=0.0)
    assert (right[0, 0] > 0.99).nonzero().tolist() == [[4, 5]]
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    back = x
    for _ in range(4):
        back = transform_images(back, "rotate", 90.0)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)


def test_scaling_fills_with_the_border_colour_and_keeps_the_centre():
    x = torch.full((1, 3, 8, 8), 0.3)
    x[..., 3:5, 3:5] = 0.9  # a bright centre square on a 0.3 background
    small = transform_images(x, "scale", 0.5)
    assert float(small[..., 0, :].sub(0.3).abs().max()) < 1e-6  # the border stays the background colour
    assert float(small.mean()) < float(x.mean())  # the bright square shrank
    assert float(small[..., 3:5, 3:5].min()) > 0.4 and float(small[..., :3, :].max()) < 0.3 + 1e-6  # at the centre
    big = transform_images(x, "scale", 2.0)
    assert float(big.mean()) > float(x.mean())  # zoomed in on the square
    grey = transform_images(x, "scale", 0.5, fill=1.0)
    assert float(grey[..., 0, 0].min()) == pytest.approx(1.0)


def test_resolution_keeps_constants_and_loses_detail():
    const = torch.full((1, 1, 8, 8), 0.42)
    for r in (0.25, 0.5, 1.5):
        torch.testing.assert_close(transform_images(const, "resolution", r), const, atol=1e-6, rtol=0)
    checker = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2).float()[None, None]
    low = transform_images(checker, "resolution", 0.5)
    assert float(low.std()) < 0.1 * float(checker.std())  # the finest pattern is gone
    assert float(low.mean()) == pytest.approx(0.5, abs=1e-5)


def test_logit_margin():
    logits = torch.tensor([[2.0, 5.0, 1.0], [0.0, -1.0, 3.0]])
    torch.testing.assert_close(logit_margin(logits, torch.tensor([1, 0])), torch.tensor([3.0, -3.0]))


IDENTITY = {"scale": 1.0, "shift": (0.0, 0.0), "rotate": 0.0, "resolution": 1.0}
FEW = {
    "scale": [0.6, 1.0, 1.3],
    "shift": [(0.2, 0.0), (0.0, 0.0), (-0.1, 0.2)],
    "rotate": [-40.0, 0.0, 25.0],
    "resolution": [0.5, 1.0, 2.0],
}


@pytest.mark.parametrize("kind", list(IDENTITY))
def test_default_sweeps_include_the_identity(kind):
    values = default_values(kind)
    assert sum(np.allclose(v, IDENTITY[kind]) for v in values.reshape(len(values), -1)) == 1


def test_sweeps_return_the_models_own_prediction_at_the_identity():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits").subset(slice(0, 12))
    logits = handle.logits(data.images)
    own = logits.argmax(1)
    for kind, values in FEW.items():
        res = image_sweep(handle, data.images, kind, values, labels=data.labels)
        i = 1  # the identity
        assert res.kept[i] == 1.0
        np.testing.assert_array_equal(res.predictions[i], own.numpy())
        np.testing.assert_array_equal(res.reference, own.numpy())
        assert res.margin[i] == pytest.approx(float(logit_margin(logits, own).mean()), rel=1e-5)
        assert res.accuracy[i] == pytest.approx(handle.accuracy(data.images, data.labels))
        assert res.reference_kind == "prediction" and len(res.kept) == 3 and res.grid_shape == ()
        # every other value is scored on the transformed images themselves
        other = transform_images(data.images, kind, values[0])
        np.testing.assert_array_equal(res.predictions[0], handle.predict(other).numpy())
    shift = image_sweep(handle, data.images[:4], "shift", grid=3)
    assert shift.grid_shape == (3, 3) and shift.heatmap("kept")[1, 1] == 1.0  # the centre is the identity


class AreaDetector(nn.Module):
    """A 'shapes model' that knows only one thing: class 0 (circle) when more than 10% of the pixels differ from the
    background (the corner colour most like the other corners), i.e. the visible object is large; else 1 (square)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = torch.stack([x[..., 0, 0], x[..., 0, -1], x[..., -1, 0], x[..., -1, -1]], dim=1)  # (N, 4, C)
        spread = torch.cdist(corners, corners).sum(dim=2)  # a corner covered by the object is the odd one out
        background = corners[torch.arange(len(x)), spread.argmin(dim=1)][..., None, None]
        frac = ((x - background).abs().amax(dim=1) > 0.15).float().mean(dim=(1, 2))
        out = torch.zeros(len(x), 6)
        out[:, 0] = 10 * (frac - 0.1)
        out[:, 1] = -10 * (frac - 0.1)
        return out


def _area_handle(size: int = 24) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(
        AreaDetector(),
        input_shape=(3, size, size),
        device="cpu",
        class_names=["circle", "square", "triangle", "star", "cross", "ring"],
    )


def test_a_shapes_sweep_of_an_area_detector_gives_the_known_answer():
    handle = _area_handle()
    assert is_shapes_model(handle)
    base = sample_factors(12, seed=0, shapes=["circle"], backgrounds=["plain"], area=0.15, center=(0.5, 0.5))
    size = shapes_sweep(handle, "area", [0.02, 0.05, 0.2, 0.4], base=base)
    np.testing.assert_array_equal(size.accuracy, [0.0, 0.0, 1.0, 1.0])
    assert size.reference_kind == "label" and (size.labels == 0).all()
    assert size.margin[0] < 0 < size.margin[-1]
    pos = shapes_sweep(handle, "position", base=base, grid=3)  # centres at 0, 0.5, 1 in x and y
    grid = pos.heatmap("accuracy")
    assert grid[1, 1] == 1.0  # centred: all of the object is visible
    assert grid[0, 0] == grid[0, 2] == grid[2, 0] == grid[2, 2] == 0.0  # a corner shows a quarter of it
    rot = shapes_sweep(handle, "rotation", base=base)
    assert (rot.accuracy == 1.0).all()  # a circle's area does not depend on its rotation
    np.testing.assert_allclose(rot.values, np.arange(1, 342, 20))


def test_rotation_sweeps_at_several_sizes_predict_like_the_model_on_the_unrotated_images():
    handle = geometry.load_model("shapes-resnet-silu", device="cpu")
    base = with_factor(sample_factors(12, seed=1, center=(0.5, 0.5)), rotation=0.0)  # upright shapes
    sweeps = shapes_rotation_sweeps(handle, [0.0, 45.0, 360.0], base=base)
    assert list(sweeps) == list(ROTATION_SIZES) == [0.1, 0.2, 0.4]
    labels = np.array([f.shape for f in base])
    for area, sweep in sweeps.items():
        unrotated = render_shapes(with_factor(base, area=area), size=32)
        logits = handle.logits(unrotated)
        own = logits.argmax(1).numpy()
        np.testing.assert_array_equal(sweep.predictions[0], own)  # angle 0: the images themselves
        np.testing.assert_array_equal(sweep.predictions[2], own)  # a full turn
        assert sweep.accuracy[0] == pytest.approx(float((own == labels).mean()))
        assert sweep.margin[0] == pytest.approx(float(logit_margin(logits, torch.from_numpy(labels)).mean()), rel=1e-5)
        # and 45 degrees is scored on the rotated shapes of this size
        turned = render_shapes(with_factor(base, area=area, rotation=45.0), size=32)
        np.testing.assert_array_equal(sweep.predictions[1], handle.predict(turned).numpy())


def test_rotation_sweeps_of_an_area_detector_differ_by_size_as_known():
    handle = _area_handle()
    base = sample_factors(12, seed=0, shapes=["circle"], backgrounds=["plain"], area=0.15, center=(0.5, 0.5))
    sweeps = shapes_rotation_sweeps(handle, sizes=(0.05, 0.3), base=base)
    assert (sweeps[0.05].accuracy == 0.0).all()  # too small at every angle
    assert (sweeps[0.3].accuracy == 1.0).all()  # large enough at every angle
    np.testing.assert_allclose(sweeps[0.3].values, np.arange(1, 342, 20))
    with pytest.raises(ValueError, match=r"distinct areas in \[0.01, 1\]"):
        shapes_rotation_sweeps(handle, sizes=(0.2, 2.0), n=6)


def test_cached_rotation_sweeps_equal_the_direct_ones(tmp_path):
    cache = geometry.DiskCache(tmp_path / "c")
    handle = _area_handle(16)
    direct = shapes_rotation_sweeps(handle, [10.0, 50.0], sizes=(0.08, 0.3), n=6, seed=2)
    for _ in range(2):
        cached = cached_shapes_rotation_sweeps(handle, [10.0, 50.0], sizes=(0.08, 0.3), n=6, seed=2, cache=cache)
        assert list(cached) == [0.08, 0.3]
        for area in (0.08, 0.3):
            np.testing.assert_array_equal(cached[area].predictions, direct[area].predictions)
            np.testing.assert_allclose(cached[area].margin, direct[area].margin)
    assert len(cache) == 2  # one entry per size


def test_shapes_sweeps_need_a_shapes_model_and_good_values():
    digits = geometry.load_model("digits-cnn-silu", device="cpu")
    with pytest.raises(ValueError, match="trained on shapes"):
        shapes_sweep(digits, "area")
    handle = _area_handle(16)
    with pytest.raises(ValueError, match=r"areas in \[0.01, 1\]"):
        shapes_sweep(handle, "area", [0.5, 2.0], n=6)
    with pytest.raises(ValueError, match="shapes factor"):
        shapes_sweep(handle, "colour", n=6)
    with pytest.raises(ValueError, match=r"\(V, 2\)"):
        image_sweep(digits, torch.rand(2, 1, 8, 8), "shift", [0.1, 0.2])
    with pytest.raises(ValueError, match="positive scale"):
        image_sweep(digits, torch.rand(2, 1, 8, 8), "scale", [0.5, -1.0])
    with pytest.raises(ValueError, match="image inputs"):
        image_sweep(geometry.load_model("moons-mlp", device="cpu"), torch.zeros(2, 2), "scale")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        image_sweep(digits, torch.full((1, 1, 8, 8), 2.0), "scale")
    with pytest.raises(ValueError, match="a transform among"):
        transform_images(torch.rand(1, 1, 8, 8), "blur", 1.0)
    with pytest.raises(ValueError, match="fill"):
        transform_images(torch.rand(1, 1, 8, 8), "scale", 0.5, fill="mean")


def test_cached_sweeps_equal_the_direct_ones(tmp_path):
    cache = geometry.DiskCache(tmp_path / "c")
    handle = geometry.load_model("digits-mlp-relu", device="cpu")
    x = geometry.load_dataset("digits").images[:6]
    direct = image_sweep(handle, x, "rotate", [-30.0, 0.0, 30.0])
    for _ in range(2):
        res = cached_image_sweep(handle, x, "rotate", [-30.0, 0.0, 30.0], cache=cache)
        np.testing.assert_array_equal(res.predictions, direct.predictions)
        np.testing.assert_allclose(res.margin, direct.margin)
        assert math.isnan(res.accuracy[0])  # no labels given
    shapes = _area_handle(16)
    first = cached_shapes_sweep(shapes, "area", [0.05, 0.3], n=6, cache=cache)
    second = cached_shapes_sweep(shapes, "area", [0.05, 0.3], n=6, cache=cache)
    np.testing.assert_array_equal(first.predictions, second.predictions)
    assert len(cache) == 2

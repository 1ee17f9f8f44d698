"""Morphing: the pixel path and the feature path, on models whose class changes are known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import geometry
from geometry.features.extract import Head, find_head
from geometry.features.morph import MorphResult, cached_morph, envelope_breakpoints, morph
from geometry.runtime.cache import DiskCache
from geometry.runtime.compute import Cancelled, CancelToken


class SineFeatures(nn.Module):
    """x (2,) -> z = (sin 3 x1, cos 3 x1) -> logits (z1, -z1): class 0 iff sin(3 x1) > 0."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.stack([torch.sin(3 * x[:, 0]), torch.cos(3 * x[:, 0])], dim=1))


def _handle(model: nn.Module, d: int = 2) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(model, input_shape=(d,), input_range=None, device="cpu")


def test_envelope_breakpoints_match_a_dense_brute_force():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 200_001)
    for _ in range(20):
        la, lb = rng.normal(size=10) * 3, rng.normal(size=10) * 3
        breaks, classes = envelope_breakpoints(la, lb)
        dense = ((1 - t)[:, None] * la + t[:, None] * lb).argmax(axis=1)
        change = np.flatnonzero(dense[1:] != dense[:-1])
        np.testing.assert_array_equal(classes, np.concatenate([dense[:1], dense[change + 1]]))
        np.testing.assert_allclose(breaks, t[change], atol=1e-5)
        assert len(set(classes.tolist())) == len(classes)  # convex regions: each class at most once


def test_envelope_breakpoints_by_hand():
    # l(t) = (3t, 1, 2 - 2t): class 2 leads until 3t = 2 - 2t at t = 2/5 (value 1.2 > 1), then class 0;
    # class 1 never leads.
    breaks, classes = envelope_breakpoints([0.0, 1.0, 2.0], [3.0, 1.0, 0.0])
    np.testing.assert_allclose(breaks, [0.4])
    np.testing.assert_array_equal(classes, [2, 0])
    with pytest.raises(ValueError, match="two logit vectors"):
        envelope_breakpoints([1.0], [2.0])


def test_pixel_path_changes_class_where_the_sine_changes_sign_while_the_feature_path_does_not():
    handle = _handle(SineFeatures())
    xa, xb = torch.tensor([0.1, 0.0]), torch.tensor([2.5, 0.0])
    r = morph(handle, xa, xb, steps=49, bisection_steps=20)
    # sin(3 x1) < 0 for x1 in (pi/3, 2pi/3): class 0 -> 1 -> 0 along the pixel path
    np.testing.assert_array_equal(r.pixel_classes, [0, 1, 0])
    expected = [(math.pi / 3 - 0.1) / 2.4, (2 * math.pi / 3 - 0.1) / 2.4]
    np.testing.assert_allclose(r.pixel_breaks, expected, atol=1e-5)
    # features at the ends: z1 = sin(0.3) > 0 and sin(7.5) > 0, so the straight feature path stays in class 0
    np.testing.assert_array_equal(r.feature_classes, [0])
    assert len(r.feature_breaks) == 0 and (r.feature_pred == 0).all()
    assert r.pixel_distance == pytest.approx(2.4)
    assert r.pixel_path_length > r.feature_distance  # the pixel path's image in feature space is an arc
    assert r.pixel_path_length == pytest.approx(3 * 2.4, rel=0.01)  # (sin 3x, cos 3x) has speed 3


def test_for_a_linear_model_both_paths_agree():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    torch.manual_seed(0)
    handle = geometry.ModelHandle.from_module(lin, input_shape=(1, 2, 3), device="cpu")
    xa, xb = torch.rand(1, 2, 3), torch.rand(1, 2, 3) * 3 - 1
    r = morph(handle, xa, xb, steps=65)
    np.testing.assert_array_equal(r.pixel_pred, r.feature_pred)
    np.testing.assert_array_equal(r.pixel_classes, r.feature_classes)
    np.testing.assert_allclose(r.pixel_breaks, r.feature_breaks, atol=1e-3)
    np.testing.assert_allclose(r.pixel_logits, r.feature_logits, atol=1e-4)
    assert r.pixel_path_length == pytest.approx(r.feature_distance, rel=1e-5)


def test_morph_on_the_builtin_digits_model_matches_its_predictions():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits", "test")
    r = morph(handle, data.images[0], data.images[1], steps=17)
    t = torch.from_numpy(r.t).float().view(-1, 1, 1, 1)
    path = (1 - t) * data.images[0] + t * data.images[1]
    np.testing.assert_array_equal(r.pixel_pred, handle.predict(path).numpy())
    assert r.feature_classes[0] == r.pixel_pred[0] and r.feature_classes[-1] == r.pixel_pred[-1]


class TanhThenHead(nn.Module):
    """x (3,) -> body: tanh(A x) (3,) -> head (2,). Features of equal dimension at two places."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(4)
        self.body = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)
        self.calls = 0
        with torch.no_grad():
            for prm in self.parameters():
                prm.copy_(torch.randn(prm.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(torch.tanh(self.body(x)))


def test_a_head_at_another_layer_reads_the_features_at_that_layer():
    """A head on the input of ``body`` (whose input is x itself): the feature path is the straight line between
    the inputs, mapped by that head; not the default features tanh(A x), which have the same dimension."""
    model = TanhThenHead()
    handle = _handle(model, d=3)
    w, b = np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 0.0]]), np.array([0.1, -0.2])
    head = Head(w, b, layer="network.body", position="input")
    xa, xb = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([-2.0, 1.5, 0.5])
    r = morph(handle, xa, xb, steps=11, head=head)
    t = np.linspace(0, 1, 11)[:, None]
    line = (1 - t) * xa.double().numpy() + t * xb.double().numpy()
    np.testing.assert_allclose(r.feature_logits, line @ w.T + b, atol=1e-6)
    np.testing.assert_allclose(r.pixel_features, line, atol=1e-6)
    assert r.feature_distance == pytest.approx(float(torch.linalg.vector_norm(xb - xa)), rel=1e-6)
    # a head read at the *output* of a layer (as FeatureSet.head gives for a named layer) reads that output
    a, a0 = model.body.weight.detach().double().numpy(), model.body.bias.detach().double().numpy()
    pre = Head(np.eye(2, 3), np.zeros(2), layer="network.body", position="output")
    r2 = morph(handle, xa, xb, steps=5, head=pre)
    ends = np.stack([xa, xb]).astype(np.float64)
    np.testing.assert_allclose(r2.pixel_features[[0, -1]], ends @ a.T + a0, atol=1e-6)
    # and the default head reads the default features, tanh(A x + a)
    r3 = morph(handle, xa, xb, steps=5)
    np.testing.assert_allclose(r3.pixel_features[[0, -1]], np.tanh(ends @ a.T + a0), atol=1e-6)
    assert find_head(handle).layer == "network.head"


def test_cached_morph_is_computed_once_and_then_read_from_the_cache(tmp_path):
    model = TanhThenHead()
    handle = _handle(model, d=3)
    cache = DiskCache(tmp_path)
    xa, xb = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([-2.0, 1.5, 0.5])
    assert cached_morph(handle, xa, xb, steps=9, cache=cache, cached_only=True) is None
    seen: list[float] = []
    first = cached_morph(handle, xa, xb, steps=9, cache=cache, progress=lambda f, _: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    calls = model.calls
    again = cached_morph(handle, xa, xb, steps=9, cache=cache)
    assert model.calls == calls  # not recomputed
    assert isinstance(again, MorphResult)
    direct = morph(handle, xa, xb, steps=9)
    for name in ("t", "pixel_pred", "feature_pred", "feature_breaks", "pixel_breaks", "pixel_logits"):
        np.testing.assert_allclose(getattr(again, name), getattr(direct, name), atol=1e-6)
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.pixel_distance == pytest.approx(direct.pixel_distance)
    assert cached_morph(handle, xa, xb, steps=11, cache=cache, cached_only=True) is None  # keyed by steps
    assert cached_morph(handle, xb, xa, steps=9, cache=cache, cached_only=True) is None  # ... and by the inputs
    other = Head(np.eye(2, 3), np.zeros(2), layer="network.body", position="input")
    assert cached_morph(handle, xa, xb, steps=9, head=other, cache=cache, cached_only=True) is None  # and the head


def test_a_cancelled_morph_raises_and_caches_nothing(tmp_path):
    handle = _handle(SineFeatures())
    cache = DiskCache(tmp_path)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        cached_morph(handle, torch.tensor([0.1, 0.0]), torch.tensor([2.5, 0.0]), cancel=token, cache=cache)
    assert len(cache) == 0


def test_bad_arguments_are_refused():
    handle = _handle(SineFeatures())
    with pytest.raises(ValueError, match=r"steps as an int in \[2, 10000\]"):
        morph(handle, torch.zeros(2), torch.ones(2), steps=1)
    with pytest.raises(ValueError, match=r"bisection_steps as an int in \[0, 60\]"):
        morph(handle, torch.zeros(2), torch.ones(2), bisection_steps=-1)
    with pytest.raises(TypeError, match="expected head as a geometry.features.extract.Head"):
        morph(handle, torch.zeros(2), torch.ones(2), head=np.eye(2))
    with pytest.raises(ValueError, match="expected a layer name"):
        morph(handle, torch.zeros(2), torch.ones(2), head=Head(np.eye(2), np.zeros(2), layer="nowhere"))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        morph(handle, torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="one input each"):
        morph(handle, torch.zeros(2, 2), torch.ones(2))

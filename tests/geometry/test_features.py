"""Feature extraction and the affine head, checked on analytic models with known weights."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import geometry
from geometry.data.datasets import Dataset
from geometry.features.extract import (
    FeatureSet,
    Head,
    NoAffineHeadError,
    _forward_capture,
    candidate_layers,
    compute_features,
    extract_features,
    find_head,
    hook_lock,
    sample_indices,
)
from geometry.runtime.cache import DiskCache


class TwoLayer(nn.Module):
    """x (4,) -> tanh(A x + a) (3,) -> head (K,), with fixed, known weights."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.body = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
        self.head = nn.Linear(3, k)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(self.body(x))


def _reference(model: TwoLayer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 features and logits computed by hand from the weights."""
    a = model.body[0].weight.detach().double().numpy()
    b = model.body[0].bias.detach().double().numpy()
    z = np.tanh(x @ a.T + b)
    w = model.head.weight.detach().double().numpy()
    c = model.head.bias.detach().double().numpy()
    return z, z @ w.T + c


def _toy_handle(model: nn.Module, d: int = 4) -> geometry.ModelHandle:
    return geometry.ModelHandle.from_module(model, input_shape=(d,), input_range=None, device="cpu", name="toy")


def _toy_dataset(n: int = 40, d: int = 4, k: int = 3, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(
        "toy",
        "test",
        torch.randn(n, d, generator=g),
        torch.randint(0, k, (n,), generator=g),
        tuple(f"c{i}" for i in range(k)),
        None,
    )


def test_find_head_returns_the_final_linear_layers_weights_in_float64():
    model = TwoLayer()
    head = find_head(_toy_handle(model))
    assert head.layer == "network.head"
    assert head.weight.dtype == np.float64 and head.weight.shape == (3, 3)
    np.testing.assert_array_equal(head.weight, model.head.weight.detach().double().numpy())
    np.testing.assert_array_equal(head.bias, model.head.bias.detach().double().numpy())


def test_features_and_logits_match_a_float64_reference():
    model = TwoLayer()
    handle = _toy_handle(model)
    x = torch.randn(37, 4, generator=torch.Generator().manual_seed(5))
    feats, logits = extract_features(handle, x, batch_size=8)
    z_ref, l_ref = _reference(model, x.double().numpy())
    np.testing.assert_allclose(feats.numpy(), z_ref, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), l_ref, atol=1e-5)
    np.testing.assert_allclose(find_head(handle).logits(feats), logits.numpy(), atol=1e-5)


def test_the_head_is_found_by_execution_order_not_registration_order():
    class Reordered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.last = nn.Linear(5, 3)  # registered first, called last
            self.first = nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.last(torch.relu(self.first(x)))

    model = Reordered()
    head = find_head(_toy_handle(model))
    assert head.layer == "network.last"
    np.testing.assert_array_equal(head.weight, model.last.weight.detach().double().numpy())


def test_models_without_an_affine_head_say_so():
    class Scaled(nn.Module):  # an operation after the last linear layer
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.head(x))

    class NoLinear(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x.sum(1), -x.sum(1)], dim=1)

    with pytest.raises(NoAffineHeadError, match="not its final operation"):
        find_head(_toy_handle(Scaled()))
    with pytest.raises(NoAffineHeadError, match="no nn.Linear"):
        find_head(_toy_handle(NoLinear()))
    with pytest.raises(NoAffineHeadError, match="no nn.Linear"):
        compute_features(_toy_handle(NoLinear()), _toy_dataset())


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_models_are_refused_with_a_reason():
    handle = geometry.ModelHandle.from_module(
        torch.jit.script(TwoLayer()), input_shape=(4,), input_range=None, device="cpu"
    )
    with pytest.raises(NoAffineHeadError, match="TorchScript"):
        find_head(handle)


class Boom(Exception):
    pass


def test_hooks_are_removed_even_when_the_model_raises(tmp_path):
    class Exploding(TwoLayer):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = super().forward(x)
            if x.shape[0] > 4:  # the 4-row probe that finds the head passes, the extraction's batches explode
                raise Boom("the model failed")
            return out

    model = Exploding()
    handle = _toy_handle(model)
    cache = DiskCache(tmp_path / "cache")
    with pytest.raises(Boom):
        extract_features(handle, torch.randn(20, 4), batch_size=8)
    with pytest.raises(Boom):
        compute_features(handle, _toy_dataset(), layer="body.0", cache=cache)
    _assert_no_hooks(handle)
    assert len(cache) == 0  # nothing half-written


def _assert_no_hooks(handle: geometry.ModelHandle) -> None:
    for m in handle.module.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


class Failing(TwoLayer):
    """TwoLayer that raises after its body ran (so hooks on body.* have fired), once ``fail`` is set."""

    fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.fail:
            raise Boom("the model failed")
        return out


def _failing_handle() -> geometry.ModelHandle:
    model = Failing()
    handle = _toy_handle(model)  # (the handle runs the model once to learn its outputs)
    model.fail = True
    return handle


def test_find_head_removes_its_hooks_when_the_model_raises():
    handle = _failing_handle()
    with pytest.raises(Boom, match="the model failed"):
        find_head(handle)
    _assert_no_hooks(handle)


@pytest.mark.parametrize("position", ["input", "output"])
def test_forward_capture_removes_its_hook_when_the_model_raises(position):
    handle = _failing_handle()
    with pytest.raises(Boom, match="the model failed"):
        _forward_capture(handle, torch.randn(3, 4), "body.0", position)
    _assert_no_hooks(handle)


class Slow(TwoLayer):
    """TwoLayer that sleeps between its layers, so that forward passes of several threads interleave."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        time.sleep(0.002)
        return self.head(z)


def test_concurrent_extractions_on_a_shared_model_equal_single_threaded_ones():
    """Two sessions extract features of the same model object at once while a third runs plain forward passes
    (as ``predict`` does): no forward leaks into another's captured features."""
    model = Slow()
    handle = _toy_handle(model)
    gen = torch.Generator().manual_seed(11)
    xs = [torch.randn(48, 4, generator=gen) for _ in range(2)]
    layers = [None, "body"]  # the head's input (a pre-hook on head) and the output of body (a forward hook)
    start = threading.Barrier(3)
    results: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def extract(i: int) -> None:
        try:
            start.wait()
            results[i] = extract_features(handle, xs[i], layer=layers[i], batch_size=4)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def predict() -> None:
        start.wait()
        with torch.inference_mode():
            while not stop.is_set():
                handle.module(torch.randn(4, 4, generator=torch.Generator().manual_seed(99)))

    threads = [threading.Thread(target=extract, args=(i,)) for i in range(2)] + [threading.Thread(target=predict)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join(timeout=120)
    stop.set()
    threads[2].join(timeout=60)
    assert not errors, errors
    for i in range(2):
        z_ref, l_ref = _reference(model, xs[i].double().numpy())
        feats, logits = results[i]
        np.testing.assert_allclose(feats.numpy(), z_ref, atol=1e-5)
        np.testing.assert_allclose(logits.numpy(), l_ref, atol=1e-5)
    _assert_no_hooks(handle)


def test_hooks_are_attached_only_while_holding_the_models_lock():
    held: list[bool] = []

    class Watching(TwoLayer):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            hooked = any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())
            if hooked:
                held.append(hook_lock(self)._is_owned())
            return super().forward(x)

    model = Watching()
    handle = _toy_handle(model)
    find_head(handle)
    extract_features(handle, torch.randn(10, 4), batch_size=4)
    extract_features(handle, torch.randn(10, 4), layer="body.0")
    _forward_capture(handle, torch.randn(3, 4), "body.0", "input")
    assert len(held) >= 6 and all(held)
    assert hook_lock(model) is hook_lock(model) and hook_lock(model) is not hook_lock(TwoLayer())
    assert not hook_lock(model)._is_owned()  # released afterwards


def test_a_named_layer_gives_its_output_and_whether_the_head_applies():
    model = TwoLayer()
    handle = _toy_handle(model)
    data = _toy_dataset()
    inner = compute_features(handle, data, layer="body.0")  # pre-activation: layers follow it
    z_ref, _ = _reference(model, data.images.double().numpy())
    pre = np.arctanh(np.clip(z_ref, -1 + 1e-12, 1 - 1e-12))
    np.testing.assert_allclose(inner.features, pre, atol=1e-4)
    assert not inner.has_head and "not the input of the final affine layer" in inner.head_note
    with pytest.raises(NoAffineHeadError, match="not the input"):
        _ = inner.head
    outer = compute_features(handle, data, layer="network.body")  # its output *is* the head's input
    assert outer.has_head and outer.position == "output"
    np.testing.assert_allclose(outer.features, z_ref, atol=1e-5)
    assert candidate_layers(handle) == ["network", "network.body", "network.body.0", "network.body.1", "network.head"]


def test_compute_features_is_cached_and_keyed_by_sample():
    model = TwoLayer()
    handle = _toy_handle(model)
    data = _toy_dataset(n=50)
    first = compute_features(handle, data, sample=20, seed=3)
    calls = model.calls
    again = compute_features(handle, data, sample=20, seed=3)
    assert model.calls == calls  # the model was not run again
    assert isinstance(again, FeatureSet) and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.indices, sample_indices(50, 20, 3))
    np.testing.assert_array_equal(again.labels, data.labels.numpy()[again.indices])
    other = compute_features(handle, data, sample=20, seed=4)
    assert other.fingerprint != first.fingerprint and model.calls > calls
    picked = compute_features(handle, data, indices=[7, 3, 7])
    np.testing.assert_array_equal(picked.indices, [7, 3, 7])
    np.testing.assert_allclose(picked.features[0], picked.features[2])


def test_builtin_digits_model_features_reproduce_its_logits():
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    data = geometry.load_dataset("digits", "test")
    fs = compute_features(handle, data, sample=64)
    assert fs.layer == "network.head" and fs.features.shape == (64, 128)
    np.testing.assert_allclose(fs.head.logits(fs.features), fs.logits, atol=1e-4)
    expected = handle.predict(data.images[torch.from_numpy(fs.indices)]).numpy()
    np.testing.assert_array_equal(fs.predictions, expected)
    direct = handle.network.features(handle.module.preprocess(data.images[:5])).detach().numpy()
    np.testing.assert_allclose(extract_features(handle, data.images[:5])[0].numpy(), direct, atol=1e-6)


def test_face_distances_are_the_exact_distance_to_the_region_boundary():
    rng = np.random.default_rng(0)
    head = Head(rng.normal(size=(4, 3)), rng.normal(size=4))
    z = rng.normal(size=(25, 3)) * 2
    d = head.face_distances(z)
    j = head.predict(z)
    for i in range(len(z)):
        k = int(np.argmin(d[i]))
        n = head.weight[k] - head.weight[j[i]]
        n /= np.linalg.norm(n)
        on_face = head.logits(z[i] + d[i, k] * n)[0]
        assert on_face[k] == pytest.approx(on_face[j[i]], abs=1e-9)  # exactly on the face
        assert head.predict(z[i] + (d[i, k] + 1e-6) * n)[0] != j[i]  # just past it: another class
        dirs = rng.normal(size=(200, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        inside = z[i] + (d[i, k] * (1 - 1e-6)) * dirs  # any direction, just short of the distance
        assert (head.predict(inside) == j[i]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer": "nope"}, "expected a layer name"),
        ({"sample": 0}, "expected sample as a positive int"),
        ({"indices": [0, 99]}, r"expected indices in \[0, 40\)"),
        ({"indices": [], "sample": None}, "non-empty"),
        ({"indices": [1], "sample": 3}, "either sample or indices"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_features(_toy_handle(TwoLayer()), _toy_dataset(), **kwargs)


def test_a_dataset_of_another_shape_is_refused():
    with pytest.raises(ValueError, match=r"expected a data set of inputs \(4,\)"):
        compute_features(_toy_handle(TwoLayer()), _toy_dataset(d=5))
    with pytest.raises(TypeError, match="expected a geometry.data.datasets.Dataset"):
        compute_features(_toy_handle(TwoLayer()), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"expected features of shape \(N, 3\)"):
        Head(np.eye(3), np.zeros(3)).logits(np.zeros((2, 4)))

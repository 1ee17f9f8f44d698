"""map_batches: same answer as one big batch, progress, cancellation, out-of-memory back-off."""

from __future__ import annotations

import threading
from collections import namedtuple

import pytest
import torch
from torch import nn

from geometry.runtime.compute import (
    Cancelled,
    CancelToken,
    default_device,
    forget_batch_sizes,
    is_out_of_memory,
    map_batches,
    scaled_progress,
)


@pytest.fixture(autouse=True)
def _fresh_batch_memory() -> None:
    forget_batch_sizes()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 4)).eval()


def _x(n: int = 23) -> torch.Tensor:
    return torch.rand(n, 3, 2, 2, generator=torch.Generator().manual_seed(1))


# -- devices and tokens ------------------------------------------------------------------------


def test_default_device_honours_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNDARY_ATLAS_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.delenv("BOUNDARY_ATLAS_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert default_device().type == expected
    else:
        assert default_device().type in {"cpu", "mps"}


def test_default_device_bad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNDARY_ATLAS_DEVICE", "gpu-please")
    with pytest.raises(ValueError, match="BOUNDARY_ATLAS_DEVICE='gpu-please' is not a device"):
        default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_default_device_unavailable_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNDARY_ATLAS_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        default_device()


def test_cancel_token() -> None:
    token = CancelToken()
    assert not token.cancelled
    token.raise_if_cancelled()
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled, match="slicing cancelled"):
        token.raise_if_cancelled("slicing")
    token.reset()
    assert not token.cancelled


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried ..."))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_scaled_progress() -> None:
    seen: list[float] = []
    sub = scaled_progress(lambda f, _t: seen.append(f), 0.5, 0.75)
    assert sub is not None
    sub(0.0, "a")
    sub(1.0, "b")
    assert seen == [0.5, 0.75]
    assert scaled_progress(None, 0.0, 1.0) is None
    with pytest.raises(ValueError, match="0 <= start <= end <= 1"):
        scaled_progress(lambda f, t: None, 0.8, 0.2)


# -- results -----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 1, 4, 5, 23, 100])
def test_map_batches_equals_unbatched(batch_size: int | None) -> None:
    model, x = _model(), _x()
    with torch.no_grad():
        expected = model(x)
    out = map_batches(model, x, batch_size=batch_size, device="cpu")
    assert isinstance(out, torch.Tensor)
    assert out.shape == (23, 4) and out.device.type == "cpu"
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert not out.requires_grad


def test_map_batches_tuple_and_namedtuple_outputs() -> None:
    model, x = _model(), _x()
    feats = model[:3]

    def both(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return model(b), feats(b)

    logits, features = map_batches(both, x, batch_size=6)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))
        torch.testing.assert_close(features, feats(x))

    Out = namedtuple("Out", ["logits", "features"])
    out = map_batches(lambda b: Out(*both(b)), x, batch_size=6)
    assert isinstance(out, Out)
    assert out.features.shape == (23, 7)


def test_map_batches_order_is_deterministic() -> None:
    x = torch.arange(50.0).reshape(50, 1)
    out = map_batches(lambda b: b + 0, x, batch_size=7)
    assert torch.equal(out, x)


def test_map_batches_progress_increasing_to_one() -> None:
    calls: list[tuple[float, str]] = []
    map_batches(_model(), _x(), batch_size=5, progress=lambda f, t: calls.append((f, t)), desc="logits")
    fractions = [f for f, _ in calls]
    assert len(calls) == 5
    assert all(a < b for a, b in zip(fractions, fractions[1:], strict=False))
    assert fractions[-1] == 1.0
    assert calls[0][1] == "logits: 5/23"


def test_map_batches_inference_flag() -> None:
    x = _x(6)

    def grad_norm(b: torch.Tensor) -> torch.Tensor:
        b = b.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((b**2).sum(), b)
        return g

    torch.testing.assert_close(map_batches(grad_norm, x, batch_size=4, inference=False), 2 * x)
    with pytest.raises(RuntimeError):
        map_batches(grad_norm, x, batch_size=4)  # no autograd under inference_mode


def test_map_batches_empty_input() -> None:
    out = map_batches(_model(), _x(0))
    assert out.shape == (0, 4)

    def needs_rows(b: torch.Tensor) -> torch.Tensor:
        return b / b.max()  # max() of an empty tensor raises

    with pytest.raises(ValueError, match="x is empty"):
        map_batches(needs_rows, _x(0))


def test_map_batches_bad_input() -> None:
    with pytest.raises(TypeError, match="x must be a torch.Tensor of shape"):
        map_batches(_model(), [[1.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be a positive int or None, got 0"):
        map_batches(_model(), _x(), batch_size=0)
    with pytest.raises(ValueError, match="x must have a batch dimension"):
        map_batches(_model(), torch.tensor(1.0))
    with pytest.raises(ValueError, match="one row per input along dim 0"):
        map_batches(lambda b: b.sum(), _x(), batch_size=4)
    with pytest.raises(TypeError, match="fn must return a tensor or a tuple of tensors, got float"):
        map_batches(lambda b: 1.0, _x(), batch_size=4)  # type: ignore[arg-type, return-value]


# -- cancellation ------------------------------------------------------------------------------


def test_cancel_between_batches() -> None:
    token = CancelToken()
    seen: list[int] = []

    def fn(b: torch.Tensor) -> torch.Tensor:
        seen.append(len(b))
        return b

    def progress(fraction: float, _text: str) -> None:
        if len(seen) == 2:
            token.cancel()

    with pytest.raises(Cancelled, match="slice cancelled"):
        map_batches(fn, _x(), batch_size=5, progress=progress, cancel=token, desc="slice")
    assert seen == [5, 5]  # the third batch never ran


def test_cancel_from_another_thread() -> None:
    token = CancelToken()
    first_batch = threading.Event()
    cancelled = threading.Event()
    calls = []

    def fn(b: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 1:
            first_batch.set()
            assert cancelled.wait(10)
        return b

    def stopper() -> None:
        first_batch.wait(10)
        token.cancel()  # what a Stop button does from the UI thread
        cancelled.set()

    t = threading.Thread(target=stopper)
    t.start()
    with pytest.raises(Cancelled):
        map_batches(fn, _x(), batch_size=4, cancel=token)
    t.join()
    assert len(calls) == 1


def test_already_cancelled_runs_nothing() -> None:
    token = CancelToken()
    token.cancel()
    calls = []
    with pytest.raises(Cancelled):
        map_batches(lambda b: calls.append(1) or b, _x(), cancel=token)
    assert calls == []


# -- out of memory -----------------------------------------------------------------------------


def _oom_above(limit: int, message: str | None = None) -> tuple[list[int], object]:
    tried: list[int] = []
    model = _model()

    def fn(b: torch.Tensor) -> torch.Tensor:
        tried.append(len(b))
        if len(b) > limit:
            if message is None:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
            raise RuntimeError(message)
        return model(b)

    return tried, fn


@pytest.mark.parametrize("message", [None, "CUDA out of memory. Tried to allocate 20.00 MiB"])
def test_oom_halves_batch_and_retries(message: str | None) -> None:
    x = _x(20)
    tried, fn = _oom_above(3, message)
    out = map_batches(fn, x, batch_size=16)  # type: ignore[arg-type]
    with torch.no_grad():
        torch.testing.assert_close(out, _model()(x))
    assert tried[:4] == [16, 8, 4, 2]  # three failures, then halved batches all succeed
    assert all(n <= 2 for n in tried[3:])
    assert sum(tried[3:]) == 20


def test_oom_at_batch_one_reraises_clearly() -> None:
    tried, fn = _oom_above(0)
    with pytest.raises(RuntimeError, match="out of memory on cpu even with a batch of 1") as info:
        map_batches(fn, _x(8), batch_size=8)  # type: ignore[arg-type]
    assert tried == [8, 4, 2, 1]
    assert is_out_of_memory(info.value.__cause__)  # type: ignore[arg-type]


def test_other_errors_are_not_retried() -> None:
    calls = []

    def fn(b: torch.Tensor) -> torch.Tensor:
        calls.append(len(b))
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        map_batches(fn, _x(), batch_size=8)
    assert calls == [8]


def test_learned_batch_size_is_remembered_per_key() -> None:
    tried, fn = _oom_above(5)
    map_batches(fn, _x(40), batch_size=32, key="model-a")  # type: ignore[arg-type]
    assert tried[:3] == [32, 16, 8]
    tried.clear()
    map_batches(fn, _x(40), key="model-a")  # type: ignore[arg-type]
    assert max(tried) == 4  # starts from the size that fitted, no failed attempt
    tried.clear()
    map_batches(fn, _x(40), batch_size=4, key="model-b")  # type: ignore[arg-type]
    assert tried == [4] * 10

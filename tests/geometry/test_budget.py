"""Budgets checked before work starts (issue 14, item 2): the size and the estimate in a sentence, at once.

The time estimates are checked on a model whose cost is known independently of the machine: it sleeps 1 ms per
input, so a dense 4096 x 4096 slice (16.8 M evaluations) takes at least 4.7 hours.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest
import torch
from torch import nn

import geometry
from geometry.runtime import budget
from geometry.runtime.budget import OverBudgetError, check_budget, seconds_per_evaluation
from geometry.slices.planes import random_plane

PER_INPUT_S = 1e-3


class SlowLinear(nn.Module):
    """A linear classifier that takes ``PER_INPUT_S`` seconds per input: a known cost per evaluation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(PER_INPUT_S * len(x))
        return self.linear(x.flatten(1))


def slow_handle(input_shape: tuple[int, ...] = (1, 8, 8)) -> geometry.ModelHandle:
    torch.manual_seed(0)
    dim = int(torch.tensor(input_shape).prod())
    return geometry.ModelHandle.from_module(SlowLinear(dim), input_shape=input_shape, device="cpu")


@pytest.fixture(autouse=True)
def default_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (budget.MAX_EVALUATIONS_ENV, budget.MAX_SECONDS_ENV, budget.MAX_BYTES_ENV):
        monkeypatch.delenv(name, raising=False)


def _refused(run: Callable[[], object], pattern: str) -> str:
    """Run ``run()``: it must raise OverBudgetError matching ``pattern`` within a second, allocating < 64 MB."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(OverBudgetError, match=pattern) as caught:
            run()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    assert peak < 64 * 2**20, f"the refusal allocated {peak / 2**20:.0f} MB"
    return str(caught.value)


def test_the_cost_of_an_evaluation_is_measured_once_per_model() -> None:
    handle = slow_handle()
    cost = seconds_per_evaluation(handle)
    assert cost is not None and PER_INPUT_S <= cost < 1.5 * PER_INPUT_S
    calls = handle.network.calls
    assert calls >= 3  # a warm-up call, then batches of 4, 8, ... until one takes 50 ms
    assert seconds_per_evaluation(handle) == cost
    assert handle.network.calls == calls, "the second ask does not run the model"


def test_a_dense_4096_slice_is_refused_with_its_size_and_time() -> None:
    handle = slow_handle()
    plane = random_plane(torch.rand(1, 8, 8), seed=0)
    seconds_per_evaluation(handle)  # measured once per model and process; the refusal itself must be quick too
    message = _refused(
        lambda: geometry.evaluate_slice(handle, plane, extent=1.0, resolution=4096, adaptive=False),
        r"a dense slice of 4096 x 4096 points needs 16\.8 M model evaluations, about [4-6]\.\d h here, "
        r"more than the budget of 10 min \(BOUNDARY_ATLAS_MAX_SECONDS\): lower the resolution",
    )
    assert "adaptive" in message


def test_a_normal_dense_slice_passes() -> None:
    handle = slow_handle()
    plane = random_plane(torch.rand(1, 8, 8), seed=0)
    result = geometry.evaluate_slice(handle, plane, extent=1.0, resolution=12, adaptive=False)
    assert result.evaluations == 144


def test_the_evaluation_count_has_its_own_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = geometry.load_model("blobs-mlp", device="cpu")  # about a microsecond per evaluation: time is no limit
    plane = random_plane(torch.zeros(2), seed=0)
    monkeypatch.setenv(budget.MAX_EVALUATIONS_ENV, "1000")
    _refused(
        lambda: geometry.evaluate_slice(handle, plane, extent=1.0, resolution=64, adaptive=False),
        r"4,096 model evaluations, about .* here, more than the budget of 1,000 evaluations",
    )
    assert geometry.evaluate_slice(handle, plane, extent=1.0, resolution=31, adaptive=False).evaluations == 961


def test_shapes_at_4096_pixels_are_refused_before_numpy_is_asked() -> None:
    # 2,000 test images x 3 x 4096^2 x 4 bytes = 375 GiB, the allocation of the issue
    _refused(
        lambda: geometry.load_dataset("shapes", split="test", image_size=4096),
        r"2,000 shape images of 4096 x 4096 pixels needs 375 GiB of memory, more than .*lower the image size",
    )
    assert geometry.load_dataset("shapes", split="test", n=4, image_size=64).images.shape == (4, 3, 64, 64)


def test_a_billion_shape_factors_are_refused() -> None:
    _refused(lambda: geometry.data.shapes.sample_factors(10**12, seed=0), r"1,000,000,000,000 shape factors needs")


def test_ten_million_random_directions_are_refused() -> None:
    handle = slow_handle((3, 32, 32))
    x = torch.rand(1, 3, 32, 32)
    # (1 image, 10^7 directions, 3072 dimensions) float32, drawn and projected: 2 x 123 GB = 229 GiB
    _refused(
        lambda: geometry.boundary_curvature(handle, x, num_random=10**7),
        r"curvature along 10,000,000 random directions at 1 image of 3,072 dimensions needs 30\.0 M model "
        r"evaluations, about .* here and 229 GiB of memory, more than .*fewer random directions",
    )


def test_images_times_bands_for_frequency_margins_are_refused() -> None:
    handle = slow_handle()
    x = torch.rand(20_000, 1, 8, 8)
    message = _refused(
        lambda: geometry.frequency_margins(handle, x, num_random=1, full=False),
        # 8 subspaces of an 8x8 image, 3 DeepFool steps of 1 + 10 candidates each: 20,000 x 8 x 33 = 5.3 M at 1 ms
        r"frequency margins of 20,000 images in 8 subspaces \(7 bands, 1 random\) needs 5\.3 M model evaluations, "
        r"about (8[89] min|1\.[5-9] h) here, more than the budget of 10 min",
    )
    assert "fewer images, bands or random subspaces" in message


def test_normal_frequency_margins_and_curvature_pass() -> None:
    handle = geometry.load_model("digits-cnn-silu", device="cpu")
    x = geometry.load_dataset("digits", split="test", n=2).images
    assert geometry.frequency_margins(handle, x, num_random=1, full=False).margins.shape[0] == 2
    assert geometry.boundary_curvature(handle, x, k=1, num_random=8).random_curvatures.shape == (2, 8)


def test_memory_is_limited_by_what_is_free_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "available_memory", lambda: 2**30)
    with pytest.raises(OverBudgetError, match=r"needs 2\.0 GiB of memory, more than the 1\.0 GiB of memory free here"):
        check_budget("a test request", bytes=2 * 2**30)
    assert check_budget("a test request", bytes=2**29).bytes == 2**29


def test_the_defaults_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = budget.current_budget()
    assert limits.max_evaluations == 50_000_000 and limits.max_seconds == 600
    assert limits.max_bytes == budget.total_memory() // 2
    monkeypatch.setenv(budget.MAX_BYTES_ENV, "1000")
    with pytest.raises(OverBudgetError, match=r"needs 1001 bytes of memory, more than the budget of 1000 bytes"):
        check_budget("a test request", bytes=1001)
    monkeypatch.setenv(budget.MAX_SECONDS_ENV, "soon")
    with pytest.raises(ValueError, match=r"BOUNDARY_ATLAS_MAX_SECONDS='soon' is not a number"):
        check_budget("a test request", evaluations=1)


def test_the_numbers_read_as_people_write_them() -> None:
    assert budget.format_count(4096**2) == "16.8 M"
    assert budget.format_seconds(4096**2 * 1e-3) == "4.7 h"
    assert budget.format_seconds(1380) == "23 min"
    assert budget.format_bytes(2000 * 3 * 4096**2 * 4) == "375 GiB"

"""Targeted DeepFool's boundary point lies on the boundary of x's own region (issue 11, item 1).

A targeted run stops in the target's region; the zero of ``f_t - f_j`` on its path can lie inside a third class's
region. The boundary point must instead be where the path leaves x's region, with ``boundary_class`` the class
actually across, and the result must say when that is not the requested target.
"""

from __future__ import annotations

import pytest
import torch

import geometry
from geometry.boundary.curvature import boundary_curvature
from geometry.boundary.deepfool import deepfool
from tests.geometry.analytic import affine_handle

IMAGE_MODELS = ["digits-cnn-silu", "digits-cnn-relu", "digits-mlp-relu", "shapes-resnet-silu", "shapes-resnet-relu"]


def three_bands() -> geometry.ModelHandle:
    """Logits (0, u - 1, 2u - 3) of u, the first of two coordinates: class 0 for u < 1, class 1 for 1 < u < 2, class 2
    for u > 2. From u = 0 the way to class 2 crosses class 1's band; f_2 = f_0 at u = 1.5, inside it."""
    weight = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    bias = torch.tensor([0.0, -1.0, -3.0])
    return affine_handle(weight, bias, shape=(2,), input_range=None)


def test_a_target_behind_another_class_gives_the_boundary_with_the_class_in_between():
    handle = three_bands()
    x = torch.tensor([[0.0, 0.3], [1.6, -0.2]])  # in class 0, and in class 1 (next to class 2)
    res = deepfool(handle, x, target=2)
    assert res.converged.all() and (res.label_reached == 2).all()
    # image 0: x's region ends at u = 1, with class 1 across (not at u = 1.5, where f_2 = f_0 inside class 1)
    assert int(res.boundary_class[0]) == 1 and not bool(res.boundary_is_target[0])
    torch.testing.assert_close(res.boundary_point[0], torch.tensor([1.0, 0.3]), atol=1e-4, rtol=0)
    assert float(res.boundary_distance[0]) == pytest.approx(1.0, abs=1e-4)
    # image 1: class 2 is right across, at u = 2
    assert int(res.boundary_class[1]) == 2 and bool(res.boundary_is_target[1])
    torch.testing.assert_close(res.boundary_point[1], torch.tensor([2.0, -0.2]), atol=1e-4, rtol=0)
    assert (res.boundary_gap < 1e-4).all()


def test_untargeted_runs_mark_every_converged_boundary_as_the_one_sought():
    res = deepfool(three_bands(), torch.tensor([[0.0, 0.0], [5.0, 0.0]]))
    assert res.converged.all() and res.boundary_is_target.all()


def test_curvature_is_measured_against_the_class_across():
    handle = three_bands()
    res = boundary_curvature(handle, torch.tensor([[0.0, 0.3]]), target=2, k=1, num_random=0)
    assert int(res.boundary_class[0]) == 1 and int(res.target[0]) == 2
    # F = f_1 - f_0 = u - 1 at z: gradient (1, 0), F(z) = 0
    torch.testing.assert_close(res.normal[0], torch.tensor([1.0, 0.0]), atol=1e-5, rtol=0)
    assert float(res.grad_norm[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(res.boundary_gap[0]) < 1e-4


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_the_two_largest_logits_at_a_targeted_boundary_point_are_x_class_and_the_class_across(name):
    handle = geometry.load_model(name)
    data = geometry.load_dataset(name.split("-")[0], split="test")
    x = data.images[:3]
    pred = handle.predict(x)
    images = [i for i in range(len(x)) for t in range(handle.num_classes) if t != int(pred[i])]
    targets = [t for i in range(len(x)) for t in range(handle.num_classes) if t != int(pred[i])]
    xs, ts = x[torch.tensor(images)], torch.tensor(targets)
    res = deepfool(handle, xs, target=ts)
    ok = res.converged
    assert ok.float().mean() > 0.9, f"{name}: only {int(ok.sum())} of {len(ok)} targeted runs converged"
    logits = handle.logits(res.boundary_point[ok])
    top2 = logits.topk(2, dim=1).indices.sort(dim=1).values
    pair = torch.stack([res.original_label[ok], res.boundary_class[ok]], dim=1).sort(dim=1).values
    bad = (top2 != pair).any(dim=1)
    assert not bad.any(), f"{name}: a third class is among the top two logits at z in {int(bad.sum())} runs"
    # equal within boundary_gap (what the result reports), and boundary_is_target says whether k is the target
    gap = logits.gather(1, res.boundary_class[ok][:, None]) - logits.gather(1, res.original_label[ok][:, None])
    torch.testing.assert_close(gap.abs().squeeze(1), res.boundary_gap[ok], atol=1e-4, rtol=1e-3)
    assert torch.equal(res.boundary_is_target[ok], res.boundary_class[ok] == ts[ok])
    assert not res.boundary_is_target[~ok].any()

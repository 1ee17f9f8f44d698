"""DeepFool against answers known in closed form (linear classifiers, a ball) and its defining properties."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import geometry
from geometry.boundary.deepfool import DeepFoolResult, deepfool, subspace_deepfool
from geometry.runtime.cache import DiskCache
from tests.geometry.analytic import Affine, BallInsideClass0, affine_handle

STEP_EPS = 1e-4  # DeepFool's extra step length (input units)


@pytest.mark.parametrize("overshoot", [0.0, 0.02, 0.5])
def test_two_class_linear_is_one_step_to_the_hyperplane(overshoot):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 4, generator=gen)
    b = torch.randn(2, generator=gen)
    handle = affine_handle(w, b)
    x = torch.rand(16, 1, 2, 2, generator=gen)
    res = deepfool(handle, x, overshoot=overshoot)
    flat = x.flatten(1)
    wd = w[1] - w[0]
    dist = ((flat @ wd + b[1] - b[0]).abs() / wd.norm()).to(torch.float64)
    assert res.converged.all() and (res.iterations == 1).all()
    torch.testing.assert_close(res.norm.double(), (1 + overshoot) * (dist + STEP_EPS), rtol=1e-5, atol=1e-6)
    # the perturbation is along the normal of the hyperplane, towards the other class
    cos = (res.perturbation.flatten(1) @ wd) / (res.norm * wd.norm())
    sign = torch.where(res.original_label == 0, 1.0, -1.0)
    torch.testing.assert_close(cos * sign, torch.ones(16), atol=1e-5, rtol=0)
    # the boundary point is on the hyperplane, at the analytic distance from x
    z = res.boundary_point.flatten(1)
    torch.testing.assert_close(z @ wd + b[1] - b[0], torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(res.boundary_distance.double(), dist, atol=1e-5, rtol=1e-5)
    assert (res.label_reached == 1 - res.original_label).all()
    assert (res.boundary_class == res.label_reached).all()


def test_multiclass_linear_goes_to_the_nearest_face():
    gen = torch.Generator().manual_seed(1)
    k, d = 5, 6
    w = torch.randn(k, d, generator=gen)
    b = torch.randn(k, generator=gen)
    handle = affine_handle(w, b, shape=(d,), input_range=None)
    x = torch.randn(32, d, generator=gen)
    res = deepfool(handle, x)
    j = (x @ w.T + b).argmax(1)
    f = x @ w.T + b
    dists = torch.stack([(f[i] - f[i, j[i]]).abs() / (w - w[j[i]]).norm(dim=1) for i in range(32)])
    dists[torch.arange(32), j] = torch.inf
    nearest = dists.min(dim=1)
    assert (res.iterations == 1).all() and res.converged.all()
    torch.testing.assert_close(res.norm, 1.02 * (nearest.values + STEP_EPS), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(res.boundary_distance, nearest.values, rtol=1e-4, atol=1e-5)
    assert (res.boundary_class == nearest.indices).all()


def test_candidates_limit_the_classes_considered():
    # 3 classes; the nearest face is towards class 2, but its logit at x is the lowest, so candidates=1 skips it
    w = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [0.0, 30.0]])
    b = torch.tensor([0.0, -0.5, -3.0])
    handle = affine_handle(w, b, shape=(2,), input_range=None)
    x = torch.tensor([[0.0, 0.0]])  # logits (0, -0.5, -3): class 0; face to class 2 at distance 0.1, to class 1 at 0.5
    full = deepfool(handle, x, candidates=10)
    assert int(full.label_reached) == 2 and full.norm.item() == pytest.approx(1.02 * (0.1 + STEP_EPS), rel=1e-5)
    one = deepfool(handle, x, candidates=1)  # only class 1 (the runner-up at x) is considered
    assert int(one.label_reached) == 1 and one.norm.item() == pytest.approx(1.02 * (0.5 + STEP_EPS), rel=1e-5)


def test_ball_reaches_the_sphere():
    center = torch.full((4,), 0.5)
    handle = geometry.ModelHandle.from_module(
        BallInsideClass0(center, 0.3), input_shape=(4,), device="cpu", input_range=None
    )
    gen = torch.Generator().manual_seed(2)
    direction = torch.nn.functional.normalize(torch.randn(8, 4, generator=gen), dim=1)
    radii = torch.linspace(0.0, 0.25, 8)
    x = center + radii[:, None] * direction
    x[0] += 1e-3  # not exactly at the centre (no gradient there)
    res = deepfool(handle, x, overshoot=0.0)
    assert res.converged.all()
    torch.testing.assert_close((res.boundary_point - center).norm(dim=1), torch.full((8,), 0.3), atol=2e-5, rtol=0)
    torch.testing.assert_close(res.boundary_distance, 0.3 - (x - center).norm(dim=1), atol=2e-5, rtol=0)


def test_label_flips_just_past_the_boundary_point_and_not_before(silu, digits):
    x = digits.images[:12]
    res = deepfool(silu, x)
    assert res.converged.all()
    z = res.boundary_point
    u = res.perturbation / res.norm.view(-1, 1, 1, 1)
    eps = 1e-3
    assert (silu.predict(z - eps * u) == res.original_label).all()
    assert (silu.predict(z + eps * u) != res.original_label).all()
    assert (silu.predict(x + res.perturbation) == res.label_reached).all()
    assert (res.label_reached != res.original_label).all()
    assert (res.boundary_distance < res.norm).all()
    assert (res.boundary_gap < 1e-3).all()  # |f_k - f_j| at z, in logits
    # the boundary point is on the segment x -> x + r
    t = res.boundary_distance / res.norm
    torch.testing.assert_close(z, x + t.view(-1, 1, 1, 1) * res.perturbation, atol=1e-5, rtol=0)


def test_batched_equals_one_image_at_a_time(silu, digits):
    x = digits.images[30:36]
    batched = deepfool(silu, x)
    small = deepfool(silu, x, batch_size=4)
    for i in range(len(x)):
        one = deepfool(silu, x[i])
        torch.testing.assert_close(one.perturbation[0], batched.perturbation[i], atol=1e-5, rtol=1e-4)
        assert int(one.iterations) == int(batched.iterations[i])
        assert int(one.label_reached) == int(batched.label_reached[i])
    torch.testing.assert_close(small.perturbation, batched.perturbation, atol=1e-5, rtol=1e-4)


def test_misclassified_inputs_leave_the_predicted_class(silu, digits):
    pred = silu.predict(digits.images)
    wrong = torch.nonzero(pred != digits.labels).flatten()[:4]
    assert len(wrong) > 0
    res = deepfool(silu, digits.images[wrong])
    assert (res.original_label == pred[wrong]).all()
    assert (res.original_label != digits.labels[wrong]).all()
    assert res.converged.all() and (res.label_reached != res.original_label).all()


def test_target_class_is_reached(silu, digits):
    x = digits.images[:6]
    pred = silu.predict(x)
    target = (pred + 3) % 10
    res = deepfool(silu, x, target=target)
    assert res.converged.all()
    assert (res.label_reached == target).all()
    assert (res.target == target).all()
    # z is on the boundary of x's region, f_k = f_j with k the class across: the target where the path goes from x's
    # region straight into the target's (issue 11: the zero of f_t - f_j can lie inside a third class's region)
    assert torch.equal(res.boundary_is_target, res.boundary_class == target)
    logits = silu.logits(res.boundary_point)
    gap = logits.gather(1, res.boundary_class[:, None]) - logits.gather(1, pred[:, None])
    assert gap.abs().max() < 1e-3


class _RecordBackward(torch.autograd.Function):
    """Identity on the logits whose backward records the gradient it receives: one entry per backward pass."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, seen: list) -> torch.Tensor:  # noqa: ANN001
        ctx.seen = seen
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        ctx.seen.append(grad.detach().clone())
        return grad, None


class CountingModel(nn.Module):
    """Wraps a classifier; ``backwards`` holds the gradient w.r.t. the logits of every backward pass through it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.backwards: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RecordBackward.apply(self.net(x), self.backwards)


def reference_targeted_deepfool(
    module: nn.Module, x: torch.Tensor, target: int, overshoot: float = 0.02, max_iter: int = 50
) -> tuple[torch.Tensor, int]:
    """Textbook targeted DeepFool on ONE input, written out plainly: F = f_t - f_current, step (|F| / ||w|| + 1e-4)
    w / ||w||, checked at x + (1 + overshoot) r_total. Returns ((1 + overshoot) r_total, steps)."""
    r_tot = torch.zeros_like(x)
    steps = 0
    for _ in range(max_iter):
        xa = (x + (1 + overshoot) * r_tot).requires_grad_(True)
        logits = module(xa[None])[0]
        label = int(logits.argmax())
        if label == target:
            break
        f = logits[target] - logits[label]
        (w,) = torch.autograd.grad(f, xa)
        r_tot = r_tot + (f.abs().detach() / w.norm() + STEP_EPS) * w / w.norm()
        steps += 1
    return (1 + overshoot) * r_tot, steps


def test_targeted_deepfool_is_one_backward_per_step_towards_the_target_only():
    # 5 linear classes, target 2: one step to the face f_2 = f_j at its analytic distance, with ONE gradient
    # evaluation (the target's), although candidates=10 would consider 4 classes when untargeted
    gen = torch.Generator().manual_seed(11)
    w, b = torch.randn(5, 6, generator=gen), torch.randn(5, generator=gen)
    counting = CountingModel(Affine(w, b))
    handle = geometry.ModelHandle.from_module(counting, input_shape=(6,), device="cpu", input_range=None)
    x = torch.randn(40, 6, generator=gen)
    f = x @ w.T + b
    j = f.argmax(dim=1)
    dist = (f[:, 2] - f.gather(1, j[:, None]).squeeze(1)).abs() / (w[2] - w[j]).norm(dim=1)
    # keep images whose straight step towards the face lands in class 2 (no third class on the way)
    step = (1.02 * (dist + STEP_EPS))[:, None] * torch.nn.functional.normalize(w[2] - w[j], dim=1)
    one_step = (j != 2) & (((x + step) @ w.T + b).argmax(dim=1) == 2)
    x, dist = x[one_step][:8], dist[one_step][:8]
    assert len(x) == 8
    counting.backwards.clear()
    res = deepfool(handle, x, target=2)
    assert res.converged.all() and (res.iterations == 1).all() and (res.label_reached == 2).all()
    torch.testing.assert_close(res.norm, 1.02 * (dist + STEP_EPS), rtol=1e-5, atol=1e-6)
    assert len(counting.backwards) == 1  # one backward for the whole batch, in its one step
    grad = counting.backwards[0]  # d/dlogits of the backward: e_2 - e_j per image, nothing for any other class
    expected = torch.zeros(8, 5)
    expected[:, 2] = 1.0
    expected[torch.arange(8), j[one_step][:8]] = -1.0
    assert torch.equal(grad, expected)
    # untargeted on the same model: one backward per candidate class (4) per step
    counting.backwards.clear()
    free = deepfool(handle, x)
    assert len(counting.backwards) == 4 * int(free.iterations.max())


def test_targeted_deepfool_on_the_cnn_matches_the_textbook_loop_with_one_backward_per_step(silu, digits):
    counting = CountingModel(silu.module)
    handle = geometry.ModelHandle.from_module(counting, input_shape=(1, 8, 8), device="cpu")
    x = digits.images[40:46]
    target = (silu.predict(x) + 3) % 10
    counting.backwards.clear()
    res = deepfool(handle, x, target=target, batch_size=1)  # one image per run: its backward passes are its own
    assert res.converged.all()
    assert len(counting.backwards) == int(res.iterations.sum())  # one backward per image per step
    assert all(g.shape == (1, 10) and int((g != 0).sum()) <= 2 and float(g.sum()) == 0 for g in counting.backwards)
    for i in range(len(x)):
        r, steps = reference_targeted_deepfool(silu.module, x[i], int(target[i]))
        assert int(res.iterations[i]) == steps
        torch.testing.assert_close(res.perturbation[i], r, atol=2e-6, rtol=1e-4)


def test_a_class_tied_with_the_prediction_is_a_candidate_and_the_prediction_is_not():
    # 17 classes; at x = 0 the logits are (0, 0, -1, ..., -1): argmax says class 0, class 1 is tied with it. With
    # candidates=1 the one candidate must be class 1 (sorting the logits may list class 1 before class 0, which
    # used to make class 0 itself the candidate: no direction to move in, not converged)
    gen = torch.Generator().manual_seed(12)
    w = torch.randn(17, 3, generator=gen)
    b = torch.full((17,), -1.0)
    b[:2] = 0.0
    handle = affine_handle(w, b, shape=(3,), input_range=None)
    res = deepfool(handle, torch.zeros(1, 3), candidates=1)
    assert int(res.original_label) == 0 and bool(res.converged) and int(res.label_reached) == 1
    assert res.norm.item() == pytest.approx(1.02 * STEP_EPS, rel=1e-4)  # distance 0, plus the extra step
    assert int(res.boundary_class) == 1 and res.boundary_distance.item() < 1e-5


def test_clip_keeps_the_path_in_the_unit_box(silu, digits):
    x = digits.images[:24]
    clipped = deepfool(silu, x, clip=True, overshoot=0.1)
    adv = x + clipped.perturbation
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert clipped.clip and clipped.converged.all()
    assert (silu.predict(adv) == clipped.label_reached).all()
    free = deepfool(silu, x, overshoot=0.1)
    assert not free.clip
    assert ((x + free.perturbation).min() < 0) or ((x + free.perturbation).max() > 1)  # clipping mattered


def test_subspace_deepfool_on_a_linear_model_matches_the_projected_distance():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(2, 8, generator=gen)
    b = torch.randn(2, generator=gen)
    handle = affine_handle(w, b, shape=(8,), input_range=None)
    x = torch.randn(5, 8, generator=gen)
    basis, _ = torch.linalg.qr(torch.randn(8, 3, generator=gen))
    res = subspace_deepfool(handle, x, basis)
    wd = w[1] - w[0]
    f = x @ wd + b[1] - b[0]
    dist = f.abs() / (basis.T @ wd).norm()
    assert res.converged.all() and (res.iterations == 1).all() and res.subspace_dim == 3
    torch.testing.assert_close(res.norm, 1.02 * (dist + STEP_EPS), rtol=1e-5, atol=1e-6)
    r = res.perturbation
    torch.testing.assert_close(r @ basis @ basis.T, r, atol=1e-5, rtol=0)  # stays in span(S)
    full = deepfool(handle, x)
    assert (res.norm >= full.norm).all()


def test_subspace_orthogonal_to_the_normal_does_not_converge():
    w = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    handle = affine_handle(w, torch.tensor([0.0, -1.0]), shape=(3,), input_range=None)
    basis = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # span(e2, e3): F = x1 - 1 cannot change
    per_image = torch.stack([basis, torch.zeros(3, 2)])  # zero columns are ignored: the second basis is empty
    res = subspace_deepfool(handle, torch.zeros(2, 3), per_image, max_iter=5)
    assert not res.converged.any() and (res.iterations == 0).all()
    assert (res.norm == 0).all() and torch.isnan(res.boundary_distance).all()


def test_result_round_trips_through_the_cache(tmp_path, silu, digits):
    res = deepfool(silu, digits.images[:3])
    cache = DiskCache(tmp_path)
    cache.put("ab" * 16, res)
    back = cache.get("ab" * 16, DeepFoolResult)
    assert isinstance(back, DeepFoolResult) and back.overshoot == res.overshoot and back.clip is False
    torch.testing.assert_close(back.boundary_point, res.boundary_point)
    assert back.converged.dtype == torch.bool and back.iterations.dtype == torch.int64


def _train_mode_net(seed: int) -> tuple[geometry.ModelHandle, nn.Module]:
    """A handle whose network has batch norm and dropout, then put (back) in train mode by its owner, with one
    submodule left in eval mode and one parameter frozen: a state DeepFool must run around and leave exactly so."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    handle = geometry.ModelHandle.from_module(net, input_shape=(1, 2, 2), device="cpu")
    with torch.no_grad():  # running statistics that differ from a fresh batch's
        net[2].running_mean.uniform_(-0.5, 0.5)
        net[2].running_var.uniform_(0.5, 2.0)
    handle.module.train()
    net[4].eval()
    net[5].bias.requires_grad_(False)
    return handle, net


def test_callers_model_and_tensors_are_left_alone():
    gen = torch.Generator().manual_seed(4)
    handle, net = _train_mode_net(4)
    modes = [m.training for m in handle.module.modules()]
    assert any(modes) and not all(modes)
    needs_grad = [p.requires_grad for p in handle.module.parameters()]
    state = {k: v.clone() for k, v in handle.module.state_dict().items()}
    x = torch.rand(5, 1, 2, 2, generator=gen)
    x_copy = x.clone()
    leaf = x.clone().requires_grad_(True)
    leaf.grad = torch.ones_like(leaf)
    untargeted = deepfool(handle, x)
    clipped = deepfool(handle, leaf, clip=True)
    pred = untargeted.original_label
    targeted = deepfool(handle, x, target=(pred + 1) % 3)
    sub = subspace_deepfool(handle, x, torch.eye(4)[:, :2])
    assert torch.equal(x, x_copy) and not x.requires_grad
    assert leaf.requires_grad and torch.equal(leaf.grad, torch.ones_like(leaf))
    assert all(p.grad is None for p in net.parameters())
    assert [p.requires_grad for p in handle.module.parameters()] == needs_grad
    assert [m.training for m in handle.module.modules()] == modes  # train mode stays train mode, eval stays eval
    # batch norm's running statistics were neither updated nor replaced by batch statistics (num_batches_tracked too)
    assert all(torch.equal(v, state[k]) for k, v in handle.module.state_dict().items())
    assert all(not m._forward_hooks and not m._backward_hooks for m in handle.module.modules())
    # the computation itself ran in eval mode: deterministic (no dropout) and equal to a run on the eval-mode model
    handle.module.eval()
    for got, again in [
        (untargeted, deepfool(handle, x)),
        (clipped, deepfool(handle, x, clip=True)),
        (targeted, deepfool(handle, x, target=(pred + 1) % 3)),
        (sub, subspace_deepfool(handle, x, torch.eye(4)[:, :2])),
    ]:
        assert torch.equal(got.perturbation, again.perturbation) and torch.equal(got.converged, again.converged)


def test_callers_modes_are_restored_when_the_run_is_cancelled():
    handle, _ = _train_mode_net(5)
    modes = [m.training for m in handle.module.modules()]
    token = geometry.CancelToken()
    token.cancel()
    with pytest.raises(geometry.Cancelled):
        deepfool(handle, torch.rand(2, 1, 2, 2), cancel=token)
    assert [m.training for m in handle.module.modules()] == modes


def test_progress_is_reported_and_reaches_one(silu, digits):
    seen: list[float] = []
    deepfool(silu, digits.images[:6], batch_size=3, progress=lambda f, _t: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert seen == sorted(seen)


def test_cancel_stops_the_run(silu, digits):
    token = geometry.CancelToken()
    token.cancel()
    with pytest.raises(geometry.Cancelled):
        deepfool(silu, digits.images[:2], cancel=token)


# -- bad inputs ---------------------------------------------------------------------------------


def test_wrong_shape(silu):
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        deepfool(silu, torch.rand(2, 3, 8, 8))


def test_not_a_tensor(silu):
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        deepfool(silu, [[0.0] * 64])


def test_not_a_handle():
    with pytest.raises(TypeError, match="expected a ModelHandle"):
        deepfool(nn.Linear(4, 2), torch.rand(1, 4))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("candidates", 0, r"expected candidates as an int >= 1, got 0"),
        ("max_iter", 0, r"expected max_iter as an int >= 1, got 0"),
        ("overshoot", -0.1, r"expected overshoot as a number in \[0, 10\), got -0.1"),
        ("tol", 0.0, r"expected tol as a positive number, got 0.0"),
        ("target", 10, r"expected target classes in \[0, 9\], got \[10, 10\]"),
    ],
)
def test_bad_options(silu, digits, option, value, message):
    with pytest.raises(ValueError, match=message):
        deepfool(silu, digits.images[:2], **{option: value})


def test_float_target_is_a_type_error(silu, digits):
    with pytest.raises(TypeError, match="expected target as an int class index or an integer tensor, got Tensor"):
        deepfool(silu, digits.images[:2], target=torch.tensor([1.0, 2.0]))


def test_target_equal_to_prediction(silu, digits):
    pred = silu.predict(digits.images[:2])
    with pytest.raises(ValueError, match=r"image\(s\) \[0, 1\] are already classified as their target"):
        deepfool(silu, digits.images[:2], target=pred)


def test_clip_needs_inputs_in_range(silu):
    with pytest.raises(ValueError, match=r"expected images in \[0, 1\], got values in"):
        deepfool(silu, torch.full((1, 1, 8, 8), 1.5), clip=True)


def test_clip_needs_a_bounded_model():
    handle = affine_handle(torch.randn(2, 2), torch.zeros(2), shape=(2,), input_range=None)
    with pytest.raises(ValueError, match="clip=True needs a bounded input range"):
        deepfool(handle, torch.zeros(1, 2), clip=True)


def test_nan_input(silu):
    with pytest.raises(ValueError, match="expected finite inputs"):
        deepfool(silu, torch.full((1, 1, 8, 8), math.nan))


def test_basis_must_be_orthonormal(silu, digits):
    with pytest.raises(ValueError, match=r"expected a basis with orthonormal columns"):
        subspace_deepfool(silu, digits.images[:1], torch.ones(64, 2))


def test_basis_shape(silu, digits):
    with pytest.raises(ValueError, match=r"expected basis of shape \(D, m\) or \(N, D, m\) with D = 64 and N = 1"):
        subspace_deepfool(silu, digits.images[:1], torch.eye(10)[:, :2])


class _NaNWhereFirstPixelIsBright(nn.Module):
    """Affine logits, except NaN for inputs whose first pixel is above 0.5 (a model that breaks on some inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        logits = torch.stack([flat.sum(dim=1) - 1.0, 1.0 - flat.sum(dim=1)], dim=1)
        return torch.where(flat[:, :1] > 0.5, torch.full_like(logits, math.nan), logits)


def test_nan_logits_are_an_error_not_a_silent_nan_result():
    handle = geometry.ModelHandle.from_module(_NaNWhereFirstPixelIsBright(), input_shape=(1, 2, 2), device="cpu")
    fine = torch.full((2, 1, 2, 2), 0.1)
    assert torch.isfinite(deepfool(handle, fine).boundary_distance).all()  # the probe and clean inputs work
    broken = fine.clone()
    broken[1, 0, 0, 0] = 0.9
    with pytest.raises(geometry.NonFiniteOutputError, match="NaN or infinite logits for 1 of 2 inputs"):
        deepfool(handle, broken)

"""The Playground's library: exact linear regions against known counts, the link's round trip, the trainer's
determinism, the exported lesson, margins and curvature on analytic boundaries, readings that can come out false."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from geometry.data.toy2d import TOY2D_NAMES, make_toy2d, make_toy2d_any
from geometry.playground import (
    PlaneGrid,
    Playground,
    PlaygroundConfig,
    boundary_curvature_2d,
    config_from_query,
    config_to_query,
    curvature_reading,
    exact_linear_regions,
    margin_reading,
    one_layer_bound,
    pattern_map,
    point_margins,
    region_reading,
    unit_reading,
)
from geometry.report.lesson import lesson_html


def _mlp(*weights: tuple[list[list[float]], list[float]]) -> nn.Sequential:
    """A ReLU MLP from explicit (W, b) per layer; the last pair is the head."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(weights):
        w_t, b_t = torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
        linear = nn.Linear(w_t.shape[1], w_t.shape[0])
        with torch.no_grad():
            linear.weight.copy_(w_t)
            linear.bias.copy_(b_t)
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_one_hidden_layer_in_general_position_reaches_the_line_arrangement_bound(k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    net = _mlp(
        (torch.randn(k, 2, generator=gen).tolist(), torch.randn(k, generator=gen).tolist()), ([[1.0] * k], [0.0])
    )
    w, b = net[0].weight.detach().double().numpy(), net[0].bias.detach().double().numpy()
    # a box holding every pairwise crossing of the k lines: inside it the count is the whole plane's
    crossings = [np.linalg.solve(w[[i, j]], -b[[i, j]]) for i in range(k) for j in range(i + 1, k)]
    half = 2.0 + 2.0 * max([float(np.abs(c).max()) for c in crossings], default=1.0)
    regions = exact_linear_regions(net, (-half, half, -half, half))
    assert regions.count == one_layer_bound(k) == 1 + k + k * (k - 1) // 2
    assert len(set(map(bytes, np.packbits(regions.patterns, axis=1)))) == regions.count  # one pattern each


def test_a_hand_built_two_layer_net_has_its_known_seven_regions() -> None:
    # layer 1: relu(x), relu(y) -> four quadrants; layer 2: relu(h1 + h2 - 1) cuts the three quadrants where it
    # is not constant (x + y = 1, x = 1, y = 1) and not the third (h = 0): 2 + 2 + 2 + 1 = 7
    net = _mlp(([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ([[1.0, 1.0]], [-1.0]), ([[1.0], [-1.0]], [0.0, 0.0]))
    regions = exact_linear_regions(net, (-5.0, 5.0, -5.0, 5.0))
    assert regions.count == 7
    shoelace = [
        0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))
        for p in regions.polygons
    ]
    area = sum(shoelace)
    assert area == pytest.approx(100.0)  # the pieces tile the box
    # the grid sees the same patterns on a fine grid (every region here is large)
    grid = PlaneGrid((-5.0, 5.0, -5.0, 5.0), 200)
    assert pattern_map(net, grid.points()).max() + 1 == 7


def test_a_dead_second_layer_unit_adds_no_region() -> None:
    net = _mlp(([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ([[-1.0, -1.0]], [-1.0]), ([[1.0]], [0.0]))
    assert exact_linear_regions(net, (-5.0, 5.0, -5.0, 5.0)).count == 4


def test_regions_refuse_a_network_that_is_not_a_relu_mlp() -> None:
    with pytest.raises(ValueError, match="expected a ReLU MLP on the plane"):
        exact_linear_regions(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)), (-1, 1, -1, 1))


def test_the_link_round_trips_every_setting_and_the_epoch() -> None:
    config = PlaygroundConfig(
        dataset="spirals",
        classes=3,
        noise=0.35,
        seed=7,
        points=300,
        test_fraction=0.25,
        hidden=(16, 8, 4),
        activation="gelu",
        optimizer="sgd",
        lr=0.003,
        batch_size=32,
        l2=0.001,
        activated_gradients=True,
    )
    query = config_to_query(config, 42)
    assert all(isinstance(v, str) for v in query.values()) and query["layers"] == "16-8-4"
    assert config_from_query(query) == (config, 42)
    assert config_from_query({}) == (PlaygroundConfig(), 0)
    with pytest.raises(ValueError, match=r"the link's lr='fast' is not a valid lr"):
        config_from_query({"lr": "fast"})
    with pytest.raises(ValueError, match="expected activation as one of"):
        config_from_query({"act": "swish"})


def test_training_is_the_same_however_the_epochs_are_grouped() -> None:
    config = PlaygroundConfig(dataset="blobs", classes=4, hidden=(8, 8), seed=3)
    a, b = Playground(config), Playground(config)
    a.step(6)
    for n in (1, 2, 3):
        b.step(n)
    for pa, pb in zip(a.network.parameters(), b.network.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert a.history == b.history and len(a.history) == 7
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"]


def test_the_playground_learns_a_three_class_spiral() -> None:
    pg = Playground(PlaygroundConfig(dataset="spirals", classes=3, noise=0.05, hidden=(32, 32), lr=0.01))
    pg.step(120)
    assert pg.history[-1]["train_accuracy"] > 0.9


def test_the_lesson_has_one_frame_per_recorded_epoch_and_no_external_resource() -> None:
    pg = Playground(PlaygroundConfig(hidden=(4,)))
    pg.step(5)
    html = lesson_html(pg)
    assert [f.epoch for f in pg.frames] == [0, 1, 2, 3, 4, 5]
    assert html.count('"name":"') >= 6  # plotly writes each frame's name
    names = re.findall(r'"name":"(\d+)"', html)
    assert sorted(set(map(int, names))) == [0, 1, 2, 3, 4, 5]
    # offline: every script is inline (plotly.js included), and the page itself loads nothing from a URL (the
    # scripts' own text mentions map-tile URLs that only map traces would use)
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", markup)
    assert "<link" not in markup and "@import" not in markup
    assert len(html) > 1_000_000  # plotly.js itself is in the file


def test_recording_thins_a_long_run_evenly() -> None:
    from geometry.playground import trainer

    pg = Playground(PlaygroundConfig(hidden=(2,), points=40))
    old, trainer.MAX_FRAMES = trainer.MAX_FRAMES, 8
    try:
        pg.step(20)
    finally:
        trainer.MAX_FRAMES = old
    epochs = [f.epoch for f in pg.frames]
    assert len(epochs) <= 8 and epochs[0] == 0 and len(set(np.diff(epochs))) == 1


def test_margins_and_curvature_on_a_disc() -> None:
    """A class-1 disc of radius 2 (logit difference |x|^2 - 4): a point at radius r has margin |2 - r|, and the
    boundary's curvature seen from inside is 1/2."""

    class Disc(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = (x * x).sum(1, keepdim=True) - 4.0
            return torch.cat([f, -f], dim=1)

    from geometry.models.handle import ModelHandle

    handle = ModelHandle.from_module(Disc(), input_shape=(2,), num_classes=2, device="cpu", input_range=None)
    points = torch.tensor([[0.5, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, -4.0]])
    m = point_margins(handle, points, torch.tensor([1, 1, 0, 0]))
    np.testing.assert_allclose(m.margin, [1.5, 1.0, 1.0, 2.0], atol=1e-3)
    assert m.correct.all()
    kappa = boundary_curvature_2d(handle, m)
    np.testing.assert_allclose(kappa[:2], 0.5, atol=1e-3)  # inside: own region convex
    np.testing.assert_allclose(kappa[2:], -0.5, atol=1e-3)  # outside: own region concave


def test_readings_come_out_true_and_false() -> None:
    assert region_reading(40, 8).holds and not region_reading(37, 8).holds
    margins, correct = np.array([0.5, 0.6, 0.7, np.nan]), np.array([True, True, True, False])
    assert margin_reading(margins, correct, 0.2).holds and not margin_reading(margins, correct, 0.65).holds
    assert curvature_reading(np.array([0.1, -0.2, np.nan])).holds
    assert not curvature_reading(np.array([1.0, -2.0])).holds
    # a trained ReLU network on moons (every unit works) and one with a unit killed by its bias
    pg = Playground(PlaygroundConfig(hidden=(8,)))
    pg.step(5)
    assert unit_reading(pg.unit_activations()).holds
    with torch.no_grad():
        pg.network.body[1].weight[0] = 0.0
        pg.network.body[1].bias[0] = -1.0
    reading = unit_reading(pg.unit_activations())
    assert not reading.holds and "(1 constant)" in reading.claim


def test_a_playground_net_has_more_regions_than_one_layer_could_make_after_training() -> None:
    """The reading on real nets: a deep ReLU net beats the one-layer bound, a one-layer net cannot."""
    deep = Playground(PlaygroundConfig(hidden=(8, 8), seed=1))
    deep.step(30)
    shallow = Playground(PlaygroundConfig(hidden=(8,), seed=1))
    shallow.step(30)
    count_deep = exact_linear_regions(deep.network, deep.grid.extent).count
    count_shallow = exact_linear_regions(shallow.network, shallow.grid.extent).count
    assert region_reading(count_deep, 8).holds
    assert count_shallow <= one_layer_bound(8) and not region_reading(count_shallow, 8).holds


@pytest.mark.parametrize("name", TOY2D_NAMES)
def test_every_set_draws_two_to_six_balanced_classes(name: str) -> None:
    for k in range(2, 7):
        x, y = make_toy2d_any(name, 301, seed=0, classes=k)
        counts = np.bincount(y, minlength=k)
        assert x.shape == (301, 2) and len(counts) == k and counts.max() - counts.min() <= 1
        assert np.abs(x).max() < 4.5
    x, y = make_toy2d(name, 100, seed=5)
    xa, ya = make_toy2d_any(name, 100, seed=5)
    np.testing.assert_array_equal(x, xa)  # within make_toy2d's range: the same points
    with pytest.raises(ValueError, match=rf"expected 2\.\.6 classes for '{name}', got 7"):
        make_toy2d_any(name, 100, seed=0, classes=7)


def test_circles_beyond_two_are_rings_of_known_radii() -> None:
    x, y = make_toy2d_any("circles", 400, seed=0, noise=0.0, classes=4)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 2.5 * (4 - y) / 4, atol=1e-5)


def test_bad_settings_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"expected classes as an int in 2\.\.6, got 7"):
        PlaygroundConfig(dataset="blobs", classes=7)
    with pytest.raises(ValueError, match="expected each hidden layer's units as an int in 1..4096, got 0"):
        PlaygroundConfig(hidden=(8, 0))
    with pytest.raises(ValueError, match="expected labels in 0..1"):
        Playground(PlaygroundConfig(dataset="custom", classes=2), np.zeros((4, 2)), np.array([0, 1, 2, 1]))


def test_clicked_points_train_go_in_the_link_rounded_and_show_in_the_lesson() -> None:
    added = ((0.123, -1.987, 1), (2.5, -2.5, 0), (2.6, -2.4, 0), (2.4, -2.6, 0))
    config = PlaygroundConfig(dataset="moons", points=100, hidden=(4,), added=added)
    assert config.added[:2] == ((0.12, -1.99, 1), (2.5, -2.5, 0))  # rounded to 0.01 plane units
    query = config_to_query(config, 3)
    assert query["add"] == "0.12,-1.99,1;2.5,-2.5,0;2.6,-2.4,0;2.4,-2.6,0"
    assert config_from_query(query) == (config, 3)
    assert "add" not in config_to_query(PlaygroundConfig(), 0)  # no clicked points: a short link
    plain, edited = Playground(replace(config, added=())), Playground(config)
    assert len(edited.x_train) == len(plain.x_train) + 4 and len(edited.x_test) == len(plain.x_test)
    assert np.allclose(edited.x_train[-4:-2].numpy(), [[0.12, -1.99], [2.5, -2.5]])
    assert edited.y_train[-4:].tolist() == [1, 0, 0, 0]
    assert edited.grid == plain.grid  # the view stays the drawn data's
    # around (2.5, -2.5), far below the moons, the plain run is sure of class 1; the clicked class-0 points pull
    # class 0's probability there up by orders of magnitude
    plain.step(120)
    edited.step(120)
    corner = PlaneGrid((2.45, 2.55, -2.55, -2.45), 2)
    assert plain.probabilities(corner)[..., 0].max() < 0.01 and edited.probabilities(corner)[..., 0].min() > 0.2
    assert "add=0.12,-1.99,1;2.5,-2.5,0" in lesson_html(edited)


def test_bad_clicked_points_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"expected added points as \(x, y, class\).*class in 0\.\.1"):
        PlaygroundConfig(added=((0.0, 0.0, 2),))
    with pytest.raises(ValueError, match="expected added points"):
        PlaygroundConfig(added=((float("nan"), 0.0, 0),))
    with pytest.raises(ValueError, match=r"the link's add='1,2' is not a valid added"):
        config_from_query({"add": "1,2"})

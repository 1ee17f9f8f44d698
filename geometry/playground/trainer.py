"""The Playground's trainer: a small MLP on a 2D data set, stepped in-process one epoch at a time.

A `PlaygroundConfig` is everything that determines a run (data set, classes, noise, seed, network, optimiser); a
`Playground` holds the network, its optimiser and the data, and `step` trains whole epochs. Training is
deterministic for a config: the network is initialised and the batches are shuffled from the config's seed alone,
so epoch N is the same network however the epochs were grouped into redraws, and a link that carries the config and
the epoch (`config_to_query`, `config_from_query`) reproduces the lesson.

Coordinates are points of the plane (the data's own units, about [-3, 3]); distances are Euclidean in the plane.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from geometry.data.toy2d import TOY2D_ANY_CLASSES, TOY2D_NAMES, make_toy2d_any
from geometry.models.architectures import MLP, SMOOTH_ACTIVATIONS
from geometry.models.handle import ModelHandle
from geometry.models.training import OPTIMIZERS, GradientActivation
from geometry.runtime.validate import check_int, check_positive

__all__ = [
    "PLAYGROUND_ACTIVATIONS",
    "PLAYGROUND_DATASETS",
    "Frame",
    "Playground",
    "PlaygroundConfig",
    "PlaneGrid",
    "config_from_query",
    "config_to_query",
]

PlaygroundActivation = Literal["relu", "tanh", "silu", "gelu", "sigmoid"]
PLAYGROUND_ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "silu", "gelu", "sigmoid")
PLAYGROUND_DATASETS: tuple[str, ...] = (*TOY2D_NAMES, "custom")  # "custom": points the teacher uploaded or clicked
# Liu et al.'s defaults for activated gradients (the Train view's defaults too): g -> 0.3 arctan(4.5 g)
GA_ALPHA, GA_BETA = 0.3, 4.5
_MAX_UNITS = 4096  # per layer: far past what stays live on a laptop, a guard against typos, not a teaching cap


@dataclass(frozen=True)
class PlaygroundConfig:
    """Everything that determines a Playground run (what the URL carries, with the epoch)."""

    dataset: str = "moons"  # one of PLAYGROUND_DATASETS
    classes: int = 2  # 2..6 (custom data: the number of labels)
    noise: float = 0.2  # standard deviation of the data's Gaussian noise, in plane units
    seed: int = 0  # draws the points, splits them, initialises the network and shuffles the batches
    points: int = 400  # points drawn in all (train + test)
    test_fraction: float = 0.3  # share of the points held out as the test set, in [0, 0.9]
    hidden: tuple[int, ...] = (8, 8)  # units per hidden layer (empty: a linear classifier)
    activation: str = "relu"  # one of PLAYGROUND_ACTIVATIONS
    optimizer: str = "adam"  # "adam" | "sgd" (momentum 0.9)
    lr: float = 0.03
    batch_size: int = 16
    l2: float = 0.0  # L2 penalty on the weights (not the biases): loss + l2/2 * sum(w^2)
    activated_gradients: bool = False  # g -> 0.3 arctan(4.5 g) before the optimiser step (Liu et al.)
    added: tuple[tuple[float, float, int], ...] = ()  # points the teacher clicked in: (x, y, class), training only

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "added", _check_added(self.added, self.classes))
        if self.dataset not in PLAYGROUND_DATASETS:
            raise ValueError(f"expected dataset as one of {', '.join(PLAYGROUND_DATASETS)}, got {self.dataset!r}")
        lo, hi = TOY2D_ANY_CLASSES
        if check_int("classes", self.classes, lo) > hi and self.dataset != "custom":
            raise ValueError(f"expected classes as an int in {lo}..{hi}, got {self.classes!r}")
        if isinstance(self.noise, bool) or not (isinstance(self.noise, (int, float)) and 0 <= self.noise < math.inf):
            raise ValueError(f"expected noise as a number >= 0, got {self.noise!r}")
        check_int("seed", self.seed, 0)
        check_int("points", self.points, 2 * self.classes)
        if isinstance(self.test_fraction, bool) or not 0 <= self.test_fraction <= 0.9:
            raise ValueError(f"expected test_fraction as a number in [0, 0.9], got {self.test_fraction!r}")
        for h in self.hidden:
            if not 1 <= h <= _MAX_UNITS:
                raise ValueError(f"expected each hidden layer's units as an int in 1..{_MAX_UNITS}, got {h}")
        if self.activation not in PLAYGROUND_ACTIVATIONS:
            raise ValueError(
                f"expected activation as one of {', '.join(PLAYGROUND_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer as one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        check_positive("lr", self.lr)
        check_int("batch_size", self.batch_size, 1)
        if isinstance(self.l2, bool) or not (isinstance(self.l2, (int, float)) and 0 <= self.l2 < math.inf):
            raise ValueError(f"expected l2 as a number >= 0, got {self.l2!r}")

    @property
    def piecewise_linear(self) -> bool:
        """ReLU networks are piecewise affine: their linear regions are exact (`geometry.playground.linear_regions`)."""
        return self.activation == "relu"

    @property
    def smooth(self) -> bool:
        return self.activation in SMOOTH_ACTIVATIONS


# -- the link -------------------------------------------------------------------------------------------------------

_QUERY_NAMES = {
    "dataset": "set",  # not "data": the sidebar's links use ?data= for its own data set
    "classes": "k",
    "noise": "noise",
    "seed": "seed",
    "points": "n",
    "test_fraction": "test",
    "hidden": "layers",
    "activation": "act",
    "optimizer": "opt",
    "lr": "lr",
    "batch_size": "batch",
    "l2": "l2",
    "activated_gradients": "ga",
    "added": "add",
}
ADDED_DECIMALS = 2  # clicked points are rounded to 0.01 plane units: short links, and the link is exact
MAX_ADDED = 500  # clicked points kept (a link of about 8 kB at most)


def _check_added(added: Any, classes: int) -> tuple[tuple[float, float, int], ...]:
    """``added`` as a tuple of (x, y, class) with x, y rounded to `ADDED_DECIMALS` and class in 0..classes-1."""
    out = []
    try:
        for x, y, k in added:
            point = (round(float(x), ADDED_DECIMALS), round(float(y), ADDED_DECIMALS), int(k))
            if not (math.isfinite(point[0]) and math.isfinite(point[1]) and 0 <= point[2] < classes):
                raise ValueError
            out.append(point)
    except (TypeError, ValueError):
        raise ValueError(
            f"expected added points as (x, y, class) with finite x, y and class in 0..{classes - 1}, got {added!r}"
        ) from None
    if len(out) > MAX_ADDED:
        raise ValueError(f"expected at most {MAX_ADDED} added points, got {len(out)}")
    return tuple(out)


def _added_text(added: tuple[tuple[float, float, int], ...]) -> str:
    """``((0.5, -1.25, 2), ...)`` -> ``"0.5,-1.25,2;..."``."""
    return ";".join(f"{x!r},{y!r},{k}" for x, y, k in added)


def _parse_added(text: str) -> tuple[tuple[float, float, int], ...]:
    points = []
    for part in filter(None, text.split(";")):
        x, y, k = part.split(",")
        points.append((float(x), float(y), int(k)))
    return tuple(points)


def config_to_query(config: PlaygroundConfig, epoch: int) -> dict[str, str]:
    """The config and the epoch as URL query parameters (short names, plain text: ``layers=8-8&act=relu&epoch=40``).
    Clicked points, when there are any, as ``add=x,y,class;x,y,class`` (coordinates to 0.01)."""
    out = {"epoch": str(int(epoch))}
    for name, value in asdict(config).items():
        if name == "added":
            if value:
                out[_QUERY_NAMES[name]] = _added_text(config.added)
            continue
        if name == "hidden":
            text = "-".join(str(h) for h in value) or "0"
        elif isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        out[_QUERY_NAMES[name]] = text
    return out


def config_from_query(
    params: Mapping[str, str], default: PlaygroundConfig | None = None
) -> tuple[PlaygroundConfig, int]:
    """(config, epoch) from query parameters written by `config_to_query`; parameters that are missing keep
    ``default``'s values (default: `PlaygroundConfig()`). Raises ValueError naming the parameter that cannot be read.
    """
    config = default or PlaygroundConfig()
    changes: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(PlaygroundConfig)}
    for name, short in _QUERY_NAMES.items():
        if short not in params:
            continue
        text = str(params[short]).strip()
        try:
            if name == "hidden":
                changes[name] = () if text in ("", "0") else tuple(int(h) for h in text.split("-"))
            elif name == "added":
                changes[name] = _parse_added(text)
            elif name == "activated_gradients":
                changes[name] = text in ("1", "true", "True")
            elif types[name] in ("int", int):
                changes[name] = int(text)
            elif types[name] in ("float", float):
                changes[name] = float(text)
            else:
                changes[name] = text
        except ValueError:
            raise ValueError(f"the link's {short}={text!r} is not a valid {name}") from None
    epoch = 0
    if "epoch" in params:
        try:
            epoch = check_int("epoch", int(str(params["epoch"])), 0)
        except ValueError:
            raise ValueError(f"the link's epoch={params['epoch']!r} is not an epoch count") from None
    return replace(config, **changes), epoch


# -- the plane ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaneGrid:
    """A square view of the plane sampled on ``resolution`` x ``resolution`` pixel centres; row 0 is the top."""

    extent: tuple[float, float, float, float]  # (x_min, x_max, y_min, y_max) in plane units
    resolution: int

    @classmethod
    def around(cls, points: np.ndarray, resolution: int = 100) -> PlaneGrid:
        """A square view centred at 0 holding ``points`` (N, 2) with a 10% border and at least [-3, 3]^2."""
        half = max(3.0, 1.1 * float(np.abs(points).max())) if len(points) else 3.0
        return cls((-half, half, -half, half), check_int("resolution", resolution, 2))

    @property
    def xs(self) -> np.ndarray:
        x0, x1, _, _ = self.extent
        step = (x1 - x0) / self.resolution
        return x0 + step * (np.arange(self.resolution) + 0.5)

    @property
    def ys(self) -> np.ndarray:
        """Row coordinates, top (largest y) first."""
        _, _, y0, y1 = self.extent
        step = (y1 - y0) / self.resolution
        return y1 - step * (np.arange(self.resolution) + 0.5)

    def points(self) -> torch.Tensor:
        """Pixel centres as a float32 ``(resolution**2, 2)`` tensor, row-major (row 0 = top)."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32))

    def to_pixels(self, points: np.ndarray, scale: int = 1) -> np.ndarray:
        """Plane points ``(N, 2)`` -> (column, row) pixel coordinates (floats) of an image ``scale`` times larger."""
        x0, x1, y0, y1 = self.extent
        size = self.resolution * scale
        cols = (points[:, 0] - x0) / (x1 - x0) * size
        rows = (y1 - points[:, 1]) / (y1 - y0) * size
        return np.stack([cols, rows], axis=1)


@dataclass(frozen=True)
class Frame:
    """One recorded epoch: the region map on the Playground's grid and the epoch's measurements."""

    epoch: int
    labels: np.ndarray  # (R, R) uint8: the predicted class at each pixel (row 0 = top)
    confidence: np.ndarray  # (R, R) uint8: the top class probability x 255
    measures: dict[str, float]  # the `Playground.history` entry of this epoch


MAX_FRAMES = 200  # recorded epochs kept for the lesson (about 20 kB each at 100 x 100)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: the Playground's networks are tiny, and on a busy 2-core machine
    torch's thread pool costs far more than it gains (measured: one epoch 28 ms on one thread, several times that on
    two threads under load). Process-wide while it lasts; the previous count comes back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- the trainer ----------------------------------------------------------------------------------------------------


def draw_data(config: PlaygroundConfig) -> tuple[np.ndarray, np.ndarray]:
    """The config's points ``(points, 2)`` float32 and labels int64 (a built-in set; "custom" has none to draw)."""
    if config.dataset == "custom":
        raise ValueError("a custom data set has no points to draw: pass its points and labels to Playground")
    return make_toy2d_any(config.dataset, config.points, seed=config.seed, noise=config.noise, classes=config.classes)


class Playground:
    """A network, its optimiser and its data; `step` trains epochs, `history` records each one.

    ``points``/``labels``: a custom data set (N, 2) float / (N,) int in 0..classes-1; None draws the config's set.
    """

    def __init__(
        self, config: PlaygroundConfig, points: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> None:
        if not isinstance(config, PlaygroundConfig):
            raise TypeError(f"expected a PlaygroundConfig, got {type(config).__name__}")
        if points is None:
            points, labels = draw_data(config)
        points, labels = _check_data(points, labels, config.classes)
        self.config = config
        rng = np.random.default_rng(config.seed + 7919)  # the split: its own stream, apart from the drawing
        order = rng.permutation(len(points))
        n_test = int(round(config.test_fraction * len(points)))
        n_test = min(n_test, len(points) - 1)
        test, train = order[:n_test], order[n_test:]
        x_train, y_train = points[train], labels[train]
        if config.added:  # the teacher's points train; the view stays the drawn data's
            x_train = np.concatenate([x_train, np.array([p[:2] for p in config.added], dtype=np.float32)])
            y_train = np.concatenate([y_train, np.array([p[2] for p in config.added], dtype=np.int64)])
        self.x_train, self.y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
        self.x_test, self.y_test = torch.from_numpy(points[test]), torch.from_numpy(labels[test])
        self.grid = PlaneGrid.around(points)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.network = MLP((2,), config.classes, hidden=config.hidden, activation=config.activation)  # type: ignore[arg-type]
        self.network.train()
        self._params = list(self.network.parameters())
        self._weights = [p for name, p in self.network.named_parameters() if name.endswith("weight")]
        if config.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(self._params, lr=config.lr)
        else:
            self.optimizer = torch.optim.SGD(self._params, lr=config.lr, momentum=0.9)
        self._activate = GradientActivation(GA_ALPHA, GA_BETA) if config.activated_gradients else None
        self._generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self.history: list[dict[str, float]] = [self._measure()]
        self.frames: list[Frame] = []  # the recorded epochs, for the exported lesson
        self._record_every = 1
        self._record()

    @property
    def num_classes(self) -> int:
        return self.config.classes

    def step(self, epochs: int = 1) -> None:
        """Train ``epochs`` whole epochs (shuffled mini-batches of ``batch_size``); appends to `history`.

        Raises ValueError (and keeps the network of the last finite epoch) when the loss diverges.
        """
        with single_thread():
            for _ in range(check_int("epochs", epochs, 0)):
                self._epoch()

    def _epoch(self) -> None:
        """One shuffled pass over the training points, then measure and record."""
        order = torch.randperm(len(self.x_train), generator=self._generator)
        state = [p.detach().clone() for p in self._params]
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            loss = F.cross_entropy(self.network(self.x_train[idx]), self.y_train[idx])
            if self.config.l2:
                loss = loss + 0.5 * self.config.l2 * sum((w * w).sum() for w in self._weights)
            if not torch.isfinite(loss.detach()):
                with torch.no_grad():
                    for p, saved in zip(self._params, state, strict=True):
                        p.copy_(saved)
                raise ValueError(
                    f"training diverged in epoch {self.epoch + 1} (the loss became {float(loss)}): "
                    f"lower the learning rate (now {self.config.lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self._activate is not None:
                self._activate(self._params)
            self.optimizer.step()
        self.epoch += 1
        self.history.append(self._measure())
        self._record()

    def train_to(self, epoch: int) -> None:
        """Train until `epoch` epochs are done (a shared link's epoch); nothing when it is there already."""
        self.step(max(0, check_int("epoch", epoch, 0) - self.epoch))

    def _record(self) -> None:
        """Keep this epoch's region map when it falls on the recording stride; past `MAX_FRAMES` frames, keep every
        other one and double the stride (a long run keeps an even sample of its epochs)."""
        if self.epoch % self._record_every:
            return
        probs = self.probabilities(self.grid)
        labels = probs.argmax(axis=2).astype(np.uint8)
        confidence = np.round(probs.max(axis=2) * 255).astype(np.uint8)
        self.frames.append(Frame(self.epoch, labels, confidence, dict(self.history[-1])))
        if len(self.frames) > MAX_FRAMES:
            self._record_every *= 2
            self.frames = [f for f in self.frames if f.epoch % self._record_every == 0]

    @torch.no_grad()
    def _measure(self) -> dict[str, float]:
        self.network.eval()
        out: dict[str, float] = {"epoch": float(self.epoch)}
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if len(x):
                logits = self.network(x)
                out[f"{split}_loss"] = float(F.cross_entropy(logits, y))
                out[f"{split}_accuracy"] = float((logits.argmax(1) == y).float().mean())
            else:
                out[f"{split}_loss"] = out[f"{split}_accuracy"] = float("nan")
        self.network.train()
        return out

    @torch.no_grad()
    def probabilities(self, grid: PlaneGrid | None = None) -> np.ndarray:
        """Class probabilities on ``grid`` (default: the data's view, 100 x 100): float32 ``(R, R, K)``."""
        grid = grid or self.grid
        self.network.eval()
        with single_thread():
            logits = self.network(grid.points())
        self.network.train()
        return torch.softmax(logits, dim=1).numpy().reshape(grid.resolution, grid.resolution, -1)

    @torch.no_grad()
    def unit_activations(self, grid: PlaneGrid | None = None) -> list[np.ndarray]:
        """Each hidden layer's activations on ``grid``: one float32 ``(units, R, R)`` array per layer."""
        grid = grid or self.grid
        self.network.eval()
        h = grid.points()
        out = []
        for layer in self.network.body:
            h = layer(h)
            if not isinstance(layer, (torch.nn.Linear, torch.nn.Flatten)):
                out.append(h.T.reshape(-1, grid.resolution, grid.resolution).numpy().copy())
        self.network.train()
        return out

    def handle(self, name: str = "playground") -> ModelHandle:
        """A frozen copy of the current network as a `ModelHandle` on the plane (unbounded inputs, no
        normalisation): what DeepFool and the other views take."""
        copy = MLP((2,), self.num_classes, hidden=self.config.hidden, activation=self.config.activation)  # type: ignore[arg-type]
        copy.load_state_dict(self.network.state_dict())
        return ModelHandle.from_module(
            copy,
            input_shape=(2,),
            class_names=[f"class {i}" for i in range(self.num_classes)],
            name=name,
            device="cpu",
            input_range=None,
        )


def _check_data(points: Any, labels: Any, classes: int) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float32)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {points.shape}")
    if labels.shape != (len(points),):
        raise ValueError(f"expected one label per point ({len(points)}), got labels of shape {labels.shape}")
    if not np.isfinite(points).all():
        raise ValueError("expected finite point coordinates, got NaN or infinity")
    if len(points) < 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("expected at least 2 points with integer labels")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"expected labels in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    return points, labels.astype(np.int64)

"""The Playground on images: the small digits CNN stepped epoch by epoch, seen through a fixed slice of its input.

A `DigitsConfig` is everything that determines a run (the CNN's activation and widths, the optimiser, the seed and
the three test digits the slice passes through); a `DigitsPlayground` holds the network, its optimiser and the
8x8 digits (scikit-learn's, `geometry.load_dataset("digits")`), and `step` trains whole epochs. The slice is the
plane through the three chosen test digits (`geometry.slices.planes.three_image_plane`), evaluated densely on a
``resolution`` x ``resolution`` grid (`geometry.slices.evaluate.evaluate_slice`) after each redraw: it stays fixed
while the network changes, so the regions are seen to form.

Coordinates on the slice are L2 distances in [0, 1] pixel space (the plane's own units). Training is deterministic
for a config (the initialisation and the batches come from the seed alone), as in `geometry.playground.trainer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from geometry.data.datasets import Dataset, load_dataset
from geometry.models.architectures import SMOOTH_ACTIVATIONS, build_architecture
from geometry.models.handle import ModelHandle
from geometry.models.training import OPTIMIZERS
from geometry.playground.trainer import PLAYGROUND_ACTIVATIONS, single_thread
from geometry.runtime.validate import check_int, check_positive
from geometry.slices.evaluate import SliceResult, evaluate_slice
from geometry.slices.planes import Plane, three_image_plane

__all__ = ["DIGITS_ANCHORS", "DigitsConfig", "DigitsFrame", "DigitsPlayground"]

DIGITS_ANCHORS: tuple[int, int, int] = (14, 0, 15)  # test digits "0", "1", "7" of the fixed split
_MAX_CHANNELS = 256  # a guard against typos, not a teaching cap


@dataclass(frozen=True)
class DigitsConfig:
    """Everything that determines a digits run. The default CNN is narrower than the built-in ``digits-cnn-*``
    (8/16 channels, 32 hidden units instead of 32/64, 128) so that an epoch and a 64 x 64 slice stay near 0.1 s on
    one core: it still reaches about 90% test accuracy in a few epochs."""

    activation: str = "relu"  # one of PLAYGROUND_ACTIVATIONS
    pool: str = "max"  # "max" | "avg" (avg keeps a smooth activation's network smooth)
    channels: tuple[int, int] = (8, 16)  # channels of the two conv blocks
    hidden: int = 32  # units of the hidden linear layer
    optimizer: str = "adam"  # "adam" | "sgd" (momentum 0.9)
    lr: float = 0.003
    batch_size: int = 64
    seed: int = 0  # initialises the network and shuffles the batches
    anchors: tuple[int, int, int] = DIGITS_ANCHORS  # test-set indices of the three digits the slice passes through
    resolution: int = 64  # the slice's grid points per side

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "anchors", tuple(int(a) for a in self.anchors))
        if self.activation not in PLAYGROUND_ACTIVATIONS:
            raise ValueError(
                f"expected activation as one of {', '.join(PLAYGROUND_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.pool not in ("max", "avg"):
            raise ValueError(f"expected pool as 'max' or 'avg', got {self.pool!r}")
        if len(self.channels) != 2 or not all(1 <= c <= _MAX_CHANNELS for c in self.channels):
            raise ValueError(f"expected two channel counts in 1..{_MAX_CHANNELS}, got {self.channels}")
        check_int("hidden", self.hidden, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"expected optimizer as one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        check_positive("lr", self.lr)
        check_int("batch_size", self.batch_size, 1)
        check_int("seed", self.seed, 0)
        if len(self.anchors) != 3 or len(set(self.anchors)) != 3:
            raise ValueError(f"expected three distinct test-digit indices, got {self.anchors}")
        if not 8 <= check_int("resolution", self.resolution, 2) <= 256:
            raise ValueError(f"expected resolution in 8..256, got {self.resolution}")

    @property
    def smooth(self) -> bool:
        return self.activation in SMOOTH_ACTIVATIONS and self.pool == "avg"


@dataclass(frozen=True)
class DigitsFrame:
    """One recorded epoch: the slice's labels and confidence, row 0 = the top (largest b)."""

    epoch: int
    labels: np.ndarray  # (R, R) uint8: predicted digit at each grid point
    confidence: np.ndarray  # (R, R) uint8: top-1 probability x 255
    measures: dict[str, float]  # the `DigitsPlayground.history` entry of this epoch


class DigitsPlayground:
    """The small CNN, its optimiser, the digits and the fixed slice; `step` trains epochs, `history` records each."""

    def __init__(self, config: DigitsConfig, *, train: Dataset | None = None, test: Dataset | None = None) -> None:
        if not isinstance(config, DigitsConfig):
            raise TypeError(f"expected a DigitsConfig, got {type(config).__name__}")
        self.config = config
        train = train or load_dataset("digits", "train")
        test = test or load_dataset("digits", "test")
        if max(config.anchors) >= len(test.images) or min(config.anchors) < 0:
            raise ValueError(f"expected anchors among the {len(test.images)} test digits, got {config.anchors}")
        self.x_train, self.y_train = train.images, train.labels
        self.x_test, self.y_test = test.images, test.labels
        self.class_names = tuple(test.class_names)
        self.input_shape = tuple(int(s) for s in self.x_train.shape[1:])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.network = self._build()
        self.network.train()
        params = list(self.network.parameters())
        if config.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr)
        else:
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
        self._generator = torch.Generator().manual_seed(config.seed)
        i, j, k = config.anchors
        self.anchor_labels = tuple(int(self.y_test[a]) for a in config.anchors)
        names = tuple(
            f"{self.class_names[y]} (test #{a})" for y, a in zip(self.anchor_labels, config.anchors, strict=True)
        )
        self.plane: Plane = three_image_plane(self.x_test[i], self.x_test[j], self.x_test[k], names=names)
        self.epoch = 0
        self.history: list[dict[str, float]] = [self._measure()]
        self.frames: list[DigitsFrame] = []
        self.slice: SliceResult = self._record()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """The slice's view (a_min, a_max, b_min, b_max) in L2 [0, 1] pixel units."""
        assert self.plane.extent_hint is not None
        return self.plane.extent_hint

    def _build(self) -> torch.nn.Module:
        c = self.config
        return build_architecture(
            "cnn",
            input_shape=self.input_shape,
            num_classes=len(self.class_names),
            channels=c.channels,
            hidden=c.hidden,
            activation=c.activation,
            pool=c.pool,
        )

    def step(self, epochs: int = 1) -> None:
        """Train ``epochs`` whole epochs, then evaluate the slice once (`slice`). Raises ValueError (and keeps the
        last finite epoch's network) when the loss diverges."""
        epochs = check_int("epochs", epochs, 0)
        if not epochs:
            return
        with single_thread():
            for _ in range(epochs):
                self._epoch()
        self.slice = self._record()

    def train_to(self, epoch: int) -> None:
        self.step(max(0, check_int("epoch", epoch, 0) - self.epoch))

    def _epoch(self) -> None:
        params = list(self.network.parameters())
        state = [p.detach().clone() for p in params]
        order = torch.randperm(len(self.x_train), generator=self._generator)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            loss = F.cross_entropy(self.network(self.x_train[idx]), self.y_train[idx])
            if not torch.isfinite(loss.detach()):
                with torch.no_grad():
                    for p, saved in zip(params, state, strict=True):
                        p.copy_(saved)
                raise ValueError(
                    f"training diverged in epoch {self.epoch + 1} (the loss became {float(loss)}): "
                    f"lower the learning rate (now {self.config.lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.epoch += 1
        self.history.append(self._measure())

    @torch.no_grad()
    def _measure(self) -> dict[str, float]:
        self.network.eval()
        out: dict[str, float] = {"epoch": float(self.epoch)}
        with single_thread():
            for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
                logits = self.network(x)
                out[f"{split}_loss"] = float(F.cross_entropy(logits, y))
                out[f"{split}_accuracy"] = float((logits.argmax(1) == y).float().mean())
        self.network.train()
        return out

    def _record(self) -> SliceResult:
        """Evaluate the fixed slice now (dense, not cached: the network changes every epoch) and keep the frame."""
        with single_thread():
            result = evaluate_slice(self.handle(), self.plane, extent=self.extent, resolution=self.config.resolution)
        labels = result.labels[::-1].astype(np.uint8)  # rows of a slice go up in b; an image's row 0 is the top
        confidence = np.round(result.probability[::-1] * 255).astype(np.uint8)
        self.frames.append(DigitsFrame(self.epoch, labels, confidence, dict(self.history[-1])))
        return result

    def handle(self, name: str = "playground-digits") -> ModelHandle:
        """A frozen copy of the current network as a `ModelHandle` on [0, 1] images (what the slice and the other
        views take)."""
        copy = self._build()
        copy.load_state_dict(self.network.state_dict())
        return ModelHandle.from_module(
            copy, input_shape=self.input_shape, class_names=self.class_names, name=name, device="cpu"
        )

    def anchor_pixels(self, scale: int = 1) -> np.ndarray:
        """The three digits' (column, row) pixel positions (floats) on the slice image ``resolution * scale`` wide.

        Grid point j of the slice sits at ``a_min + j * (a_max - a_min) / (R - 1)`` and is drawn as pixel j, centre
        j + 0.5; rows are flipped (row 0 = largest b)."""
        a0, a1, b0, b1 = self.extent
        n = self.config.resolution
        ab = np.array(list(self.plane.anchors.values()), dtype=np.float64)
        cols = (ab[:, 0] - a0) / (a1 - a0) * (n - 1) + 0.5
        rows = (b1 - ab[:, 1]) / (b1 - b0) * (n - 1) + 0.5
        return np.stack([cols, rows], axis=1) * scale

"""`ModelHandle`: a classifier that takes [0, 1] images, with everything the views need to know about it.

The handle folds the model's preprocessing (resize, mean/std normalisation) into one
differentiable module, so every distance, margin and curvature the library reports is in the
same unit: L2 in [0, 1] pixel space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geometry.runtime.compute import CancelToken, default_device, map_batches
from geometry.runtime.fingerprint import module_fingerprint

Progress = Any  # Callable[[float, str], None] | None, spelled out in each docstring


class Preprocess(nn.Module):
    """[0, 1] images -> the network's expected input: optional bilinear resize, then (x - mean) / std.

    ``note`` says where the normalisation came from when nobody stated it (e.g. "torchvision's ImageNet
    preset"); it is shown in `ModelHandle.pipeline` and does not change the function.
    """

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        resize: tuple[int, int] | None = None,
        note: str | None = None,
    ) -> None:
        super().__init__()
        self.resize = tuple(int(s) for s in resize) if resize is not None else None
        self.note = note
        self.register_buffer("mean", _channel_tensor(mean, 0.0), persistent=False)
        self.register_buffer("std", _channel_tensor(std, 1.0), persistent=False)
        if (self.std <= 0).any():
            raise ValueError(f"std must be positive, got {list(self.std.flatten().tolist())}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is not None and x.dim() == 4 and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False, antialias=False)
        if x.dim() == 4:
            return (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        # part of the model's fingerprint (geometry.runtime.fingerprint.module_structure): say all that acts
        return (
            f"mean={_numbers(self.mean)}, std={_numbers(self.std)}, resize={self.resize}, "
            "mode=bilinear, align_corners=False, antialias=False"
        )

    def describe(self, input_shape: Sequence[int], input_range: tuple[float, float] | None = (0.0, 1.0)) -> str:
        """The steps from an input of ``input_shape`` (values in ``input_range``; None: unbounded) to the network's
        input, in words."""
        where = f"in [{input_range[0]:g}, {input_range[1]:g}]" if input_range is not None else "(unbounded)"
        steps = [f"input {'x'.join(map(str, input_shape))} {where}"]
        if self.resize is not None and len(input_shape) == 3 and tuple(input_shape[-2:]) != self.resize:
            h, w = input_shape[-2:]
            steps.append(f"resize {h}x{w} -> {self.resize[0]}x{self.resize[1]} bilinear")
        if bool((self.mean == 0).all()) and bool((self.std == 1).all()):
            steps.append("no normalisation")
        else:
            steps.append(f"normalise (x - mean) / std, mean {_numbers(self.mean)}, std {_numbers(self.std)}")
        if self.note:
            steps[-1] += f" ({self.note})"
        return "; ".join(steps)


def _numbers(values: torch.Tensor) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values.flatten().tolist()) + ")"


def _channel_tensor(values: Sequence[float] | None, default: float) -> torch.Tensor:
    if values is None:
        return torch.tensor([default], dtype=torch.float32)
    return torch.as_tensor(list(values), dtype=torch.float32).flatten()


def probe_output(module: nn.Module, input_shape: tuple[int, ...], device: torch.device, name: str) -> int:
    """Run ``module`` once on two zero inputs ``(2, *input_shape)`` and return its number of classes K.

    A classifier must return logits ``(2, K)`` with K >= 2; anything else (a 1-D or 0-D output, a 3-D one, one
    logit, an input shape the network does not accept) is a ValueError that says what came, here rather than as an
    IndexError in some later computation.
    """
    try:
        with torch.inference_mode():
            out = module(torch.zeros(2, *input_shape, device=device))
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"{name} does not accept inputs of shape (N, {_shape_str(input_shape)}): {_first_line(err)}; check the "
            "input shape (and resize) given for it"
        ) from None
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        what = f"a {type(out).__name__} of {len(out)} tensors"
    elif isinstance(out, torch.Tensor):
        if out.dim() == 2 and out.shape[0] == 2 and out.shape[1] >= 2:
            return int(out.shape[1])
        what = f"a tensor of shape {tuple(out.shape)}"
    else:
        what = f"a {type(out).__name__}"
    raise ValueError(
        f"{name} is not a classifier Boundary Atlas can measure: for a batch of 2 inputs of shape "
        f"({_shape_str(input_shape)}) it returned {what}, expected logits of shape (2, K) with K >= 2 classes"
    )


def _looks_like_0_255(x: torch.Tensor, input_range: tuple[float, float] | None) -> bool:
    """Whether a float batch for a [0, 1] model holds 0-255 pixel values: whole numbers, some above 1.5.

    Points of a slice may leave [0, 1] a little, but they are never all whole numbers.
    """
    if input_range != (0.0, 1.0) or not x.numel() or float(x.max()) <= 1.5:
        return False
    return bool((x == x.round()).all())


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


class NonFiniteOutputError(ValueError):
    """The model returned NaN or infinite logits."""


@dataclass(eq=False)
class ModelHandle:
    """An eval-mode classifier on [0, 1] inputs.

    ``module`` maps a float32 batch ``(N, *input_shape)`` in [0, 1] pixel space to logits ``(N, K)``;
    it is differentiable, so gradient-based code (DeepFool, curvature, other libraries) uses it directly.
    """

    module: nn.Module  # preprocessing + network, eval mode, on `device`
    name: str  # human-readable name, e.g. "digits-cnn-silu"
    input_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for vectors (toy 2D sets)
    class_names: tuple[str, ...]  # K names
    fingerprint: str  # hash of the function: module classes and configuration, weights, preprocessing
    device: torch.device
    input_range: tuple[float, float] | None = (0.0, 1.0)  # None: unbounded inputs (toy 2D sets)
    card: dict[str, Any] = field(default_factory=dict)  # model card (built-in models) or {} for user models
    smooth: bool | None = None  # True: no piecewise-linear activations; None: unknown

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pipeline(self) -> str:
        """What happens to an input before the network sees it, in words, e.g.
        "input 3x32x32 in [0, 1]; resize 32x32 -> 224x224 bilinear; normalise (x - mean) / std, mean (...), std (...)".
        """
        if isinstance(self.module, PreprocessedModel):
            return self.module.preprocess.describe(self.input_shape, self.input_range)
        return f"input {'x'.join(map(str, self.input_shape))} straight into the network"

    @property
    def network(self) -> nn.Module:
        """The network without the preprocessing (its input is normalised, not [0, 1])."""
        return self.module.network if isinstance(self.module, PreprocessedModel) else self.module

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        input_shape: Sequence[int],
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        resize: tuple[int, int] | None = None,
        name: str | None = None,
        device: torch.device | str | None = None,
        input_range: tuple[float, float] | None = (0.0, 1.0),
        card: dict[str, Any] | None = None,
        normalisation_note: str | None = None,
    ) -> ModelHandle:
        """Wrap any ``nn.Module`` classifier.

        Note: the module is put in eval mode and moved to ``device`` (pass a copy to keep yours as it is).
        ``mean``/``std`` are the per-channel normalisation the network expects on [0, 1] inputs;
        ``resize`` an (H, W) the network wants when it differs from ``input_shape`` (bilinear);
        ``normalisation_note`` where mean/std came from when the user did not state them (shown in `pipeline`).
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
        input_shape = tuple(int(s) for s in input_shape)
        if not input_shape or any(s <= 0 for s in input_shape):
            raise ValueError(f"input_shape must be positive sizes, e.g. (3, 32, 32); got {input_shape}")
        device = torch.device(device) if device is not None else default_device()
        wrapped = PreprocessedModel(Preprocess(mean, std, resize, normalisation_note), module).to(device).eval()
        name = name or type(module).__name__
        k = probe_output(wrapped, input_shape, device, name)
        if class_names is None:
            class_names = tuple(f"class {i}" for i in range(k))
        if len(class_names) != k or (num_classes is not None and num_classes != k):
            given = len(class_names) if class_names is not None else num_classes
            raise ValueError(f"{name} returns {k} logits per input, but {given} classes were given")
        fingerprint = module_fingerprint(f"{name}|{mean}|{std}|{resize}", wrapped)
        return cls(
            module=wrapped,
            name=name,
            input_shape=input_shape,
            class_names=tuple(str(c) for c in class_names),
            fingerprint=fingerprint,
            device=device,
            input_range=input_range,
            card=dict(card or {}),
            smooth=_is_smooth(module),
        )

    def check_inputs(self, x: torch.Tensor, *, check_range: bool = False) -> torch.Tensor:
        """Validate a batch (or one input) against ``input_shape``; returns a float32 batch ``(N, *input_shape)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"expected a torch.Tensor of shape (N, {_shape_str(self.input_shape)}), got {type(x).__name__}"
            )
        if tuple(x.shape) == self.input_shape:
            x = x.unsqueeze(0)
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.name} expects inputs of shape (N, {_shape_str(self.input_shape)}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            if self.input_range is not None and x.dtype != torch.bool and x.numel() and float(x.max()) > 1:
                raise ValueError(
                    f"{self.name} takes float images in [{self.input_range[0]:g}, {self.input_range[1]:g}], got "
                    f"{x.dtype} values up to {float(x.max()):g} (0-255 pixels?); convert with x.float() / 255"
                )
            x = x.float()
        elif _looks_like_0_255(x, self.input_range):
            raise ValueError(
                f"{self.name} takes images in [0, 1], got whole numbers up to {float(x.max()):g} (0-255 pixels?); "
                "divide them by 255"
            )
        if check_range and self.input_range is not None and x.numel():
            lo, hi = self.input_range
            if float(x.min()) < lo - 1e-6 or float(x.max()) > hi + 1e-6:
                raise ValueError(
                    f"expected images in [{lo:g}, {hi:g}], got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]"
                )
        return x.float()

    def logits(
        self,
        x: torch.Tensor,
        *,
        batch_size: int | None = None,
        progress: Progress = None,
        cancel: CancelToken | None = None,
    ) -> torch.Tensor:
        """Logits ``(N, K)`` float32 on the CPU for inputs ``(N, *input_shape)``; batched, under inference mode.

        Raises ``NonFiniteOutputError`` when the model returns NaN or infinity.
        """
        x = self.check_inputs(x)

        def forward(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return self.module(batch).float()

        out = map_batches(forward, x, batch_size=batch_size, device=self.device, progress=progress, cancel=cancel)
        _check_finite(out, self.name)
        return out

    def probabilities(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Softmax probabilities ``(N, K)``."""
        return torch.softmax(self.logits(x, **kwargs), dim=1)

    def predict(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Predicted class indices ``(N,)`` int64."""
        return self.logits(x, **kwargs).argmax(dim=1)

    def accuracy(self, x: torch.Tensor, labels: torch.Tensor, **kwargs: Any) -> float:
        """Share of inputs whose prediction equals ``labels``."""
        if len(x) == 0:
            raise ValueError("accuracy of an empty set is undefined")
        return float((self.predict(x, **kwargs) == labels.to(torch.int64)).float().mean())

    def describe(self) -> dict[str, Any]:
        """A short summary for the UI: name, classes, input shape, parameters, device."""
        return {
            "name": self.name,
            "input shape": "x".join(map(str, self.input_shape)),
            "classes": self.num_classes,
            "parameters": parameter_count(self.module),
            "device": str(self.device),
            "fingerprint": self.fingerprint,
            "pipeline": self.pipeline,
        }


class PreprocessedModel(nn.Module):
    """``network(preprocess(x))``: the differentiable map from [0, 1] inputs to logits."""

    def __init__(self, preprocess: Preprocess, network: nn.Module) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(x))


_PIECEWISE_LINEAR = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)


def _is_smooth(module: nn.Module) -> bool | None:
    """False if the module contains a piecewise-linear layer; None for scripted modules (cannot tell)."""
    if isinstance(module, torch.jit.ScriptModule):
        return None
    return not any(isinstance(m, _PIECEWISE_LINEAR) for m in module.modules())


def _check_finite(logits: torch.Tensor, name: str) -> None:
    bad = ~torch.isfinite(logits).all(dim=1)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise NonFiniteOutputError(
            f"model {name!r} returned NaN or infinite logits for {int(bad.sum())} of {len(logits)} inputs "
            f"(first at index {first}); check its weights and that inputs are in [0, 1]"
        )


def _shape_str(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

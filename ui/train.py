"""Streamlit glue of the Train view: settings -> training configs, training with a progress bar, comparisons.

Trained models go to `geometry.user_models_dir()` under a name that carries a hash of their options, so the same
settings find the same model again (training is deterministic for a seed) and the sidebar's model picker lists
them. Comparisons (DeepFool distances, curvatures, input-space slices) come from geometry's disk cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st
import torch

from geometry.boundary.curvature import CurvatureResult, cached_curvature
from geometry.boundary.deepfool import DeepFoolResult, cached_deepfool
from geometry.boundary.options import CurvatureOptions, DeepFoolOptions
from geometry.models.handle import ModelHandle
from geometry.models.training import TrainConfig, TrainResult, train_cached, trained_model
from geometry.slices.evaluate import SliceResult, cached_slice
from geometry.slices.planes import input_space_plane
from ui import keys, state
from ui.progress import progress_bar, run_cached

# the comparison's curvature: the most curved direction from each end, no random directions (the Curvature page with
# these options reads the same cache entry)
CURVATURE = CurvatureOptions(k=1, num_random=0)

# data set -> (label, architectures offered, defaults). Small enough to train in a minute or two on a laptop CPU.
DATASETS: dict[str, str] = {
    "moons": "two moons (2D: the slice is the whole input space)",
    "circles": "two circles (2D)",
    "spirals-3": "three spirals (2D)",
    "blobs-4": "four blobs (2D)",
    "digits": "8x8 handwritten digits (images)",
}
ARCHITECTURES: dict[str, list[str]] = {"digits": ["mlp", "cnn"]}  # 2D sets: mlp only
# SGD (the setting of Liu et al.'s defaults; with Adam the activation mostly rescales small gradients, which Adam's
# normalisation undoes). The digits CNN at 0.2 shows the paper's point: plain SGD stalls on some seeds where activated
# gradients train (bench/bench_activated_gradients.py, docs/BENCHMARKS.md "Activated gradients").
DEFAULTS: dict[str, dict[str, Any]] = {
    "toy": {"epochs": 60, "batch_size": 64},
    "digits": {"epochs": 15, "batch_size": 64, "augment_shift": 1},
}
DEFAULT_LR: dict[tuple[str, str], float] = {("toy", "mlp"): 0.05, ("digits", "mlp"): 0.1, ("digits", "cnn"): 0.2}
ARCH_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("toy", "mlp"): {"hidden": [64, 64, 64]},
    ("digits", "mlp"): {"hidden": [256, 128]},
    ("digits", "cnn"): {"pool": "avg"},
}


def is_toy(dataset: str) -> bool:
    return dataset != "digits"


@dataclass(frozen=True)
class TrainSettings:
    """What the page's widgets chose."""

    dataset: str
    arch: str
    activation: str
    epochs: int
    lr: float
    optimizer: str
    seed: int
    alpha: float
    beta: float
    on: str  # "gradient" | "momentum"
    twin: bool  # also train the same model without activated gradients


def configs(s: TrainSettings) -> list[TrainConfig]:
    """The model with activated gradients, and (``twin``) the same model trained plainly first."""
    group = "toy" if is_toy(s.dataset) else "digits"
    base: dict[str, Any] = {**DEFAULTS[group], "epochs": s.epochs, "lr": s.lr}
    options = dict(ARCH_OPTIONS[(group, s.arch)])
    if s.arch == "cnn" and s.activation == "relu":
        options["pool"] = "max"  # the ReLU CNN of the built-in models: piecewise linear all through
    out = []
    variants = (["none"] if s.twin else []) + ["arctan"]
    for ga in variants:
        config = TrainConfig(
            "pending",
            s.arch,
            s.dataset,
            s.activation,
            options,
            optimizer=s.optimizer,
            grad_activation=ga,
            ga_alpha=s.alpha,
            ga_beta=s.beta,
            grad_activation_on=s.on,
            seed=s.seed,
            **base,
        )
        tag = "ga" if ga == "arctan" else "plain"
        name = f"{s.dataset}-{s.arch}-{s.activation}-{tag}-{config.fingerprint()}"
        description = (
            f"Trained in the Train view on {s.dataset}"
            + (
                f" with activated gradients ({s.alpha:g}·arctan({s.beta:g}·g) on the {s.on})"
                if ga == "arctan"
                else " without activated gradients"
            )
            + "."
        )
        out.append(replace(config, name=name, description=description))
    return out


def label(config: TrainConfig) -> str:
    return "with activated gradients" if config.grad_activation == "arctan" else "plain"


def existing(config: TrainConfig) -> TrainResult | None:
    return trained_model(config)


def train(config: TrainConfig) -> TrainResult:
    """Train (or find) ``config`` with a progress bar and a Stop button."""
    found = trained_model(config)
    if found is not None:
        return found
    with progress_bar(f"Training the model {label(config)}", stop_key=f"stop-train-{config.name}") as progress:
        return train_cached(config, progress=progress)


def handle(name: str) -> ModelHandle:
    return state.builtin_handle(name, state.current_device())


def use_in_sidebar(name: str) -> None:
    """on_click callback: make ``name`` the sidebar's model (callbacks run before the sidebar's widgets exist)."""
    st.session_state[keys.MODEL_SOURCE] = "Built-in"
    st.session_state[keys.BUILTIN_MODEL] = name


def deepfool_options(model: ModelHandle) -> DeepFoolOptions:
    """Untargeted DeepFool, kept inside the input range when the model has one."""
    return DeepFoolOptions(clip=model.input_range is not None)


def deepfool_distances(model: ModelHandle, x: torch.Tensor) -> DeepFoolResult:
    """Untargeted DeepFool on ``x`` (the distance to the nearest boundary per input), cached."""
    return run_cached(
        cached_deepfool,
        model,
        x,
        deepfool_options(model),
        label=f"DeepFool on {model.name}",
        stop_key=f"stop-deepfool-{model.name}",
    )


def curvatures(model: ModelHandle, x: torch.Tensor) -> CurvatureResult:
    """The most curved principal directions (k=1 from each end) at each input's DeepFool point, cached."""
    return run_cached(
        cached_curvature,
        model,
        x,
        CURVATURE,
        label=f"Curvature on {model.name}",
        stop_key=f"stop-curvature-{model.name}",
    )


def largest_curvature(result: CurvatureResult) -> np.ndarray:
    """Per input, the principal curvature of largest magnitude (NaN where DeepFool failed)."""
    k = result.curvatures.numpy()
    with np.errstate(invalid="ignore"):
        return np.nanmax(np.abs(k), axis=1) if k.size else np.full(len(k), np.nan)


def input_space_slice(model: ModelHandle, points: torch.Tensor) -> SliceResult:
    """The whole input space of a 2D model around ``points`` (the data set), 256 x 256, adaptive, cached."""
    plane = input_space_plane(points)
    with progress_bar(f"Regions of {model.name}", stop_key=f"stop-slice-{model.name}") as progress:
        return cached_slice(model, plane, extent=plane.extent_hint, resolution=256, progress=progress)


def download_bytes(result: TrainResult) -> bytes:
    return result.weights_path.read_bytes()

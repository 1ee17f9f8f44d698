"""Streamlit glue of the Detection view: the detector's evaluation, one input's verdict, the clean reference set.

The evaluation comes from geometry's memoized `cached_evaluate_detection`, with a progress bar and a Stop button
only while it computes.
"""

from __future__ import annotations

import torch

from geometry.boundary.deepfool import deepfool
from geometry.data.datasets import Dataset
from geometry.inspection.detection import DetectionResult, DetectionVerdict, cached_evaluate_detection, detect
from geometry.inspection.options import DetectionOptions
from geometry.models.handle import ModelHandle
from ui import state
from ui.progress import run_cached


def clean_reference(handle: ModelHandle, data: Dataset) -> Dataset | None:
    """The clean inputs a detection threshold is set on: the sidebar's data set itself, except for uploaded images,
    where it is the data set the sidebar would use for this model (the one its model card names, else the first
    built-in data set with its input shape). None when there is no such data set."""
    if data.split != "upload":
        return data
    names = state.compatible_datasets(handle)
    return state.dataset(names[0]) if names else None


def detection(
    handle: ModelHandle, x: torch.Tensor, *, fpr: float, num_directions: int, h: float, seed: int
) -> DetectionResult:
    """The detector evaluated on the clean inputs ``x`` and their DeepFool perturbations."""
    options = DetectionOptions(fpr=fpr, num_directions=num_directions, h=h, seed=seed)
    label = f"Detection on {len(x)} clean inputs and their DeepFool perturbations"
    return run_cached(cached_evaluate_detection, handle, x, options=options, label=label)


def perturbed(handle: ModelHandle, x: torch.Tensor) -> tuple[torch.Tensor, bool, float]:
    """The DeepFool-perturbed version of one input (clipped to its range), whether it flipped, and ||r||."""
    res = deepfool(handle, x, clip=handle.input_range is not None)
    return x + res.perturbation, bool(res.converged[0]), float(res.norm[0])


def verdict(
    handle: ModelHandle, x: torch.Tensor, threshold: float, *, num_directions: int, h: float, seed: int
) -> DetectionVerdict:
    """The detector's verdict on ``x`` at ``threshold``."""
    return detect(handle, x, threshold, options=DetectionOptions(num_directions=num_directions, h=h, seed=seed))

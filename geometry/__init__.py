"""Boundary Atlas's compute library: the geometry of image classifiers, without the UI.

Works from a script, a notebook or the batch command line (``python -m geometry ...``);
never imports Streamlit. Images are float tensors ``(N, C, H, W)`` in [0, 1] pixel space and every
distance is L2 in that space (see DESIGN.md).
"""

from __future__ import annotations

from geometry.architectures import build_architecture
from geometry.cache import DiskCache, cache_key, default_cache
from geometry.compute import CancelToken, Cancelled, default_device, map_batches
from geometry.data import Dataset, builtin_datasets, load_dataset, load_image_folder, load_uploaded_images
from geometry.handle import ModelHandle, NonFiniteOutputError
from geometry.loading import builtin_models, load_model, model_card, read_state_dict, torchvision_architectures

__all__ = [
    "CancelToken",
    "Cancelled",
    "Dataset",
    "DiskCache",
    "ModelHandle",
    "NonFiniteOutputError",
    "build_architecture",
    "builtin_datasets",
    "builtin_models",
    "cache_key",
    "default_cache",
    "default_device",
    "load_dataset",
    "load_image_folder",
    "load_model",
    "load_uploaded_images",
    "map_batches",
    "model_card",
    "read_state_dict",
    "torchvision_architectures",
]

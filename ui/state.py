"""Cached access to models and data sets, and the `Selection` the sidebar makes for every page.

Streamlit never hashes tensors or weights here: model handles are cached by their source
(a built-in name, or the sha256 of an uploaded file) and datasets by name, and results of long
computations come from geometry's disk cache, keyed by fingerprints.

Imports go one way: `ui.page` (what pages call) -> `ui.sidebar` (draws the selection) -> this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

import geometry
from geometry.data.datasets import Dataset
from geometry.runtime import paths
from ui import keys

DEFAULT_MODEL = "digits-cnn-silu"


def image_label(data: Dataset, i: int) -> str:
    """How every page names a sample: ``"#17 · seven"`` (its index in ``data`` and its true class), or
    ``"#3 · unlabelled"`` for uploads and other samples without a label."""
    y = int(data.labels[i])
    return f"#{i} · {data.class_names[y] if 0 <= y < len(data.class_names) else 'unlabelled'}"


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked: the model, the data set, and the images every page works on."""

    handle: geometry.ModelHandle
    dataset: Dataset  # the data set images are picked from (uploads form a data set of their own)
    indices: tuple[int, ...]  # picked positions in `dataset`

    @property
    def images(self) -> torch.Tensor:
        """Picked inputs ``(n, *input_shape)`` in [0, 1] (or unbounded for 2D toy sets)."""
        return self.dataset.images[list(self.indices)]

    @property
    def labels(self) -> torch.Tensor:
        """True labels of the picked inputs ``(n,)``, -1 where unknown (uploads)."""
        return self.dataset.labels[list(self.indices)]

    def caption(self, position: int) -> str:
        """The `image_label` of the ``position``-th picked image."""
        return image_label(self.dataset, self.indices[position])


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def builtin_handle(name: str, device: str) -> geometry.ModelHandle:
    return geometry.load_model(name, device=device)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def file_handle(digest: str, path: str, device: str, options: tuple[tuple[str, Any], ...]) -> geometry.ModelHandle:
    """A user model from a file; ``digest`` (sha256 of the file) is the cache key, not the bytes."""
    return geometry.load_model(path, device=device, **dict(options))


def save_upload(data: bytes, filename: str) -> tuple[str, str]:
    """Store an uploaded model file in this process's private upload folder (mode 0700); returns (sha256, path)."""
    return paths.save_upload(data, filename)


@st.cache_resource(show_spinner="Reading the images…", max_entries=8)
def _uploaded_images(
    key: tuple[tuple[str, str], ...], input_shape: tuple[int, ...], _files: tuple[tuple[str, bytes], ...]
) -> Dataset:
    return geometry.load_uploaded_images(list(_files), input_shape=input_shape)


def uploaded_images(files: list[tuple[str, bytes]], input_shape: tuple[int, ...]) -> Dataset:
    """Uploaded images ``(name, bytes)`` as a data set, decoded once per set of files (keyed by name and sha256)
    rather than on every rerun: a large PNG costs hundreds of MB to decode."""
    key = tuple((name, hashlib.sha256(data).hexdigest()) for name, data in files)
    return _uploaded_images(key, tuple(input_shape), tuple(files))


@st.cache_resource(show_spinner="Loading data…", max_entries=16)
def dataset(name: str, split: str = "test", image_size: int | None = None) -> Dataset:
    return geometry.load_dataset(name, split=split, image_size=image_size)


def compatible_datasets(handle: geometry.ModelHandle) -> list[str]:
    """Built-in data sets whose inputs have the model's input shape (its own data set first)."""
    own = handle.card.get("dataset")
    names = [own] if own else []
    for name in geometry.builtin_datasets():
        if name in names:
            continue
        try:
            if tuple(dataset(name).input_shape) == tuple(handle.input_shape):
                names.append(name)
        except Exception:  # an unavailable optional data set simply is not offered
            continue
    return names


def comparable_models(handle: geometry.ModelHandle) -> list[str]:
    """Built-in models and models trained here, other than ``handle``, with its input shape and number of classes:
    the second models a view can compare with."""
    out = []
    for name in geometry.builtin_models() + geometry.user_models():
        if name == handle.name:
            continue
        try:
            card = geometry.model_card(name)
        except ValueError:  # a damaged card of a trained model is not offered
            continue
        same_shape = tuple(card.get("input_shape", ())) == tuple(handle.input_shape)
        if same_shape and len(card.get("class_names", ())) == handle.num_classes:
            out.append(name)
    return out


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    return devices


def current_device() -> str:
    """The device the sidebar's setting names ("cpu" before the sidebar has run)."""
    return st.session_state.get(keys.DEVICE, "cpu")

"""Session-state keys that more than one module reads: the sidebar's widgets and the selection it makes.

A widget's key is also the name its value has in ``st.session_state``, so the sidebar, app.py (a shared link sets
the model and data set before the sidebar is drawn), the pages (a trained model is selected from the Train view)
and the tests must spell it the same way: they all take it from here. Keys that one page alone uses stay in that
page, with the page's prefix (``slices_``, ``feat_``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geometry.data.datasets import Dataset

SELECTION = "selection"  # the `ui.state.Selection` the sidebar made in this run

# the model
MODEL_SOURCE = "model_source"  # "Built-in", "Upload" or "Path"
BUILTIN_MODEL = "builtin_model"  # the name of a built-in model or one trained here
MODEL_UPLOAD = "model_upload"
MODEL_PATH = "model_path"
MODEL_ARCH = "model_arch"
MODEL_TIMM_WEIGHTS = "model_timm_weights"
MODEL_SHAPE = "model_shape"
MODEL_CLASSES = "model_classes"
MODEL_NORM = "model_norm"
MODEL_ACTIVATION = "model_activation"  # a built-in architecture's activation, when the file does not record it
MODEL_POOL = "model_pool"  # the cnn architecture's pooling, when the file does not record it
MODEL_RESIZE = "model_resize"  # resize inputs to (H, W) before the network: only when asked

# the images
DATASET = "dataset"  # a built-in data set's name, or one of the sidebar's upload choices
DATASET_MODEL = "dataset_model"  # the model the data set was chosen with (a new model brings its own data set)
IMAGE_UPLOAD = "image_upload"
IMAGE_FOLDER = "image_folder"
IMAGE_FOLDER_MAP = "image_folder_map"  # folder=class pairs for folders not named like the model's classes
BROWSE_CLASS = "browse_class"

# settings
DEVICE = "device"  # "cpu" or "cuda"
CACHE_ROOT = "cache_root"
CLEAR_CACHE = "clear_cache"

SIDEBAR_RECORD = "sidebar_record"
"""The session's own record of the sidebar's choices ({widget key: value}), under a key that is not a widget's:
Streamlit drops a widget's state when a page switch interrupts a run before the browser reported that widget, and
the sidebar then restores the value from here instead of falling back to the widget's default (issue 14.3)."""

LINK_APPLIED = "link_applied"  # a shared link's ?model=...&data=... has been applied to the sidebar once


def picked(data: Dataset) -> str:
    """The key of the images picked from ``data`` (a list of indices; each data set keeps its own picks)."""
    return f"picked::{data.name}::{data.split}::{len(data)}"

"""The sidebar every page shares: model picker, data set and image picker, device and cache settings.

It lives in app.py's run (not in a page), so its widgets and their values survive page switches.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

import geometry
from geometry.data.datasets import DATASET_DESCRIPTIONS
from geometry.figures import image_to_uint8
from geometry.runtime.cache import default_cache, set_cache_root
from ui import state

MAX_PICKED = 12
UPLOAD_IMAGES = "Upload images…"
IMAGE_FOLDER = "Image folder…"


def render_sidebar() -> state.Selection:
    """Draw the sidebar and return the selection; also stores it in session state for the pages."""
    with st.sidebar:
        device = _settings_device()
        handle = _model_picker(device)
        sel = _image_picker(handle)
        _settings(handle)
    st.session_state[state.SELECTION_KEY] = sel
    return sel


# -- model ---------------------------------------------------------------------------------------


def _model_picker(device: str) -> geometry.ModelHandle:
    st.header("Model")
    source = st.radio(
        "Source",
        ["Built-in", "Upload", "Path"],
        horizontal=True,
        key="model_source",
        help="A shipped model, a weights/TorchScript file you upload, or a file on this machine.",
    )
    if source == "Built-in":
        return _builtin_picker(device)
    try:
        handle = _file_model(source, device)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        st.error(f"Could not load that model: {err}")
        handle = None
    if handle is None:
        st.info(f"Showing the built-in **{state.DEFAULT_MODEL}** until a model is loaded.")
        return state.builtin_handle(state.DEFAULT_MODEL, device)
    st.success(
        f"Loaded **{handle.name}**: {handle.num_classes} classes, input {'×'.join(map(str, handle.input_shape))}"
    )
    return handle


def _builtin_picker(device: str) -> geometry.ModelHandle:
    builtin = geometry.builtin_models()
    trained = geometry.user_models()  # trained on this machine (the Train view or python -m geometry.models.training)
    names = builtin + trained
    if not builtin:
        st.error(
            "No built-in models found in assets/models: re-train them with `python -m geometry train --all-presets`."
        )
        st.stop()
    cards = {}
    for n in names:
        try:
            cards[n] = geometry.model_card(n)
        except ValueError:  # a damaged card of a trained model is not offered
            continue
    names = [n for n in names if n in cards]
    if st.session_state.get("builtin_model") not in names:
        st.session_state["builtin_model"] = state.DEFAULT_MODEL if state.DEFAULT_MODEL in names else names[0]

    def describe(n: str) -> str:
        accuracy = cards[n].get("test_accuracy")
        text = f"{n}  ({accuracy:.1%})" if isinstance(accuracy, (int, float)) else n
        return text + ("  · trained here" if n in trained else "")

    name = st.selectbox("Built-in model", names, key="builtin_model", format_func=describe)
    st.caption(cards[name].get("description", ""))
    return state.builtin_handle(name, device)


def _file_model(source: str, device: str) -> geometry.ModelHandle | None:
    if source == "Upload":
        upload = st.file_uploader(
            "Weights (.safetensors, .pt, .pth) or TorchScript (.ts, .pt)",
            type=["safetensors", "pt", "pth", "ts", "ckpt"],
            key="model_upload",
        )
        if upload is None:
            return None
        digest, path = state.save_upload(upload.getvalue(), upload.name)
    else:
        path = st.text_input("Path to a weights or TorchScript file", key="model_path").strip()
        if not path:
            return None
        path = os.path.expanduser(path)
        digest = f"{path}:{os.path.getmtime(path) if os.path.exists(path) else 0}"
    arch = st.text_input(
        "Architecture",
        key="model_arch",
        placeholder="resnet18 (torchvision), cnn, mlp; empty for TorchScript",
        help="The architecture the state dict belongs to. Not needed for TorchScript archives.",
    ).strip()
    shape = st.text_input("Input shape (C, H, W)", value="3, 224, 224", key="model_shape")
    classes = st.text_input("Class names (comma-separated, optional)", key="model_classes")
    norm = st.text_input(
        "Normalisation mean | std (optional)", key="model_norm", placeholder="0.485,0.456,0.406 | 0.229,0.224,0.225"
    )
    options: dict[str, Any] = {"input_shape": _parse_floats(shape, "input shape", integer=True)}
    if arch:
        options["arch"] = arch
    if classes.strip():
        options["class_names"] = tuple(c.strip() for c in classes.split(","))
    if norm.strip():
        mean, _, std = norm.partition("|")
        options["mean"] = _parse_floats(mean, "mean")
        options["std"] = _parse_floats(std, "std")
    return state.file_handle(digest, path, device, tuple(sorted(options.items())))


def _parse_floats(text: str, what: str, *, integer: bool = False) -> tuple:
    try:
        values = tuple(
            (int if integer else float)(v) for v in text.replace("(", "").replace(")", "").split(",") if v.strip()
        )
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} is empty")
    return values


# -- images --------------------------------------------------------------------------------------


def _image_picker(handle: geometry.ModelHandle) -> state.Selection:
    st.header("Images")
    names = state.compatible_datasets(handle)
    is_image_model = len(handle.input_shape) == 3
    options = names + ([UPLOAD_IMAGES, IMAGE_FOLDER] if is_image_model else [])
    if st.session_state.get("dataset") not in options:
        st.session_state["dataset"] = options[0] if options else UPLOAD_IMAGES
    choice = st.selectbox(
        "Data set",
        options,
        key="dataset",
        format_func=lambda n: f"{n} — {DATASET_DESCRIPTIONS[n]}" if n in DATASET_DESCRIPTIONS else n,
    )
    data = _dataset_for(choice, handle)
    if data is None:
        data = state.dataset(names[0]) if names else None
        if data is None:
            st.error(f"No data set matches this model's input shape {handle.input_shape}: upload images of that size.")
            st.stop()
    return _pick(handle, data)


def _dataset_for(choice: str, handle: geometry.ModelHandle) -> geometry.Dataset | None:
    if choice == UPLOAD_IMAGES:
        files = st.file_uploader(
            "PNG or JPEG images", type=["png", "jpg", "jpeg"], accept_multiple_files=True, key="image_upload"
        )
        if not files:
            st.info("Upload images to analyse; until then the model's own data set is used.")
            return None
        try:
            return geometry.load_uploaded_images(
                [(f.name, f.getvalue()) for f in files], input_shape=handle.input_shape
            )
        except ValueError as err:
            st.error(str(err))
            return None
    if choice == IMAGE_FOLDER:
        folder = st.text_input("Folder with one subfolder per class", key="image_folder").strip()
        if not folder:
            return None
        try:
            data = geometry.load_image_folder(
                os.path.expanduser(folder), image_size=handle.input_shape[-1], channels=handle.input_shape[0]
            )
        except (ValueError, FileNotFoundError, OSError) as err:
            st.error(str(err))
            return None
        return data
    return state.dataset(choice)


def _pick(handle: geometry.ModelHandle, data: geometry.Dataset) -> state.Selection:
    key = f"picked::{data.name}::{data.split}::{len(data)}"
    picked: list[int] = [i for i in st.session_state.get(key, []) if 0 <= i < len(data)]
    if not picked:
        picked = list(range(min(3, len(data))))
    st.session_state[key] = picked

    def add(i: int) -> None:
        current = st.session_state[key]
        if i not in current:
            st.session_state[key] = (current + [i])[-MAX_PICKED:]

    is_image = data.images.dim() == 4
    if is_image and len(data) > 1 and data.split != "upload":
        class_names = ["any class"] + list(data.class_names)
        cls = st.selectbox(
            "Browse class", range(len(class_names)), format_func=lambda c: class_names[c], key="browse_class"
        )
        pool = range(len(data)) if cls == 0 else data.indices_of_class(cls - 1)
        shown = [int(i) for i in list(pool)[:8]]
        cols = st.columns(4)
        for n, i in enumerate(shown):
            with cols[n % 4]:
                st.image(image_to_uint8(data.images[i], min_size=48), caption=f"#{i}", width="stretch")
                st.button(
                    "+",
                    key=f"add::{key}::{i}",
                    on_click=add,
                    args=(i,),
                    help=f"pick image #{i}",
                    width="stretch",
                    disabled=i in picked,
                )
    cols = st.columns([3, 2])
    with cols[0]:
        index = st.number_input("By index", min_value=0, max_value=len(data) - 1, value=0, step=1, key=f"index::{key}")
    with cols[1]:
        st.button("Add", key=f"add-index::{key}", on_click=add, args=(int(index),), width="stretch")

    def label(i: int) -> str:
        y = int(data.labels[i])
        return f"#{i} · {data.class_names[y] if y >= 0 else 'unlabelled'}"

    chosen = st.multiselect("Picked", list(range(len(data))), key=key, format_func=label, max_selections=MAX_PICKED)
    if not chosen:
        st.warning("Pick at least one image; using the first one meanwhile.")
        chosen = [0]
    return state.Selection(handle=handle, dataset=data, indices=tuple(int(i) for i in chosen))


# -- settings ------------------------------------------------------------------------------------


def _settings_device() -> str:
    devices = state.available_devices()
    if st.session_state.get("device") not in devices:
        st.session_state["device"] = devices[0]
    return st.session_state["device"]


def _settings(handle: geometry.ModelHandle) -> None:
    with st.expander("Settings: device and cache"):
        st.selectbox(
            "Device",
            state.available_devices(),
            key="device",
            help="Where models run. CUDA is offered when a GPU is present.",
        )
        cache = default_cache()
        root = st.text_input(
            "Cache folder",
            value=str(cache.root),
            key="cache_root",
            help="Results are cached on disk here, shared by every user of this machine.",
        )
        if root and root != str(cache.root):
            set_cache_root(root)
            cache = default_cache()
        stats = cache.stats()
        st.caption(f"{stats.entries} cached results, {stats.bytes / 2**20:.1f} MiB")
        if st.button("Clear the cache", key="clear_cache"):
            cache.clear()
            st.toast("Cache cleared")
        st.caption(f"Model fingerprint `{handle.fingerprint[:12]}`")

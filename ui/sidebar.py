"""The sidebar every page shares: model picker, data set and image picker, device and cache settings.

It lives in app.py's run (not in a page), so its widgets and their values survive page switches. Its widget keys
are in `ui.keys`.

A page switch that interrupts a run can still make Streamlit drop a sidebar widget's state (it keeps only the
widgets the browser reported with the switch, and a widget being redrawn is not reported): the widget would then
come back at its default, the first model in the list. So every choice is also kept in the session's own record
(`keys.SIDEBAR_RECORD`, not a widget key) as soon as it is read, and a widget whose state is missing gets its value
back from there before it is drawn (`_restore`, `_remember`).
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

import geometry
from geometry.data.datasets import DATASET_DESCRIPTIONS
from geometry.figures import image_to_uint8
from geometry.models.architectures import ARCHITECTURES, FUNCTION_OPTIONS, option_choices
from geometry.runtime.cache import CACHE_ENV, default_cache
from geometry.runtime.errors import os_error_sentence
from geometry.runtime.paths import check_allowed_path, code_uploads_allowed
from ui import keys, state

MAX_PICKED = 12
UPLOAD_IMAGES = "Upload images…"
IMAGE_FOLDER = "Image folder…"


# The sidebar's widgets whose values the session's record keeps (file uploads cannot be set again, the picked
# images are kept per data set in `_pick`).
REMEMBERED = (
    keys.DEVICE,
    keys.MODEL_SOURCE,
    keys.BUILTIN_MODEL,
    keys.MODEL_PATH,
    keys.MODEL_ARCH,
    keys.MODEL_SHAPE,
    keys.MODEL_CLASSES,
    keys.MODEL_NORM,
    keys.MODEL_RESIZE,
    keys.MODEL_ACTIVATION,
    keys.MODEL_POOL,
    keys.DATASET,
    keys.IMAGE_FOLDER,
    keys.IMAGE_FOLDER_MAP,
    keys.BROWSE_CLASS,
)


def render_sidebar() -> state.Selection:
    """Draw the sidebar and return the selection; also stores it in session state for the pages."""
    _restore(*REMEMBERED)
    with st.sidebar:
        device = _settings_device()
        handle = _model_picker(device)
        sel = _image_picker(handle)
        _settings(handle)
    _remember(*REMEMBERED)
    st.session_state[keys.SELECTION] = sel
    return sel


def _record() -> dict[str, Any]:
    record = st.session_state.get(keys.SIDEBAR_RECORD)
    if not isinstance(record, dict):
        record = st.session_state[keys.SIDEBAR_RECORD] = {}
    return record


def _restore(*widget_keys: str) -> None:
    """Give back a widget the value the session chose when Streamlit dropped its state (never its default)."""
    record = _record()
    for key in widget_keys:
        if key not in st.session_state and key in record:
            st.session_state[key] = record[key]


def _remember(*widget_keys: str) -> None:
    """Keep the widgets' current values in the session's record (right after they are read, so a run interrupted
    later does not lose a change)."""
    record = _record()
    for key in widget_keys:
        if key in st.session_state:
            record[key] = st.session_state[key]


def apply_link() -> None:
    """On a session's first run, set the sidebar's model and data set from a shared link (``?model=...&data=...``).

    app.py calls it before drawing the sidebar; a page that can start a session by itself (Streamlit's pages-folder
    mode, AppTest after ``switch_page``) calls it too. Does nothing once applied, or when the sidebar's widgets
    already exist in this run.
    """
    if keys.LINK_APPLIED in st.session_state:
        return
    st.session_state[keys.LINK_APPLIED] = True
    for param, key in (("model", keys.BUILTIN_MODEL), ("data", keys.DATASET)):
        if param in st.query_params:
            try:
                st.session_state[key] = st.query_params[param]
            except StreamlitAPIException:  # the sidebar was drawn already in this run
                return


# -- model ---------------------------------------------------------------------------------------


def _model_picker(device: str) -> geometry.ModelHandle:
    st.header("Model")
    source = st.radio(
        "Source",
        ["Built-in", "Upload", "Path"],
        horizontal=True,
        key=keys.MODEL_SOURCE,
        help="A shipped model, a weights/TorchScript file you upload, or a file on this machine.",
    )
    _remember(keys.MODEL_SOURCE)
    if source == "Built-in":
        return _builtin_picker(device)
    try:
        handle = _file_model(source, device)
    except (ValueError, TypeError, OSError, RuntimeError) as err:  # OSError: a path the server may not read
        st.error(f"Could not load that model: {_sentence(err)}")
        handle = None
    if handle is None:
        st.info(f"Showing the built-in **{state.DEFAULT_MODEL}** until a model is loaded.")
        return state.builtin_handle(state.DEFAULT_MODEL, device)
    st.success(
        f"Loaded **{handle.name}**: {handle.num_classes} classes, input {'×'.join(map(str, handle.input_shape))}"
    )
    st.caption(f"What the network sees: {handle.pipeline}")
    return handle


def _builtin_picker(device: str) -> geometry.ModelHandle:
    builtin = geometry.builtin_models()
    trained = geometry.user_models()  # trained on this machine (the Train view or python -m geometry train)
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
    if st.session_state.get(keys.BUILTIN_MODEL) not in names:
        st.session_state[keys.BUILTIN_MODEL] = state.DEFAULT_MODEL if state.DEFAULT_MODEL in names else names[0]

    def describe(n: str) -> str:
        accuracy = cards[n].get("test_accuracy")
        text = f"{n}  ({accuracy:.1%})" if isinstance(accuracy, (int, float)) else n
        return text + ("  · trained here" if n in trained else "")

    name = st.selectbox("Built-in model", names, key=keys.BUILTIN_MODEL, format_func=describe)
    _remember(keys.BUILTIN_MODEL)
    st.caption(cards[name].get("description", ""))
    try:
        return state.builtin_handle(name, device)
    except (ValueError, TypeError, OSError, RuntimeError) as err:  # a damaged model trained here
        st.error(f"Could not load {name}: {err}")
        if name == state.DEFAULT_MODEL or state.DEFAULT_MODEL not in names:
            st.stop()
        st.info(f"Showing the built-in **{state.DEFAULT_MODEL}** instead.")
        return state.builtin_handle(state.DEFAULT_MODEL, device)


def _sentence(err: BaseException) -> str:
    """The error's own message, or for an OSError straight from the OS (``[Errno 13] ...``) a sentence."""
    if isinstance(err, OSError) and err.errno is not None:
        return os_error_sentence(err, "read", err.filename or "that path")
    return str(err)


def _file_model(source: str, device: str) -> geometry.ModelHandle | None:
    if source == "Upload":
        upload = st.file_uploader(
            "Weights (.safetensors, .pt, .pth) or TorchScript (.ts, .pt)",
            type=["safetensors", "pt", "pth", "ts", "ckpt"],
            key=keys.MODEL_UPLOAD,
        )
        if upload is None:
            return None
        digest, path = state.save_upload(upload.getvalue(), upload.name)
    else:
        path = st.text_input(
            "Path to a weights, TorchScript or torch.export file, or timm:<name> / hf:<folder>",
            key=keys.MODEL_PATH,
            help="timm:resnet18 (with a weights file below) or hf:/path/to/saved_pretrained/folder: the library's own "
            "configuration gives the input size, normalisation and class names.",
        ).strip()
        if not path:
            return None
        if path.startswith(("timm:", "hf:")):
            return _hub_model(path, device)
        path = str(check_allowed_path(path))  # before anything at the path is read
        digest = f"{path}:{os.path.getmtime(path) if os.path.exists(path) else 0}"
    arch = st.text_input(
        "Architecture",
        key=keys.MODEL_ARCH,
        placeholder="resnet18 (torchvision), cnn, mlp; empty for TorchScript",
        help="The architecture the state dict belongs to. Not needed for TorchScript archives.",
    ).strip()
    shape = st.text_input("Input shape (C, H, W)", value="3, 224, 224", key=keys.MODEL_SHAPE)
    classes = st.text_input("Class names (comma-separated, optional)", key=keys.MODEL_CLASSES)
    norm = st.text_input(
        "Normalisation mean | std (optional)", key=keys.MODEL_NORM, placeholder="0.485,0.456,0.406 | 0.229,0.224,0.225"
    )
    resize = st.text_input(
        "Resize to H, W (optional)",
        key=keys.MODEL_RESIZE,
        help="Bilinearly resize inputs to this size before the network; nothing is resized unless you ask.",
    )
    options: dict[str, Any] = {"input_shape": _parse_floats(shape, "input shape", integer=True)}
    if source == "Upload":
        options["allow_code"] = code_uploads_allowed()  # loading TorchScript runs its code: the operator decides
    if resize.strip():
        options["resize"] = _parse_floats(resize, "resize", integer=True)
    if arch:
        options["arch"] = arch
    if arch in ARCHITECTURES:
        stated = {}
        for option, key in (("activation", keys.MODEL_ACTIVATION), ("pool", keys.MODEL_POOL)):
            if option in FUNCTION_OPTIONS[arch]:
                value = st.selectbox(
                    option.capitalize(),
                    ["not stated", *option_choices(option)],
                    key=key,
                    help="What the weights cannot tell; needed unless the file records it (files saved here do).",
                )
                if value != "not stated":
                    stated[option] = value
        if stated:
            options["arch_options"] = tuple(sorted(stated.items()))
    if classes.strip():
        options["class_names"] = tuple(c.strip() for c in classes.split(","))
    if norm.strip():
        mean, _, std = norm.partition("|")
        options["mean"] = _parse_floats(mean, "mean")
        options["std"] = _parse_floats(std, "std")
    return state.file_handle(digest, path, device, tuple(sorted(options.items())))


def _hub_model(source: str, device: str) -> geometry.ModelHandle:
    """A timm or Hugging Face model: the library states its preprocessing; only weights and class names are asked."""
    options: dict[str, Any] = {}
    stamp = ""
    if source.startswith("hf:"):
        folder = source[3:]
        if os.path.exists(folder):  # a local folder (a hub id needs the internet): only inside the allowed roots
            source = "hf:" + str(check_allowed_path(folder))
            stamp = str(os.path.getmtime(source[3:]))
    else:
        weights = st.text_input(
            "Weights file for the timm model (optional: random weights without one)", key=keys.MODEL_TIMM_WEIGHTS
        ).strip()
        if weights:
            options["weights"] = str(check_allowed_path(weights))
            stamp = str(os.path.getmtime(options["weights"])) if os.path.exists(options["weights"]) else "0"
    classes = st.text_input("Class names (comma-separated, optional)", key=keys.MODEL_CLASSES)
    if classes.strip():
        options["class_names"] = tuple(c.strip() for c in classes.split(","))
    return state.file_handle(f"{source}:{stamp}", source, device, tuple(sorted(options.items())))


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
    # the data set follows the model: switching models (moons-mlp -> blobs-mlp) picks the new model's own data set,
    # so its points are not drawn on another model's regions (a link's data= on the first run is kept)
    own, previous = handle.card.get("dataset"), st.session_state.get(keys.DATASET_MODEL)
    if previous is not None and previous != handle.name and own in options:
        st.session_state[keys.DATASET] = own
    st.session_state[keys.DATASET_MODEL] = handle.name
    if st.session_state.get(keys.DATASET) not in options:
        st.session_state[keys.DATASET] = options[0] if options else UPLOAD_IMAGES
    choice = st.selectbox(
        "Data set",
        options,
        key=keys.DATASET,
        format_func=lambda n: f"{n} — {DATASET_DESCRIPTIONS[n]}" if n in DATASET_DESCRIPTIONS else n,
    )
    _remember(keys.DATASET)
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
            "PNG or JPEG images", type=["png", "jpg", "jpeg"], accept_multiple_files=True, key=keys.IMAGE_UPLOAD
        )
        if not files:
            st.info("Upload images to analyse; until then the model's own data set is used.")
            return None
        try:
            return state.uploaded_images([(f.name, f.getvalue()) for f in files], handle.input_shape)
        except (ValueError, TypeError) as err:
            st.error(str(err))
            return None
    if choice == IMAGE_FOLDER:
        folder = st.text_input("Folder with one subfolder per class", key=keys.IMAGE_FOLDER).strip()
        if not folder:
            return None
        mapping = st.text_input(
            "Folder = model class (optional)",
            key=keys.IMAGE_FOLDER_MAP,
            placeholder="ring=circle, misc=",
            help="Subfolders are matched to the model's classes by name; map the others here (empty: unlabelled).",
        )
        try:
            data = geometry.load_image_folder(
                check_allowed_path(folder),  # before anything in the folder is read or listed
                image_size=handle.input_shape[-1],
                channels=handle.input_shape[0],
                class_names=handle.class_names,
                label_map=_parse_label_map(mapping),
            )
        except (ValueError, FileNotFoundError, OSError) as err:
            st.error(str(err))
            return None
        for warning in data.warnings:
            st.warning(warning)
        return data
    return state.dataset(choice)


def _parse_label_map(text: str) -> dict[str, str | None] | None:
    """``"ring=circle, misc="`` -> ``{"ring": "circle", "misc": None}`` (None: unlabelled); empty text -> None."""
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    return {folder.strip(): cls.strip() or None for folder, _, cls in pairs} if pairs else None


def _pick(handle: geometry.ModelHandle, data: geometry.Dataset) -> state.Selection:
    key = keys.picked(data)
    _restore(key)
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
            "Browse class", range(len(class_names)), format_func=lambda c: class_names[c], key=keys.BROWSE_CLASS
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

    chosen = st.multiselect(
        "Picked",
        list(range(len(data))),
        key=key,
        format_func=lambda i: state.image_label(data, i),
        max_selections=MAX_PICKED,
    )
    if not chosen:
        st.warning("Pick at least one image; using the first one meanwhile.")
        chosen = [0]
    _remember(key)
    return state.Selection(handle=handle, dataset=data, indices=tuple(int(i) for i in chosen))


# -- settings ------------------------------------------------------------------------------------


def _settings_device() -> str:
    devices = state.available_devices()
    if st.session_state.get(keys.DEVICE) not in devices:
        st.session_state[keys.DEVICE] = devices[0]
    return st.session_state[keys.DEVICE]


def _settings(handle: geometry.ModelHandle) -> None:
    with st.expander("Settings: device and cache"):
        st.selectbox(
            "Device",
            state.available_devices(),
            key=keys.DEVICE,
            help="Where models run. CUDA is offered when a GPU is present.",
        )
        cache = default_cache()
        st.text_input(
            "Cache folder",
            value=str(cache.root),
            disabled=True,
            help=f"Results are cached on disk here, shared by every user of this server; the operator sets it "
            f"with {CACHE_ENV}.",
        )
        stats = cache.stats()
        st.caption(f"{stats.entries} cached results, {stats.bytes / 2**20:.1f} MiB")
        if st.button("Clear the cache", key=keys.CLEAR_CACHE):
            try:
                cache.clear()
                st.toast("Cache cleared")
            except ValueError as err:  # a folder without the cache's marker: nothing is deleted there
                st.error(str(err))
        st.caption(f"Model fingerprint `{handle.fingerprint[:12]}`")

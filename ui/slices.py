"""Streamlit glue of the Slices page: plane kinds, cached planes and slices, progress, URL parameters.

Planes and slices come from geometry's memoized functions (`geometry.runtime.memo`: keys from the model and image
fingerprints plus every option), so a repeated view, or the same view after a restart, is instant.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st
import torch

from geometry.boundary.deepfool import cached_deepfool
from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.slices import boundary_planes as BP
from geometry.slices import planes as P
from geometry.slices.evaluate import SliceResult, cached_slice
from geometry.slices.options import SliceOptions, normalize_extent
from ui.page import ERRORS
from ui.progress import run_cached
from ui.sidebar import apply_link as apply_link_to_sidebar

# UI kind key -> (label, one line)
KINDS: dict[str, tuple[str, str]] = {
    "normal": (
        "Boundary normal + random",
        "DeepFool's direction to the nearest (or a chosen) class, and a random "
        "direction orthogonal to it: the boundary runs across the view at the DeepFool distance.",
    ),
    "curvature": (
        "Normal + curvature direction",
        "the boundary normal at DeepFool's boundary point and the principal "
        "direction of largest curvature there: the view where the boundary bends most.",
    ),
    "two": ("Normals to two classes", "DeepFool's directions towards two chosen classes."),
    "random": ("Random pair", "two random Gaussian directions (seeded): what a typical direction looks like."),
    "three": ("Through three images", "the plane through three images (each lies on it, at known coordinates)."),
    "dct": ("DCT low / high frequency", "a low-frequency (u) and a high-frequency (v) DCT direction."),
    "custom": ("Upload (.npy)", "your own two directions: an .npy array of shape (2, *input shape)."),
    "input": ("Input space", "2D models: the plane is the whole input space (x1, x2)."),
}
RESOLUTIONS = [64, 128, 192, 256, 384, 512, 768, 1024]
NEAREST = -1  # "nearest class" in the target selectbox
MAX_SEED = 10_000  # the seed inputs' range is [0, MAX_SEED]


@dataclass(frozen=True)
class PlaneSpec:
    """Everything that defines a plane on the page (also what the URL stores)."""

    kind: str  # a key of KINDS
    x0: int  # dataset index of the origin image
    seed: int = 0
    target: int = NEAREST  # "normal": class to aim at, NEAREST for the nearest
    classes: tuple[int, int] = (0, 1)  # "two": the two classes
    images: tuple[int, ...] = ()  # "three": three dataset indices
    dct_block: int = 2  # "dct": block size of each band
    which: str = "positive"  # "curvature": most positive or most negative curvature
    upload: str = ""  # "custom": sha256 of the uploaded .npy


def available_kinds(handle: ModelHandle) -> list[str]:
    """Plane kinds this model supports (the input plane only for 2-feature toys, DCT only for images)."""
    toy = len(handle.input_shape) == 1
    kinds = ["input"] if toy and handle.input_shape == (2,) else []
    kinds += ["normal", "curvature"]
    if handle.num_classes > 2:
        kinds.append("two")
    kinds += ["random", "three"]
    if len(handle.input_shape) == 3:
        kinds.append("dct")
    kinds.append("custom")
    return kinds


def default_kind(handle: ModelHandle) -> str:
    kinds = available_kinds(handle)
    return "input" if "input" in kinds else ("normal" if "normal" in kinds else "random")


def _deepfool_anchor(handle: ModelHandle, x: torch.Tensor) -> dict[str, tuple[float, float]]:
    """``{"DeepFool point (class)": (x1, x2)}`` of a 2D input x (DeepFool through the disk cache); {} where it
    fails."""
    try:
        res = cached_deepfool(handle, x.unsqueeze(0))
    except ERRORS:
        return {}
    z = res.boundary_point[0].detach().cpu().double()
    if not bool(torch.isfinite(z).all()):
        z = x.double() + res.perturbation[0].detach().cpu().double()
    k = int(getattr(res, "boundary_class", res.label_reached)[0])
    k = k if 0 <= k < handle.num_classes else int(res.label_reached[0])
    zs = [float(v) for v in z.flatten()]
    return {f"DeepFool point ({handle.class_names[k]})": (zs[0], zs[1])} if all(np.isfinite(zs)) else {}


def build_plane(handle: ModelHandle, data: Dataset, spec: PlaneSpec, upload: bytes | None = None) -> P.Plane:
    """The plane of ``spec`` (through the disk cache). Raises ValueError/TypeError for bad choices."""
    n = len(data)
    for i in (spec.x0, *spec.images):
        if not 0 <= i < n:
            raise ValueError(f"expected image indices in [0, {n}), got {i}")
    x0 = data.images[spec.x0]
    if spec.kind == "input":
        names = {"x0": (float(x0[0]), float(x0[1]))}
        names.update(_deepfool_anchor(handle, x0))
        return P.input_space_plane(data.images, anchors=names)
    if spec.kind == "normal":
        target = None if spec.target == NEAREST else spec.target
        return BP.cached_normal_plane(handle, x0, target=target, seed=spec.seed)
    if spec.kind == "curvature":
        return BP.cached_curvature_plane(handle, x0, which=spec.which, seed=spec.seed)
    if spec.kind == "two":
        a, b = spec.classes
        return BP.cached_two_class_plane(handle, x0, a, b)
    if spec.kind == "random":
        return P.random_plane(x0, seed=spec.seed)
    if spec.kind == "three":
        if len(spec.images) != 3:
            raise ValueError(f"pick exactly three images for this plane, got {len(spec.images)}")
        i, j, k = spec.images
        return P.three_image_plane(data.images[i], data.images[j], data.images[k], names=(f"#{i}", f"#{j}", f"#{k}"))
    if spec.kind == "dct":
        size = min(handle.input_shape[1:])
        k = int(np.clip(spec.dct_block, 1, size // 2))
        return P.dct_plane(x0, low=(0, k), high=(size - k, k), seed=spec.seed)
    if spec.kind == "custom":
        if upload is None:
            raise ValueError(
                "upload an .npy file with two directions of shape (2, "
                f"{', '.join(map(str, handle.input_shape))}) to use this plane"
            )
        u, v = P.load_directions(upload, handle.input_shape)
        return P.custom_plane(x0, u, v)
    raise ValueError(f"expected a plane kind among {list(KINDS)}, got {spec.kind!r}")


def default_extent(plane: P.Plane, handle: ModelHandle) -> tuple[float, float, float, float]:
    """The plane's own hint, else +-2x DeepFool's distance at the origin, else a default."""
    if plane.extent_hint is not None:
        return plane.extent_hint
    fallback = None
    if plane.kind != "input space":
        try:
            dist = float(cached_deepfool(handle, plane.origin.unsqueeze(0)).norm[0])
            fallback = 2.0 * dist if np.isfinite(dist) and dist > 0 else None
        except (ValueError, RuntimeError):
            fallback = None
    return plane.default_extent(fallback)


def zoom_extent(extent: tuple[float, float, float, float], zoom: float) -> tuple[float, float, float, float]:
    """``extent`` scaled by ``zoom`` around its centre (zoom 2 shows twice the width)."""
    a0, a1, b0, b1 = extent
    ca, cb = (a0 + a1) / 2, (b0 + b1) / 2
    ha, hb = (a1 - a0) / 2 * zoom, (b1 - b0) / 2 * zoom
    return (ca - ha, ca + ha, cb - hb, cb + hb)


def compute_slice(
    handle: ModelHandle,
    plane: P.Plane,
    *,
    extent: Any,
    resolution: int,
    adaptive: bool,
    target_pair: tuple[int, int] | None,
    label: str = "",
) -> SliceResult:
    """The slice through the disk cache; while it computes, a progress bar and a Stop button
    (`ui.progress.Stopped` after a Stop)."""
    options = SliceOptions(extent=extent, resolution=resolution, adaptive=adaptive, target_pair=target_pair)
    return run_cached(cached_slice, handle, plane, options=options, label=f"Computing the slice{label}")


def upload_digest(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest()[:16] if data else ""


def npz_bytes(
    result: SliceResult, plane: P.Plane, class_names: tuple[str, ...], extra: Mapping[str, Any] | None = None
) -> bytes:
    """The slice's arrays, the plane basis and the class names as one .npz file."""
    arrays: dict[str, Any] = {**result.to_arrays(), **{f"plane_{k}": v for k, v in plane.to_arrays().items()}}
    arrays["class_names"] = np.array(class_names, dtype=np.str_)
    for k, v in (extra or {}).items():
        arrays[k] = np.asarray(v)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def class_ranking(handle: ModelHandle, x: torch.Tensor) -> list[int]:
    """Class indices by decreasing logit at one input ``x`` (the prediction first)."""
    return [int(k) for k in handle.logits(x.unsqueeze(0))[0].argsort(descending=True)]


def probabilities_at(handle: ModelHandle, plane: P.Plane, a: float, b: float) -> tuple[torch.Tensor, np.ndarray]:
    """The input at plane coordinates (a, b) and the model's probabilities there."""
    x = plane.point(a, b)
    return x, handle.probabilities(x.unsqueeze(0))[0].numpy()


# -- URL parameters ---------------------------------------------------------------------------------

QP_KEYS = (
    "plane",
    "x0",
    "seed",
    "target",
    "classes",
    "images",
    "dct",
    "which",
    "upload",
    "extent",
    "res",
    "adaptive",
    "pair",
    "shade",
    "dim",
    "model",
    "data",
    "model2",
    "a",
    "b",
)
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def parse_query_params(qp: Mapping[str, str]) -> dict[str, Any]:
    """Page settings from URL parameters; ValueError naming the first bad one."""
    out: dict[str, Any] = {}
    try:
        for key in QP_KEYS:
            if key not in qp:
                continue
            val = str(qp[key])
            if key == "plane":
                if val not in KINDS:
                    raise ValueError(f"expected one of {', '.join(KINDS)}, got {val!r}")
                out[key] = val
            elif key in ("x0", "target", "dct", "res"):
                out[key] = int(val)
            elif key == "seed":
                out[key] = int(val)
                if not 0 <= out[key] <= MAX_SEED:
                    raise ValueError(f"expected a seed in [0, {MAX_SEED}], got {out[key]}")
            elif key in ("classes", "images", "pair"):
                out[key] = tuple(_ints(val))
                if key == "pair" and (len(out[key]) != 2 or out[key][0] == out[key][1] or min(out[key]) < 0):
                    raise ValueError(f"expected two different class indices i,j, got {val!r}")
            elif key == "which":
                if val not in ("positive", "negative"):
                    raise ValueError(f"expected 'positive' or 'negative', got {val!r}")
                out[key] = val
            elif key == "upload":
                if not (0 < len(val) <= 64 and all(c in "0123456789abcdef" for c in val)):
                    raise ValueError(f"expected the hex digest of an uploaded file, got {val!r}")
                out[key] = val
            elif key == "extent":
                out[key] = normalize_extent(tuple(_floats(val)))
            elif key in ("adaptive", "shade", "dim"):
                if val.lower() not in _BOOLS:
                    raise ValueError(f"expected 1 or 0, got {val!r}")
                out[key] = _BOOLS[val.lower()]
            elif key in ("a", "b"):
                out[key] = float(val)
                if not np.isfinite(out[key]):
                    raise ValueError(f"expected a finite number, got {val!r}")
            else:
                out[key] = val
    except (ValueError, TypeError) as err:
        raise ValueError(f"the link's parameter {key!r} is invalid ({err})") from None
    return out


def query_params_of(
    spec: PlaneSpec,
    *,
    extent: tuple[float, ...],
    resolution: int,
    adaptive: bool,
    model: str,
    data: str,
    model2: str | None,
    point: tuple[float, float] | None,
    pair: tuple[int, int] | None = None,
    shade: bool = True,
    dim: bool = True,
) -> dict[str, str]:
    """URL parameters that reproduce the view: the plane, the grid, the class pair, the display toggles, the
    models, the selected point. An uploaded pair of directions cannot travel in a URL: only its digest does
    (``upload``), so the page can ask for the same file."""
    qp = {
        "plane": spec.kind,
        "x0": str(spec.x0),
        "extent": ",".join(f"{e:.6g}" for e in extent),
        "res": str(resolution),
        "adaptive": "1" if adaptive else "0",
        "shade": "1" if shade else "0",
        "dim": "1" if dim else "0",
        "model": model,
        "data": data,
    }
    if spec.kind in ("normal", "random", "dct", "curvature"):
        qp["seed"] = str(spec.seed)
    if spec.kind == "normal" and spec.target != NEAREST:
        qp["target"] = str(spec.target)
    if spec.kind == "two":
        qp["classes"] = ",".join(map(str, spec.classes))
    if spec.kind == "three":
        qp["images"] = ",".join(map(str, spec.images))
    if spec.kind == "dct":
        qp["dct"] = str(spec.dct_block)
    if spec.kind == "curvature":
        qp["which"] = spec.which
    if spec.kind == "custom" and spec.upload:
        qp["upload"] = spec.upload
    if pair is not None:
        qp["pair"] = f"{pair[0]},{pair[1]}"
    if model2:
        qp["model2"] = model2
    if point is not None:
        qp["a"], qp["b"] = f"{point[0]:.6g}", f"{point[1]:.6g}"
    return qp


_LINK_WIDGETS = {
    "plane": "slices_kind",
    "x0": "slices_x0",
    "seed": "slices_seed",
    "res": "slices_res",
    "adaptive": "slices_adaptive",
    "dct": "slices_dct",
    "which": "slices_which",
    "target": "slices_target",
    "shade": "slices_shade",
    "dim": "slices_dim",
    "model2": "slices_model2",
    "a": "slices_a",
    "b": "slices_b",
    "upload": "slices_link_upload",
}


def apply_page_request(data: Dataset) -> None:
    """Honour (and clear) ``st.session_state["slice_request"]`` set by another page before switching here:
    ``{"kind": "three_images", "indices": [i, j, k]}`` selects the plane through those images of ``data``."""
    request = st.session_state.pop("slice_request", None)
    if not isinstance(request, dict) or request.get("kind") != "three_images":
        return
    try:
        idx = [int(i) for i in request.get("indices", [])]
    except (TypeError, ValueError):
        idx = []
    if len(idx) != 3 or not all(0 <= i < len(data) for i in idx):
        st.warning(
            f"Another page asked for a plane through images {request.get('indices')}; expected three "
            f"indices in [0, {len(data)})."
        )
        return
    st.session_state.update(slices_kind="three", slices_three=idx, slices_x0=idx[0], slices_manual_extent=False)


def link_to_sidebar() -> None:
    """Apply a shared link's ``model`` and ``data`` to the sidebar before this page draws it (`ui.sidebar.apply_link`):
    for runs where Streamlit starts with the page itself (its pages-folder mode on a fresh server, AppTest after
    ``switch_page``)."""
    apply_link_to_sidebar()


def _nearest(value: int, choices: list[int]) -> int:
    return min(choices, key=lambda c: (abs(c - value), c))


def clamp_link_values(qp: dict[str, Any], handle: ModelHandle, data: Dataset) -> list[str]:
    """Bring the link's out-of-range numbers (``res``, ``x0``, ``dct``, ``target``) into the page's ranges, in place;
    one sentence per change, for the page to show (a link is often typed or edited by hand)."""
    notes = []
    if "res" in qp and qp["res"] not in RESOLUTIONS:
        res, low, high = qp["res"], RESOLUTIONS[0], RESOLUTIONS[-1]
        qp["res"] = _nearest(res, RESOLUTIONS)  # beyond either end, the nearest is that end
        if res > high:
            where = f"above the maximum {high}"
        elif res < low:
            where = f"below the minimum {low}"
        else:
            where = f"not one of the page's resolutions ({', '.join(map(str, RESOLUTIONS))})"
        notes.append(f"resolution {res} in the link is {where}: using {qp['res']}")
    if "x0" in qp and len(data) and not 0 <= qp["x0"] < len(data):
        x0, qp["x0"] = qp["x0"], min(max(qp["x0"], 0), len(data) - 1)
        notes.append(
            f"image {x0} in the link is not among the {len(data)} images of {data.name} (0 to {len(data) - 1}): "
            f"using image {qp['x0']}"
        )
    if "dct" in qp and len(handle.input_shape) == 3:
        top = max(2, min(handle.input_shape[1:]) // 2)  # as the page's band-size slider
        if not 1 <= qp["dct"] <= top:
            dct, qp["dct"] = qp["dct"], min(max(qp["dct"], 1), top)
            notes.append(f"DCT band size {dct} in the link is outside 1 to {top}: using {qp['dct']}")
    if "target" in qp and qp["target"] != NEAREST and not 0 <= qp["target"] < handle.num_classes:
        notes.append(
            f"class {qp.pop('target')} in the link is not one of {handle.name}'s {handle.num_classes} classes: "
            "using the nearest class"
        )
    return notes


def apply_link(handle: ModelHandle, data: Dataset) -> None:
    """Once per session, set the page's widgets from the URL's parameters (see `query_params_of`).

    app.py applies the link's ``model`` and ``data`` to the sidebar before drawing it; here a model or data set
    that could not be loaded is reported. Bad parameters show an error and are ignored; numbers out of the page's
    ranges are brought into them with a note (`clamp_link_values`).
    """
    if st.session_state.get("slices_qp_done"):
        return
    st.session_state["slices_qp_done"] = True
    if not any(k in st.query_params for k in QP_KEYS):
        return
    try:
        qp = parse_query_params(st.query_params.to_dict())
    except ValueError as err:
        st.error(str(err))
        return
    if qp.get("model") and qp["model"] != handle.name:
        st.warning(f"The link names the model {qp['model']!r}, which is not available here; showing {handle.name}.")
    if qp.get("data") and qp["data"] != data.name:
        st.warning(f"The link names the data set {qp['data']!r}; showing {data.name}.")
    for note in clamp_link_values(qp, handle, data):
        st.info(note)
    for key, widget in _LINK_WIDGETS.items():
        if key in qp:
            st.session_state[widget] = qp[key]
    if "pair" in qp:
        if max(qp["pair"]) < handle.num_classes:
            st.session_state["slices_pair_i"], st.session_state["slices_pair_j"] = qp["pair"]
        else:
            st.error(
                f"The link's class pair {qp['pair']} is not a pair of {handle.name}'s {handle.num_classes} classes; "
                "showing no pair."
            )
    if len(qp.get("classes", ())) == 2:
        st.session_state["slices_class_a"], st.session_state["slices_class_b"] = qp["classes"]
    if "images" in qp:
        st.session_state["slices_three"] = list(qp["images"])
    if "extent" in qp:
        st.session_state["slices_manual_extent"] = True
        for name, value in zip(("a0", "a1", "b0", "b1"), qp["extent"], strict=True):
            st.session_state[f"slices_ext_{name}"] = float(value)


def spec_with(spec: PlaneSpec, **changes: Any) -> PlaneSpec:
    return replace(spec, **changes)

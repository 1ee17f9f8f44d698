"""Streamlit glue of the Feature space page: progress bars around geometry's cached computations.

Every result comes from geometry's disk cache (keyed by fingerprints), so a repeated view, or a rerun
after a click on the scatter, is instant; Streamlit never hashes tensors here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

import geometry
from geometry.data.datasets import Dataset
from geometry.features import embedding as emb
from geometry.features.extract import HEAD_INPUT, FeatureSet, candidate_layers, compute_features
from geometry.features.hull import HullReport, hull_report
from geometry.features.morph import MorphResult, cached_morph
from geometry.features.regions import (
    FeatureRegionMap,
    PaintedRegions,
    exact_region_map,
    paint_regions,
    pca_plane,
    plane_through_features,
)
from geometry.runtime.fingerprint import tensor_fingerprint
from ui.hover_images import SpriteSheet, sprite_sheet
from ui.progress import Stopped, progress_bar, run_cached

SLICES_PAGE = "views/slices.py"
SLICE_REQUEST_KEY = "slice_request"
WARMUP_ENV = "BOUNDARY_ATLAS_UMAP_WARMUP"
ROOT = Path(__file__).resolve().parents[1]


def layer_options(handle: geometry.ModelHandle) -> list[str]:
    """``"head"`` (the input of the final affine layer) first, then every named module of the network."""
    try:
        return [HEAD_INPUT, *candidate_layers(handle)]
    except ValueError:
        return [HEAD_INPUT]


def feature_set(
    handle: geometry.ModelHandle,
    data: Dataset,
    *,
    sample: int | None = None,
    indices: Sequence[int] | None = None,
    layer: str = HEAD_INPUT,
) -> FeatureSet:
    kwargs = dict(
        sample=sample, indices=None if indices is None else list(indices), layer=None if layer == HEAD_INPUT else layer
    )
    hit = compute_features(handle, data, cached_only=True, **kwargs)  # type: ignore[arg-type]
    if hit is not None:
        return hit
    stop_key = f"feat_stop_features::{data.split}::{'picked' if indices is not None else 'sample'}"
    with progress_bar(f"Extracting features of {data.name} ({data.split})…", stop_key) as cb:
        return compute_features(handle, data, progress=cb, **kwargs)  # type: ignore[arg-type, return-value]


def train_split(data: Dataset) -> Dataset | None:
    """The training split of a built-in data set (None for uploads, folders and other splits)."""
    if data.split != "test" or data.name.split("-")[0] not in geometry.builtin_datasets():
        return None
    from ui import state

    return state.dataset(data.name, "train")


def embedding(fs: FeatureSet, method: str, params: dict[str, Any], seed: int = 0) -> emb.Embedding2D:
    kwargs = dict(seed=seed, params=params, fingerprint=fs.fingerprint)
    hit = emb.embed(fs.features, method, cached_only=True, **kwargs)  # type: ignore[arg-type]
    if hit is not None:
        return hit
    label = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[method]
    note = st.empty()
    if method == "umap" and not emb.umap_compiled_for(len(fs)):
        note.info(
            "UMAP compiles its numba code the first time a server process uses it (a minute or more; it "
            "started in the background when this page opened, and later processes reuse a disk cache). "
            "PCA needs none of this."
        )
    elif method == "tsne" and len(fs) > 2000:
        note.info(
            f"t-SNE of {len(fs):,} points takes minutes on a CPU and cannot be stopped half-way; fewer "
            "samples are faster."
        )
    try:
        with progress_bar(f"Embedding {len(fs):,} feature vectors with {label}…", "feat_stop_embedding") as cb:
            if method == "umap" and not emb.umap_compiled_for(len(fs)):
                cb(0.02, "UMAP: importing umap-learn and compiling numba code…")
                _umap_ready(large=len(fs) >= emb.UMAP_APPROXIMATE_FROM)
            return emb.embed(fs.features, method, progress=cb, **kwargs)  # type: ignore[arg-type, return-value]
    except ImportError as err:  # umap-learn missing (the warm-up was done, or skipped, by another route)
        raise RuntimeError(_umap_unavailable(err)) from err
    finally:
        note.empty()


def _umap_unavailable(err: BaseException) -> str:
    return (
        f"UMAP is not available in this server process ({type(err).__name__}: {err}). Pick PCA or t-SNE, "
        "or install umap-learn and try again (the next try starts the warm-up afresh)."
    )


def _umap_ready(*, large: bool) -> None:
    """Wait for UMAP's compilation (it may be running in the background already; below 4,096 samples only for
    the small path's); a failure becomes a RuntimeError with a message for the page (which catches
    RuntimeError), and the next call tries again."""
    try:
        emb.warm_up_umap(large=large)
    except Stopped:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of the import or the numba compile: say so, no traceback
        raise RuntimeError(_umap_unavailable(err)) from err


def painted(fs: FeatureSet, em: emb.Embedding2D, *, method: str, resolution: int) -> PaintedRegions:
    """The regions painted behind the embedding, with the held-out agreement from folds seeded by the embedding's
    seed (cached on disk)."""
    key = f"{fs.fingerprint}|{em.method}|{em.params}|{em.seed}"
    kwargs = dict(predictions=fs.predictions, resolution=resolution, method=method, seed=em.seed, fingerprint=key)
    hit = paint_regions(em.coords, fs.features, fs.head, cached_only=True, **kwargs)  # type: ignore[arg-type]
    if hit is not None:
        return hit
    with progress_bar("Painting the regions behind the embedding…") as cb:
        return paint_regions(em.coords, fs.features, fs.head, progress=cb, **kwargs)  # type: ignore[arg-type, return-value]


def feature_plane(fs_three: FeatureSet, fs_points: FeatureSet, kind: str, resolution: int = 300) -> FeatureRegionMap:
    """The exact region map on the plane through the three samples' features, or the top-2 PCA plane."""
    head = fs_three.head
    if kind == "pca":
        plane = pca_plane(fs_points.features)
        anchors = plane.coords(fs_three.features)
        region = exact_region_map(
            head, plane, points=np.concatenate([fs_points.features, fs_three.features]), resolution=resolution, pad=0.05
        )
        # show the three as anchors (projected; they lie off the PCA plane)
        from dataclasses import replace

        anchor_logits = head.logits(plane.points(anchors))
        return replace(
            region,
            anchors=anchors,
            anchor_classes=anchor_logits.argmax(axis=1).astype(np.int64),
            point_coords=region.point_coords[: len(fs_points)],
            point_offsets=region.point_offsets[: len(fs_points)],
        )
    z = fs_three.features
    plane = plane_through_features(z[0], z[1], z[2])
    return exact_region_map(head, plane, resolution=resolution)


def pixel_slice(
    handle: geometry.ModelHandle, data: Dataset, three: Sequence[int], resolution: int = 160
) -> tuple[Any, Any]:
    """(plane, slice) through the three images in pixel space, via geometry.slices.planes/slices (cached)."""
    from geometry.slices.evaluate import cached_slice
    from geometry.slices.options import SliceOptions
    from geometry.slices.planes import three_image_plane

    x = data.images[list(three)]
    plane = three_image_plane(x[0], x[1], x[2], names=tuple(f"#{i}" for i in three))
    options = SliceOptions(extent=plane.default_extent(), resolution=resolution, adaptive=True)
    label = "Evaluating the pixel-space slice through the three images…"
    return plane, run_cached(cached_slice, handle, plane, options=options, label=label, stop_key="feat_stop_slice")


def hull(
    handle: geometry.ModelHandle, train_data: Dataset, test: FeatureSet, n: int, *, layer: str, run: bool
) -> HullReport | None:
    """The hull report of the first ``n`` test samples against the training features.

    Unless ``run``, nothing is computed: the report comes from the cache or is None (the training features of a
    large data set take a while, so they are only extracted when the test is asked for).
    """
    classes = np.where(test.labels[:n] >= 0, test.labels[:n], test.predictions[:n])
    if not run:
        train = compute_features(handle, train_data, layer=None if layer == HEAD_INPUT else layer, cached_only=True)
        if train is None:
            return None
        return hull_report(
            train.features,
            train.labels,
            test.features[:n],
            classes,
            num_classes=handle.num_classes,
            fingerprint=f"{train.fingerprint}|{test.fingerprint}|{n}",
            cached_only=True,
        )
    train = feature_set(handle, train_data, layer=layer)
    fingerprint = f"{train.fingerprint}|{test.fingerprint}|{n}"
    num_classes = handle.num_classes
    with progress_bar(
        f"Testing {n} samples against the convex hulls of {len(train):,} training features…", "feat_stop_hull"
    ) as cb:
        return hull_report(
            train.features,
            train.labels,
            test.features[:n],
            classes,
            num_classes=num_classes,
            fingerprint=fingerprint,
            progress=cb,
        )


def morph_paths(handle: geometry.ModelHandle, data: Dataset, i: int, j: int, steps: int) -> MorphResult:
    """The pixel and feature paths from sample i to sample j, from the disk cache or computed with a Stop button."""
    x_a, x_b = data.images[i], data.images[j]
    hit = cached_morph(handle, x_a, x_b, steps=steps, cached_only=True)
    if hit is not None:
        return hit
    with progress_bar(f"Walking the two paths from #{i} to #{j}…", "feat_stop_morph") as cb:
        return cached_morph(handle, x_a, x_b, steps=steps, progress=cb)  # type: ignore[return-value]


@st.cache_data(max_entries=8, show_spinner=False)
def _sprite(key: str, _images: torch.Tensor, _indices: np.ndarray, tile: int) -> SpriteSheet:
    return sprite_sheet(_images, indices=_indices, tile=tile)


def hover_sprite(data: Dataset, fs: FeatureSet, *, tile: int = 32) -> SpriteSheet | None:
    """The thumbnails of the scatter's samples (in the FeatureSet's order) as one sprite sheet; None for 2D data.

    Memoised by (data set fingerprint, sample indices): Streamlit never hashes the images.
    """
    if data.images.dim() != 4:
        return None
    key = f"{data.fingerprint}|{tensor_fingerprint(torch.from_numpy(np.ascontiguousarray(fs.indices)))}|{tile}"
    return _sprite(key, data.images, fs.indices, tile)


def path_images(
    handle: geometry.ModelHandle, data: Dataset, i: int, j: int, count: int
) -> list[tuple[float, torch.Tensor, int]]:
    """``count`` evenly spaced (t, image, predicted class) on the straight pixel path from image i to image j."""
    ts = torch.linspace(0.0, 1.0, count)
    images = (1 - ts.view(-1, 1, 1, 1)) * data.images[i] + ts.view(-1, 1, 1, 1) * data.images[j]
    preds = handle.predict(images).tolist()
    return [(float(t), x, int(p)) for t, x, p in zip(ts, images, preds, strict=True)]


def pick_three(indices: Sequence[int], classes: dict[int, int]) -> list[int]:
    """Three of ``indices``: of three different classes (``classes[i]``) where possible, else the first ones."""
    out: list[int] = []
    for i in indices:  # first pass: one per class
        if classes.get(i) not in {classes.get(j) for j in out}:
            out.append(i)
        if len(out) == 3:
            return out
    for i in indices:
        if i not in out:
            out.append(i)
        if len(out) == 3:
            break
    return out


def selected_indices(event: Any, figure: Any = None) -> list[int]:
    """Data set indices of the points selected on the scatter (deduplicated, in selection order).

    A point's index is its customdata; WebGL traces do not always report customdata in selection events,
    so it is then looked up in ``figure`` by (curve number, point index).
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    out: list[int] = []
    for p in points:
        cd = p.get("customdata")
        if cd is None and figure is not None:
            try:
                cd = figure.data[int(p["curve_number"])].customdata[int(p["point_index"])]
            except (KeyError, IndexError, TypeError, ValueError):
                cd = None
        if isinstance(cd, dict):  # Streamlit passes a 2-D customdata row as {"0": value}
            cd = cd.get("0", next(iter(cd.values()), None))
        if isinstance(cd, (list, tuple, np.ndarray)):
            cd = cd[0] if len(cd) else None
        if cd is None:
            continue
        try:
            i = int(cd)
        except (TypeError, ValueError):
            continue
        if i not in out:
            out.append(i)
    return out


def send_to_slices(indices: Sequence[int]) -> None:
    """Ask the Slices page for the plane through three images of the current data set, and go there."""
    st.session_state[SLICE_REQUEST_KEY] = {"kind": "three_images", "indices": [int(i) for i in indices[:3]]}
    st.switch_page(SLICES_PAGE)


def slices_page_exists() -> bool:
    return (ROOT / SLICES_PAGE).exists()


def start_umap_warmup() -> None:
    """Compile UMAP's numba code in a background thread (once per process) unless disabled by the environment."""
    if os.environ.get(WARMUP_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    emb.start_umap_warmup()

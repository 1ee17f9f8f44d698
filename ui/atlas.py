"""Streamlit glue of the Atlas view: run or load an atlas with a progress bar and Stop, thumbnails for its table, and
the links from an image to the sidebar's picks, the Slices page and the Curvature page.

An atlas is many cache entries (one per shard, `geometry.atlas.shards.atlas_shard`), not one: `load` assembles it
when every shard is there, `run` computes the missing shards (the page's Stop keeps the finished ones).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from geometry.atlas import AtlasOptions, atlas_status, build_atlas, cached_atlas
from geometry.data.datasets import Dataset
from geometry.figures import image_to_uint8
from geometry.models.handle import ModelHandle
from ui import keys
from ui.progress import progress_bar
from ui.sidebar import MAX_PICKED

SLICES_PAGE = "views/slices.py"
CURVATURE_PAGE = "views/curvature.py"
TABLE_ROWS = 1000  # rows (with thumbnails) the table shows, after sorting


def load(handle: ModelHandle, data: Dataset, options: AtlasOptions, limit: int) -> pd.DataFrame | None:
    """The atlas from the disk cache, or None while a shard is missing."""
    return cached_atlas(handle, data, options=options, limit=limit)


def status(handle: ModelHandle, data: Dataset, options: AtlasOptions, limit: int) -> tuple[int, int]:
    """``(shards cached, shards in all)``."""
    return atlas_status(handle, data, options=options, limit=limit)


def run(
    handle: ModelHandle, data: Dataset, options: AtlasOptions, limit: int, *, engine: str = "local", label: str = ""
) -> pd.DataFrame:
    """Compute the missing shards under a progress bar with a Stop button (finished shards stay in the cache)."""
    with progress_bar(f"Atlas of {handle.name}{label}", stop_key=f"atlas_stop::{handle.name}") as bar:
        return build_atlas(handle, data, options=options, limit=limit, engine=engine, progress=bar)


@st.cache_data(show_spinner=False, max_entries=8)
def thumbnails(_data: Dataset, fingerprint: str, indices: tuple[int, ...]) -> list[str]:
    """PNG data URIs of the images at ``indices`` (for the table's image column); cached by the data's
    fingerprint."""
    from PIL import Image

    out = []
    for i in indices:
        buf = io.BytesIO()
        Image.fromarray(image_to_uint8(_data.images[i], min_size=32)).save(buf, format="PNG")
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """The columns a scatter or histogram can show (numbers, not the index, label or flags)."""
    skip = {"index", "label", "prediction", "boundary_class", "detection_recovered"}
    return [c for c in df.columns if c not in skip and pd.api.types.is_float_dtype(df[c])]


# -- sending images elsewhere (button callbacks: they run before the sidebar's widgets are drawn) --------------------


def _with_pick(data: Dataset, i: int) -> list[int]:
    """The sidebar's picks of ``data`` with ``i`` added (at the end, the oldest dropped past the limit)."""
    current = [int(j) for j in st.session_state.get(keys.picked(data), []) if int(j) != int(i)]
    picked = (current + [int(i)])[-MAX_PICKED:]
    st.session_state[keys.picked(data)] = picked
    return picked


def pick_images(data: Dataset, indices: Sequence[int]) -> None:
    """Make ``indices`` (at most the sidebar's limit) the picked images of ``data``."""
    st.session_state[keys.picked(data)] = [int(i) for i in list(dict.fromkeys(indices))[:MAX_PICKED]]


def prepare_slices(data: Dataset, i: int) -> None:
    """Pick image ``i`` and make it the Slices page's origin x0 (a plane through it, not through three images)."""
    _with_pick(data, i)
    st.session_state["slices_x0"] = int(i)
    if st.session_state.get("slices_kind") == "three":
        del st.session_state["slices_kind"]  # the page's default plane, centred on x0


def prepare_curvature(data: Dataset, i: int) -> None:
    """Pick image ``i`` and make it the Curvature page's image."""
    picked = _with_pick(data, i)
    st.session_state["curv_image"] = picked.index(int(i))


def selected_rows(event: object, shown: pd.DataFrame) -> list[int]:
    """Data set indices of the table rows selected in ``event`` (``shown``: the rows as the table shows them)."""
    try:
        rows = event["selection"]["rows"]  # type: ignore[index]
    except (KeyError, TypeError):
        return []
    return [int(shown["index"].iloc[r]) for r in rows if 0 <= r < len(shown)]


def finite_share(values: pd.Series) -> float:
    v = values.to_numpy(dtype=float)
    return float(np.isfinite(v).mean()) if len(v) else float("nan")

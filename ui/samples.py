"""The inputs an inspection view works on: a seeded sample of the data set, how many to use, and what to say when
there are too few. Shared by the Frequency margins, Connectivity, Detection and Robustness views and the report.

The views' samples are the report's samples (`geometry.report.report_images`), so a report after browsing
reuses what the views computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from geometry.data.datasets import Dataset
from geometry.models.handle import ModelHandle
from geometry.report import report_images


def sample(data: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` inputs of ``data`` in a seeded random choice (the report's own sample for the same n and seed)."""
    return report_images(data, n, seed)


def count_slider(
    where: Any, label: str, *, low: int, high: int, default: int, key: str, help: str | None = None, step: int = 1
) -> int:
    """A slider for how many inputs to use, from ``low`` to ``high`` (the data set's size or a cap), starting at
    ``default`` (clamped). Streamlit refuses a slider whose ends are equal, so when the data allow only one value
    (``high <= low``) there is no slider and ``high`` comes back: the page says why (`too_few`)."""
    if high <= low:
        st.session_state.pop(key, None)
        return max(high, 0)
    if not low <= st.session_state.get(key, -1) <= high:
        st.session_state[key] = min(max(default, low), high)
    return int(where.slider(label, min_value=low, max_value=high, step=step, key=key, help=help))


def too_few(where: Any, data: Dataset, used: int, what: str) -> None:
    """The note shown instead of a count slider when the data set is that small; ``what``: e.g. "the margins are
    computed"."""
    count = f"{len(data)} input{'s' if len(data) != 1 else ''}"
    where.info(
        f"Only {count} in {data.name}: {what} on {'it' if used == 1 else f'all {used}'} (upload or pick more "
        "inputs for a distribution)."
    )


def spread(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly from 0 to ``total - 1`` (all when count >= total): which bands, which sweep
    values to show."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, max(count, 1))})


def is_image_model(handle: ModelHandle) -> bool:
    """Whether the model takes images (C, H, W), which the frequency and robustness analyses need."""
    return len(handle.input_shape) == 3

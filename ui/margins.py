"""Streamlit glue of the Frequency margins view: the band layout, the margins with a progress bar, the transforms.

The margins come from geometry's disk cache one band per entry (`geometry.inspection.margins.band_margins`), so a
repeated view is instant and adding bands computes only the new ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from geometry.data.dct import dct_flip, low_pass
from geometry.inspection.margins import FrequencyBands, FrequencyMargins, cached_frequency_margins, frequency_bands
from geometry.inspection.options import MarginOptions
from geometry.models.handle import ModelHandle
from ui.progress import progress_bar


def bands_of(handle: ModelHandle, block: int | None = None, stride: int | None = None) -> FrequencyBands:
    """The DCT diagonal bands of the model's images (``block``/``stride`` None: the defaults for its size)."""
    return frequency_bands(handle.input_shape, block=block, stride=stride)


def frequency_margins(
    handle: ModelHandle,
    x: torch.Tensor,
    bands: Sequence[int],
    *,
    block: int | None,
    stride: int | None,
    random: bool,
    label: str = "",
) -> FrequencyMargins:
    """The margins of ``x`` in ``bands`` (and one random subspace when ``random``), with a progress bar while any
    band computes (the assembled result is not one cache entry, so the bar shows briefly on a full hit too)."""
    options = MarginOptions(block=block, stride=stride, num_random=1 if random else 0, full=True)
    with progress_bar(f"Frequency margins{label}") as cb:
        return cached_frequency_margins(handle, x, bands=list(bands), options=options, progress=cb)


def transforms_preview(handle: ModelHandle, images: torch.Tensor, keep: int) -> tuple[torch.Tensor, list[list[int]]]:
    """(n, 3, C, H, W) original / dct_flip / low-pass images (clipped to [0, 1]) and their predictions."""
    flipped = dct_flip(images).clamp(0, 1)
    low = low_pass(images, keep).clamp(0, 1)
    grid = torch.stack([images, flipped, low], dim=1)
    pred = handle.predict(grid.reshape(-1, *handle.input_shape)).reshape(len(images), 3)
    return grid, pred.tolist()

"""Hover images: the sprite sheet holds each image at its tile, and the script's configuration names the chart and
the points' ids. (The script itself runs in tests/e2e/test_features_browser.py.)"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ui.hover_images import SpriteSheet, hover_html, sprite_sheet


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _config(html: str) -> dict:
    return json.loads(re.search(r"const cfg = (\{.*?\});", html).group(1))


def test_grey_images_are_stored_exactly_each_at_its_tile():
    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sheet = sprite_sheet(images)
    assert (sheet.columns, sheet.rows, sheet.tile_width, sheet.tile_height, sheet.count) == (4, 3, 8, 8, 10)
    with Image.open(io.BytesIO(sheet.png)) as im:
        assert im.mode == "L" and im.size == (32, 24)
        pixels = np.asarray(im)
    expected = _uint8(images)
    for i in range(10):
        r, c = divmod(i, 4)  # row-major tiles
        np.testing.assert_array_equal(pixels[8 * r : 8 * r + 8, 8 * c : 8 * c + 8], expected[i, ..., 0])
        np.testing.assert_array_equal(sheet.thumbnail(i), expected[i])
    assert sheet.exact and sheet.data_uri.startswith("data:image/png;base64,")
    assert base64.b64decode(sheet.data_uri.split(",", 1)[1]) == sheet.png


def test_colour_images_with_few_colours_are_exact_and_many_colours_are_quantised():
    few = torch.zeros(5, 3, 6, 6)
    few[:, 0, :3] = 1.0
    few[2, 2] = 0.5
    few[4, 1, :, 2:] = 0.25
    sheet = sprite_sheet(few)
    assert sheet.exact
    for i in range(5):
        np.testing.assert_array_equal(sheet.thumbnail(i), _uint8(few)[i])
    many = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))  # ~12k colours
    sheet = sprite_sheet(many)
    assert not sheet.exact
    with Image.open(io.BytesIO(sheet.png)) as im:
        assert im.mode == "P" and len(im.getcolors(maxcolors=100_000)) <= 256
    err = np.abs(np.stack([sheet.thumbnail(i) for i in range(16)]).astype(int) - _uint8(many)).mean()
    # of 255: a regular 6x6x7 palette would be 10.6 off on uniform noise, an unrelated colour 85
    assert err < 16


def test_large_images_are_shrunk_to_the_tile_by_area_averaging_keeping_their_aspect():
    big = torch.rand(2, 1, 64, 48, generator=torch.Generator().manual_seed(2))
    sheet = sprite_sheet(big, tile=32)
    assert (sheet.tile_height, sheet.tile_width) == (32, 24) and sheet.exact
    means = big.numpy().reshape(2, 32, 2, 24, 2).mean(axis=(2, 4))  # each thumbnail pixel: its 2x2 block's mean
    expected = np.floor(means * 255 + 0.5)
    got = np.stack([sheet.thumbnail(i)[..., 0] for i in range(2)]).astype(float)
    assert np.abs(got - expected).max() <= 1  # (float32 rounding at .5)
    small = sprite_sheet(torch.rand(3, 1, 5, 7), tile=32)  # smaller than the tile: its own pixels
    assert (small.tile_height, small.tile_width) == (5, 7)


def test_selected_rows_are_taken_in_the_order_given():
    images = torch.rand(600, 1, 4, 4, generator=torch.Generator().manual_seed(3))  # more than one chunk
    order = np.random.default_rng(0).permutation(600)[:300]
    sheet = sprite_sheet(images, indices=order)
    assert sheet.count == 300
    for pos in (0, 1, 257, 299):
        np.testing.assert_array_equal(sheet.thumbnail(pos), _uint8(images)[order[pos]])


def test_the_script_is_configured_for_the_chart_and_its_points():
    sheet = sprite_sheet(torch.rand(3, 1, 8, 8))
    html = hover_html("feat scatter/1", sheet, [np.int64(7), 12.0, 3], size=96)
    cfg = _config(html)
    assert cfg["chart"] == "feat scatter/1"
    assert cfg["selector"] == ".st-key-feat-scatter-1 .js-plotly-plot"  # Streamlit's class for a widget key
    assert cfg["ids"] == ["7", "12", "3"]  # as JavaScript's String() writes the customdata numbers
    assert cfg["src"] == sheet.data_uri
    assert cfg["width"] == cfg["height"] == 96 and cfg["pixelated"]
    assert (cfg["columns"], cfg["rows"]) == (2, 2)
    assert html.count("<script>") == 1 and "</script>" not in html[html.index("<script>") + 8 : -9]
    assert 'data-chart="feat scatter/1"' in html  # the marker the script checks to stop when its element goes


def test_a_closing_script_tag_in_an_id_cannot_end_the_script():
    sheet = sprite_sheet(torch.rand(1, 1, 4, 4))
    html = hover_html("chart", sheet, ["</script><b>"])
    assert html.count("</script>") == 1 and _config(html)["ids"] == ["</script><b>"]


@pytest.mark.parametrize(
    ("args", "kwargs", "err", "match"),
    [
        (("chart", [1, 2]), {}, ValueError, r"one id per thumbnail \(3\), got 2"),
        (("chart", [1, 1, 2]), {}, ValueError, "distinct ids"),
        (("", [1, 2, 3]), {}, ValueError, "widget key as a non-empty str"),
        (("chart", [1, 2, 3]), {"size": 4}, ValueError, r"size as an int in \[8, 1024\]"),
        (("chart", [True, 2, 3]), {}, TypeError, "ids as ints or strings"),
    ],
)
def test_bad_hover_arguments_are_refused(args, kwargs, err, match):
    sheet = sprite_sheet(torch.rand(3, 1, 4, 4))
    with pytest.raises(err, match=match):
        hover_html(args[0], sheet, args[1], **kwargs)


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (torch.rand(2, 2, 8, 8), {}, r"expected images of shape \(N, 1 or 3, H, W\)"),
        (torch.rand(0, 1, 8, 8), {}, "N >= 1"),
        (torch.rand(2, 1, 8, 8), {"tile": 2}, "tile as an int >= 4"),
        (torch.rand(2, 1, 8, 8), {"indices": [0, 2]}, r"each in \[0, 2\)"),
    ],
)
def test_bad_images_are_refused(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sprite_sheet(images, **kwargs)


def test_a_sheet_is_not_mistaken_for_another_object():
    with pytest.raises(TypeError, match="expected a SpriteSheet"):
        hover_html("chart", {"png": b""}, [])  # type: ignore[arg-type]
    with pytest.raises(IndexError, match=r"tile index in \[0, 1\)"):
        SpriteSheet(
            png=sprite_sheet(torch.rand(1, 1, 4, 4)).png,
            count=1,
            columns=1,
            rows=1,
            tile_width=4,
            tile_height=4,
            exact=True,
        ).thumbnail(1)

"""The Feature space page in a real browser: the painted scatter, the image of a hovered point, a lasso selection
showing images, the exact feature plane following the selection, the hull test, and sending three images to the
Slices page."""

from __future__ import annotations

import io
import os
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e

# the served app inherits this: no background UMAP compile competing with the test for the CPU
os.environ.setdefault("BOUNDARY_ATLAS_UMAP_WARMUP", "0")


def _chart(page, text: str):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has_text=text)


def _top(locator) -> None:
    """Scroll Streamlit's main container so that ``locator`` is at the top of the viewport."""
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")
    locator.page.wait_for_timeout(500)


def _lasso(page, chart) -> None:
    """Draw a lasso over the middle of a plotly chart's plot area."""
    box = chart.locator(".nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    w, h = box["width"] * 0.3, box["height"] * 0.3
    page.mouse.move(cx - w, cy - h)
    page.mouse.down()
    for x, y in ((cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h + 2)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


# The most isolated point of the scatter's class traces, away from the plot's edges (the mode bar, the legend) and
# outside ``avoid`` (fractions of the plot area: x0, x1, y0, y1 from the top left), in viewport pixels, with its
# sample index (customdata).
_ISOLATED_POINT = """(avoid) => {
  const gd = document.querySelector('.st-key-feat_scatter .js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect(), size = fl._size;
  const pts = [];
  gd._fullData.forEach(t => {
    if (t.type !== 'scattergl' || t.name === 'misclassified') return;
    for (let i = 0; i < t.x.length; i++) {
      const cd = t.customdata[i];
      pts.push({fx: fl.xaxis.l2p(t.x[i]) / size.w, fy: fl.yaxis.l2p(t.y[i]) / size.h,
                x: box.left + size.l + fl.xaxis.l2p(t.x[i]), y: box.top + size.t + fl.yaxis.l2p(t.y[i]),
                id: String(cd.length !== undefined ? cd[0] : cd)});
    }
  });
  let best = null, bestGap = -1;
  for (const p of pts) {
    if (p.fx < 0.1 || p.fx > 0.9 || p.fy < 0.15 || p.fy > 0.9) continue;
    if (avoid && p.fx > avoid[0] && p.fx < avoid[1] && p.fy > avoid[2] && p.fy < avoid[3]) continue;
    let gap = Infinity;
    for (const q of pts) if (q !== p) gap = Math.min(gap, Math.hypot(p.x - q.x, p.y - q.y));
    if (gap > bestGap) { bestGap = gap; best = p; }
  }
  return {...best, gap: bestGap};
}"""


def _hover_shows_the_image(page, name: str, avoid: tuple[float, float, float, float] | None = None) -> None:
    """Hover the most isolated point: a thumbnail of exactly that sample appears by the mouse, and goes away."""
    from PIL import Image

    import geometry

    point = page.evaluate(_ISOLATED_POINT, list(avoid) if avoid else None)
    assert point["gap"] > 4, point  # an unambiguous target
    page.mouse.move(point["x"] - 60, point["y"] - 60)
    page.mouse.move(point["x"], point["y"], steps=8)
    tip = page.locator('[data-testid="baHoverImage"][data-chart="feat_scatter"]')
    tip.wait_for(state="visible", timeout=10_000)
    try:  # plotly throttles hover events: the last one (the point under the mouse) can come a little later
        page.wait_for_function(
            "([el, id]) => el.getAttribute('data-id') === id", arg=[tip.element_handle(), point["id"]], timeout=10_000
        )
    finally:
        screenshot(page, name)
    assert tip.get_attribute("data-id") == point["id"]
    box = tip.bounding_box()
    assert abs(box["x"] - point["x"]) < 150 and abs(box["y"] - point["y"]) < 150  # next to the mouse
    # the tile is the sample's own image: 8x8 digits shown 12x enlarged, pixelated
    image = geometry.load_dataset("digits", "test").images[int(point["id"])][0].numpy()
    shot = np.asarray(Image.open(io.BytesIO(tip.locator("div").first.screenshot())).convert("L"), dtype=float)
    assert shot.shape == (96, 96)
    centres = shot[6::12, 6::12]
    np.testing.assert_allclose(centres, np.round(image * 255), atol=3)
    page.mouse.move(5, 5)  # off the chart: the thumbnail goes away
    tip.wait_for(state="hidden", timeout=10_000)


def test_feature_space_page(page, app_url):
    page.goto(f"{app_url}/features")
    wait_for_app(page)
    scatter = _chart(page, "misclassified")
    scatter.first.wait_for(state="visible", timeout=180_000)
    page.get_by_text("The painted background is an approximation").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    # plotly drew the points (WebGL) and the painted background (a heatmap image)
    assert scatter.first.locator(".gl-canvas, canvas").count() >= 1
    assert scatter.first.locator(".heatmaplayer image, .hm image, image").count() >= 1
    plane = _chart(page, "plane through the three")
    plane.first.wait_for(state="visible", timeout=180_000)
    assert plane.first.get_by_text(re.compile(r"#0 → ")).count() == 1
    screenshot(page, "features")

    # hovering a point shows its image next to the mouse
    scatter.first.scroll_into_view_if_needed()
    _hover_shows_the_image(page, "features_hover")

    _top(page.get_by_text("Exact regions on a plane in feature space"))
    screenshot(page, "features_plane")
    _top(page.get_by_text("Morphing: the straight path"))
    assert _chart(page, "feature path").first.locator(".heatmaplayer, .hm").count() >= 1
    screenshot(page, "features_morph")

    # select points with the lasso: their images appear, and three of them can define the feature plane
    scatter.first.scroll_into_view_if_needed()
    _lasso(page, scatter.first)
    heading = page.get_by_text(re.compile(r"Selected samples \(\d+\)"))
    heading.wait_for(timeout=180_000)
    wait_for_app(page)
    count = int(re.search(r"\((\d+)\)", heading.inner_text()).group(1))
    assert count >= 3
    images = page.locator('[data-testid="stImage"]').filter(has_text=re.compile(r"#\d+ · .* → "))
    assert images.count() == min(count, 24)
    _top(heading)
    screenshot(page, "features_selected")
    scatter.first.scroll_into_view_if_needed()
    # still there after Streamlit redrew the chart; outside the lasso (plotly hovers nothing inside a selection)
    _hover_shows_the_image(page, "features_hover_after_rerun", avoid=(0.15, 0.85, 0.15, 0.85))
    three = re.findall(r"#(\d+)", page.get_by_text("Three of them, of different predicted classes").inner_text())
    assert len(three) == 3
    first = three[0]
    page.get_by_role("button", name="Use three for the feature-plane map").click()
    wait_for_app(page)
    plane_now = _chart(page, "plane through the three").filter(has_text=f"#{first} → ").first
    plane_now.wait_for(timeout=180_000)
    for i in three:
        assert plane_now.get_by_text(re.compile(f"#{i} → ")).count() == 1
    wait_for_app(page)  # the pixel-space slice through the new three
    _chart(page, "Pixel space, same three images").first.wait_for(state="visible", timeout=180_000)
    _top(page.get_by_text("Exact regions on a plane in feature space"))
    screenshot(page, "features_selection")

    # the convex-hull test on request
    page.get_by_role("button", name="Run the hull test").click()
    page.get_by_text("Outside the overall hull").wait_for(timeout=300_000)
    wait_for_app(page)
    _chart(page, "outside the hull of their class").first.wait_for(state="visible")
    assert page.locator('[data-testid="stException"]').count() == 0
    _top(page.get_by_text("Inside or outside the training data"))
    screenshot(page, "features_hull")

    # the selection goes to the Slices page as a plane through three images
    page.get_by_role("button", name="Send three to the Slices page").click()
    page.wait_for_url(re.compile(r".*/slices(\?.*)?$"), timeout=180_000)
    wait_for_app(page)
    page.get_by_role("heading", name="Slices", exact=True).wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"]').filter(has_text="plane through three images").first.wait_for(
        state="visible", timeout=300_000
    )
    page.wait_for_url(lambda url: "plane=three" in url, timeout=60_000)  # the link is written after the figure
    assert parse_qs(urlparse(page.url).query)["images"] == [",".join(three)]  # exactly the three selected
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "features_to_slices")

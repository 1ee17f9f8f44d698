"""The Atlas page in a real browser: compute the digits atlas from the page, the scatter of every image draws with
hover images, a click on a point selects that image, and "Open in Slices" opens the Slices page on it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e

# The most isolated point of the scatter (away from the plot's edges), in viewport pixels, with its data set index.
_ISOLATED_POINT = """() => {
  const gd = document.querySelector('.st-key-atlas_scatter .js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect(), size = fl._size;
  const pts = [];
  gd._fullData.forEach(t => {
    if (t.type !== 'scattergl' || t.name === 'misclassified') return;
    for (let i = 0; i < t.x.length; i++) {
      if (!isFinite(t.x[i]) || !isFinite(t.y[i])) continue;
      const cd = t.customdata[i];
      pts.push({fx: fl.xaxis.l2p(t.x[i]) / size.w, fy: fl.yaxis.l2p(t.y[i]) / size.h,
                x: box.left + size.l + fl.xaxis.l2p(t.x[i]), y: box.top + size.t + fl.yaxis.l2p(t.y[i]),
                id: String(cd.length !== undefined ? cd[0] : cd)});
    }
  });
  let best = null, bestGap = -1;
  for (const p of pts) {
    if (p.fx < 0.05 || p.fx > 0.85 || p.fy < 0.15 || p.fy > 0.95) continue;
    let gap = Infinity;
    for (const q of pts) if (q !== p) gap = Math.min(gap, Math.hypot(p.x - q.x, p.y - q.y));
    if (gap > bestGap) { bestGap = gap; best = p; }
  }
  return {...best, gap: bestGap, count: pts.length};
}"""


def test_atlas_page_draws_and_a_click_opens_slices_on_that_image(page, app_url):
    page.goto(f"{app_url}/atlas")
    wait_for_app(page)
    page.get_by_role("heading", name="Atlas", exact=True).wait_for(timeout=60_000)
    page.get_by_role("button", name="Compute the atlas").click()
    scatter = page.locator(".st-key-atlas_scatter")
    scatter.wait_for(state="visible", timeout=300_000)
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Robustness curve").first.wait_for(state="visible")
    scatter.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    point = page.evaluate(_ISOLATED_POINT)
    assert point["count"] >= 400 and point["gap"] > 4, point  # every digit drawn (a few wrong ones crossed apart)
    screenshot(page, "atlas")

    # hovering shows that image; clicking selects it
    page.mouse.move(point["x"] - 40, point["y"] - 40)
    page.mouse.move(point["x"], point["y"], steps=8)
    tip = page.locator('[data-testid="baHoverImage"][data-chart="atlas_scatter"]')
    tip.wait_for(state="visible", timeout=10_000)
    page.mouse.click(point["x"], point["y"])
    page.get_by_text("Selected images (1)").wait_for(timeout=120_000)
    wait_for_app(page)
    open_slices = page.get_by_role("button", name=f"Open #{point['id']} in Slices")
    open_slices.wait_for(timeout=60_000)
    screenshot(page, "atlas_selected")

    open_slices.click()
    page.wait_for_url(re.compile(r".*/slices(\?.*)?$"), timeout=180_000)
    wait_for_app(page)
    page.get_by_role("heading", name="Slices", exact=True).wait_for(timeout=60_000)
    page.wait_for_url(lambda url: "x0=" in url, timeout=300_000)  # the page writes its link after the figure
    assert parse_qs(urlparse(page.url).query)["x0"] == [point["id"]]  # the clicked image is the origin
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "atlas_to_slices")

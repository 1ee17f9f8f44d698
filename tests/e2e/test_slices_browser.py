"""The Slices page in a real browser: the figure is drawn with its boundary lines, hovering shows values, a click
selects a point."""

from __future__ import annotations

import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _figure(page):
    # the slice figure is the plotly chart whose title names the model and the plane
    return page.locator('[data-testid="stPlotlyChart"]').filter(has_text="DeepFool normal").first


def test_slices_page_draws_the_slice_and_selects_a_point(page, app_url):
    page.goto(f"{app_url}/slices")
    wait_for_app(page)
    fig = _figure(page)
    try:  # the first view pays for imports, the model and DeepFool: allow for a busy machine
        fig.wait_for(state="visible", timeout=300_000)
        page.wait_for_selector('[data-testid="stPlotlyChart"] .imagelayer image', state="attached", timeout=60_000)
    except Exception:
        screenshot(page, "slices_failed")
        raise
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Evaluations").count() == 1
    assert page.get_by_text("Cannot").count() == 0
    # the boundaries are vector lines along the cell edges: every piece of the drawn path is horizontal or
    # vertical (a line joining two pieces across a NaN break would run diagonally)
    lines = fig.locator(".scatterlayer .trace path.js-line")
    assert lines.count() >= 1
    for i in range(lines.count()):
        for piece in (lines.nth(i).get_attribute("d") or "").split("M")[1:]:
            xy = [tuple(map(float, p.split(","))) for p in piece.split("L")]
            assert len(xy) >= 2
            assert all(a[0] == b[0] or a[1] == b[1] for a, b in zip(xy, xy[1:], strict=False)), piece[:200]
    page.set_viewport_size({"width": 1400, "height": 2300})  # the whole page in one picture
    page.wait_for_timeout(1000)
    screenshot(page, "slices")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.wait_for_timeout(1000)

    # hover over the plot area: the tooltip names the class and the probability
    box = fig.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5
    page.mouse.move(cx, cy)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
    hover = page.locator(".hoverlayer .hovertext").first.text_content()
    assert "class" in hover and "p =" in hover

    # click: the point is selected, the page reruns and the coordinate inputs follow the click
    a_before = page.get_by_label("a", exact=True).input_value()
    page.mouse.click(cx, cy)
    page.wait_for_timeout(1500)
    wait_for_app(page)
    page.wait_for_function(
        "(before) => { const el = [...document.querySelectorAll('input')]"
        ".find(i => i.getAttribute('aria-label') === 'a'); return el && el.value !== before; }",
        arg=a_before,
        timeout=60_000,
    )
    a_after = float(page.get_by_label("a", exact=True).input_value())
    assert a_after > 0  # clicked right of the centre
    assert "a=" in page.url  # the link follows the view
    page.set_viewport_size({"width": 1400, "height": 2300})
    page.wait_for_timeout(1000)
    screenshot(page, "slices_selected")


def test_stop_button_interrupts_a_long_slice(page, app_url):
    # a dense 1024^2 slice of the ResNet takes about 20 minutes on two cores: Stop must end it at once
    page.goto(f"{app_url}/slices?model=shapes-resnet-relu&data=shapes&plane=random&res=1024&adaptive=0")
    stop = page.get_by_role("button", name="Stop")
    try:
        stop.wait_for(state="visible", timeout=300_000)
        page.get_by_text("Computing the slice").first.wait_for(timeout=60_000)
        stop.click()
        page.get_by_text("Stopped", exact=False).first.wait_for(timeout=120_000)
    except Exception:
        screenshot(page, "slices_stop_failed")
        raise
    wait_for_app(page)  # the run has ended: the computation is no longer holding the page
    assert page.get_by_role("button", name="Stop").count() == 0
    assert page.locator('[data-testid="stProgress"]').count() == 0
    screenshot(page, "slices_stopped")

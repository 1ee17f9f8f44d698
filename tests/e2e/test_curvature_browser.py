"""The Curvature page in a real browser: every figure is drawn, and changing the target class recomputes."""

from __future__ import annotations

import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e

TITLES = (
    "Principal curvatures (sorted)",
    "most positive:",
    "most negative:",
    "Logit difference F",
    "random tangent directions",
    "Curvature ↔ vulnerability",
)


def _chart(page, text: str):
    return page.locator('[data-testid="stPlotlyChart"]').filter(has_text=text)


def _settled(page) -> None:
    """The run is over: no stale elements (Streamlit marks them while a run is going) and no progress bar, twice
    in a row 2 s apart (a run has steps without a bar)."""
    for _ in range(2):
        wait_for_app(page)
        page.wait_for_function(
            "() => !document.querySelector('[data-stale=\"true\"]')"
            " && document.querySelectorAll('[data-testid=\"stProgress\"]').length === 0",
            timeout=240_000,
        )
        page.wait_for_timeout(2000)


def _whole_page_screenshot(page, name: str) -> None:
    """Streamlit scrolls inside its own container: make the viewport as tall as the page, then shoot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height, 1000), 9000))})
    page.wait_for_timeout(1500)
    screenshot(page, name)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_curvature_page_draws_every_view(page, app_url):
    page.goto(f"{app_url}/curvature")
    wait_for_app(page)
    _chart(page, TITLES[-1]).first.wait_for(state="visible", timeout=300_000)
    _settled(page)
    for title in TITLES:
        _chart(page, title).first.wait_for(state="visible", timeout=180_000)
    for title in TITLES:
        assert _chart(page, title).count() == 1, title
    # plotly drew real marks: bars of the spectrum, the boundary curves of the cross-sections
    assert _chart(page, "Principal curvatures").locator(".bars .point").count() == 20
    assert _chart(page, "most positive:").locator(".scatterlayer .trace").count() >= 3
    page.get_by_text("Sign convention.").wait_for()
    assert page.get_by_text("Measured by: Exact Hessian").count() == 1
    assert page.get_by_text("of the 300 random tangent directions have |κ| <").count() == 1  # the measured share
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stImage"]').count() >= 3 + 8  # x, r, x + r and 8 principal directions
    _whole_page_screenshot(page, "curvature")

    # aim at another class: DeepFool and the curvature are recomputed for that boundary
    before = page.locator('[data-testid="stMetricValue"]').nth(2).inner_text()
    page.get_by_label("Target class").click()
    page.get_by_role("option").nth(3).click()
    page.wait_for_timeout(1000)
    wait_for_app(page)
    page.wait_for_function(
        "(before) => { const m = document.querySelectorAll('[data-testid=\"stMetricValue\"]');"
        " return m.length > 2 && m[2].innerText !== before; }",
        arg=before,
        timeout=180_000,
    )
    _settled(page)
    assert _chart(page, "Curvature ↔ vulnerability").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "→ " in page.locator('[data-testid="stMetricValue"]').nth(2).inner_text()
    _whole_page_screenshot(page, "curvature_targeted")

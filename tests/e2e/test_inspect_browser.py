"""The inspection pages in a real browser: each draws its figures with no error, reacts to a widget, and the report
page hands out an HTML file that opens offline with every section."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from geometry.report import SECTION_KEYS
from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _open(page, app_url: str, stem: str, title: str) -> None:
    # straight to the deep link, as a shared link would: the view and the shared sidebar must both appear
    page.goto(f"{app_url}/{stem}")
    wait_for_app(page)
    page.get_by_role("heading", name=title, exact=True).wait_for()


def _charts(page):
    return page.locator('[data-testid="stPlotlyChart"]')


def _shot(page, name: str) -> None:
    """A screenshot of the whole page: the viewport grows to the height of Streamlit's scrolling main area."""
    height = page.evaluate(
        "() => Math.max(1000, ...[...document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stAppViewContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 60, 6000)})
    page.wait_for_timeout(1500)
    wait_for_app(page)
    screenshot(page, name)


def _no_error(page) -> None:
    nav = page.get_by_test_id("stSidebarNav").inner_text()
    assert "Frequency margins" in nav and "Adversarial detection" in nav  # st.navigation's titles, not file names
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_frequency_margins_page(page, app_url):
    _open(page, app_url, "margins", "Frequency margins")
    chart = _charts(page).filter(has_text="Margins along DCT frequency bands")
    expect(chart).to_have_count(1, timeout=600_000)
    chart.locator(".boxlayer").first.wait_for()  # the boxes are drawn
    # the last figure: the picked images, dct_flip-ped and low-passed
    expect(_charts(page).filter(has_text="dct_flip")).to_have_count(1, timeout=600_000)
    wait_for_app(page)
    _no_error(page)
    _shot(page, "inspect-margins")


def test_connectivity_page(page, app_url):
    _open(page, app_url, "connectivity", "Connectivity")
    expect(_charts(page).filter(has_text="Path in class")).to_have_count(2, timeout=600_000)
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Success rate")).to_have_count(1)
    _no_error(page)
    _shot(page, "inspect-connectivity")


def test_detection_page_and_a_verdict_on_a_perturbed_input(page, app_url):
    _open(page, app_url, "detection", "Adversarial detection")
    expect(_charts(page).filter(has_text="Detecting DeepFool perturbations")).to_have_count(1, timeout=600_000)
    expect(page.get_by_text(re.compile(r"Looks (clean|perturbed)"))).to_have_count(1)
    page.get_by_test_id("stRadio").get_by_text("DeepFool-perturbed", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"perturbation ‖r‖ = "))).to_have_count(1, timeout=600_000)
    _no_error(page)
    _shot(page, "inspect-detection")


def test_robustness_page(page, app_url):
    _open(page, app_url, "robustness", "Robustness")
    expect(_charts(page).filter(has_text="Size (scaled about the centre)")).to_have_count(1, timeout=600_000)
    page.get_by_test_id("stRadio").get_by_text("Rotation", exact=True).click()
    wait_for_app(page)
    expect(_charts(page).filter(has_text="rotation (degrees, counter-clockwise)")).to_have_count(1, timeout=600_000)
    _no_error(page)
    _shot(page, "inspect-robustness")


def test_report_page_downloads_an_offline_report(page, app_url, tmp_path):
    _open(page, app_url, "report", "Report")
    page.get_by_role("button", name=re.compile("Generate report")).click()
    download_button = page.get_by_role("button", name=re.compile("Download the report"))
    download_button.wait_for(timeout=600_000)
    _no_error(page)
    _shot(page, "inspect-report")
    with page.expect_download() as info:
        download_button.click()
    path = tmp_path / "report.html"
    info.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    for key in SECTION_KEYS:
        assert f"id='sec-{key}'" in text

    # open the file with the network cut off: plotly.js is inline, so every figure renders
    context = page.context.browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    try:
        offline = context.new_page()
        offline.goto(path.as_uri())
        offline.wait_for_function("() => window.Plotly !== undefined")
        figures = text.count("Plotly.newPlot(")
        offline.wait_for_function(
            f"() => document.querySelectorAll('.plotly-graph-div .main-svg').length >= {figures}", timeout=60_000
        )
        screenshot(offline, "inspect-report-file")
    finally:
        context.close()

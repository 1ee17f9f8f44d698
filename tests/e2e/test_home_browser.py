"""The real app in a real browser: pick a model and an image, see the prediction, survive a bad upload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _predictions(page):
    return page.get_by_text(re.compile(r"^Predicted "))


def test_home_picks_a_model_and_an_image(page, app_url, tmp_path):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("heading", name="Boundary Atlas").wait_for()
    expect(_predictions(page)).to_have_count(3, timeout=120_000)
    # the probability bars are painted (plotly draws them after the run ends) before the picture is taken
    page.locator('[data-testid="stPlotlyChart"] .barlayer .point').first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    screenshot(page, "home-default")

    # Pick another built-in model in the sidebar.
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Built-in model").click()
    page.get_by_role("option", name=re.compile(r"^digits-cnn-relu")).click()
    page.get_by_role("heading", name="Model: digits-cnn-relu").wait_for()
    wait_for_app(page)

    # Pick one more image with its thumbnail's ＋ button: a fourth prediction appears.
    sidebar.get_by_role("button", name="+", exact=True).nth(3).click()
    wait_for_app(page)
    expect(_predictions(page)).to_have_count(4, timeout=120_000)
    screenshot(page, "home-relu-four-images")

    # An upload that is not an image gets a clear message, and the page keeps working.
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Data set").click()
    page.get_by_role("option", name="Upload images…").click()
    wait_for_app(page)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    sidebar.locator("input[type=file]").set_input_files(str(bad))
    page.get_by_text(re.compile(r"could not read 'broken.png' as an image")).wait_for()
    assert _predictions(page).count() >= 1
    screenshot(page, "home-bad-upload")


def test_home_links_to_every_view(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    main = page.get_by_test_id("stMain")
    main.get_by_role("heading", name="Views").wait_for(timeout=120_000)
    for title in ("Slices", "Curvature", "Feature space", "Report"):
        expect(main.get_by_role("link", name=title, exact=True)).to_have_count(1, timeout=30_000)
    main.get_by_role("link", name="Slices", exact=True).click()
    page.get_by_role("heading", name="Slices", exact=True).wait_for(timeout=60_000)
    assert page.url.rstrip("/").endswith("/slices") or "/slices?" in page.url

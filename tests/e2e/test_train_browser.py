"""The Train view in a real browser: train moons with and without activated gradients, see both models' regions,
then pick the trained model in the sidebar."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def test_train_page_trains_two_models_and_hands_one_to_the_sidebar(page, app_url):
    page.goto(f"{app_url}/train")
    wait_for_app(page)
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=120_000)
    page.get_by_role("button", name=re.compile("Train$")).click()
    try:
        page.get_by_text("Agreement of the two region maps").wait_for(timeout=600_000)
        wait_for_app(page)
        for title in ("plain", "with activated gradients"):
            page.locator('[data-testid="stPlotlyChart"]').filter(has_text=title).filter(
                has=page.locator(".imagelayer image, image")
            ).first.wait_for(state="attached", timeout=60_000)
    except Exception:
        screenshot(page, "train_failed")
        raise
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy, plain").count() == 1
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.wait_for_timeout(1500)
    screenshot(page, "train")
    page.set_viewport_size({"width": 1400, "height": 1000})

    # hand the model with activated gradients to every other view
    page.get_by_role("button", name=re.compile("Use in the sidebar")).last.click()
    wait_for_app(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Trained in the Train view on moons with activated gradients").wait_for(timeout=60_000)
    screenshot(page, "train_to_sidebar")

"""Quick page switching never changes the model (issue 14.3): a non-default model is picked, then every page is
clicked through many times, some switches 0.3-1.5 s after the page starts drawing (interrupting its run), and the
sidebar must show the picked model after each switch and once everything has settled."""

from __future__ import annotations

import random
import re

import pytest

from tests.e2e.browser import screenshot, wait_for_app
from ui.views import VIEWS

pytestmark = pytest.mark.e2e

PICKED = "digits-cnn-relu"  # not the default (digits-cnn-silu) and not the first in the list (blobs-mlp)
SWITCHES = 30
HEADINGS = {"Home": "Boundary Atlas"}  # a page's title heading where it is not the menu's title


def _model_box(page):
    return page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Built-in model")


def _shown_model(page) -> str:
    """The model the sidebar's selectbox shows now (its combobox input's value: "digits-cnn-relu  (99.1%)")."""
    text = _model_box(page).get_by_role("combobox").input_value(timeout=60_000)
    return text.split()[0] if text.split() else ""


def test_quick_page_switches_keep_the_picked_model(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    _model_box(page).click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(PICKED)}")).click()
    page.get_by_role("heading", name=f"Model: {PICKED}").wait_for()
    wait_for_app(page)
    assert _shown_model(page) == PICKED

    nav = page.get_by_test_id("stSidebarNav")
    rng = random.Random(14)
    titles = [v.title for v in VIEWS]
    current = titles[0]
    seen: list[tuple[str, str]] = []
    for i in range(SWITCHES):
        title = rng.choice([t for t in titles if t != current])
        nav.get_by_role("link", name=title, exact=True).click()
        heading = HEADINGS.get(title, title)
        page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=120_000)  # the page is drawing
        if i % 3 != 2:
            page.wait_for_timeout(rng.uniform(300, 1500))  # then switch again while it may still run
        else:
            wait_for_app(page)
        seen.append((title, _shown_model(page)))
        current = title
    wait_for_app(page)
    page.wait_for_timeout(1000)
    final = _shown_model(page)
    screenshot(page, "navigation-after-quick-switches")
    wrong = [(n, title, model) for n, (title, model) in enumerate(seen) if model != PICKED]
    assert not wrong, f"the sidebar's model changed after these switches (switch, page, model shown): {wrong}"
    assert final == PICKED
    # the page itself measured the picked model, too: Home names it
    nav.get_by_role("link", name=titles[0], exact=True).click()
    page.get_by_role("heading", name=f"Model: {PICKED}").wait_for(timeout=120_000)

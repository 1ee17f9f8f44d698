"""The Playground in a real browser: Play redraws the region map several times a second, Pause stops it."""

from __future__ import annotations

import time

import pytest

from tests.e2e.browser import screenshot, wait_for_app

pytestmark = pytest.mark.e2e

LIVE_MAP = '[data-testid="stMain"] [data-testid="stImage"] img'


def _sources(page, seconds: float) -> list[str]:
    """The live map's image address, polled every 50 ms for ``seconds``: each new address is a redraw."""
    seen: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        src = page.locator(LIVE_MAP).first.get_attribute("src")
        if src and (not seen or seen[-1] != src):
            seen.append(src)
        page.wait_for_timeout(50)
    return seen


def test_play_redraws_the_map_live_and_pause_stops_it(page, app_url):
    page.goto(f"{app_url}/playground")
    wait_for_app(page)
    page.get_by_role("heading", name="Playground", exact=True).wait_for(timeout=120_000)
    page.locator(LIVE_MAP).first.wait_for(timeout=120_000)
    try:
        page.get_by_role("button", name="Play", exact=True).click()
        page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=60_000)
        redraws = _sources(page, 4.0)
        assert len(redraws) - 1 >= 5, f"only {len(redraws) - 1} redraws in 4 s"
        screenshot(page, "playground_live")
        page.get_by_role("button", name="Pause", exact=True).click()
        page.get_by_role("button", name="Play", exact=True).wait_for(timeout=60_000)
        wait_for_app(page)
        still = _sources(page, 2.0)
        assert len(still) == 1, f"the map still changed {len(still) - 1} times after Pause"
    except Exception:
        screenshot(page, "playground_failed")
        raise
    assert page.locator('[data-testid="stException"]').count() == 0
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.wait_for_timeout(1500)
    screenshot(page, "playground")

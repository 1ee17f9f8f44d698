"""Helpers for real-browser tests: screenshots a person can look at, and waiting for Streamlit runs.

Screenshots go to ``artifacts/screenshots/`` (ignored by git).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def wait_for_app(page: object) -> None:
    """Wait until Streamlit drew the page and finished running the script (no 'Running…' status widget).

    Right after a navigation the status widget is not there yet either, so first wait for the main area
    to hold something: otherwise a test can read an empty page.
    """
    page.wait_for_selector('[data-testid="stApp"]')  # type: ignore[attr-defined]
    page.wait_for_selector(  # type: ignore[attr-defined]
        '[data-testid="stMain"] [data-testid="stVerticalBlock"] > *', timeout=180_000
    )
    # Streamlit shows the status widget only after a run has lasted 500 ms: before that, a run that has begun (a
    # fragment's rerun after a click is that quick to draw its first elements) looks finished.
    page.wait_for_timeout(600)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000
    )

"""The views the app offers, with one line each (Home lists them; app.py registers their pages)."""

from __future__ import annotations

VIEWS: list[tuple[str, str]] = [
    ("Home", "the model card, the picked images and the model's top-k predictions for each."),
]

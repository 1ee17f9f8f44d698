"""Another model to compare the sidebar's model with, in the inspection views (Frequency margins)."""

from __future__ import annotations

from geometry.models.handle import ModelHandle
from ui import state

NONE = "none"  # the "compare with" choice that compares with nothing


def compatible_models(handle: ModelHandle) -> list[str]:
    """The models the inspection views can compare ``handle`` with (see `ui.state.comparable_models`)."""
    return state.comparable_models(handle)


def other_handle(name: str) -> ModelHandle:
    """A built-in model for comparison, from the app's model cache (same device as the sidebar's choice)."""
    return state.builtin_handle(name, state.current_device())

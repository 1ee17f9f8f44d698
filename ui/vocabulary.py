"""The words a page uses for its inputs: images speak of pixels in [0, 1], 2D models of points in the plane.

A 2D model (the toy sets, the Playground's networks) takes a point of the plane, unbounded: "pixel units",
"inside [0, 1]" and the hatching of out-of-range inputs mean nothing there (issue 15, a teacher's walkthrough).
"""

from __future__ import annotations

from geometry.models.handle import ModelHandle


def is_plane(handle: ModelHandle) -> bool:
    """The model takes points of the plane ((2,) inputs), not images."""
    return len(handle.input_shape) == 1


def distance_unit(handle: ModelHandle) -> str:
    """How a page names its L2 distances: "plane units" or "[0, 1] pixel units"."""
    return "plane units" if is_plane(handle) else "[0, 1] pixel units"


def input_space(handle: ModelHandle) -> str:
    """How a page names the space the model reads: "the plane" or "[0, 1] pixel space"."""
    return "the plane" if is_plane(handle) else "[0, 1] pixel space"

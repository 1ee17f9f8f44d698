"""Argument checks shared by the compute modules, so every bad option reads the same way.

``expected k as an int >= 1, got 0`` / ``expected h as a positive number, got -1``: the option's name, what it
must be, and what came.
"""

from __future__ import annotations

import math

import numpy as np


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int when it is an integer (not a bool) >= ``minimum``; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"expected {name} as an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: object) -> float:
    """``value`` as a float when it is a finite number > 0 (not a bool); ValueError otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"expected {name} as a positive number, got {value!r}")
    return float(value)

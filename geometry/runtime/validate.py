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


def check_optional_int(name: str, value: object, minimum: int) -> int | None:
    """None, or ``value`` as an int >= ``minimum`` (see `check_int`)."""
    return None if value is None else check_int(name, value, minimum)


def check_number(name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = True) -> float:
    """``value`` as a float in ``(low, high]`` (``[low, high]`` when not ``open_low``); ValueError otherwise."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if open_low else v >= low) and v <= high
    if not ok:
        bound = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
        raise ValueError(f"expected {name} as a number in {bound}, got {value!r}")
    return float(value)


def check_bool(name: str, value: object, *, optional: bool = False) -> bool | None:
    """``value`` as a bool (numpy bools too; None too when ``optional``); TypeError otherwise."""
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected {name} to be True or False{' or None' if optional else ''}, got {value!r}")
    return bool(value)


def check_seed(value: object) -> int:
    """``value`` as an int seed (not a bool); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"expected seed as an int, got {value!r}")
    return int(value)

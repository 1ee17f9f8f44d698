"""Budgets checked before work starts: requests whose size is known in advance get a sentence, not a dead process.

A dense 4096 x 4096 slice is 16.8 M model evaluations, ``shapes`` at 4096 px asks for 375 GiB, ``num_random=10**7``
random directions fill the allocator: `check_budget` compares such a request with three limits before anything is
allocated or run, and raises `OverBudgetError` (a ValueError, so pages show it as ``st.error``) that states the size,
the estimate and how to lower it:

- ``evaluations``: at most ``$BOUNDARY_ATLAS_MAX_EVALUATIONS`` model evaluations (default 50 M);
- estimated time: at most ``$BOUNDARY_ATLAS_MAX_SECONDS`` (default 600 s), from the cost of one evaluation of the
  model measured here (one small batch, timed once per model and process, `seconds_per_evaluation`);
- ``bytes``: at most ``$BOUNDARY_ATLAS_MAX_BYTES`` (default half the machine's memory), and never more than the
  memory available now.

This module knows models only by duck typing (``module``, ``input_shape``, ``device``, ``fingerprint``,
``input_range``, ``name``): `geometry.runtime` sits below `geometry.models`.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DEFAULT_MAX_EVALUATIONS",
    "DEFAULT_MAX_SECONDS",
    "MAX_BYTES_ENV",
    "MAX_EVALUATIONS_ENV",
    "MAX_SECONDS_ENV",
    "Budget",
    "Estimate",
    "OverBudgetError",
    "available_memory",
    "check_budget",
    "current_budget",
    "format_bytes",
    "format_count",
    "format_seconds",
    "seconds_per_evaluation",
    "total_memory",
]

MAX_EVALUATIONS_ENV = "BOUNDARY_ATLAS_MAX_EVALUATIONS"
MAX_SECONDS_ENV = "BOUNDARY_ATLAS_MAX_SECONDS"
MAX_BYTES_ENV = "BOUNDARY_ATLAS_MAX_BYTES"
DEFAULT_MAX_EVALUATIONS = 50_000_000
DEFAULT_MAX_SECONDS = 600.0

_PROBE_TARGET_S = 0.05  # grow the timed batch until one call takes about this long (timer and call overhead)
_PROBE_MAX_BATCH = 1024


class OverBudgetError(ValueError):
    """A request larger than the budget; the message says how large, the estimate, and how to lower it."""


@dataclass(frozen=True)
class Budget:
    """The limits in force (read from the environment by `current_budget`)."""

    max_evaluations: int  # model evaluations per request
    max_seconds: float  # estimated seconds per request
    max_bytes: int  # bytes per request (the memory available now also limits it)


@dataclass(frozen=True)
class Estimate:
    """What a request will cost; None where not asked or not known."""

    evaluations: int | None  # model evaluations
    seconds: float | None  # estimated wall time here (evaluations x measured cost per evaluation)
    bytes: int | None  # bytes the request allocates


# -- the machine -------------------------------------------------------------------------------------------------


def _meminfo(field: str) -> int | None:
    """A /proc/meminfo field in bytes (Linux), else None."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 or v1) in bytes, None when unlimited or unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            text = Path(path).read_text().strip()
            if text != "max" and int(text) < 2**60:
                return int(text)
    return None


def total_memory() -> int:
    """Bytes of memory this process may use: the machine's RAM, or its container's limit when lower."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        ram = _meminfo("MemTotal") or 8 * 2**30  # no sysconf (Windows): assume a modest machine
    limit = _cgroup_limit()
    return min(ram, limit) if limit else ram


def available_memory() -> int:
    """Bytes that can be allocated now without swapping (MemAvailable on Linux; the total elsewhere)."""
    free = _meminfo("MemAvailable")
    return min(free, total_memory()) if free is not None else total_memory()


# -- the limits --------------------------------------------------------------------------------------------------


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}={text!r} must be a positive number")
    return value


def current_budget() -> Budget:
    """The limits from ``$BOUNDARY_ATLAS_MAX_EVALUATIONS``, ``_MAX_SECONDS`` and ``_MAX_BYTES`` (read at each call,
    so a server picks up a change without a restart), with the defaults where unset."""
    return Budget(
        max_evaluations=int(_env_number(MAX_EVALUATIONS_ENV, DEFAULT_MAX_EVALUATIONS)),
        max_seconds=_env_number(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS),
        max_bytes=int(_env_number(MAX_BYTES_ENV, total_memory() // 2)),
    )


# -- the cost of one evaluation -----------------------------------------------------------------------------------

_measured: dict[tuple[str, str], float | None] = {}  # (model fingerprint, device) -> seconds per evaluation
_measure_lock = threading.Lock()


def seconds_per_evaluation(handle: Any) -> float | None:
    """Seconds one model evaluation takes here, measured once per model and process (None if it cannot be run).

    Times the model (``handle.module`` in eval mode, its modes restored after; no gradients) on a batch of mid-range
    inputs, doubling the batch from 4 until a call takes about 50 ms (or 1024 inputs): the per-input cost of a
    batched call, as slices and sweeps run.
    """
    key = (str(getattr(handle, "fingerprint", id(handle))), str(getattr(handle, "device", "cpu")))
    with _measure_lock:
        if key in _measured:
            return _measured[key]
        _measured[key] = cost = _measure(handle)
        return cost


def _measure(handle: Any) -> float | None:
    modes: list[tuple[torch.nn.Module, bool]] = []  # the caller's train/eval modes, restored below
    try:
        module = handle.module
        modes = [(m, m.training) for m in module.modules()]
        module.eval()  # as the computations run it; a training-mode BatchNorm would also change its statistics
        shape = tuple(int(s) for s in handle.input_shape)
        device = torch.device(handle.device)
        low, high = handle.input_range if handle.input_range is not None else (0.0, 0.0)
        middle = (float(low) + float(high)) / 2

        def seconds(batch: int) -> float:
            x = torch.full((batch, *shape), middle, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            module(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start

        with torch.inference_mode():
            seconds(2)  # the first call pays for lazy initialisation
            batch = 4
            elapsed = seconds(batch)
            while elapsed < _PROBE_TARGET_S and batch < _PROBE_MAX_BATCH:
                batch *= 2
                elapsed = seconds(batch)
    except Exception:  # noqa: BLE001 - a model that cannot run here gets no time estimate; its own call will say why
        return None
    finally:
        for m, training in modes:  # parents first, so a child's own mode wins
            m.train(training)
    return elapsed / batch


# -- the check ---------------------------------------------------------------------------------------------------


def format_count(n: float) -> str:
    """``16777216`` -> ``"16.8 M"``, ``2500`` -> ``"2,500"``."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} G"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    return f"{int(n):,}"


def format_seconds(s: float) -> str:
    """``42`` -> ``"42 s"``, ``1380`` -> ``"23 min"``, ``9000`` -> ``"2.5 h"``."""
    if s < 90:
        return f"{s:.0f} s" if s >= 1 else f"{s:.1g} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def format_bytes(n: float) -> str:
    """``402653184000`` -> ``"375 GiB"``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{int(n)} bytes"


def check_budget(
    what: str,
    *,
    evaluations: int | None = None,
    bytes: int | None = None,  # shadows the builtin inside: the unit is the clearest name
    handle: Any = None,
    lower: str = "",
) -> Estimate:
    """Raise `OverBudgetError` when a request of ``evaluations`` model evaluations of ``handle`` and ``bytes`` of
    memory is over the budget (`current_budget`); return its `Estimate` otherwise.

    ``what`` names the request ("a dense slice of 4096 x 4096 points"), ``lower`` says how to make it smaller
    ("lower the resolution or turn on adaptive refinement"). The time is estimated only with a ``handle``; its cost
    per evaluation is measured here once (`seconds_per_evaluation`). Nothing is allocated.
    """
    budget = current_budget()
    seconds = None
    if evaluations is not None and handle is not None and evaluations > 0:
        cost = seconds_per_evaluation(handle)
        seconds = evaluations * cost if cost is not None else None
    estimate = Estimate(evaluations=evaluations, seconds=seconds, bytes=bytes)
    over = []  # the limits this request exceeds, in words
    if evaluations is not None and evaluations > budget.max_evaluations:
        over.append(f"the budget of {format_count(budget.max_evaluations)} evaluations ({MAX_EVALUATIONS_ENV})")
    if seconds is not None and seconds > budget.max_seconds:
        over.append(f"the budget of {format_seconds(budget.max_seconds)} ({MAX_SECONDS_ENV})")
    memory_over = False
    if bytes is not None:
        free = available_memory()
        memory_over = bytes > min(budget.max_bytes, free)
        if bytes > budget.max_bytes:
            over.append(f"the budget of {format_bytes(budget.max_bytes)} of memory ({MAX_BYTES_ENV})")
        elif bytes > free:
            over.append(f"the {format_bytes(free)} of memory free here")
    if over:
        needs = []
        if evaluations is not None:
            needs.append(f"{format_count(evaluations)} model evaluations")
            if seconds is not None:
                needs[-1] += f", about {format_seconds(seconds)} here"
        if bytes is not None and (memory_over or not needs):  # a few KiB beside a long run would be noise
            needs.append(f"{format_bytes(bytes)} of memory")
        how = f": {lower}" if lower else ""
        raise OverBudgetError(f"{what} needs {' and '.join(needs)}, more than {' and '.join(over)}{how}")
    return estimate

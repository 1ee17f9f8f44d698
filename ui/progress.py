"""Progress bars with a Stop button around geometry's long computations (docs/DESIGN.md §7).

geometry reports through a ``progress(fraction, text)`` callback; `progress_bar` turns that into an
``st.progress`` bar. Stop works the Streamlit way: the click reruns the page, Streamlit interrupts the running
computation at its next progress update (nothing half-done reaches the cache, which only stores finished
results), and in that rerun the button reads True, so `progress_bar` raises `Stopped` instead of starting the
same work again. app.py catches `Stopped` for pages that do not show a message of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from geometry.runtime.memo import Memoized


class Stopped(Exception):
    """The user pressed Stop while a computation was running."""


@contextmanager
def progress_bar(text: str, stop_key: str | None = "") -> Iterator[Callable[[float, str], None]]:
    """A progress bar (and a Stop button) for the block; both are removed when it ends.

    ``stop_key``: the Stop button's widget key; "" derives it from ``text`` (unique per bar on a page),
    None shows no Stop button (for work that cannot be interrupted half-way, such as one t-SNE fit).
    Updates show ``text: <the library's message>``.
    """
    if stop_key == "":
        stop_key = f"stop::{text}"
    cols = st.columns([6, 1]) if stop_key else [st.container()]
    stop = cols[1].empty() if stop_key else None
    if stop is not None and stop.button("Stop", key=stop_key, icon=":material/stop_circle:", help="Stop this"):
        stop.empty()
        raise Stopped(text)
    bar = cols[0].progress(0.0, text=text)

    def update(fraction: float, message: str) -> None:
        bar.progress(float(min(max(fraction, 0.0), 1.0)), text=f"{text.rstrip('…')}: {message}" if message else text)

    try:
        yield update
    finally:
        bar.empty()
        if stop is not None:
            stop.empty()


def run_cached(function: Memoized, *args: Any, label: str, stop_key: str | None = "", **kwargs: Any) -> Any:
    """Call a memoized library function (`geometry.runtime.memo`): a cached result returns at once with no bar;
    a miss runs under `progress_bar` (``label``, ``stop_key``), passing the bar as ``progress=``."""
    hit = function.cached(*args, **kwargs)
    if hit is not None:
        return hit
    with progress_bar(label, stop_key=stop_key) as progress:
        return function(*args, progress=progress, **kwargs)

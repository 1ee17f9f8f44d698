"""What every view script calls: the sidebar's selection and the error guard around library calls.

    sel = page.selection()
    with page.guard("Could not compute the slice"):
        result = run_cached(...)

docs/DESIGN.md §3 ("Bad input"): the library raises `ValueError`/`TypeError` that say what was expected; a page
shows them as ``st.error`` and never a traceback. A Stop button raises `ui.progress.Stopped`; the page says that
it stopped and how to go on. `guard` does both, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from geometry.models.handle import NonFiniteOutputError
from ui import keys
from ui.progress import Stopped
from ui.sidebar import render_sidebar
from ui.state import Selection

# What a page shows as an error message instead of a traceback: the library's bad input (ValueError, with its
# subclasses NonFiniteOutputError for a model that returns NaN and NoAffineHeadError), wrong types, and torch's
# RuntimeError (a model that does not accept the input's shape).
ERRORS: tuple[type[Exception], ...] = (ValueError, NonFiniteOutputError, TypeError, RuntimeError)

STOPPED = "Stopped: {what}. Nothing half-done was kept; change a setting or rerun to start again."


def selection() -> Selection:
    """The model, data set and images the sidebar picked; app.py draws the sidebar before every page.

    A page run without app.py having run first (Streamlit's AppTest re-runs only the page after a ``switch_page``)
    draws the sidebar itself, so a page never works on a missing selection.
    """
    sel = st.session_state.get(keys.SELECTION)
    return sel if sel is not None else render_sidebar()


@contextmanager
def guard(
    what: str, *, stopped: str | None = None, keep_going: bool = False, resume_key: str | None = None
) -> Iterator[None]:
    """Run the block; show the library's errors and a Stop as messages instead of tracebacks.

    what: the start of the error message, ``"{what}: {the error}"`` (``what`` alone: ``"{the error}"``, for
        errors that say everything themselves).
    stopped: the message after a Stop (default: `STOPPED`, naming the progress bar that was stopped).
    keep_going: after an error or a Stop, go on with the page after the block (whose results are then missing:
        set them before the block) instead of ending the run with ``st.stop()``.
    resume_key: after a Stop, offer a "Compute" button (this widget key) that runs the page again.
    """
    try:
        yield
    except Stopped as stop:
        st.info(stopped or STOPPED.format(what=stop))
        if resume_key:
            st.button("Compute", key=resume_key, icon=":material/play_arrow:")
        if not keep_going:
            st.stop()
    except ERRORS as err:
        st.error(f"{what}: {err}" if what else str(err))
        if not keep_going:
            st.stop()

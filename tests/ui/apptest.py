"""Shared AppTest helpers: start the app and read plotly figures back as data."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def app(timeout: float = 180, **sidebar: Any) -> AppTest:
    """A fresh AppTest of app.py with sidebar widgets preset by key (torch-heavy pages need a long timeout).

    Set sidebar choices here rather than through the widgets: with ``st.navigation``, AppTest (1.67)
    drops the entrypoint's elements (our sidebar) from its element tree after the first run, although
    the script still runs them; elements of the page itself are unaffected.
    """
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for key, value in sidebar.items():
        at.session_state[key] = value
    return at


def figures(at: AppTest) -> list[dict[str, Any]]:
    """The plotly figures on the page as dicts (``data``/``layout``)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def decode(value: Any) -> np.ndarray:
    """Plotly 7 stores numpy arrays as {"dtype", "bdata", "shape"}; plain lists pass through."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if isinstance(shape, str):  # plotly writes 2-D shapes as "rows, cols"
            shape = [int(n) for n in shape.split(",")]
        return array.reshape(shape) if shape else array
    return np.asarray(value)

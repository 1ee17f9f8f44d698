"""Boundary Atlas: see and measure how an image classifier carves up its input.

    streamlit run app.py

The sidebar (model, images, settings) is drawn here, outside the pages, so that its widgets and
their values survive page switches; each page reads the selection with `ui.state.selection()`.
The view scripts live in views/, not pages/: Streamlit serves a pages/ folder as a menu of its own on deep links.
"""

from __future__ import annotations

import streamlit as st

from ui.progress import Stopped
from ui.sidebar import render_sidebar
from ui.views import VIEWS

st.set_page_config(page_title="Boundary Atlas", page_icon=":material/map:", layout="wide")

PAGES = [st.Page(v.script, title=v.title, icon=v.icon, default=(i == 0)) for i, v in enumerate(VIEWS)]

page = st.navigation(PAGES)
if "link_applied" not in st.session_state:  # a shared link (?model=...&data=...) picks the sidebar's model and data
    st.session_state["link_applied"] = True
    for _param, _key in (("model", "builtin_model"), ("data", "dataset")):
        if _param in st.query_params:
            st.session_state[_key] = st.query_params[_param]
render_sidebar()
try:
    page.run()
except Stopped as stopped:  # a Stop button on a page that has no message of its own
    st.info(f"Stopped: {stopped}. Nothing half-done was kept; change a setting or rerun to start again.")

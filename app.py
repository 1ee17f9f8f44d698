"""Boundary Atlas: see and measure how an image classifier carves up its input.

    streamlit run app.py

The sidebar (model, images, settings) is drawn here, outside the pages, so that its widgets and
their values survive page switches; each page reads the selection with `ui.state.selection()`.
"""

from __future__ import annotations

import streamlit as st

from ui.sidebar import render_sidebar

st.set_page_config(page_title="Boundary Atlas", page_icon="🗺️", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]

page = st.navigation(PAGES)
render_sidebar()
page.run()

"""Boundary Atlas: see and measure how an image classifier carves up its input.

    streamlit run app.py

The sidebar (model, images, settings) is drawn here, outside the pages, so that its widgets and
their values survive page switches; each page reads the selection with `ui.page.selection()`.
The view scripts live in views/, not pages/: Streamlit serves a pages/ folder as a menu of its own on deep links.
The menu's sections and pages come from the one registry, `ui.views`.
"""

from __future__ import annotations

import streamlit as st

from ui.page import STOPPED
from ui.progress import Stopped
from ui.sidebar import apply_link, render_sidebar
from ui.views import VIEWS, by_section

st.set_page_config(page_title="Boundary Atlas", page_icon=":material/map:", layout="wide")

PAGES = {
    section: [st.Page(v.script, title=v.title, icon=v.icon, default=(v == VIEWS[0])) for v in views]
    for section, views in by_section().items()
}

page = st.navigation(PAGES)
apply_link()  # a shared link (?model=...&data=...) picks the sidebar's model and data
render_sidebar()
try:
    page.run()
except Stopped as stopped:  # a Stop button on a page that has no message of its own
    st.info(STOPPED.format(what=stopped))

"""CCS Explorer: `streamlit run app.py`.

The entry point draws the sidebar (``app_lib/sidebar.py``: the session's choices) and routes to the thin
pages in app_pages/ (listed once, in ``app_lib/links.py``). (Not "pages/": Streamlit treats a top-level pages/ folder as its legacy multipage
mode and can run a page without this entry point until it has run once.)
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

# A local icon file: a material or emoji page_icon makes the browser fetch it from a CDN (fails offline).
ICON = Path(__file__).resolve().parent / "app_lib" / "icon.png"
st.set_page_config(page_title="CCS Explorer", page_icon=str(ICON), layout="wide")

from app_lib import links, session, sidebar, ui  # noqa: E402  (after set_page_config)

session.init_state()
linked_page = links.read()  # ?head=L3.H5&model=toy&page=inspector: a link opens the same view
page = st.navigation(links.pages())
if linked_page and links.PAGE_URLS[linked_page] != page.url_path:
    st.switch_page(links.PAGE_PATHS[linked_page])
for note in st.session_state.pop("_link_notes", []):  # a link's values out of range: said, not dropped
    st.info(note)
boot = st.empty()  # the main area's slot for a first model load's staged progress
with st.sidebar:
    loaded = sidebar.draw(boot)
sidebar.random_weights_banner(loaded)
try:
    page.run()
except Exception as err:  # the last line of defence: a message, never a traceback
    ui.show_error(err)
finally:  # also when a page stops early (st.stop while a job runs)
    links.write()

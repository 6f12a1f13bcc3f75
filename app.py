"""CCS Explorer: `streamlit run app.py`.

The entry point draws the sidebar (``app_lib/sidebar.py``: the session's choices) and routes to the thin
pages in app_pages/. (Not "pages/": Streamlit treats a top-level pages/ folder as its legacy multipage
mode and can run a page without this entry point until it has run once.)
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

# A local icon file: a material or emoji page_icon makes the browser fetch it from a CDN (fails offline).
ICON = Path(__file__).resolve().parent / "app_lib" / "icon.png"
st.set_page_config(page_title="CCS Explorer", page_icon=str(ICON), layout="wide")

from app_lib import session  # noqa: E402  (after set_page_config)
from app_lib import links, sidebar, ui  # noqa: E402

PAGES = [
    st.Page("app_pages/home.py", title="Overview", icon=":material/home:", default=True,
            help="The loaded model, the session's choices and what the toy model shows"),
    st.Page("app_pages/grid.py", title="Head grid", icon=":material/grid_view:", url_path="grid",
            help="Every analysed head by CCS, category or variance explained; click one"),
    st.Page("app_pages/inspector.py", title="Span & label inspector", icon=":material/search:",
            url_path="inspector", help="One head's spans, label, verdicts, top images; your own verdicts"),
    st.Page("app_pages/judges.py", title="Judge re-scoring", icon=":material/balance:", url_path="judges",
            help="Judge settings and keys, labeller, few-shot examples; re-label and re-judge"),
    st.Page("app_pages/prune.py", title="Prune & evaluate", icon=":material/content_cut:", url_path="prune",
            help="The paper's comparison: high, low and random heads pruned; accuracy and MaxSkew"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:", url_path="export",
            help="Spans, labels, verdicts, CCS, pruning and bias results; charts as PNG/SVG"),
]

session.init_state()
linked_page = links.read()  # ?head=L3.H5&model=toy&page=inspector: a link opens the same view
page = st.navigation(PAGES)
if linked_page and links.PAGE_URLS[linked_page] != page.url_path:
    st.switch_page(links.PAGE_PATHS[linked_page])
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

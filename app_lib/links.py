"""Deep links: ``?head=L11.H5&model=ViT-B-32&page=inspector`` (plus pretrained, images, n, layers, spans,
high, low, protocol) opens the same view in a new session; the address bar is kept a link to the current one."""
from __future__ import annotations

import streamlit as st

from .session import DEFAULTS, TOY_MODEL_NAME

RANGES = {"n_images": (16, 4096), "n_layers": (1, 10_000), "n_spans": (1, 10), "th_high": (4, 10), "th_low": (0, 2)}
# the sidebar widgets' ranges (sidebar.py caps the layers at the model's depth and high at the spans,
# and says so for a linked value)
LINK_KEYS = {"model": "model_name", "pretrained": "pretrained", "head": "selected_head",
             "n": "n_images", "layers": "n_layers", "spans": "n_spans", "high": "th_high", "low": "th_low",
             "protocol": "protocol"}
# The app's pages, the one list: link name -> (file, title, icon, tooltip). The link name is the
# page's url path (the overview is the default page, at "/").
PAGES = {
    "overview": ("app_pages/home.py", "Overview", "home",
                 "The loaded model, the session's choices and what the toy model shows"),
    "grid": ("app_pages/grid.py", "Head grid", "grid_view",
             "Every analysed head by CCS, category or variance explained; click one"),
    "inspector": ("app_pages/inspector.py", "Span & label inspector", "search",
                  "One head's spans, label, verdicts, top images; your own verdicts"),
    "judges": ("app_pages/judges.py", "Judge re-scoring", "balance",
               "Judge settings and keys, labeller, few-shot examples; re-label and re-judge"),
    "prune": ("app_pages/prune.py", "Prune & evaluate", "content_cut",
              "The paper's comparison: high, low and random heads pruned; accuracy and MaxSkew"),
    "export": ("app_pages/export.py", "Export", "download",
               "Spans, labels, verdicts, CCS, pruning and bias results; charts as PNG/SVG"),
    "reproduce": ("app_pages/reproduce.py", "Reproduce report", "table_chart",
                  "A 'reproduce' run's report: our numbers beside the paper's tables"),
}
PAGE_PATHS = {name: page[0] for name, page in PAGES.items()}
PAGE_URLS = {name: ("" if name == "overview" else name) for name in PAGES}  # st.Page url_path


def pages() -> list:
    """The ``st.Page`` of every page, in the sidebar's order."""
    return [st.Page(path, title=title, icon=f":material/{icon}:", help=tip, default=name == "overview",
                    **({} if name == "overview" else {"url_path": name}))
            for name, (path, title, icon, tip) in PAGES.items()]


def read() -> str | None:
    """Once per session, before the widgets: the link's choices into the session. Returns the page
    name a ``page=`` parameter asks for (None if none or unknown). Bad values are ignored."""
    s = st.session_state
    if s.get("_link_read"):
        return None
    s["_link_read"] = True
    q = st.query_params
    images = (q.get("images") or "").strip()
    if images:
        s["images_kind"] = "toy" if images == "toy" else "folder"
        if images != "toy":
            s["images_path"] = images
    for param, key in LINK_KEYS.items():
        value = q.get(param)
        if value is None:
            continue
        if isinstance(DEFAULTS.get(key), int):
            try:
                number = int(value)
            except ValueError:
                s.setdefault("_link_notes", []).append(f"The link's {param}={value!r} is not a whole number; "
                                                        f"the default ({DEFAULTS[key]}) is used.")
                continue
            low, high = RANGES.get(key, (number, number))
            if not low <= number <= high:  # the widget would reset it without a word
                s.setdefault("_link_notes", []).append(f"The link asks for {param}={number}; the range is "
                                                        f"{low}..{high}, so {min(max(number, low), high)} is used.")
            s[key] = min(max(number, low), high)
            s[f"_from_link_{key}"] = True  # the sidebar says so if the model or the spans cap it further
        else:
            s[key] = value.strip()
    name = (q.get("page") or "").strip().lower()
    return name if name in PAGE_PATHS else None


def write() -> None:
    """Keep the address bar a link to what the session shows (copy it to share the same head)."""
    s = st.session_state
    want = {"model": s.get("model_name") or TOY_MODEL_NAME, "head": s.get("selected_head") or ""}
    if s.get("pretrained"):
        want["pretrained"] = s["pretrained"]
    if (s.get("images") or "toy") != "toy":
        want["images"] = s["images"]
    if (s.get("protocol") or "standard") != "standard":
        want["protocol"] = s["protocol"]
    for param, key in (("n", "n_images"), ("layers", "n_layers"), ("spans", "n_spans"), ("high", "th_high"),
                       ("low", "th_low")):
        if s.get(key) is not None and s.get(key) != DEFAULTS[key]:
            want[param] = str(s[key])
    want = {k: v for k, v in want.items() if v}
    if dict(st.query_params) != want:
        st.query_params.from_dict(want)

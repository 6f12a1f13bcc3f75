"""The Judge page's settings panel: endpoints, models, timeouts, retries, concurrency, tokens and keys.

What is typed here overrides ``ccs.toml``/secrets and the environment for this browser session only
(``judge_overrides``); API keys typed here live in ``judge_keys`` in the session, never on disk and
never in a cache key (only whether a key is present is part of a job's key).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ccs_core.errors import CCSError
from ccs_core.judges.settings import KEY_VARS, PROVIDERS, TITLES

from . import session as sn

NUMBERS = {"timeout": ("Timeout per request (s)", 1.0, 600.0), "max_retries": ("Retries (429/5xx/timeouts)", 0, 20),
           "max_workers": ("Concurrent requests", 1, 64), "max_tokens": ("Max output tokens", 16, 32768)}


def settings_panel() -> None:
    from ccs_core.judges.config import describe

    s = st.session_state
    try:
        current = sn.judge_settings()
    except Exception as err:  # a bad ccs.toml / variable: say so, keep the page
        st.error(f"{err}", icon=":material/error:")
        if (s.get("judge_overrides") or s.get("judge_keys")) and st.button(
                "Forget this session's settings and keys", key="judge_settings_reset_broken"):
            s.pop("judge_overrides", None)
            s.pop("judge_keys", None)
            st.rerun()
        return
    with st.expander("Endpoints, models, timeouts and keys", expanded=False, key="judge_settings_box"):
        with st.form("judge_settings_form"):
            changed: dict = {}
            keys: dict = {}
            for p in PROVIDERS:
                c1, c2, c3 = st.columns([2, 3, 2])
                changed[f"{p}_model"] = c1.text_input(f"{TITLES[p]} model", value=getattr(current, f"{p}_model"),
                                                      key=f"js_{p}_model")
                changed[f"{p}_base_url"] = c2.text_input(f"{TITLES[p]} endpoint (base URL)",
                                                         value=getattr(current, f"{p}_base_url"),
                                                         key=f"js_{p}_base_url",
                                                         help="Any OpenAI-compatible server for OpenAI/Gemini.")
                present = not describe(current)["api_keys"][p].endswith("(none)")
                keys[KEY_VARS[p][0]] = c3.text_input(KEY_VARS[p][0], type="password", key=f"js_{p}_key",
                                                     placeholder="set (leave empty to keep)" if present else "not set",
                                                     help="Kept in this browser session only.")
            cols = st.columns(len(NUMBERS))
            for col, (name, (title, lo, hi)) in zip(cols, NUMBERS.items()):
                value = getattr(current, name)
                changed[name] = col.number_input(title, min_value=type(value)(lo), max_value=type(value)(hi),
                                                 value=value, key=f"js_{name}")
            if st.form_submit_button("Apply to this session"):
                from ccs_core.judges.config import load_settings

                base = load_settings()  # files and environment: only what differs is the session's
                overrides = {k: v for k, v in changed.items() if v not in (None, "") and v != getattr(base, k)}
                try:  # e.g. an endpoint that is not a URL: refused here, the session keeps its settings
                    load_settings(overrides, where="this settings panel")
                except CCSError as err:
                    st.error(f"{err}", icon=":material/error:")
                else:
                    s["judge_overrides"] = overrides
                    typed = {k: v.strip() for k, v in keys.items() if v and v.strip()}
                    s["judge_keys"] = {**(s.get("judge_keys") or {}), **typed}
                    st.rerun()
        st.caption("Lowest to highest: defaults, `ccs.toml` / `.streamlit/secrets.toml` `[judges]`, the "
                   "environment (`OPENAI_BASE_URL`, `CCS_OPENAI_MODEL`, `CCS_TIMEOUT`, ...), this panel. Keys "
                   "typed here stay in this browser session: never written to disk or into a cache key.")
        shown = describe(current)
        rows = [{"setting": k, "value": str(v)} for k, v in shown.items() if k != "api_keys"]
        rows += [{"setting": f"{p} key", "value": v} for p, v in shown["api_keys"].items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="judge_settings_table")
        if s.get("judge_overrides") or s.get("judge_keys"):
            if st.button("Forget this session's settings and keys", key="judge_settings_reset"):
                s.pop("judge_overrides", None)
                s.pop("judge_keys", None)
                st.rerun()

"""The app with a real LLM judge (the openai SDK against the fake server): endpoint and key typed into
the Judge page's settings panel, a failing request surfaced on the grid, "Re-ask the failed" sending
exactly the missing request (issue 11)."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from llm_server import FakeLLMServer  # noqa: E402
from tests.conftest import ROOT  # noqa: E402


@pytest.fixture
def server():
    srv = FakeLLMServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def app(tmp_path, monkeypatch):
    import streamlit as st

    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["n_images"] = 32
    yield at
    st.cache_resource.clear()


def test_settings_panel_key_and_endpoint_then_reask_only_the_failed_request(app, server):
    at = app
    at.run()
    at.switch_page("app_pages/judges.py").run()
    assert not at.exception
    at.text_input(key="js_openai_base_url").input(server.openai_url)
    at.text_input(key="js_openai_key").input("sk-typed-in-the-panel")
    at.number_input(key="js_max_retries").set_value(0)
    at.button[[b.label for b in at.button].index("Apply to this session")].click().run()
    assert at.session_state["judge_keys"] == {"OPENAI_API_KEY": "sk-typed-in-the-panel"}
    assert at.session_state["judge_overrides"] == {"openai_base_url": server.openai_url, "max_retries": 0}
    table = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert server.openai_url in table.to_string()
    assert "sk-typed-in-the-panel" not in table.to_string()  # masked

    at.checkbox(key="judge_openai").check()
    at.checkbox(key="judge_toy").uncheck()
    server.script = ["500"]  # the first verdict request fails (no retries)
    at.switch_page("app_pages/grid.py").run()
    assert not at.exception
    assert at.session_state["judges"] == ["openai"]
    sent = server.calls
    assert sent >= 2 and server.paths["/v1/chat/completions"] == sent
    warn = [w.value for w in at.warning if "have no CCS" in w.value]
    assert warn and "OpenAI request failed" in warn[0], [w.value for w in at.warning]

    server.reset()  # healthy now
    at.button(key="reask_failed").click().run()
    at.run()
    assert not at.exception
    assert server.calls == 1  # exactly the missing verdict
    assert not [w.value for w in at.warning if "have no CCS" in w.value]

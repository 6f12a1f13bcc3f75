"""Bad judge settings and score inputs get one clear line, exit status 2 and no traceback; a judge's
endpoint is part of its cache key; an endpoint where nothing listens says to check that endpoint (the
judges' part of the fault sweep, issue 14)."""
from __future__ import annotations

import json
import socket

import pytest

from ccs_core.cli import main
from ccs_core.errors import DataError, EndpointUnreachable
from ccs_core.judges import JudgeSettings, make_judge, score_heads
from ccs_core.judges.config import load_settings
from ccs_core.judges.labels import make_labeller
from ccs_core.store import Store
from llm_server import FakeLLMServer

KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test", "GEMINI_API_KEY": "g-test"}
SPANS_JSON = {"model_key": "m", "model_name": "toy", "image_set": "x", "image_set_key": "x", "pool": "p",
              "pool_key": "p", "params": {}, "layers": [3], "n_heads": 16, "n_images": 4,
              "heads": [{"head": f"L3.H{i}", "texts": list("abcde"), "indices": [0] * 5, "variances": [1.0] * 5,
                         "explained_share": 0.5} for i in range(3)]}


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A 3-head spans file, the files the cases name, and no settings of the developer's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.streamlit/secrets.toml
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("CCS_CONFIG", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GEMINI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "s3.json").write_text(json.dumps(SPANS_JSON))
    tomls = {"compat_str": '[judges]\ncompatible = "x"\n',
             "judges_str": 'judges = "openai"\n',
             "judges_list": "judges = [1, 2]\n",
             "retries_half": "[judges]\nmax_retries = 4.5\n",
             "workers_bool": "[judges]\nmax_workers = true\n",
             "model_int": "[judges]\nopenai_model = 5\n",
             "timeout_table": "[judges.timeout]\nx = 1\n",
             "url_file": '[judges]\nopenai_base_url = "localhost:1234"\n',
             "compat_model_int": '[judges.compatible.loc]\nbase_url = "http://h/v1"\nmodel = 3\n',
             "compat_typo": '[judges.compatible.loc]\nbase_url = "http://h/v1"\nmodel = "m"\napi_key = "sk"\n',
             "compat_bad_url": '[judges.compatible.loc]\nbase_url = "h:8000"\nmodel = "m"\n'}
    for name, text in tomls.items():
        (tmp_path / f"{name}.toml").write_text(text)
    (tmp_path / "lab_nolabel.csv").write_text("head,label\nL3.H0\n")
    (tmp_path / "lab_empty.csv").write_text("head,label\nL3.H1,red\nL3.H0,\n")
    (tmp_path / "lab_semicolon.csv").write_text("head;label\nL3.H0;red\n")
    (tmp_path / "ex_semicolon.csv").write_text("example;label;span\n1;Red;a red car\n")
    (tmp_path / "ex_ok.csv").write_text("example,label,span\n1,Red,a red car\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


SHOW = ["score", "--spans", "{tmp}/s3.json", "--show-settings"]
SCORE = ["score", "--spans", "{tmp}/s3.json", "--out", "{tmp}/o.json"]
# (id, $CCS_CONFIG or None, argv, what the one line must say)
CASES = [
    ("1-compatible-not-a-table", "compat_str.toml", SHOW,
     "compatible in {tmp}/compat_str.toml is 'x' (a string), not a table of named OpenAI-compatible judges"),
    ("2-judges-a-string", "judges_str.toml", SHOW, "judges in {tmp}/judges_str.toml is 'openai' (a string), not a table"),
    ("2-judges-a-list", "judges_list.toml", SHOW, "(a list), not a table"),
    ("2-retries-not-whole", "retries_half.toml", SHOW, "max_retries from {tmp}/retries_half.toml is 4.5 (a number), "
                                                        "not a whole number"),
    ("2-workers-a-boolean", "workers_bool.toml", SHOW, "max_workers from {tmp}/workers_bool.toml is True (a boolean)"),
    ("2-model-a-number", "model_int.toml", SHOW, 'openai_model from {tmp}/model_int.toml is 5 (an integer), not a '
                                                 'string (in double quotes). Fix it there (e.g. openai_model = "gpt-4o")'),
    ("2-timeout-a-table", "timeout_table.toml", SHOW, "timeout from {tmp}/timeout_table.toml is {'x': 1} (a table)"),
    ("2-compatible-model-a-number", "compat_model_int.toml", SHOW,
     "model of the OpenAI-compatible judge 'loc' in {tmp}/compat_model_int.toml is 3 (an integer), not a string"),
    ("2-compatible-unknown-key", "compat_typo.toml", SHOW, "Unknown key(s) api_key for the OpenAI-compatible judge 'loc'"),
    ("3-config-missing", "nope.toml", SHOW, "$CCS_CONFIG names {tmp}/nope.toml, which does not exist"),
    ("3-config-a-directory", "adir", SHOW, "$CCS_CONFIG names {tmp}/adir, which is a directory"),
    ("5-base-url-no-scheme", None, SHOW + ["--base-url", "openai=localhost:1234"],
     "The openai endpoint (base URL) from the command line is 'localhost:1234', which is not an http(s) URL"),
    ("5-base-url-words", None, SHOW + ["--base-url", "openai=not a url"], "'not a url', which is not an http(s) URL"),
    ("5-base-url-bad-port", None, SHOW + ["--base-url", "anthropic=http://h:port/"], "The anthropic endpoint"),
    ("5-base-url-in-a-file", "url_file.toml", SHOW, "from {tmp}/url_file.toml is 'localhost:1234', which is not"),
    ("5-compatible-url", None, SHOW + ["--compatible", "loc=h:8000,m"], "The loc endpoint (base URL) from --compatible"),
    ("5-compatible-url-in-a-file", "compat_bad_url.toml", SHOW, "The loc endpoint (base URL) from {tmp}/compat_bad_url"),
    ("7-max-tokens-negative", None, SHOW + ["--max-tokens", "-5"], "max_tokens from the command line is -5; it must be "
                                                                   "at least 1"),
    ("7-max-tokens-zero", None, SHOW + ["--max-tokens", "0"], "max_tokens from the command line is 0; it must be at least 1"),
    ("8-compatible-twice", None, SHOW + ["--compatible", "a=http://x/v1,m", "--compatible", "A=http://y/v1,n"],
     "--compatible names the judge 'a' twice (http://x/v1,m and http://y/v1,n)"),
    ("8-judge-model-twice", None, SHOW + ["--judge-model", "openai=a", "--judge-model", "openai=b"],
     "--judge-model gives openai twice ('a' and 'b')"),
    ("9-examples-toy-labeller", None, SCORE + ["--examples", "{tmp}/ex_ok.csv"],
     "--examples gives few-shot examples to an LLM labeller (openai, anthropic, gemini), but the labeller here is "
     "'toy' (the default for this model), which does not use them"),
    ("9-examples-embedding-labeller", None, SCORE + ["--labeller", "embedding", "--examples", "{tmp}/ex_ok.csv"],
     "the labeller here is 'embedding', which does not use them"),
    ("10-label-row-without-label", None, SCORE + ["--labels", "{tmp}/lab_nolabel.csv"],
     "{tmp}/lab_nolabel.csv, line 2: head L3.H0 has no label"),
    ("10-label-row-empty-label", None, SCORE + ["--labels", "{tmp}/lab_empty.csv"],
     "{tmp}/lab_empty.csv, line 3: head L3.H0 has no label"),
    ("11-labels-semicolons", None, SCORE + ["--labels", "{tmp}/lab_semicolon.csv"],
     "needs a header with the columns head, label for labels, but its header reads 'head;label'; it looks "
     "';'-separated: save it comma-separated"),
    ("11-examples-semicolons", None, SCORE + ["--labeller", "openai", "--examples", "{tmp}/ex_semicolon.csv"],
     "its header reads 'example;label;span'; it looks ';'-separated"),
]


@pytest.mark.parametrize("name,config,argv,message", CASES, ids=[c[0] for c in CASES])
def test_bad_judge_input_is_one_clear_line_with_exit_2(files, capsys, monkeypatch, name, config, argv, message):
    if config:
        monkeypatch.setenv("CCS_CONFIG", str(files / config))
    code = main([a.replace("{tmp}", str(files)) for a in argv])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err[-600:])
    assert message.replace("{tmp}", str(files)) in err, err[-600:]
    assert "Traceback" not in err and "unexpected" not in err, err[-600:]
    assert not (files / "o.json").exists() and not captured.out  # no settings shown, nothing written


def test_good_settings_still_pass(files, monkeypatch):
    """What the checks must not refuse: full URLs with ports and paths, integral numbers, one name each."""
    (files / "ok.toml").write_text('[judges]\nmax_retries = 2\ntimeout = 5\nopenai_base_url = "http://127.0.0.1:8000/v1"\n'
                                   '[judges.compatible.loc]\nbase_url = "https://h.example/v1/"\nmodel = "m"\n'
                                   'key_env = "LOC_KEY"\n')
    monkeypatch.setenv("CCS_CONFIG", str(files / "ok.toml"))
    s = load_settings({"max_tokens": 1, "anthropic_base_url": "http://[::1]:9/"})
    assert (s.max_retries, s.timeout, s.max_tokens) == (2, 5.0, 1)
    assert s.openai_base_url == "http://127.0.0.1:8000/v1" and s.anthropic_base_url == "http://[::1]:9/"
    assert [(c.name, c.base_url, c.key_env) for c in s.compatible] == [("loc", "https://h.example/v1/", "LOC_KEY")]
    monkeypatch.setenv("OPENAI_BASE_URL", "not a url")
    with pytest.raises(DataError, match=r"openai endpoint \(base URL\) from \$OPENAI_BASE_URL is 'not a url'"):
        load_settings()


SPANS = {"L10.H1": ["a red car", "red apple", "red sky at dusk", "blue sea", "a red hat"],
         "L11.H0": ["tree bark", "tree leaves", "tree house", "old tree", "tree shadow"]}


@pytest.fixture
def two_servers():
    a, b = FakeLLMServer().start(), FakeLLMServer().start()
    yield a, b
    a.stop()
    b.stop()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_4_another_endpoint_is_another_cache_entry(two_servers, tmp_path, provider):
    """Two servers behind one model name on one cache: the second is asked, not served the first's
    verdicts; the same server again is a hit."""
    store = Store(tmp_path / "cache")

    def run(srv):
        url = srv.anthropic_url if provider == "anthropic" else srv.openai_url
        s = JudgeSettings(api_keys=KEYS, max_retries=0, timeout=5.0, **{f"{provider}_base_url": url})
        return score_heads(SPANS, make_labeller(provider, s), [make_judge(provider, s)], store)

    a, b = two_servers
    assert run(a).calls == 4 and a.calls == 4
    assert run(b).calls == 4 and b.calls == 4  # was 0: the first server's answers
    assert run(a).calls == 0 and a.calls == 4


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_4_the_default_endpoints_cache_key_is_unchanged(provider):
    s = JudgeSettings(api_keys=KEYS)
    parts = make_judge(provider, s).cache_parts("red", ["a red car"])
    old = {"provider": provider, "model": s.model_for(provider), "max_tokens": 1024}
    if provider != "anthropic":
        old["temperature"] = 0.0
    assert {k: parts[k] for k in parts if k not in ("prompt", "messages", "schema")} == old
    # a trailing slash is still the default endpoint
    url = s.base_url_for(provider)
    other = url.rstrip("/") if url.endswith("/") else url + "/"
    assert make_judge(provider, s.with_(**{f"{provider}_base_url": other})).cache_parts("red", ["a"]) == \
        make_judge(provider, s).cache_parts("red", ["a"])


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_6_nothing_listening_says_to_check_the_endpoint(provider):
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    s = JudgeSettings(api_keys=KEYS, max_retries=0, timeout=5.0, **{f"{provider}_base_url": url})
    with pytest.raises(EndpointUnreachable) as err:
        make_judge(provider, s).judge("red", ["a red car"])
    text = str(err.value)
    assert f"nothing answered at {url}: check that this endpoint (--base-url {provider}=URL / " \
           f"{provider.upper()}_BASE_URL) is right and its server is up" in text, text
    assert "try again later" not in text


def test_6_dead_port_on_the_command_line_names_the_url(files, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    (files / "labels.csv").write_text("head,label\nL3.H0,red\nL3.H1,blue\nL3.H2,green\n")  # no labeller call
    code = main(["score", "--spans", str(files / "s3.json"), "--labels", str(files / "labels.csv"), "--judges",
                 "openai", "--base-url", f"openai={url}", "--retries", "0", "--out", str(files / "o.json")])
    err = capsys.readouterr().err
    assert code == 3, err[-800:]
    assert f"nothing answered at {url}: check that this endpoint" in err and "Traceback" not in err, err[-800:]


def test_1_5_the_judges_page_shows_bad_settings_as_messages(files, monkeypatch):
    """A bad config file is a message on the Judges page, not a bug box; a base URL typed into the
    settings panel that is not a URL is refused there and the session keeps its settings."""
    pytest.importorskip("streamlit")
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    for var in KEYS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CCS_CONFIG", str(files / "compat_str.toml"))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["n_images"] = 32
    at.run()
    at.switch_page("app_pages/judges.py").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("is 'x' (a string), not a table of named OpenAI-compatible judges" in e for e in errors), errors
    assert not any("This is a bug" in e for e in errors), errors

    monkeypatch.delenv("CCS_CONFIG")
    at.run()
    at.text_input(key="js_openai_base_url").input("localhost:1234")
    at.button[[b.label for b in at.button].index("Apply to this session")].click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("The openai endpoint (base URL) from this settings panel is 'localhost:1234'" in e
               for e in errors), errors
    assert "judge_overrides" not in at.session_state or not at.session_state["judge_overrides"]
    st.cache_resource.clear()


def test_a_password_in_a_base_url_stays_out_of_messages_results_and_cache_keys(tmp_path, monkeypatch, capsys):
    import json

    from ccs_core.cli import main
    from ccs_core.judges.settings import hide_password

    assert hide_password("http://user:pw123@127.0.0.1:9/v1") == "http://user:…@127.0.0.1:9/v1"
    assert hide_password("http://h:80/v1") == "http://h:80/v1"
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    spans = {"model_key": "m", "model_name": "toy", "image_set": "x", "image_set_key": "x", "pool": "p",
             "pool_key": "p", "params": {}, "layers": [3], "n_heads": 16, "n_images": 4,
             "heads": [{"head": "L3.H0", "texts": list("abcde"), "indices": [0] * 5, "variances": [1.0] * 5,
                        "explained_share": 0.5}]}
    (tmp_path / "s.json").write_text(json.dumps(spans))
    (tmp_path / "l.csv").write_text("head,label\nL3.H0,colour\n")  # labelled: only the judge is asked
    code = main(["score", "--spans", str(tmp_path / "s.json"), "--labels", str(tmp_path / "l.csv"), "--judges", "openai",
                 "--retries", "0", "--timeout", "2", "--base-url", "openai=http://user:pw123@127.0.0.1:9/v1",
                 "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 3 and "nothing answered at http://user:…@127.0.0.1:9/v1" in err and "pw123" not in err, err
    assert "pw123" not in (tmp_path / "o.json").read_text()
    assert not [f for f in (tmp_path / "cache").rglob("*") if f.is_file() and b"pw123" in f.read_bytes()]

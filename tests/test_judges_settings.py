"""Judge settings from one source (files < environment < flags), honest exit codes, per-request
fallback, re-asking only what failed: the real SDKs against the fake server (issue 11)."""
from __future__ import annotations

import json

import pytest

from ccs_core.errors import JudgeError
from ccs_core.judges import make_judges, score_heads
from ccs_core.judges.config import describe, load_settings, parse_pairs
from ccs_core.judges.labels import make_labeller
from ccs_core.judges.score import BREAK_AFTER
from ccs_core.store import Store

KEYS = {"OPENAI_API_KEY": "sk-test-123456", "ANTHROPIC_API_KEY": "sk-ant-test-123456", "GEMINI_API_KEY": "g-test-123456"}
SPANS = {f"L{10 + i // 4}.H{i % 4}": [f"{w} one", f"{w} two", f"a {w}", f"{w} again", f"other {i}"]
         for i, w in enumerate(["red", "dog", "tree", "car", "sky", "cat", "sea", "hat"])}


@pytest.fixture
def server(llm_server):
    return llm_server


@pytest.fixture
def srv(server, monkeypatch, tmp_path):
    """The fake server as every provider's endpoint, through the environment only."""
    server.reset()
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{server.port}/gemini/v1")
    monkeypatch.setenv("CCS_MAX_RETRIES", "0")
    monkeypatch.setenv("CCS_TIMEOUT", "5")
    monkeypatch.chdir(tmp_path)  # no ccs.toml of the developer's
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    return server


def test_precedence_defaults_files_environment_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("OPENAI_BASE_URL", "CCS_TIMEOUT", "CCS_OPENAI_MODEL", "CCS_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert load_settings().openai_model == "gpt-4o"
    (tmp_path / "ccs.toml").write_text('[judges]\nopenai_model = "from-file"\ntimeout = 11\n'
                                       'openai_base_url = "http://file/v1"\n')
    s = load_settings()
    assert (s.openai_model, s.timeout, s.openai_base_url) == ("from-file", 11.0, "http://file/v1")
    monkeypatch.setenv("CCS_OPENAI_MODEL", "from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    s = load_settings()
    assert (s.openai_model, s.timeout, s.openai_base_url) == ("from-env", 11.0, "http://env/v1")
    s = load_settings({"openai_model": "from-flag", "timeout": None})
    assert (s.openai_model, s.timeout) == ("from-flag", 11.0)
    monkeypatch.setenv("CCS_TIMEOUT", "soon")
    with pytest.raises(JudgeError, match=r"timeout from \$CCS_TIMEOUT is 'soon', not a float"):
        load_settings()
    (tmp_path / "ccs.toml").write_text('[judges]\nopenai_modle = "typo"\n')
    monkeypatch.delenv("CCS_TIMEOUT")
    with pytest.raises(JudgeError, match="Unknown judge setting.*openai_modle"):
        load_settings()
    assert parse_pairs(["gemini=gemini-2.5-flash"], "model", "--judge-model") == {"gemini_model": "gemini-2.5-flash"}
    with pytest.raises(JudgeError, match="PROVIDER=VALUE"):
        parse_pairs(["gpt-4o"], "model", "--judge-model")


def test_base_urls_from_the_environment_reach_all_three_providers(srv):
    judges, disabled = make_judges(["openai", "anthropic", "gemini"])  # no settings passed: env
    assert not disabled
    res = score_heads({h: SPANS[h] for h in list(SPANS)[:2]}, make_labeller("openai"), judges, Store(None))
    assert res.n_complete == 2 and not res.errors
    assert srv.paths == {"/v1/chat/completions": 2 + 2, "/v1/messages": 2, "/gemini/v1/chat/completions": 2}
    shown = describe(load_settings())
    assert shown["gemini_base_url"].endswith("/gemini/v1") and "123456" not in json.dumps(shown)


def test_concurrent_first_requests_to_an_endpoint_without_json_schema_all_fall_back(srv):
    srv.rules.append((lambda body, path: (body.get("response_format") or {}).get("type") == "json_schema",
                      "400_schema"))
    srv.delay = 0.05  # requests overlap: several are in flight when the first refusal arrives
    try:
        judges, _ = make_judges(["openai"])
        res = score_heads(SPANS, make_labeller("openai"), judges, Store(None), max_workers=4)
    finally:
        srv.delay = 0.0
    assert not res.errors, res.errors[:2]
    assert res.n_complete == len(SPANS)


def test_a_persistently_failing_judge_exits_non_zero_and_a_rerun_sends_only_the_missing_request(srv, tmp_path):
    from ccs_core.analysis import HeadSpans, SpansResult
    from ccs_core.cli import INCOMPLETE, main

    spans = SpansResult(model_key="m", model_name="ViT-B-32", image_set="x", image_set_key="x", pool="p",
                        pool_key="p", params={"n_layers": 1, "n_spans": 5, "rank": 80}, layers=[10, 11],
                        n_heads=4, n_images=10,
                        heads=[HeadSpans(h, t, list(range(5)), [1.0] * 5, 0.5) for h, t in SPANS.items()])
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(spans.to_json()))
    broken = SPANS["L10.H2"][0]
    srv.rules.append((lambda body, p: p.endswith("/messages") and broken in json.dumps(body), "500"))
    args = ["score", "--spans", str(path), "--labeller", "openai", "--judges", "openai,anthropic",
            "--out", str(tmp_path / "scores.json")]
    assert main(args) == INCOMPLETE
    out = json.loads((tmp_path / "scores.json").read_text())
    assert out["n_complete"] == len(SPANS) - 1 and out["heads"]["L10.H2"]["ccs"] is None
    assert [e["head"] for e in out["errors"]] == ["L10.H2"] and out["errors"][0]["agent"] == "anthropic"
    first = srv.calls
    assert first == len(SPANS) * 3  # 8 labels + 8 + 8 verdicts (retries off)
    srv.reset()
    assert main(args) == 0  # healthy now: exactly the missing verdict is sent
    assert srv.calls == 1 and srv.paths == {"/v1/messages": 1}
    assert json.loads((tmp_path / "scores.json").read_text())["n_complete"] == len(SPANS)


def test_an_unavailable_judge_fails_the_run_unless_allowed(srv, tmp_path, monkeypatch):
    from ccs_core.analysis import HeadSpans, SpansResult
    from ccs_core.cli import INCOMPLETE, main

    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    spans = SpansResult("m", "ViT-B-32", "x", "x", "p", "p", {"n_layers": 1, "n_spans": 5, "rank": 80}, [10], 4, 10,
                        [HeadSpans("L10.H0", SPANS["L10.H0"], list(range(5)), [1.0] * 5, 0.5)])
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(spans.to_json()))
    base = ["score", "--spans", str(path), "--labeller", "openai", "--judges", "openai,gemini",
            "--out", str(tmp_path / "s.json")]
    assert main(base) == INCOMPLETE
    assert json.loads((tmp_path / "s.json").read_text())["unavailable_judges"].keys() == {"gemini"}
    assert main(base + ["--allow-missing-judges", "gemini"]) == 0


def test_show_settings_masks_keys(srv, capsys):
    from ccs_core.cli import main

    assert main(["score", "--spans", "unused.json", "--show-settings", "--judge-model", "openai=gpt-4o-mini",
                 "--timeout", "9"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["openai_model"] == "gpt-4o-mini" and shown["timeout"] == 9.0
    assert shown["openai_base_url"] == srv.openai_url and "sk-test-123456" not in json.dumps(shown)


def test_errors_carry_the_providers_own_text_and_a_hint_that_matches(srv):
    from ccs_core.judges import make_judge

    srv.script = ["400_google"]
    with pytest.raises(JudgeError) as err:
        make_judge("gemini").judge("red", SPANS["L10.H0"])
    text = str(err.value)
    assert "API key not valid" in text and "not retried" in text and "gave up" not in text
    srv.reset()
    srv.script = ["500"]
    with pytest.raises(JudgeError, match=r"boom\); gave up after 0 retries .* CCS_MAX_RETRIES / --retries"):
        make_judge("openai").judge("red", SPANS["L10.H0"])


def test_a_reask_shows_the_models_real_previous_answer(srv):
    from ccs_core.judges import make_judge

    srv.script = ["malformed"]
    make_judge("anthropic").judge("red", SPANS["L10.H0"])
    second = srv.bodies[1]["messages"]
    assert second[1]["role"] == "assistant"
    assert json.loads(second[1]["content"]) == {"verdicts": "all of them fit"}  # the tool input, as JSON
    assert "None" not in second[1]["content"]


def test_score_takes_own_labels_and_few_shot_examples_from_csv(srv, tmp_path):
    from ccs_core.analysis import HeadSpans, SpansResult
    from ccs_core.cli import main

    spans = SpansResult("m", "ViT-B-32", "x", "x", "p", "p", {"n_layers": 1, "n_spans": 5, "rank": 80}, [10], 4, 10,
                        [HeadSpans(h, SPANS[h], list(range(5)), [1.0] * 5, 0.5) for h in ("L10.H0", "L10.H1")])
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(spans.to_json()))
    (tmp_path / "labels.csv").write_text("head,label\nL10.H1,dog\n")
    (tmp_path / "examples.csv").write_text("example,label,span\n1,Zebras,a striped zebra\n1,Zebras,zebra herd\n")
    assert main(["score", "--spans", str(path), "--labeller", "openai", "--judges", "openai", "--labels",
                 str(tmp_path / "labels.csv"), "--examples", str(tmp_path / "examples.csv"),
                 "--out", str(tmp_path / "s.json")]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["heads"]["L10.H1"]["label"] == "dog" and out["heads"]["L10.H1"]["ccs"] == 4
    assert out["heads"]["L10.H0"]["label_record"]["status"] == "ok"
    label_requests = [b for b in srv.bodies if "Concept label:" not in json.dumps(b)]
    assert len(label_requests) == 1 and "a striped zebra" in json.dumps(label_requests[0])
    (tmp_path / "bad.csv").write_text("heads;labels\n")
    assert main(["score", "--spans", str(path), "--labels", str(tmp_path / "bad.csv"), "--out",
                 str(tmp_path / "s.json")]) == 2


def test_a_named_openai_compatible_endpoint_is_a_judge_of_its_own(srv, monkeypatch, tmp_path):
    from ccs_core.judges import make_judge

    monkeypatch.setenv("CCS_COMPATIBLE_LOCAL_BASE_URL", f"http://127.0.0.1:{srv.port}/local/v1")
    monkeypatch.setenv("CCS_COMPATIBLE_LOCAL_MODEL", "llama-3.1-70b")
    judges, disabled = make_judges(["openai", "local"])  # no LOCAL_API_KEY: a local server needs none
    assert not disabled and [j.name for j in judges] == ["openai", "local"]
    res = score_heads({"L10.H0": SPANS["L10.H0"]}, make_labeller("local"), judges, Store(None))
    assert res.n_complete == 1 and set(res.heads["L10.H0"].verdicts) == {"openai", "local"}
    assert srv.paths == {"/local/v1/chat/completions": 2, "/v1/chat/completions": 1}
    assert [b["model"] for b in srv.bodies].count("llama-3.1-70b") == 2
    # the same model name on another server is another cache entry
    monkeypatch.setenv("CCS_COMPATIBLE_LOCAL_BASE_URL", "http://elsewhere/v1")
    assert make_judge("local").cache_parts("red", ["a"]) != judges[1].cache_parts("red", ["a"])
    (tmp_path / "ccs.toml").write_text('[judges.compatible.vllm]\nbase_url = "http://h/v1"\n')
    with pytest.raises(JudgeError, match="needs a base_url and a model"):
        load_settings()
    from ccs_core.cli import main

    (tmp_path / "ccs.toml").unlink()
    assert main(["score", "--spans", "x.json", "--show-settings", "--compatible",
                 "mine=http://127.0.0.1:9/v1,qwen"]) == 0


def test_a_dead_endpoint_is_given_up_within_seconds(srv, monkeypatch):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{dead}")
    judges, _ = make_judges(["openai", "anthropic"])
    t = time.monotonic()
    res = score_heads(SPANS, make_labeller("openai"), judges, Store(None), max_workers=2)
    assert time.monotonic() - t < 20
    dead_errors = [e for e in res.errors if e["agent"] == "anthropic"]
    assert len(dead_errors) == len(SPANS) and res.n_complete == 0
    # the breaker stopped asking: BREAK_AFTER requests fail, plus at most one per other worker that was
    # already sent when the third failed (2 workers: at most 4 sent, at least 4 of 8 not sent)
    assert sum("not sent" in e["error"] for e in dead_errors) >= len(SPANS) - BREAK_AFTER - (2 - 1)
    assert srv.paths["/v1/chat/completions"] == 2 * len(SPANS)  # the healthy judge answered every head

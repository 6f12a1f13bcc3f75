"""LLM labeller and judges: the real openai / anthropic SDKs against our fake server on 127.0.0.1."""
from __future__ import annotations

import json
import time

import pytest

from ccs_core.errors import JudgeError
from ccs_core.judges import JudgeSettings, make_judge, make_judges, score_heads
from ccs_core.judges.base import UNPARSEABLE
from ccs_core.judges.labels import make_labeller
from ccs_core.store import Store
from llm_server import FakeLLMServer, fake_label

KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test", "GEMINI_API_KEY": "g-test"}
SPANS = {
    "L10.H1": ["a red car", "red apple", "red sky at dusk", "blue sea", "a red hat"],
    "L10.H2": ["dog in a park", "a dog bone", "a sleeping cat", "dog running", "small dog"],
    "L11.H0": ["tree bark", "tree leaves", "tree house", "old tree", "tree shadow"],
}
EXPECTED = {"L10.H1": 4, "L10.H2": 4, "L11.H0": 5}


@pytest.fixture
def server(llm_server):
    return llm_server


@pytest.fixture
def srv(server):
    server.reset()
    server.slow_s, server.retry_after, server.delay = 0.5, "0.01", 0.0
    return server


def settings_for(srv: FakeLLMServer, **kw) -> JudgeSettings:
    base = dict(openai_base_url=srv.openai_url, anthropic_base_url=srv.anthropic_url,
                gemini_base_url=srv.openai_url, api_keys=KEYS, timeout=5.0, max_retries=2)
    return JudgeSettings(**{**base, **kw})


def test_three_judges_score_heads_then_cached_rerun_makes_no_call(srv, tmp_path):
    s = settings_for(srv)
    labeller = make_labeller("openai", s)
    judges = [make_judge(k, s) for k in ("openai", "anthropic", "gemini")]
    store = Store(tmp_path / "cache")
    seen = []
    res = score_heads(SPANS, labeller, judges, store, progress=lambda d, t: seen.append((d, t)))
    assert srv.calls == 3 + 3 * 3 and res.calls == 12
    assert srv.paths["/v1/chat/completions"] == 9 and srv.paths["/v1/messages"] == 3
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == list(range(1, 13))
    assert res.ccs == EXPECTED and res.errors == []
    assert json.loads(json.dumps(res.to_json()))["ccs_at_k"] == {str(k): v for k, v in res.ccs_at_k.items()}
    assert res.ccs_at_k[4] == pytest.approx(2 / 3) and res.categories["high"] == ["L11.H0"]
    head = res.heads["L10.H1"]
    assert head.label == "Red" and head.accepted == [True, True, True, False, True]
    for name, v in head.verdicts.items():
        assert v["status"] == "ok" and v["fits"] == [True, True, True, False, True]
        assert v["provider"] == name and v["prompt_version"] == "judge_v2" and v["time"]
        assert v["raw"] and len(v["rationales"]) == 5 and v["cached"] is False
    assert head.verdicts["anthropic"]["model"] == s.anthropic_model
    assert head.verdicts["gemini"]["model"] == s.gemini_model
    # the labeller's few-shot prompt carries the paper's Table 1 examples
    assert "Playful siblings" in srv.bodies[0]["messages"][1]["content"]

    before = srv.calls
    again = score_heads(SPANS, labeller, judges, Store(tmp_path / "cache"))
    assert srv.calls == before and again.calls == 0
    assert again.ccs == res.ccs
    assert all(v["cached"] for h in again.heads.values() for v in h.verdicts.values())

    # anything that determines the answer is in the key: another model means new requests
    other = make_judge("openai", settings_for(srv, openai_model="gpt-4o-mini"))
    score_heads(SPANS, labeller, [other], store)
    assert srv.calls == before + 3


def test_identical_requests_are_sent_once(srv):
    s = settings_for(srv)
    res = score_heads({"L1.H1": SPANS["L11.H0"], "L1.H2": SPANS["L11.H0"]},
                      make_labeller("openai", s), [make_judge("anthropic", s)])
    assert srv.calls == 2 and res.ccs == {"L1.H1": 5, "L1.H2": 5}


def test_user_label_overrides_labeller(srv):
    s = settings_for(srv)
    res = score_heads({"L1.H1": SPANS["L10.H2"]}, make_labeller("openai", s),
                      [make_judge("anthropic", s)], labels={"L1.H1": "cat"})
    assert srv.calls == 1  # no labelling request
    assert res.heads["L1.H1"].label == "cat" and res.ccs["L1.H1"] == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_429_retry_after_is_honoured(srv, provider):
    srv.retry_after = "0.8"   # longer than the SDK's own first backoff (<= 0.5 s)
    srv.script = ["429", "ok"]
    judge = make_judge(provider, settings_for(srv))
    t0 = time.monotonic()
    res = judge.judge("red", SPANS["L10.H1"])
    assert time.monotonic() - t0 >= 0.75
    assert res.status == "ok" and srv.calls == 2 and res.fits == [True, True, True, False, True]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_500_is_retried_then_gives_up_with_clear_error(srv, provider):
    judge = make_judge(provider, settings_for(srv, max_retries=2))
    srv.script = ["500", "ok"]
    assert judge.judge("red", SPANS["L10.H1"]).status == "ok" and srv.calls == 2
    srv.reset()
    srv.script = ["500"] * 3
    with pytest.raises(JudgeError, match="request failed.*retries"):
        judge.judge("red", SPANS["L10.H1"])
    assert srv.calls == 3


def test_endpoint_without_json_schema_falls_back_to_json_mode(srv):
    judge = make_judge("gemini", settings_for(srv))
    srv.script = ["400_schema"]
    res = judge.judge("red", SPANS["L10.H1"])
    assert res.status == "ok" and srv.calls == 2
    assert [b["response_format"]["type"] for b in srv.bodies] == ["json_schema", "json_object"]
    judge.judge("tree", SPANS["L11.H0"])
    assert srv.bodies[-1]["response_format"]["type"] == "json_object" and srv.calls == 3


def test_slow_answer_times_out_and_is_retried(srv):
    srv.slow_s = 1.5
    srv.script = ["slow", "ok"]
    judge = make_judge("openai", settings_for(srv, timeout=0.4, max_retries=1))
    assert judge.judge("red", SPANS["L10.H1"]).status == "ok"
    assert srv.calls == 2
    srv.reset()
    srv.slow_s, srv.script = 0.2, ["slow"]  # slow but within the timeout: one call
    assert judge.judge("red", SPANS["L10.H1"]).status == "ok" and srv.calls == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["malformed", "refusal", "wrong_count"])
def test_bad_answer_is_retried_once(srv, provider, mode):
    judge = make_judge(provider, settings_for(srv))
    srv.script = [mode, "ok"]
    res = judge.judge("red", SPANS["L10.H1"])
    assert res.status == "ok" and res.attempts == 2 and srv.calls == 2
    # the second request tells the model what was wrong
    assert "could not be used" in srv.bodies[1]["messages"][-1]["content"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_twice_bad_answer_is_unparseable_never_yes_or_no(srv, provider, tmp_path):
    s = settings_for(srv)
    srv.script = ["refusal", "malformed"]
    res = score_heads({"L1.H1": SPANS["L11.H0"]}, make_labeller(provider, s),
                      [make_judge(provider, s)], Store(tmp_path), labels={"L1.H1": "tree"})
    v = res.heads["L1.H1"].verdicts[provider]
    assert v["status"] == UNPARSEABLE and v["fits"] == [None] * 5 and len(v["raw"]) == 2
    assert v["problem"]
    assert res.ccs["L1.H1"] is None and res.heads["L1.H1"].category == "incomplete"
    assert res.n_incomplete == 1 and res.ccs_at_k == {k: 0.0 for k in range(6)}
    # stored as unparseable (auditable); reused unless asked to retry
    n = srv.calls
    score_heads({"L1.H1": SPANS["L11.H0"]}, make_labeller(provider, s), [make_judge(provider, s)],
                Store(tmp_path), labels={"L1.H1": "tree"})
    assert srv.calls == n
    again = score_heads({"L1.H1": SPANS["L11.H0"]}, make_labeller(provider, s),
                        [make_judge(provider, s)], Store(tmp_path), labels={"L1.H1": "tree"},
                        retry_unparseable=True)
    assert srv.calls == n + 1 and again.ccs["L1.H1"] == 5


def test_api_failure_is_reported_not_cached(srv, tmp_path):
    s = settings_for(srv, max_retries=0)
    srv.script = ["500"]
    args = ({"L1.H1": SPANS["L11.H0"]}, make_labeller("openai", s), [make_judge("openai", s)])
    res = score_heads(*args, Store(tmp_path), labels={"L1.H1": "tree"})
    assert res.ccs["L1.H1"] is None and res.errors[0]["agent"] == "openai"
    assert "request failed" in res.errors[0]["error"]
    res = score_heads(*args, Store(tmp_path), labels={"L1.H1": "tree"})
    assert srv.calls == 2 and res.ccs["L1.H1"] == 5 and res.errors == []


def test_requests_run_concurrently_within_the_bound(srv):
    srv.delay = 0.15
    s = settings_for(srv)
    spans = {f"L1.H{i}": [f"{s} {i}" for s in SPANS["L11.H0"]] for i in range(8)}
    score_heads(spans, make_labeller("openai", s), [make_judge("openai", s)],
                labels={h: "tree" for h in spans}, max_workers=3)
    assert srv.calls == 8 and 2 <= srv.max_in_flight <= 3


def test_crash_midway_loses_no_received_verdict(srv, tmp_path):
    s = settings_for(srv)
    srv.delay = 0.05
    spans = {f"L2.H{i}": [f"{s} {i}" for s in SPANS["L10.H1"]] for i in range(10)}
    judges = [make_judge("openai", s), make_judge("anthropic", s)]
    labels = {h: "red" for h in spans}

    def crash(done, total):
        if done == 10 + 5:   # 10 user labels, then 5 verdicts
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_heads(spans, make_labeller("openai", s), judges, Store(tmp_path), crash,
                    labels=labels, max_workers=2)
    first = srv.calls
    assert 5 <= first < 20
    res = score_heads(spans, make_labeller("openai", s), judges, Store(tmp_path), labels=labels)
    assert srv.calls == 20  # every verdict requested exactly once over both runs
    assert set(res.ccs.values()) == {4}


def test_missing_key_disables_judge_with_a_message(monkeypatch, srv):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    s = settings_for(srv, api_keys={"ANTHROPIC_API_KEY": "x"})
    judges, disabled = make_judges(["openai", "anthropic", "gemini"], s)
    assert [j.name for j in judges] == ["anthropic"]
    assert "OPENAI_API_KEY" in disabled["openai"] and "GEMINI_API_KEY" in disabled["gemini"]
    ok, why = make_labeller("openai", s).available()
    assert not ok and "labeller" in why and "OPENAI_API_KEY" in why
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        score_heads(SPANS, make_labeller("openai", s), judges)
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    assert make_judge("gemini", settings_for(srv, api_keys={})).available()[0]
    assert srv.calls == 0


def test_label_answer_is_cleaned(srv):
    lab = make_labeller("anthropic", settings_for(srv))
    res = lab.label(SPANS["L11.H0"])
    assert res.label == "Tree" == fake_label(SPANS["L11.H0"]).capitalize()
    assert res.provider == "anthropic" and res.prompt_version == "label_v1"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["bad_body", "html_body"])
def test_non_json_http_body_is_a_reported_error_not_a_crash(srv, provider, mode, tmp_path):
    s = settings_for(srv, max_retries=0)
    srv.script = [mode]
    args = ({"L1.H1": SPANS["L11.H0"]}, make_labeller(provider, s), [make_judge(provider, s)])
    res = score_heads(*args, Store(tmp_path), labels={"L1.H1": "tree"})
    assert res.ccs["L1.H1"] is None and "check the endpoint" in res.errors[0]["error"]
    assert score_heads(*args, Store(tmp_path), labels={"L1.H1": "tree"}).ccs["L1.H1"] == 5  # not cached

"""Judge plumbing without a network: answer parsing, prompts, cache keys, human annotations."""
from __future__ import annotations

import json
import sys
import types

import pytest

from ccs_core.errors import DataError, JudgeError
from ccs_core.scores import ScoreResult
from ccs_core.judges import (HumanAnnotations, Judge, JudgeResult, JudgeSettings, agreement_table,
                             api_key, human_agreement, load_prompt, make_judge, score_heads, summarise)
from ccs_core.judges.schema import AnswerError, clean_label, parse_judge, parse_label
from ccs_core.judges.labels import (FewShotExample, default_examples, examples_from_rows, examples_to_rows,
                             make_labeller)
from ccs_core.store import Store, cache_key

GOOD = {"verdicts": [{"span": i, "fits": i % 2 == 1, "rationale": "r"} for i in (3, 1, 2)]}


def test_parse_judge_orders_and_validates():
    v = parse_judge(json.dumps(GOOD), 3)
    assert [x.span for x in v] == [1, 2, 3] and [x.fits for x in v] == [True, False, True]
    assert parse_judge("```json\n" + json.dumps(GOOD) + "\n```", 3)[0].fits is True
    bad_bool = {"verdicts": [{"span": 1, "fits": "yes", "rationale": "r"}]}
    with pytest.raises(AnswerError, match="wrong shape"):
        parse_judge(bad_bool, 1)           # never coerce "yes" into True
    with pytest.raises(AnswerError, match="exactly once"):
        parse_judge(GOOD, 4)
    dup = {"verdicts": [{"span": 1, "fits": True, "rationale": ""}] * 2}
    with pytest.raises(AnswerError, match="exactly once"):
        parse_judge(dup, 2)
    with pytest.raises(AnswerError, match="not valid JSON"):
        parse_judge('{"verdicts": [', 1)
    with pytest.raises(AnswerError, match="empty"):
        parse_judge(None, 1)


def test_parse_label_cleans_and_rejects_sentences():
    assert parse_label('{"label": "\\"animals.\\""}') == "Animals"
    assert clean_label("Label: body parts") == "Body parts"
    with pytest.raises(AnswerError, match="too long"):
        parse_label({"label": "These descriptions are all about various kinds of animals"})
    with pytest.raises(AnswerError, match="empty"):
        parse_label({"label": " '' "})


def test_prompts_are_versioned_files_and_part_of_the_key():
    p = load_prompt("judge_v1")
    msgs = p.messages(label="Animals", n=2, spans="1. a\n2. b")
    assert msgs[0]["role"] == "system" and "Concept label: Animals" in msgs[1]["content"]
    with pytest.raises(JudgeError, match="Unknown prompt version"):
        load_prompt("judge_v999")
    with pytest.raises(JudgeError):
        load_prompt("../settings")
    s = JudgeSettings(api_keys={"OPENAI_API_KEY": "x"})
    judge = make_judge("openai", s)
    k1 = cache_key(**judge.cache_parts("Animals", ["a", "b"]))
    assert k1 == cache_key(**make_judge("openai", s).cache_parts("Animals", ["a", "b"]))
    judge.prompt_version = "judge_v1"
    assert cache_key(**judge.cache_parts("Animals", ["a", "b"])) != k1
    assert "Be strict" in load_prompt("judge_v1").system and "Be strict" not in load_prompt("judge_v2").system
    assert make_judge("openai", s).prompt_version == "judge_v2"  # the default: strictness is unanimity
    assert cache_key(**make_judge("gemini", JudgeSettings()).cache_parts("Animals", ["a", "b"])) != k1


def test_few_shot_examples_default_to_table1_and_round_trip():
    ex = default_examples()
    assert [e.label for e in ex] == ["People", "Animals", "Nature", "Material", "Locations"]
    assert all(len(e.spans) == 5 for e in ex)
    assert examples_from_rows(examples_to_rows(ex)) == ex
    twice = [FewShotExample("Colour", ("a", "b")), FewShotExample("Colour", ("c", "d"))]
    assert examples_from_rows(examples_to_rows(twice)) == twice
    mine = [FewShotExample("Colour", ("a red car", "blue sky"))]
    lab = make_labeller("openai", JudgeSettings(), examples=mine)
    text = lab.messages(["x"])[1]["content"]
    assert "a red car" in text and "Playful siblings" not in text
    with pytest.raises(JudgeError):
        examples_from_rows([{"label": "", "span": "x"}])


def test_keys_from_settings_env_and_streamlit_secrets(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    s = JudgeSettings()
    fake_st = types.SimpleNamespace(secrets={"ANTHROPIC_API_KEY": "from-secrets"})
    monkeypatch.setitem(sys.modules, "streamlit", fake_st)
    assert api_key("anthropic", s) == "from-secrets"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert api_key("anthropic", s) == "from-env"
    assert api_key("anthropic", JudgeSettings(api_keys={"ANTHROPIC_API_KEY": "set"})) == "set"


class ListJudge(Judge):
    """A scripted judge: fits[span] from a dict, for tests without a server."""

    def __init__(self, name, answers):
        self.name = self.provider = name
        self.model, self.prompt_version, self.answers, self.calls = "m", "v", answers, 0

    def judge(self, label, spans):
        self.calls += 1
        return JudgeResult(judge=self.name, provider=self.name, model="m", prompt_version="v",
                           label=label, fits=[self.answers[s] for s in spans],
                           rationales=[""] * len(spans))


SPANS = {"L0.H0": ["a", "b", "c"], "L0.H1": ["d", "e", "f"]}
A = {"a": True, "b": True, "c": False, "d": True, "e": False, "f": None}
B = {"a": True, "b": False, "c": False, "d": True, "e": True, "f": True}


def scored(store):
    return score_heads(SPANS, make_labeller("toy"), [ListJudge("j1", A), ListJudge("j2", B)], store,
                       labels={"L0.H0": "x", "L0.H1": "x"})


def test_scripted_judges_and_resummarising(tmp_path):
    res = scored(Store(tmp_path))
    assert res.ccs == {"L0.H0": 1, "L0.H1": None}  # f: j1 unparseable, j2 yes -> incomplete
    assert res.heads["L0.H1"].accepted == [True, False, None]
    # through JSON and back, then re-summarised over one judge: no request, the original unchanged
    only_b = summarise(ScoreResult.from_json(json.loads(json.dumps(res.to_json()))), ["j2"])
    assert only_b.ccs == {"L0.H0": 1, "L0.H1": 3} and only_b.ccs_at_k[3] == 0.5
    assert only_b.to_json()["ccs_at_k"]["3"] == 0.5 and res.ccs["L0.H1"] is None
    assert res.rescored(["j2"]).ccs == only_b.ccs and res.ccs["L0.H1"] is None
    with pytest.raises(DataError, match="same number of spans"):
        score_heads({"L0.H0": ["a"], "L0.H1": ["a", "b"]}, make_labeller("toy"), [ListJudge("j1", A)])
    with pytest.raises(JudgeError, match="at least one judge"):
        score_heads(SPANS, make_labeller("toy"), [])


def test_human_annotations_and_agreement(tmp_path):
    store = Store(tmp_path)
    res = scored(store)
    notes = HumanAnnotations(store)
    human = {"a": True, "b": False, "c": False, "d": True, "e": True, "f": True}
    for h, spans in SPANS.items():
        for s in spans:
            notes.set("toy", h, s, "x", human[s])
    notes.set("toy", "L0.H0", "a", "other label", False)   # another label: not paired here
    assert notes.get("toy", "L0.H1", "e", "x") is True
    assert len(notes.all("toy")) == 7 and notes.all("other-model") == []
    notes.set("toy", "L0.H0", "c", "x", None)               # cleared
    assert notes.get("toy", "L0.H0", "c", "x") is None and len(notes.all("toy")) == 6
    # persisted in the store, readable by a new instance
    agree = human_agreement(res, HumanAnnotations(Store(tmp_path)), "toy")
    assert agree["j2"]["n"] == 5 and agree["j2"]["accuracy"] == 1.0 and agree["j2"]["kappa"] == 1.0
    assert agree["j1"]["n"] == 4 and agree["j1"]["n_skipped"] == 1       # f unparseable
    assert agree["j1"]["accuracy"] == pytest.approx(2 / 4)
    assert agree["unanimous"]["n"] == 4                                   # f undetermined
    rows = agreement_table(res, notes, "toy")
    assert [r["judge"] for r in rows] == ["j1", "j2", "unanimous"]
    assert set(rows[0]) >= {"kappa", "spearman", "kendall", "n"}
    with pytest.raises(TypeError):
        notes.set("toy", "L0.H0", "a", "x", "yes")

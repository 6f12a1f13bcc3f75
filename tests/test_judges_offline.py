"""Offline labellers and judges: exact toy-world tags, approximate MiniLM embeddings."""
from __future__ import annotations

import pytest

from ccs_core.judges import EmbeddingJudge, ToyJudge, make_judges, offline_defaults, score_heads
from ccs_core.judges.calibrate import report
from ccs_core.judges.labels import EmbeddingLabeller, ToyLabeller, make_labeller
from ccs_core.judges.offline import NO_CONCEPT
from ccs_core.store import Store

TOY_SPANS = {
    "L5.H0": ["a red circle", "two blue squares", "an image of a green object",
              "a small pink cross on a striped background", "the dog and the cat"],
    "L5.H1": ["a circle on a dotted background", "a checkered background", "a plain background",
              "an object on a striped background", "three large triangles on a dotted background"],
}


def test_toy_labeller_and_judge_are_exact():
    lab = ToyLabeller().label(TOY_SPANS["L5.H0"])
    assert lab.label == "colour" and lab.status == "ok"
    res = ToyJudge().judge("colour", TOY_SPANS["L5.H0"])
    assert res.fits == [True, True, True, True, False] and not res.approximate
    assert "tags" in res.raw and "lacks colour" in res.rationales[4]
    # a free-text label naming a factor is understood; one naming none is 'unsupported', not 'no'
    assert ToyJudge().judge("Color of objects", TOY_SPANS["L5.H0"]).fits[:4] == [True] * 4
    bad = ToyJudge().judge("Animals", TOY_SPANS["L5.H0"])
    assert bad.status == "unsupported" and bad.fits == [None] * 5
    # spans that are all the toy pool's distractors describe nothing in the world: CCS 0, not unknown
    none = ToyLabeller().label(["the dog and the cat", "a quiet river"])
    assert none.label == NO_CONCEPT and none.status == "ok"
    verdict = ToyJudge().judge(none.label, ["the dog and the cat", "a quiet river"])
    assert verdict.status == "ok" and verdict.fits == [False, False]
    # texts that are not the toy world's at all (a real model's spans) stay unsupported
    empty = ToyLabeller().label(["Photo taken in Rio", "a quiet river"])
    assert empty.label is None and empty.status == "unsupported"


def test_a_distractor_only_head_scores_zero(tmp_path):
    spans = {"L5.H0": ["a photo of a dog", "the car and the house", "a happy cat", "a tree with a boat",
                       "a bright night"], "L5.H1": TOY_SPANS["L5.H1"]}
    res = score_heads(spans, ToyLabeller(), [ToyJudge()], Store(tmp_path))
    assert res.ccs == {"L5.H0": 0, "L5.H1": 5} and res.categories["low"] == ["L5.H0"]


def test_toy_score_heads_end_to_end(tmp_path):
    kind, judge_kinds = offline_defaults(toy=True)
    judges, disabled = make_judges(judge_kinds)
    assert disabled == {}
    res = score_heads(TOY_SPANS, make_labeller(kind), judges, Store(tmp_path))
    assert res.ccs == {"L5.H0": 4, "L5.H1": 5}
    assert res.heads["L5.H1"].label == "background" and res.categories["high"] == ["L5.H1"]


def test_toy_judge_accepts_injected_tagger():
    tags = {"x1": frozenset({"a"}), "x2": frozenset({"a", "b"}), "x3": frozenset()}
    judge = ToyJudge(span_factors=lambda s: tags[s])
    assert judge.judge("A", ["x1", "x2", "x3"]).fits == [True, True, False]
    assert ToyLabeller(span_factors=lambda s: tags[s]).label(["x1", "x2", "x3"]).label == "a"


@pytest.fixture(scope="module")
def emb():
    judge = EmbeddingJudge()
    ok, why = judge.available()
    if not ok:
        pytest.skip(why)
    return judge


def test_embedding_judge_is_approximate_and_sensible(emb):
    res = emb.judge("Animals", ["Image with a donkey", "A photo of a penguin", "A red sports car",
                                "A bowl of pasta", "A herd of zebras"])
    assert res.approximate and res.status == "ok"
    assert res.fits == [True, True, False, False, True]
    assert len(res.raw["similarities"]) == 5 and "threshold" in res.rationales[0]
    assert 0.0 < emb.threshold < 1.0


def test_embedding_labeller_picks_from_vocabulary(emb):
    lab = EmbeddingLabeller()
    res = lab.label(["Image with a donkey", "Image with a penguin", "detailed reptile close-up",
                     "A herd of zebras", "A kitten sleeping"])
    assert res.label == "Animals" and res.approximate and res.raw["ranking"][0]["label"] == "Animals"
    assert EmbeddingLabeller(vocabulary=["Food", "Vehicles"]).label(
        ["A slice of pizza", "A bowl of pasta"]).label == "Food"


def test_embedding_judge_agreement_with_the_labelled_set(emb):
    rep = report()
    assert rep["n_pairs"] >= 150
    assert rep["accuracy"] >= 0.85 and rep["kappa"] >= 0.7             # the committed threshold
    assert rep["cv_by_label"]["accuracy"] >= 0.85                       # held-out labels


def test_offline_defaults_for_other_models(emb, tmp_path):
    kind, judge_kinds = offline_defaults(toy=False)
    judges, _ = make_judges(judge_kinds)
    res = score_heads({"L11.H3": ["Intertwined tree branches", "Flowing water bodies", "A meadow",
                                  "A snowy mountain peak", "A smartphone on a desk"]},
                      make_labeller(kind), judges, Store(tmp_path))
    head = res.heads["L11.H3"]
    assert head.label and res.judges[0]["approximate"] is True
    assert head.fits("embedding")[4] is False
    assert 1 <= res.ccs["L11.H3"] <= 4


def test_default_scoring_follows_the_model(monkeypatch):
    from ccs_core.judges import default_scoring

    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert default_scoring("toy")[:2] == ("toy", ["toy"])
    lab, judges, why = default_scoring("ViT-B-32")
    assert (lab, judges) == ("embedding", ["embedding"]) and "no LLM API key" in why
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    lab, judges, why = default_scoring("ViT-B-32")
    assert (lab, judges) == ("anthropic", ["anthropic"]) and "Claude" in why
    assert default_scoring("ViT-B-32", ready=["gemini", "openai"])[1] == ["openai", "gemini"]
    assert default_scoring("toy", ready=["openai"])[1] == ["toy"]


def test_embedding_labeller_has_one_spelling_per_concept():
    from ccs_core.judges.labels import EmbeddingLabeller, _form, one_form

    assert one_form(["Backgrounds", "Colors", "background", "colour", "Glass", "Counting", "count"]) == \
        ["Backgrounds", "Colors", "Glass", "Counting"]
    forms = [_form(v) for v in EmbeddingLabeller().vocabulary]
    assert len(forms) == len(set(forms))

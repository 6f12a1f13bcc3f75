"""The typed scoring result: its JSON round trip, the summaries derived from the heads, the CCS table
the strategies read, and clear errors for a malformed scores file."""
from __future__ import annotations

import json

import pytest

from ccs_core.ccs import Thresholds
from ccs_core.errors import DataError
from ccs_core.scores import HeadScore, ScoreResult


def result() -> ScoreResult:
    heads = {}
    for i, n_yes in enumerate([5, 4, 1, None]):
        fits = [None] * 3 if n_yes is None else [k < n_yes for k in range(5)]
        heads[f"L3.H{i}"] = HeadScore(spans=[f"s{k}" for k in range(5)], label="red",
                                      verdicts={"toy": {"fits": fits + [True] * (5 - len(fits)), "cached": i == 0}})
    res = ScoreResult(n_spans=5, labeller={"name": "toy"}, judges=[{"name": "toy"}], heads=heads,
                      errors=[{"head": "L3.H3", "stage": "judge", "agent": "toy", "error": "HTTP 500"}],
                      source={"model_key": "m", "layers": [3]})
    return res.summarise()


def test_summaries_come_from_the_heads_and_survive_json():
    res = result()
    assert res.ccs == {"L3.H0": 5, "L3.H1": 4, "L3.H2": 1, "L3.H3": None}
    assert (res.n_heads, res.n_complete, res.n_incomplete) == (4, 3, 1)
    assert res.categories["high"] == ["L3.H0"] and res.categories["low"] == ["L3.H2"]
    assert res.categories["incomplete"] == ["L3.H3"] and res.heads["L3.H3"].status == "incomplete"
    assert res.ccs_at_k[5] == pytest.approx(1 / 3) and res.errors_of("L3.H3")[0]["error"] == "HTTP 500"
    assert res.heads["L3.H0"].cache_hits == 1 and res.heads["L3.H1"].cache_hits == 0

    text = json.dumps(res.to_json())
    back = ScoreResult.from_json(json.loads(text))
    assert back.to_json() == res.to_json() and back.source == {"model_key": "m", "layers": [3]}
    d = json.loads(text)
    assert d["model_key"] == "m" and d["ccs_at_k"]["5"] == pytest.approx(1 / 3)  # the file's shape

    d["ccs_at_k"], d["n_incomplete"] = {"5": 1.0}, 0  # stale summaries are recomputed, not trusted
    fixed = ScoreResult.from_json(d)
    assert fixed.ccs_at_k == res.ccs_at_k and fixed.n_incomplete == 1


def test_rescored_copy_and_the_ccs_table_follow_the_bands():
    res = result()
    wide = res.rescored(thresholds=Thresholds(high_min=4, low_max=2))
    assert wide.categories["high"] == ["L3.H0", "L3.H1"] and wide.thresholds["high_min"] == 4
    assert res.categories["high"] == ["L3.H0"]  # the original is unchanged
    table = wide.ccs_table([3])
    assert [str(h) for h in table.high_heads()] == ["L3.H0", "L3.H1"]
    assert [str(h) for h in table.low_heads()] == ["L3.H2"] and table.layers == [3]
    assert [str(h) for h in res.ccs_table().high_heads()] == ["L3.H0"]


@pytest.mark.parametrize("bad, match", [
    ([1, 2], "not a scores result"),
    ({"heads": []}, "not a scores result"),
    ({"heads": {"L3.H0": 5}}, "head L3.H0 is 5, expected an object with its 'spans'"),
    ({"heads": {}, "n_spans": "five"}, "'n_spans' must be a whole number"),
    ({"heads": {}, "thresholds": {"high": 5}}, "'thresholds' must be an object"),
])
def test_a_malformed_scores_file_says_what_is_wrong(bad, match):
    with pytest.raises(DataError, match=match):
        ScoreResult.from_json(bad, "scores.json")

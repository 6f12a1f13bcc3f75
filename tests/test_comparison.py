"""The paper's comparison in one call: configurations, one embedding pass per set, Table 3 shape,
the concept matrix; checked against prune_eval (the single-run path) on a random-init toy architecture."""
from __future__ import annotations

import pytest

from ccs_core.comparison import (SuiteSet, concept_configs, concept_matrix, evaluate_suite, mean_drops,
                                 paper_configs, table3)
from ccs_core.errors import DataError
from ccs_core.evaluate import prune_eval
from ccs_core.strategies import CCSTable, EmptyStrategyError


def _table() -> CCSTable:
    rows = [{"head": "L5.H0", "ccs": 5, "label": "colour"}, {"head": "L5.H1", "ccs": 5, "label": "shape"},
            {"head": "L5.H2", "ccs": 5, "label": "colour"}, {"head": "L4.H0", "ccs": 1, "label": "size"},
            {"head": "L4.H1", "ccs": 0, "label": None}, {"head": "L4.H2", "ccs": 3, "label": "count"}]
    return CCSTable(rows, layers=[4, 5])


def test_paper_configs_follow_the_paper_definitions():
    cfgs = paper_configs(_table(), n_layers=6, n_heads=16, n_seeds=5)
    names = [c.strategy for c in cfgs]
    assert names == ["original", "high", "low"] + ["random"] * 5
    high = {str(h) for h in cfgs[1].heads}
    assert high == {"L5.H0", "L5.H1", "L5.H2"} and {str(h) for h in cfgs[2].heads} == {"L4.H0", "L4.H1"}
    for c in cfgs[3:]:  # as many as high, from the analysed layers, never a high head
        assert len(c.heads) == 3 and all(h.layer in (4, 5) and str(h) not in high for h in c.heads)
    assert len({c.heads for c in cfgs[3:]}) > 1  # the seeds differ
    concepts = {c.strategy: {str(h) for h in c.heads} for c in concept_configs(_table())}
    assert concepts == {"concept:colour": {"L5.H0", "L5.H2"}, "concept:shape": {"L5.H1"}}  # CCS 5 only


def test_an_empty_strategy_is_reported_or_raised():
    rows = [{"head": "L5.H0", "ccs": 5, "label": "colour"}, {"head": "L5.H1", "ccs": 3, "label": "shape"}]
    skipped: list[str] = []
    cfgs = paper_configs(CCSTable(rows, layers=[5]), 6, 16, skipped=skipped)
    assert [c.strategy for c in cfgs] == ["original", "high"] + ["random"] * 5
    assert len(skipped) == 1 and "low" in skipped[0]
    with pytest.raises(EmptyStrategyError):
        paper_configs(CCSTable(rows, layers=[5]), 6, 16)


def test_suite_rows_match_single_runs_and_tables_have_the_paper_shape(tiny, store):
    from ccs_core.toyworld.tasks import toy_suite

    suite = toy_suite(n=24, seed=3, styles=("normal", "hard"))
    assert [s.name for s in suite] == ["normal", "hard"] and len(suite[0].tasks) == 7  # six + frame
    cfgs = paper_configs(_table(), 6, 16, n_seeds=2) + concept_configs(_table())
    rows = evaluate_suite(tiny, suite, cfgs, store)
    assert len(rows) == 2 * 7 * len(cfgs)
    # the same numbers as the single-run path, task by task
    s = suite[1]
    task = s.tasks[2]
    iset = s.image_set
    iset.labels = s.labels[task.name]
    single = prune_eval(tiny, iset, task, cfgs)
    mine = [r for r in rows if r["set"] == "hard" and r["task"] == task.name]
    assert [round(r["accuracy"], 6) for r in mine] == [round(r["accuracy"], 6) for r in single]
    tab = table3(rows)
    assert len(tab) == 14 and {"original", "high", "low", "random", "random_std"} <= set(tab[0])
    drops = mean_drops(rows, ["hard"])
    hard = [t for t in tab if t["set"] == "hard"]
    assert drops["high"] == pytest.approx(sum(t["original"] - t["high"] for t in hard) / 7)
    mat = concept_matrix(rows, "hard")
    assert {m["concept"] for m in mat} == {"colour", "shape"} and all(len(m) == 2 + 7 for m in mat)


def test_suite_set_needs_labels_for_every_task(tiny):
    from ccs_core.toyworld.tasks import toy_suite

    s = toy_suite(n=8, seed=0, styles=("normal",))[0]
    bad = SuiteSet("normal", s.image_set, s.tasks, {})
    with pytest.raises(DataError, match="no labels for task"):
        evaluate_suite(tiny, [bad], paper_configs(_table(), 6, 16, n_seeds=1))

"""MaxSkew@K as the paper's authors compute it, and bias rows for original / pruned models."""
from __future__ import annotations

import math

import pytest
import torch

from ccs_core import bias
from ccs_core.errors import DataError
from ccs_core.prune import PruneConfig, strategy_configs
from tests.conftest import FakeImageSet


def test_paper_resources():
    occ = bias.occupations()
    assert len(occ) == 104 and occ[0] == "biologist" and occ[-1] == "electrician" and len(set(occ)) == 104
    assert bias.bias_templates() == ["A {}", "A photo of {}", "A picture of {}", "An image of {}"]


def test_max_skew_by_hand():
    # 6 images on orthogonal axes; groups a,a,a,b,b,c -> shares 1/2, 1/3, 1/6
    feats = torch.eye(6) * torch.tensor([1.0, 2, 3, 4, 5, 6])[:, None]  # scale must not matter
    groups = ["a", "a", "a", "b", "b", "c"]
    p0 = torch.zeros(6)
    p0[[3, 4]] = torch.tensor([0.8, 0.6])          # top-2 = both b: ln((2/2)/(1/3)) = ln 3
    p1 = torch.zeros(6)
    p1[[0, 5, 1]] = torch.tensor([0.7, 0.6, 0.1])  # top-2 = a, c: max(ln 1, ln 3) = ln 3 (c)
    p2 = torch.zeros(6)
    p2[[0, 1, 2]] = torch.tensor([0.6, 0.5, 0.4])  # top-2 = a, a: ln((2/2)/(1/2)) = ln 2
    res = bias.max_skew(feats, torch.stack([p0, p1, p2]), groups, k=2, attribute="g")
    assert res.per_prompt == pytest.approx([math.log(3), math.log(3), math.log(2)])
    assert res.worst_group == ["b", "c", "a"]
    assert res.total == pytest.approx(2 * math.log(3) + math.log(2))
    assert res.mean == pytest.approx(res.total / 3)
    full = bias.max_skew(feats, p0[None], groups, k=6)  # K = N: every group at its share -> 0
    assert full.per_prompt == pytest.approx([0.0], abs=1e-12)


def test_max_skew_errors():
    with pytest.raises(DataError, match="K <= number of images"):
        bias.max_skew(torch.eye(3), torch.eye(3), ["a", "b", "c"], k=4)
    with pytest.raises(DataError, match="no 'race' label"):
        bias.max_skew(torch.eye(3), torch.eye(3), ["a", None, "c"], k=2, attribute="race")
    with pytest.raises(DataError, match="2 group labels"):
        bias.max_skew(torch.eye(3), torch.eye(3), ["a", "b"], k=2)


def FakeSet(n, groups, seed=0):
    return FakeImageSet(n, groups=groups, seed=seed)


def test_bias_eval_rows(tiny, store):
    groups = ["plain", "striped", "dotted", "checkered"] * 5
    data = FakeSet(20, groups)
    configs = [PruneConfig("original")] + strategy_configs("heads:L5.H0,L5.H3,L4.H2", None, 6, 8)
    prompts, templates = ["red circle", "blue square", "green cross"], ["{}", "a picture of {}"]
    rows = bias.bias_eval(tiny, data, configs, k=8, prompts=prompts, templates=templates, store=store,
                          attributes={"background": groups, "half": ["x", "y"] * 10})
    assert [(r["strategy"], r["attribute"]) for r in rows] == [
        ("original", "background"), ("original", "half"), ("custom", "background"), ("custom", "half")]
    # recompute the original row by hand from the model's own encoder
    text = bias.prompt_embeddings(tiny, prompts, templates)
    want = bias.max_skew(tiny.encode_images(data.x), text, groups, 8)
    assert rows[0]["maxskew_sum"] == pytest.approx(want.total, abs=1e-6)
    assert rows[0]["maxskew_mean"] == pytest.approx(want.total / 3, abs=1e-6)
    assert rows[2]["n_heads"] == 3 and rows[2]["heads"] == ["L4.H2", "L5.H0", "L5.H3"]
    assert all(r["maxskew_sum"] >= 0 for r in rows)  # the max over present groups is never negative
    cached = bias.bias_eval(tiny, data, configs, k=8, prompts=prompts, templates=templates, store=store,
                            attributes={"background": groups, "half": ["x", "y"] * 10})
    assert cached == rows


def test_prompt_embeddings_are_template_means(tiny):
    emb = bias.prompt_embeddings(tiny, ["red circle"], ["{}", "a picture of {}"])
    t = tiny.encode_texts(["red circle", "a picture of red circle"]).mean(0)
    assert torch.allclose(emb[0], t / t.norm(), atol=1e-6)


def test_bias_eval_needs_groups(tiny):
    data = FakeSet(4, None)
    with pytest.raises(DataError, match="no group labels"):
        bias.bias_eval(tiny, data, [PruneConfig("original")])


def test_tradeoff_joins_same_configuration():
    acc = [{"strategy": "original", "seed": None, "heads": [], "accuracy": 0.9, "mean_true_prob": 0.8},
           {"strategy": "random", "seed": 1, "heads": ["L5.H1"], "accuracy": 0.7, "mean_true_prob": 0.6}]
    skew = [{"strategy": "random", "seed": 1, "n_heads": 1, "heads": ["L5.H1"], "attribute": "race", "k": 9,
             "maxskew_sum": 3.0, "maxskew_mean": 0.5},
            {"strategy": "random", "seed": 2, "n_heads": 1, "heads": ["L5.H2"], "attribute": "race", "k": 9,
             "maxskew_sum": 2.0, "maxskew_mean": 0.4}]
    rows = bias.tradeoff(acc, skew)
    assert len(rows) == 1 and rows[0]["accuracy"] == 0.7 and rows[0]["maxskew_sum"] == 3.0
    assert bias.tradeoff(acc, skew, attribute="gender") == []

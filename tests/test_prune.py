"""Soft pruning: exactness against zeroed out_proj columns, the residual cache, strategies, preview."""
from __future__ import annotations

import copy
import time

import pytest
import torch

from ccs_core import prune
from ccs_core.errors import HeadSpecError
from ccs_core.heads import HeadId, parse_heads


def zeroed_copy(model, heads):
    """Brute-force reference: a copy of the image tower whose out_proj columns of the heads are zeroed."""
    ref = copy.deepcopy(model.visual)
    blocks = ref.transformer.resblocks
    for h in parse_heads(heads):
        attn = blocks[h.layer].attn
        dh = attn.embed_dim // attn.num_heads
        with torch.no_grad():
            attn.out_proj.weight[:, h.head * dh:(h.head + 1) * dh] = 0
    return ref


def n_tokens(loaded):
    g = loaded.model.visual.grid_size
    return g[0] * g[1] + 1


def rel(a, b):
    return float((a - b).norm() / b.norm())


def images(loaded, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = loaded.spec.image_size
    return torch.randn(n, 3, s, s, generator=g)


def test_exact_on_vitb32_and_weights_untouched(vitb32):
    x = images(vitb32, 2)
    heads = "L11.H5, L10.H8, L8.H0, L3.H2"
    before = {k: v.clone() for k, v in vitb32.model.visual.state_dict().items() if "out_proj" in k}
    got = prune.pruned_image_features(vitb32, x, heads)
    with torch.no_grad():
        want = zeroed_copy(vitb32.model, heads)(x)
        orig = vitb32.model.encode_image(x)
    assert rel(got, want) < 1e-5
    assert rel(orig, want) > 1e-3  # pruning changed something, so the check above can fail
    assert rel(prune.pruned_image_features(vitb32, x, []), orig) < 1e-6
    after = vitb32.model.visual.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


@pytest.mark.parametrize("heads", [["L5.H0"], ["L2.H3", "L4.H7", "L5.H1"], [HeadId(0, 0), HeadId(3, 2)]])
def test_exact_on_tiny(tiny, heads):
    x = images(tiny, 4, seed=1)
    got = prune.pruned_image_features(tiny, x, heads)
    with torch.no_grad():
        want = zeroed_copy(tiny.model, heads)(x)
    assert rel(got, want) < 1e-5


def test_residual_cache_and_multi_config_pass_match_full_forward(tiny, store):
    x = images(tiny, 6, seed=2)
    batches = [x[:4], x[4:]]
    sets = [[], ["L5.H0"], ["L4.H1", "L5.H7"], "L3.H2, L4.H0"]
    cache = prune.build_residual_cache(tiny, batches, first_layer=3, key="six", store=store)
    t, w = n_tokens(tiny), tiny.spec.width
    assert cache.resid.shape == (6, t, w)
    assert cache.bytes_per_1000() == pytest.approx(t * w * 4 * 1000)
    again = prune.build_residual_cache(tiny, [], first_layer=3, key="six", store=store)  # from the Store
    assert torch.equal(again.resid, cache.resid)
    multi = prune.configs_features(tiny, batches, sets)
    for hs, m in zip(sets, multi):
        full = prune.pruned_image_features(tiny, x, hs)
        assert rel(prune.features_from_cache(tiny, cache, hs, batch_size=4), full) < 1e-6
        assert rel(m, full) < 1e-6
    with pytest.raises(HeadSpecError, match="rebuild the cache"):
        prune.features_from_cache(tiny, cache, ["L1.H0"])


def test_mean_ablation_over_the_image_itself_is_identity(tiny):
    x = images(tiny, 1, seed=3)
    heads = ["L3.H1", "L5.H2"]
    means = prune.head_means(tiny, [x], [3, 5])
    assert means[3].shape == (n_tokens(tiny), tiny.spec.n_heads, tiny.spec.head_dim)
    orig = tiny.encode_images(x)
    assert rel(prune.pruned_image_features(tiny, x, heads, mode="mean", means=means), orig) < 1e-5
    other = prune.head_means(tiny, [images(tiny, 3, seed=4)], [3, 5])
    assert rel(prune.pruned_image_features(tiny, x, heads, mode="mean", means=other), orig) > 1e-4
    with pytest.raises(HeadSpecError, match="head means"):
        prune.pruned_image_features(tiny, x, heads, mode="mean", means={3: means[3]})
    with pytest.raises(HeadSpecError, match="mode"):
        prune.pruned_image_features(tiny, x, heads, mode="half")


@pytest.mark.parametrize("bad,msg", [("L11H", "L<layer>.H<head>"), ("L6.H0", "L6.H0"),
                                     ("L2.H16", "heads 0..15"), ("L1.H1, Lx", "L<layer>.H<head>")])
def test_bad_head_names(tiny, bad, msg):
    with pytest.raises(HeadSpecError, match=msg):
        prune.pruned_image_features(tiny, images(tiny, 1), bad)


ROWS = ([{"head": f"L5.H{h}", "ccs": c, "label": lab} for h, c, lab in
         [(0, 5, "colour"), (1, 5, "colour"), (2, 1, "size"), (3, 0, None), (4, 3, "background"),
          (5, None, "colour"), (6, 5, "background"), (7, 2, "size")]]
        + [{"head": f"L4.H{h}", "ccs": 1, "label": "count"} for h in range(8)])


def test_strategies():
    table = prune.CCSTable(ROWS)
    assert table.layers == [4, 5]
    (high,) = prune.strategy_configs("high", table, 6, 8)
    assert high.names == ["L5.H0", "L5.H1", "L5.H6"]
    (low,) = prune.strategy_configs("low", table, 6, 8)
    assert low.names == [f"L4.H{h}" for h in range(8)] + ["L5.H2", "L5.H3"]
    rand = prune.strategy_configs("random", table, 6, 8)
    assert [c.seed for c in rand] == [0, 1, 2, 3, 4]
    for c in rand:
        assert len(c.heads) == 3 and not set(c.heads) & set(high.heads)
        assert all(h.layer in (4, 5) for h in c.heads)
    assert len({c.heads for c in rand}) > 1
    assert prune.strategy_configs("random", table, 6, 8) == rand  # seeded: reproducible
    (conc,) = prune.strategy_configs("concept: Colour", table, 6, 8)
    assert conc.names == ["L5.H0", "L5.H1", "L5.H5"] and conc.strategy == "concept:Colour"
    (conc5,) = prune.strategy_configs("concept:colour", table, 6, 8, concept_min_ccs=5)
    assert conc5.names == ["L5.H0", "L5.H1"]
    every = prune.strategy_configs("concepts", table, 6, 8, concept_min_ccs=5)  # one per label with a CCS-5 head
    assert {c.strategy: c.names for c in every} == {"concept:background": ["L5.H6"],
                                                    "concept:colour": ["L5.H0", "L5.H1"]}
    assert len(prune.strategy_configs("concepts", table, 6, 8)) == 4  # background, colour, count, size
    from ccs_core.strategies import EmptyStrategyError

    with pytest.raises(EmptyStrategyError, match="no labelled head with CCS >= 6"):
        prune.strategy_configs("concepts", table, 6, 8, concept_min_ccs=6)
    (custom,) = prune.strategy_configs("heads:L5.H1,L2.H0", None, 6, 8)
    assert custom.names == ["L2.H0", "L5.H1"]
    assert prune.strategy_configs("original", None, 6, 8)[0].heads == ()
    for bad, msg in [("concept:animals", "known labels: background, colour"), ("wild", "Unknown strategy"),
                     ("heads:L9.H0", "L9.H0"), ("high", None), ("heads:", "no head")]:
        with pytest.raises(HeadSpecError, match=msg):
            prune.strategy_configs(bad, table if msg else None, 6, 8)
    with pytest.raises(HeadSpecError, match="Cannot draw 9"):
        prune.random_heads([HeadId(0, h) for h in range(8)], 9, seed=0)


def test_random_widens_to_all_layers_when_most_analysed_heads_are_high():
    rows = [{"head": f"L5.H{h}", "ccs": 5 if h < 6 else 2, "label": "colour"} for h in range(8)]
    table = prune.CCSTable(rows)          # 6 high heads, only 2 other analysed heads
    rand = prune.strategy_configs("random", table, 6, 8)
    high = set(prune.strategy_configs("high", table, 6, 8)[0].heads)
    assert {c.strategy for c in rand} == {"random (all layers)"}
    for c in rand:
        assert len(c.heads) == 6 and not set(c.heads) & high
        assert any(h.layer < 5 for h in c.heads)


def test_preview_is_full_minus_direct_terms():
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(0)
    dec = SimpleNamespace(heads=torch.randn(50, 2, 4, 8, generator=g), rest=torch.randn(50, 8, generator=g),
                          layers=[4, 5])
    pv = prune.DirectEffectPreview.from_decomposition(dec)
    full = dec.heads.sum((1, 2)) + dec.rest
    assert torch.allclose(pv.features([]), full, atol=1e-5)
    got = pv.features("L4.H1, L5.H3")
    assert torch.allclose(got, full - dec.heads[:, 0, 1] - dec.heads[:, 1, 3], atol=1e-5)
    m = pv.features("L5.H3", mode="mean")
    c = dec.heads[:, 1, 3]
    assert torch.allclose(m, full - c + c.mean(0), atol=1e-5)
    with pytest.raises(HeadSpecError, match="decomposed layers"):
        pv.features("L3.H0")


def test_preview_matches_decomposition_and_is_fast(tiny):
    from ccs_core.decompose import decompose

    x = images(tiny, 3, seed=5)
    pv = prune.DirectEffectPreview.from_decomposition(decompose(tiny, x, n_layers=2))
    assert rel(pv.features([]), tiny.encode_images(x)) < 1e-4
    big = prune.DirectEffectPreview(torch.randn(32, 10_000, 64), torch.randn(10_000, 64), [2, 3, 4, 5], 8)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        big.features("L5.H0, L4.H3, L2.H7, L3.H1, L5.H5")
        times.append(time.perf_counter() - t)
    assert sorted(times)[1] < 0.25  # 50 ms target measured by bench/prune.py; loose here (shared CPU)


def test_ccs_table_from_json_and_build_configs():
    score = {"heads": {"L5.H0": {"ccs": 4, "label": "colour", "category": "other"},
                       "L5.H1": {"ccs": 1, "label": "size"}, "L4.H0": {"ccs": None, "label": None}},
             "thresholds": {"high_min": 4, "low_max": 1}}
    table = prune.CCSTable.from_json(score)
    assert table.high_heads() == [HeadId(5, 0)] and table.low_heads() == [HeadId(5, 1)]
    assert prune.CCSTable.from_json({"rows": ROWS}).high_heads() == prune.CCSTable(ROWS).high_heads()
    with pytest.raises(HeadSpecError, match="not understood"):
        prune.CCSTable.from_json("nonsense")
    configs = prune.build_configs(["high", "random", "high", "heads:L5.H0"], table, 6, 8, n_seeds=2)
    assert [c.strategy for c in configs] == ["original", "high", "random", "random", "custom"]
    none_high = prune.CCSTable([{"head": "L5.H0", "ccs": 3, "label": "a"}, {"head": "L5.H1", "ccs": 1}])
    with pytest.raises(HeadSpecError, match="no analysed head has CCS >= 5"):
        prune.build_configs(["random"], none_high, 6, 8)
    notes: list[str] = []
    assert [c.strategy for c in prune.build_configs(["high", "low"], none_high, 6, 8, skipped=notes)] == [
        "original", "low"]
    assert len(notes) == 1 and "'high'" in notes[0]


def test_exact_on_bundled_toy_model():
    from ccs_core.toyworld.model import TOY_CHECKPOINT

    if not TOY_CHECKPOINT.is_file():
        pytest.skip("the toy checkpoint is not trained yet")
    from ccs_core.models import load_model

    toy = load_model("toy")
    x = images(toy, 4, seed=6)
    heads = ["L3.H0", "L2.H3", "L0.H1"]
    with torch.no_grad():
        want = zeroed_copy(toy.model, heads)(x)
    assert rel(prune.pruned_image_features(toy, x, heads), want) < 1e-5

"""CCS, CCS@K, categories and agreement statistics."""
from __future__ import annotations

import math

import pytest

from ccs_core.ccs import (Thresholds, accepted_spans, agreement, category, ccs_at_k, cohen_kappa,
                          head_ccs, kendall, spearman)
from ccs_core.errors import CCSError, DataError

T, F, N = True, False, None
J3 = ["openai", "anthropic", "gemini"]


def test_unanimity_counts_only_spans_every_judge_accepts():
    v = {"openai": [T, T, T, F, T], "anthropic": [T, T, F, F, T], "gemini": [T, T, T, T, F]}
    assert head_ccs(v, J3) == 2
    assert accepted_spans(v, J3) == [T, T, F, F, F]
    assert head_ccs(v, ["openai"]) == 4        # subset of judges
    assert head_ccs(v, ["gemini", "openai"]) == 3


def test_unparseable_never_counts_as_yes_or_no():
    # span 5 undetermined (None, others yes) -> head incomplete
    v = {"openai": [T, T, T, T, N], "anthropic": [T] * 5, "gemini": [T] * 5}
    assert head_ccs(v, J3) is None
    assert category(head_ccs(v, J3)) == "incomplete"
    # but a None on a span another judge already rejects cannot change the result
    v = {"openai": [T, T, T, T, N], "anthropic": [T, T, T, T, F], "gemini": [T] * 5}
    assert accepted_spans(v, J3) == [T, T, T, T, F]
    assert head_ccs(v, J3) == 4
    # all judges unparseable on every span
    assert head_ccs({"openai": [N] * 5}, ["openai"]) is None


def test_wrong_inputs_give_clear_errors():
    with pytest.raises(DataError, match="missing"):
        head_ccs({"openai": [T] * 5}, J3)
    with pytest.raises(DataError, match="4 verdicts but the head has 5"):
        head_ccs({"openai": [T] * 4}, ["openai"])
    with pytest.raises(DataError, match="non-boolean"):
        head_ccs({"openai": [T, T, "yes", T, T]}, ["openai"])
    with pytest.raises(DataError, match="No judges"):
        head_ccs({"openai": [T] * 5}, [])
    assert issubclass(DataError, CCSError)
    assert head_ccs({"a": [T, F, T]}, ["a"], n_spans=3) == 2


def test_ccs_at_k_shares_over_complete_heads():
    at = ccs_at_k([5, 5, 3, 0, None, 1])
    assert at == {0: 0.2, 1: 0.2, 2: 0.0, 3: 0.2, 4: 0.0, 5: 0.4}
    assert math.isclose(sum(at.values()), 1.0)
    assert ccs_at_k([None, None]) == {k: 0.0 for k in range(6)}
    with pytest.raises(DataError):
        ccs_at_k([6])


def test_categories_paper_defaults_and_custom_thresholds():
    assert [category(c) for c in range(6)] == ["low", "low", "other", "moderate", "other", "high"]
    t = Thresholds(high_min=4, moderate_min=2, moderate_max=3, low_max=1)
    assert [category(c, t) for c in range(6)] == ["low", "low", "moderate", "moderate", "high", "high"]
    with pytest.raises(DataError, match="thresholds"):
        Thresholds(high_min=3, moderate_min=3)


def test_cohen_kappa_known_values():
    # textbook example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa = 0.4
    a = [T] * 25 + [F] * 25
    b = [T] * 20 + [F] * 5 + [T] * 10 + [F] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa([T, F, T, F], [F, T, F, T]) == pytest.approx(-1.0)
    # against sklearn's formula on a multi-class case, computed by hand
    x, y = [0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1]
    p_o = 4 / 6
    p_e = (2 / 6) * (1 / 6) + (2 / 6) * (2 / 6) + (2 / 6) * (3 / 6)
    assert cohen_kappa(x, y) == pytest.approx((p_o - p_e) / (1 - p_e))


def test_constant_and_empty_inputs_give_nan_not_errors():
    assert math.isnan(cohen_kappa([T, T, T], [T, T, T]))
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(spearman([T, T, T], [T, F, T]))
    assert math.isnan(kendall([1, 1], [0, 1]))
    ag = agreement([T, T, T], [T, T, T])
    assert ag.accuracy == 1.0 and ag.as_dict()["kappa"] is None


def test_agreement_drops_missing_pairs_and_correlates():
    human = [T, T, F, F, T, N, F]
    judge = [T, T, F, T, T, T, N]
    ag = agreement(human, judge)
    assert (ag.n, ag.n_skipped) == (5, 2)
    assert ag.accuracy == pytest.approx(4 / 5)
    assert -1 <= ag.kappa <= 1 and ag.spearman > 0 and ag.kendall > 0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(DataError, match="paired"):
        agreement([T], [T, F])

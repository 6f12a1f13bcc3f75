"""TEXTSPAN fast path vs the direct reference (SVD of N x d) and on planted structure."""
from __future__ import annotations

import pytest
import torch

from ccs_core.textspan import (Moments, SpanResult, span_directions, textspan, textspan_heads, textspan_moments,
                               textspan_reference)


def make(seed: int, n: int, d: int, m: int):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * torch.logspace(0, -1.5, d)[:, None]
    C = torch.randn(n, d, generator=g) @ mix + 2 * torch.randn(d, generator=g)   # offset: uncentred
    T = torch.nn.functional.normalize(torch.randn(m, d, generator=g), dim=-1)
    return C, T


@pytest.mark.parametrize("seed,n,d,m,rank", [(0, 300, 32, 200, 16), (1, 500, 64, 400, 80),
                                             (2, 40, 64, 300, 80), (3, 1000, 128, 800, 80),
                                             (4, 200, 16, 50, 80)])
def test_fast_matches_direct_reference(seed, n, d, m, rank):
    C, T = make(seed, n, d, m)
    fast, ref = textspan(C, T, 5, rank), textspan_reference(C, T, 5, rank)
    assert fast.indices == ref.indices
    assert len(set(fast.indices)) == 5
    assert fast.variances == pytest.approx(ref.variances, rel=1e-4)
    assert fast.explained_share == pytest.approx(ref.explained_share, rel=1e-4)
    assert fast.shares == pytest.approx(ref.shares, rel=1e-4)
    assert 0 < fast.explained_share <= 1
    assert fast.explained_share == pytest.approx(sum(fast.shares))


def test_rank_matters_like_in_the_reference():
    C, T = make(5, 400, 64, 300)
    results = {}
    for rank in (1, 3, 64):
        results[rank] = textspan(C, T, 4, rank).indices
        assert results[rank] == textspan_reference(C, T, 4, rank).indices
    assert len(results[1]) == 1 and len(results[3]) == 3 and len(results[64]) == 4  # <= rank spans
    assert results[3] != results[64][:3]


def test_planted_directions_are_found_in_order():
    g = torch.Generator().manual_seed(0)
    d, m = 48, 100
    T = torch.nn.functional.normalize(torch.randn(m, d, generator=g), dim=-1)
    coeffs = torch.randn(2000, 3, generator=g) * torch.tensor([5.0, 3.0, 2.0])
    C = coeffs @ T[[17, 42, 7]] + 0.01 * torch.randn(2000, d, generator=g) + T[3]  # mean offset
    res = textspan(C, T, 3, rank=10)
    assert res.indices == [17, 42, 7]
    assert res.explained_share > 0.99


def test_duplicate_texts_are_not_picked_twice():
    C, T = make(6, 300, 32, 50)
    first = textspan(C, T, 1).indices[0]
    T2 = torch.cat([T, T[first:first + 1]])           # a duplicate of the best text at the end
    res = textspan(C, T2, 5)
    assert res.indices.count(first) + res.indices.count(50) == 1


def test_heads_batched_equals_single_calls():
    g = torch.Generator().manual_seed(7)
    N, L, H, d, M = 300, 2, 3, 32, 120
    mix = torch.randn(L, H, d, d, generator=g) * 0.3
    heads = torch.einsum("nlhd,lhde->nlhe", torch.randn(N, L, H, d, generator=g), mix)
    T = torch.nn.functional.normalize(torch.randn(M, d, generator=g), dim=-1)
    res = textspan_heads(heads, T, n_spans=4, rank=20, chunk=4)
    assert len(res) == L and all(len(r) == H for r in res)
    for l in range(L):
        for h in range(H):
            single = textspan(heads[:, l, h], T, 4, 20)
            assert res[l][h].indices == single.indices
            assert res[l][h].variances == pytest.approx(single.variances, rel=1e-4)
            assert res[l][h].indices == textspan_reference(heads[:, l, h], T, 4, 20).indices


def test_more_spans_than_texts_and_numpy_inputs():
    C, T = make(8, 100, 16, 3)
    res = textspan(C.numpy(), T.numpy(), n_spans=5)
    assert isinstance(res, SpanResult) and sorted(res.indices) == [0, 1, 2]


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        textspan(torch.zeros(10, 8), torch.zeros(5, 7))
    with pytest.raises(ValueError, match=r"\[N, L, H, d\]"):
        textspan_heads(torch.zeros(10, 8), torch.zeros(5, 8))


def test_span_directions_are_the_residual_texts_textspan_picked():
    """Replay the direct algorithm and keep the residual text at each pick: span_directions equals it."""
    g = torch.Generator().manual_seed(3)
    C = torch.randn(200, 16, generator=g, dtype=torch.float64) @ torch.randn(16, 16, generator=g, dtype=torch.float64)
    T = torch.randn(60, 16, generator=g, dtype=torch.float64)
    rank = 10
    ref = textspan_reference(C, T, n_spans=4, rank=rank)
    _, _, vh = torch.linalg.svd(C, full_matrices=False)
    R = T @ vh[:rank].T @ vh[:rank]
    want = []
    for b in ref.indices:  # the reference's own removal loop, on the texts only
        t = R[b].clone()
        want.append(t)
        R = R - (R @ t / (t @ t))[:, None] * t[None]
    got = span_directions(C, T, ref.indices, rank=rank)
    assert torch.allclose(got, torch.stack(want), atol=1e-8)


def test_two_similar_spans_rank_different_images():
    """Span 2's text overlaps span 1's; ranking by the raw texts gives the same images for both, by the
    directions TEXTSPAN used it does not."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.eye(8, dtype=torch.float64)[0], torch.eye(8, dtype=torch.float64)[1]
    C = 3.0 * torch.randn(300, 1, generator=g, dtype=torch.float64) * a + \
        1.0 * torch.randn(300, 1, generator=g, dtype=torch.float64) * b + \
        0.05 * torch.randn(300, 8, generator=g, dtype=torch.float64)
    T = torch.nn.functional.normalize(torch.stack([a, a + 0.5 * b, torch.eye(8, dtype=torch.float64)[2]]), dim=-1)
    res = textspan(C, T, n_spans=2, rank=8)
    assert res.indices == [0, 1]
    Cc = C - C.mean(0)
    top = lambda scores: [set(torch.topk(scores[:, s], 10).indices.tolist()) for s in range(2)]  # noqa: E731
    raw = top(Cc @ T[res.indices].T)
    used = top(Cc @ span_directions(C, T, res.indices, rank=8).T)
    assert len(raw[0] & raw[1]) >= 7          # the old ranking: mostly the same images
    assert len(used[0] & used[1]) <= 2        # TEXTSPAN's directions: different images


def test_moments_add_up_over_batches_and_shards_and_give_the_same_spans():
    """TEXTSPAN's statistics stream: batches of any size, and shards merged in any order, give the
    moments of all images at once, and the same spans as the direct algorithm."""
    g = torch.Generator().manual_seed(3)
    K, N, d, M = 3, 700, 24, 90
    C = torch.randn(K, N, d, generator=g) @ (torch.randn(K, d, d, generator=g) * 0.4) + 5 * torch.randn(K, 1, d, generator=g)
    T = torch.nn.functional.normalize(torch.randn(M, d, generator=g), dim=-1)
    whole = Moments.of(C, batch=N)
    for batch in (1, 64, 333):
        m = Moments.of(C, batch=batch)
        assert m.n == N
        assert torch.allclose(m.mean, whole.mean, atol=1e-9) and torch.allclose(m.cov, whole.cov, atol=1e-7)
    a, b = Moments.of(C[:, :250], batch=100), Moments.of(C[:, 250:], batch=100)  # two shards, other shifts
    for merged in (a.merge(b), b.merge(a)):
        assert torch.allclose(merged.mean, whole.mean, atol=1e-9) and torch.allclose(merged.cov, whole.cov, atol=1e-7)
    assert Moments.empty(K, d).merge(a) is a and a.merge(Moments.empty(K, d)) is a
    spans = textspan_moments(a.merge(b), T, n_spans=5, rank=20, chunk=2)
    for k in range(K):
        assert spans[k].indices == textspan_reference(C[k], T, 5, 20).indices

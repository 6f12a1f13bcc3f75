"""TEXTSPAN (Gandelsman et al., ICLR 2024): the text directions that explain a head's variance.

For one head, C = its contributions over N images [N, d] and T = text embeddings [M, d]:
1. project T onto the top-``rank`` right singular directions of the uncentred C (the eigenvectors of
   the d x d matrix C^T C: the N x d matrix is never factorised);
2. centre C over images;
3. ``n_spans`` times: pick the text t whose projection C @ t has the largest std over images, record the
   variance it explains, and remove its direction from C and from every text
   (X <- X - (X t / |t|^2) t^T, no renormalisation). At most ``rank`` spans: each removal
   shrinks the texts' span by one dimension.

Fast path: the std of C @ t is sqrt(t^T Cov t), and removing t maps Cov -> P Cov P with
P = I - t t^T / |t|^2. Texts live in the rank-r span V after step 1 and P keeps that span, so the whole
loop runs on r x r matrices (Cov_r = V^T Cov V, T_r = T V). Both Cov and C^T C come from each head's
mean and second moment (``Moments``), which add up image batch by image batch: the decomposition
streams them and never holds every contribution. ``textspan_reference`` is the direct
algorithm (SVD of N x d, N x M projections) that the tests and the benchmark compare against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .threads import one_thread


@dataclass
class SpanResult:
    indices: list[int]       # pool indices of the chosen texts, in order
    variances: list[float]   # variance over images along each chosen direction when it was removed
    explained_share: float   # sum(variances) / total variance of the head's centred contributions
    total_variance: float = 0.0

    @property
    def shares(self) -> list[float]:
        """Each span's share of the head's total variance."""
        return [v / self.total_variance if self.total_variance > 0 else 0.0 for v in self.variances]


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)


@dataclass
class Moments:
    """TEXTSPAN's sufficient statistics of K heads' contributions: sums over images that add up batch by
    batch and shard by shard (``add``, ``merge``), so the [N, d] contributions never have to be held.

    Sums are of ``x - shift`` (``shift``: the first batch's mean, float32 values held in float64), in
    float64, so the centred covariance does not cancel catastrophically when a head's mean is large."""
    n: int
    shift: torch.Tensor  # [K, d] float64
    s1: torch.Tensor     # [K, d] float64: sum of (x - shift)
    s2: torch.Tensor     # [K, d, d] float64: sum of (x - shift)(x - shift)^T

    @classmethod
    def empty(cls, k: int, d: int) -> "Moments":
        z = torch.zeros(k, d, dtype=torch.float64)
        return cls(0, z.clone(), z.clone(), torch.zeros(k, d, d, dtype=torch.float64))

    @classmethod
    def of(cls, C, batch: int = 2048) -> "Moments":
        """The moments of C [K, N, d] (a tensor or an array, e.g. a memory map), read ``batch`` images
        at a time."""
        k, n, d = C.shape
        out = cls.empty(k, d)
        for s in range(0, n, batch):
            out.add(_as_tensor(C[:, s:s + batch]).transpose(0, 1))
        return out

    @torch.no_grad()
    def add(self, x: torch.Tensor) -> "Moments":
        """Add a batch x [B, K, d] of contributions (in place; returns self)."""
        x = x.to(torch.float32)
        if x.shape[0] == 0:
            return self
        if self.n == 0:
            self.shift = x.mean(0).double()
        xs = (x - self.shift.float()).transpose(0, 1)                       # [K, B, d] float32
        self.s1 += xs.sum(1).double()
        self.s2 += (xs.transpose(1, 2) @ xs).double()                       # [K, d, d]
        self.n += x.shape[0]
        return self

    def merge(self, other: "Moments") -> "Moments":
        """The moments of both image sets together (exact: the other's sums moved to this shift)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        delta = other.shift - self.shift                                    # [K, d]
        s1 = other.s1 + other.n * delta
        s2 = (other.s2 + delta[:, :, None] * other.s1[:, None, :] + other.s1[:, :, None] * delta[:, None, :]
              + other.n * delta[:, :, None] * delta[:, None, :])
        return Moments(self.n + other.n, self.shift, self.s1 + s1, self.s2 + s2)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The sums as arrays (the cache's entry, a Ray task's result)."""
        return {"n": np.asarray([self.n], dtype=np.int64), "shift": self.shift.numpy(), "s1": self.s1.numpy(),
                "s2": self.s2.numpy()}

    @classmethod
    def from_arrays(cls, a: dict) -> "Moments":
        """``to_arrays``'s dict (or memory maps of it) back, as writable float64 tensors."""
        return cls(int(np.asarray(a["n"]).reshape(-1)[0]), *(torch.from_numpy(np.array(a[k], dtype=np.float64))
                                                             for k in ("shift", "s1", "s2")))

    def heads(self, start: int, stop: int) -> "Moments":
        """The moments of heads start..stop-1."""
        return Moments(self.n, self.shift[start:stop], self.s1[start:stop], self.s2[start:stop])

    @property
    def mean(self) -> torch.Tensor:
        """# [K, d]"""
        return self.shift + self.s1 / max(self.n, 1)

    @property
    def cov(self) -> torch.Tensor:
        """Centred covariance over images. # [K, d, d]"""
        m = self.s1 / max(self.n, 1)
        return self.s2 / max(self.n, 1) - m[:, :, None] * m[:, None, :]


@torch.no_grad()
def _spans_moments(mom: Moments, T: torch.Tensor, n_spans: int, rank: int) -> list[SpanResult]:
    """K heads' moments, texts T [M, d] -> one SpanResult per head."""
    K, d = mom.shift.shape
    r = max(1, min(rank, mom.n, d))
    cov = mom.cov                                                           # [K, d, d] centred
    m = mom.mean[:, None, :]                                                # [K, 1, d]
    G = cov + m.transpose(1, 2) @ m                                         # [K, d, d] uncentred C^T C / N
    with one_thread():  # a 512 x 512 eigh is slower on 2 threads than on 1, much slower under load
        _, vecs = torch.linalg.eigh(G)                                      # ascending eigenvalues
    V = vecs[:, :, -r:].flip(-1)                                            # [K, d, r] top right-singular dirs
    total = cov.diagonal(dim1=1, dim2=2).sum(-1)                            # [K] total variance
    cov_r = V.transpose(1, 2) @ cov @ V                                     # [K, r, r]
    T_r = T.double().unsqueeze(0) @ V                                       # [K, M, r] texts in span coords
    M = T_r.shape[1]
    picked = torch.zeros(K, M, dtype=torch.bool)
    ar = torch.arange(K)
    idx_out, var_out = [], []
    for _ in range(min(n_spans, M, r)):  # after r removals the texts' span is empty
        var = ((T_r @ cov_r) * T_r).sum(-1)                                 # [K, M] var of C @ t
        var = var.masked_fill(picked, -torch.inf)
        best = var.argmax(1)                                                # [K]
        t = T_r[ar, best]                                                   # [K, r]
        tn = (t * t).sum(-1, keepdim=True).clamp_min(1e-30)                 # [K, 1] |t|^2
        var_out.append(var[ar, best] / tn[:, 0])                            # variance along t / |t|
        idx_out.append(best)
        picked[ar, best] = True
        P = torch.eye(r, dtype=t.dtype) - t[:, :, None] * t[:, None, :] / tn[:, :, None]  # [K, r, r]
        cov_r = P @ cov_r @ P
        T_r = T_r @ P                                                       # P is symmetric
    idx = torch.stack(idx_out, 1) if idx_out else torch.zeros(K, 0, dtype=torch.long)
    var = torch.stack(var_out, 1) if var_out else torch.zeros(K, 0, dtype=torch.float64)
    share = var.sum(1) / total.clamp_min(1e-30)
    return [SpanResult(idx[k].tolist(), var[k].tolist(), float(share[k]), float(total[k]))
            for k in range(K)]


def textspan(contributions, text_embeddings, n_spans: int = 5, rank: int = 80) -> SpanResult:
    """TEXTSPAN for one head: contributions [N, d], text_embeddings [M, d]."""
    C, T = _as_tensor(contributions), _as_tensor(text_embeddings)
    if C.ndim != 2 or T.ndim != 2 or C.shape[1] != T.shape[1]:
        raise ValueError(f"Expected contributions [N, d] and texts [M, d], got {tuple(C.shape)} "
                         f"and {tuple(T.shape)}.")
    return _spans_moments(Moments.of(C[None]), T, n_spans, rank)[0]


def textspan_moments(moments: Moments, text_embeddings, n_spans: int = 5, rank: int = 80,
                     chunk: int = 8) -> list[SpanResult]:
    """TEXTSPAN for K heads from their moments (``Moments``) -> K results, in head order; ``chunk``
    heads share one batched eigh."""
    T = _as_tensor(text_embeddings)
    if T.ndim != 2 or T.shape[1] != moments.shift.shape[1]:
        raise ValueError(f"Expected texts [M, {moments.shift.shape[1]}], got {tuple(T.shape)}.")
    K = moments.shift.shape[0]
    return [r for s in range(0, K, chunk) for r in _spans_moments(moments.heads(s, s + chunk), T, n_spans, rank)]


def textspan_heads(heads, text_embeddings, n_spans: int = 5, rank: int = 80,
                   chunk: int = 8) -> list[list[SpanResult]]:
    """TEXTSPAN for every head at once: heads [N, L, H, d] -> results[layer][head]."""
    X, T = _as_tensor(heads), _as_tensor(text_embeddings)
    if X.ndim != 4 or T.ndim != 2 or X.shape[-1] != T.shape[1]:
        raise ValueError(f"Expected heads [N, L, H, d] and texts [M, d], got {tuple(X.shape)} "
                         f"and {tuple(T.shape)}.")
    N, L, H, d = X.shape
    out = textspan_moments(Moments.of(X.reshape(N, L * H, d).transpose(0, 1)), T, n_spans, rank, chunk)
    return [out[l * H:(l + 1) * H] for l in range(L)]


@torch.no_grad()
def span_directions(contributions, text_embeddings, indices: list[int], rank: int = 80) -> torch.Tensor:
    """The direction each chosen span had when TEXTSPAN picked it: the text projected onto the head's
    top-``rank`` right singular directions, minus its components along the spans picked before it (the
    removal step, i.e. Gram-Schmidt without normalising). # [S, d]

    ``contributions @ direction`` (centred over images) is what that span explains in each image, so
    it ranks the images a span describes; two spans with similar texts get different rankings once
    the earlier span's direction is removed."""
    C = _as_tensor(contributions).double()                                  # [N, d]
    T = _as_tensor(text_embeddings).double()[list(indices)]                 # [S, d]
    r = max(1, min(rank, C.shape[0], C.shape[1]))
    _, vecs = torch.linalg.eigh(C.T @ C / C.shape[0])                       # uncentred, as TEXTSPAN
    V = vecs[:, -r:]                                                        # [d, r]
    dirs = T @ V @ V.T                                                      # [S, d] in the span
    out = []
    for t in dirs:
        for u in out:
            t = t - (t @ u) / (u @ u).clamp_min(1e-30) * u
        out.append(t)
    return torch.stack(out) if out else torch.zeros(0, C.shape[1], dtype=torch.float64)


def textspan_reference(contributions, text_embeddings, n_spans: int = 5, rank: int = 80,
                       dtype: torch.dtype = torch.float64) -> SpanResult:
    """The direct algorithm (as in Gandelsman et al.'s code): SVD of C, N x M projections. Slow."""
    C = _as_tensor(contributions).to(dtype)
    T = _as_tensor(text_embeddings).to(dtype)
    _, _, vh = torch.linalg.svd(C, full_matrices=False)
    vh = vh[:rank]                                                          # [r, d]
    T = T @ vh.T @ vh                                                       # project onto the span
    C = C - C.mean(0, keepdim=True)
    total = (C * C).sum() / C.shape[0]
    picked = torch.zeros(T.shape[0], dtype=torch.bool)
    idx, var = [], []
    for _ in range(min(n_spans, T.shape[0], vh.shape[0])):
        std = (C @ T.T).std(0).masked_fill(picked, -torch.inf)             # [M]
        b = int(std.argmax())
        t = T[b]
        tn = t @ t
        coef = C @ t / tn                                                   # [N]
        idx.append(b)
        var.append(float((coef * coef).sum() * tn / C.shape[0]))
        picked[b] = True
        C = C - coef[:, None] * t[None]
        T = T - (T @ t / tn)[:, None] * t[None]
    return SpanResult(idx, var, sum(var) / float(total), float(total))

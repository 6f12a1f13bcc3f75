"""Speed of the fast TEXTSPAN path vs the direct algorithm (SVD of N x d, N x M projections).

    .venv/bin/python bench/textspan.py                 # N=10000, d=512, M=3000, 5 spans, rank 80, 48 heads
    .venv/bin/python bench/textspan.py --n 2000 --m 500 --heads 4 --threads 1 2

Both run side by side on the same random inputs (float32, like the original code); each timing is the
best of --repeats runs, alternating. Prints both times, the ratio, whether the spans are identical (exit
1 if not) and the machine's load average before and after. --heads K (default 48: the last 4 layers of a
ViT-B) also times textspan_heads, the app's path (streamed moments, then TEXTSPAN), over K heads against
K direct calls, once (the direct calls take minutes); 0 skips it. --threads runs everything at each
torch thread count given (default: torch's default).
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from ccs_core.textspan import textspan, textspan_heads, textspan_reference


def best_times(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Best-of-repeats wall time of each function, run alternately so both see the same machine load."""
    best, out = {k: float("inf") for k in fns}, {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            out[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="images")
    ap.add_argument("--d", type=int, default=512, help="embedding width")
    ap.add_argument("--m", type=int, default=3000, help="texts in the pool")
    ap.add_argument("--spans", type=int, default=5)
    ap.add_argument("--rank", type=int, default=80)
    ap.add_argument("--heads", type=int, default=48, help="also time K heads batched (0: skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, nargs="+", default=[0], help="torch thread counts (0: torch's default)")
    a = ap.parse_args(argv)
    same, default_threads = True, torch.get_num_threads()
    for threads in a.threads:
        torch.set_num_threads(threads or default_threads)
        same &= run(a)
    return 0 if same else 1


def run(a) -> bool:
    g = torch.Generator().manual_seed(a.seed)
    # low-rank-ish contributions with a mean offset, like a real head; unit-norm texts
    K = max(1, a.heads)
    mix = torch.randn(K, a.d, a.d, generator=g) * torch.logspace(0, -2, a.d)[:, None]
    C = torch.randn(K, a.n, a.d, generator=g) @ mix + torch.randn(K, 1, a.d, generator=g)   # [K, N, d]
    T = torch.nn.functional.normalize(torch.randn(a.m, a.d, generator=g), dim=-1)          # [M, d]
    print(f"torch threads: {torch.get_num_threads()}; N={a.n} d={a.d} M={a.m} spans={a.spans} "
          f"rank={a.rank}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    t, r = best_times({"fast": lambda: textspan(C[0], T, a.spans, a.rank),
                       "direct": lambda: textspan_reference(C[0], T, a.spans, a.rank, dtype=torch.float32)},
                      a.repeats)
    (t_fast, fast), (t_ref, ref) = (t["fast"], r["fast"]), (t["direct"], r["direct"])
    same = fast.indices == ref.indices
    print(f"one head:  fast {t_fast * 1e3:8.1f} ms   direct {t_ref * 1e3:8.1f} ms   "
          f"speed-up {t_ref / t_fast:6.1f}x   identical spans: {same}")
    if a.heads:
        heads = C.transpose(0, 1).reshape(a.n, 1, K, a.d)                                 # [N, 1, K, d]
        t, r = best_times({"fast": lambda: textspan_heads(heads, T, a.spans, a.rank),
                           "direct": lambda: [textspan_reference(C[k], T, a.spans, a.rank,
                                                                 dtype=torch.float32) for k in range(K)]}, 1)
        (t_fast, fast_k), (t_ref, ref_k) = (t["fast"], r["fast"]), (t["direct"], r["direct"])
        same_k = [f.indices for f in fast_k[0]] == [r.indices for r in ref_k]
        print(f"{K} heads:  fast {t_fast * 1e3:8.1f} ms   direct {t_ref * 1e3:8.1f} ms   "
              f"speed-up {t_ref / t_fast:6.1f}x   identical spans: {same_k}   "
              f"(target >= 20x: {'met' if t_ref / t_fast >= 20 else 'MISSED'})")
        same = same and same_k
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return same


if __name__ == "__main__":
    raise SystemExit(main())

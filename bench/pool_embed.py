"""Speed of embedding the text pool: each batch cut to its longest text vs CLIP's full 77-token context.

    .venv/bin/python bench/pool_embed.py                    # random-init ViT-B-32, 512 texts of the bundled pool
    .venv/bin/python bench/pool_embed.py --n 0 --threads 2  # the whole bundled pool (the app's workload)
    .venv/bin/python bench/pool_embed.py --model toy --pool toy

Both paths run side by side in one process on the same texts (alternating, best of --repeats), through
the app's own ``LoadedModel.encode_texts`` (cut) and open_clip's ``encode_text`` on full-context batches
(the previous code path). Prints both times, the ratio, the largest difference between the embeddings
(exit 1 if over 1e-4), the threads and the machine's load average beside it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ccs_core.analysis import resolve_pool
from ccs_core.models import load_model


def full_context(loaded, texts: list[str], batch_size: int) -> torch.Tensor:
    """The previous path: every batch at the tokenizer's full context length. # [M, d]"""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            out.append(loaded.model.encode_text(loaded.tokenizer(texts[i:i + batch_size]), normalize=True))
    return torch.cat(out).float()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pool", default="bundled", help="bundled, toy or a .txt path")
    ap.add_argument("--n", type=int, default=512, help="texts from the pool (0 = all)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (the app uses 128)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    loaded = load_model(a.model)
    pool = resolve_pool(a.pool, loaded.name)
    texts = list(pool.texts[: a.n or None])
    best = {"full": float("inf"), "cut": float("inf")}
    out = {}
    for _ in range(a.repeats):
        for name, fn in (("full", lambda: full_context(loaded, texts, a.batch)),
                         ("cut", lambda: loaded.encode_texts(texts, batch_size=a.batch))):
            t = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    diff = float((out["full"] - out["cut"]).abs().max())
    lengths = (loaded.tokenizer(texts) != 0).sum(1)
    load = os.getloadavg()
    print(f"model {a.model} (random init)  pool {pool.name}: {len(texts)} texts, tokens per text "
          f"max {int(lengths.max())} / mean {float(lengths.float().mean()):.1f} of {loaded.tokenizer(['x']).shape[1]}")
    print(f"threads {a.threads}  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    print(f"full context   {best['full']:8.2f} s  ({len(texts) / best['full']:7.0f} texts/s)")
    print(f"cut to longest {best['cut']:8.2f} s  ({len(texts) / best['cut']:7.0f} texts/s)")
    print(f"speed-up {best['full'] / best['cut']:.1f}x   max |difference| {diff:.2e}")
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

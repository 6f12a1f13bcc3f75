"""Peak memory of an image set's decomposition and TEXTSPAN vs the number of images; the preview's time.

    .venv/bin/python bench/memory.py                         # ViT-B-32 shapes, N = 2000, 10000, 50000
    .venv/bin/python bench/memory.py --arch ViT-L-14 --n 50000
    .venv/bin/python bench/memory.py --n 2000 10000 --heads-pruned 12

The app's own code path (``decompose_image_set`` into a fresh cache, ``textspan_moments`` over a
3000-text pool, then, as a second process would, ``decompose_image_set`` from the cache and
``app_lib.experiments.preview``) on synthetic contributions of the architecture's shapes: the model's
forward pass is replaced by random terms, since at 50k images a CPU forward of ViT-B-32 takes hours and
its memory does not grow with N. Each N runs in its own fresh process, which samples its memory every
20 ms: peak anonymous RSS (what the process holds; memory-mapped cache pages are the kernel's page
cache, shared and reclaimable) and peak total RSS (VmHWM, including mapped pages it read). Prints the
growth from the smallest to the largest N against the target (< 500 MiB for ViT-B-32; ViT-L-14 at 50k
within 8 GiB) and the preview's milliseconds per configuration (target < 50 ms at 10k images).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ARCHS = {"ViT-B-32": (12, 12, 512), "ViT-B-16": (12, 12, 512), "ViT-L-14": (24, 16, 768)}  # layers, heads, E


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Peak(threading.Thread):
    """Samples RssAnon and VmRSS every 20 ms; ``anon``/``rss``: the peaks in MiB."""

    def __init__(self):
        super().__init__(daemon=True)
        self.anon = self.rss = 0.0
        self.stop = False

    def run(self):
        while not self.stop:
            self.anon = max(self.anon, _kib("RssAnon") / 1024)
            self.rss = max(self.rss, _kib("VmRSS") / 1024)
            time.sleep(0.02)


def child(a) -> None:
    import numpy as np
    import torch

    import ccs_core.decompose as dec_mod
    from app_lib import experiments
    from ccs_core.strategies import PruneConfig
    from ccs_core.store import Store
    from ccs_core.textspan import textspan_moments
    from ccs_core.zeroshot import ZeroShotTask

    n_layers_model, H, E = ARCHS[a.arch]
    L = a.layers
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(L, H, E, generator=g) + 3                              # a per-head offset and scale

    def fake_decompose(loaded, batch, n_layers=4, **_):
        b = batch.shape[0]
        heads = torch.randn(b, L, H, E, generator=g) * mix.abs() + mix
        return dec_mod.Decomposition(heads=heads, rest=torch.randn(b, E, generator=g),
                                     layers=list(range(n_layers_model - L, n_layers_model)))

    dec_mod.decompose = fake_decompose

    class Images:
        name, key, labels = f"synthetic-{a.n}", f"synthetic-{a.n}", [i % 10 for i in range(a.n)]

        def __len__(self):
            return a.n

        def batches(self, preprocess, batch_size):
            for s in range(0, a.n, batch_size):
                yield torch.zeros(min(batch_size, a.n - s), 1)

    texts = torch.nn.functional.normalize(torch.randn(3000, E, generator=g), dim=-1)
    loaded = SimpleNamespace(key=f"synthetic-{a.arch}", name=a.arch, preprocess=None,
                             spec=SimpleNamespace(n_layers=n_layers_model, n_heads=H, embed_dim=E),
                             model=SimpleNamespace(logit_scale=torch.tensor(4.6052)),
                             encode_texts=lambda prompts: torch.randn(len(prompts), E, generator=g))
    store = Store(a.cache)
    Path("/proc/self/clear_refs").write_text("5")
    base_anon, base_rss = _kib("RssAnon") / 1024, _kib("VmRSS") / 1024
    peak = Peak()
    peak.start()
    t0 = time.perf_counter()
    d = dec_mod.decompose_image_set(loaded, Images(), n_layers=L, batch_size=a.batch, store=store)
    t_dec = time.perf_counter() - t0
    t0 = time.perf_counter()
    spans = textspan_moments(d.moments, texts, n_spans=5, rank=80)
    t_spans = time.perf_counter() - t0
    del d
    # the app's Prune page in a later session: the decomposition from the cache, then its preview
    task = ZeroShotTask("synthetic", [f"class {i}" for i in range(10)], ["a photo of a {}."])
    heads = [f"L{n_layers_model - L + i // H}.H{i % H}" for i in range(0, L * H, max(1, L * H // a.heads_pruned))]
    cfgs = [PruneConfig("original"), PruneConfig("high", heads=heads[:a.heads_pruned])]
    experiments.preview(loaded, Images(), task, cfgs, L, store=store)  # first load: page cache warm-up
    t0 = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        rows = experiments.preview(loaded, Images(), task, cfgs, L, store=store)
    t_prev = (time.perf_counter() - t0) / (rounds * len(cfgs))
    peak.stop = True
    peak.join()
    disk = sum(f.stat().st_size for f in Path(a.cache).rglob("*.npy"))
    print(json.dumps({"n": a.n, "anon_mib": peak.anon - base_anon, "rss_mib": max(peak.rss, _kib("VmHWM") / 1024) - base_rss,
                      "decompose_s": t_dec, "textspan_s": t_spans, "preview_ms": t_prev * 1e3,
                      "disk_mib": disk / 2**20, "heads": len(spans), "rows": len(rows),
                      "held_whole_mib": a.n * L * H * E * 4 / 2**20}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-32", choices=sorted(ARCHS))
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 10000, 50000])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--heads-pruned", type=int, default=10, help="heads pruned in the previewed configuration")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        a.n = a.n[0]
        child(a)
        return 0
    print(f"{a.arch}: last {a.layers} layers; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"torch threads: default")
    print(f"{'images':>8} {'anon MiB':>9} {'RSS MiB':>8} {'held whole (v1) MiB':>20} {'disk MiB':>9} "
          f"{'decompose s':>12} {'TEXTSPAN s':>11} {'preview ms/config':>18}")
    results = []
    for n in a.n:
        with tempfile.TemporaryDirectory(prefix="ccs-memory-") as cache:
            out = subprocess.run([sys.executable, __file__, "--child", "--arch", a.arch, "--n", str(n), "--layers",
                                  str(a.layers), "--batch", str(a.batch), "--heads-pruned", str(a.heads_pruned),
                                  "--cache", cache], capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parent.parent)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"{r['n']:>8} {r['anon_mib']:>9.0f} {r['rss_mib']:>8.0f} {r['held_whole_mib']:>20.0f} "
              f"{r['disk_mib']:>9.0f} {r['decompose_s']:>12.1f} {r['textspan_s']:>11.1f} {r['preview_ms']:>18.1f}")
    ok = True
    if len(results) > 1:
        growth = results[-1]["anon_mib"] - results[0]["anon_mib"]
        met = growth < 500
        ok &= met
        print(f"anonymous memory growth {results[0]['n']} -> {results[-1]['n']} images: {growth:.0f} MiB "
              f"(target < 500 MiB: {'met' if met else 'MISSED'})")
    if a.arch == "ViT-L-14":
        big = max(results, key=lambda r: r["n"])
        met = big["anon_mib"] < 8192
        print(f"ViT-L-14 at {big['n']} images: {big['anon_mib']:.0f} MiB (target within 8 GiB: "
              f"{'met' if met else 'MISSED'})")
    at10k = [r for r in results if r["n"] == 10000]
    if at10k:
        met = at10k[0]["preview_ms"] < 50
        print(f"preview at 10k images: {at10k[0]['preview_ms']:.1f} ms per configuration (target < 50 ms: "
              f"{'met' if met else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())

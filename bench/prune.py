"""Residual-cache speed-up for pruning, measured side by side in one run.

Random-init ViT-B-32 (12 layers), last 4 layers prunable: a pruning configuration evaluated from the
cached residual stream entering layer 8 versus a full forward. Also: the cache's memory per 1,000
images, and the instant direct-effect preview over 10,000 images.

    .venv/bin/python bench/prune.py [--batch 32] [--repeats 3] [--prunable 4] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


from ccs_core import prune
from ccs_core.heads import HeadId
from ccs_core.models import load_model


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prunable", type=int, default=4, help="last N layers may be pruned")
    ap.add_argument("--preview-images", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (steadier on a shared machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(args.model)
    spec = loaded.spec
    first = spec.n_layers - args.prunable
    x = torch.randn(args.batch, 3, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0))
    heads = [HeadId(first, 1), HeadId(first + 1, 3), HeadId(spec.n_layers - 1, 5)]
    print(f"{args.model} random init: {spec.n_layers} layers x {spec.n_heads} heads, last {args.prunable} "
          f"prunable (cache enters layer {first}); batch {args.batch}, {args.repeats} repeats, "
          f"{torch.get_num_threads()} threads")

    resid = prune.residual_stream(loaded, x, first)  # [B, T, W], built once per image set
    full, pruned_full, cached = [], [], []
    with torch.no_grad():
        loaded.model.encode_image(x)  # warm-up
        prune.features_from_residual(loaded, resid, first, heads)
        for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
            full.append(timed(lambda: loaded.model.encode_image(x)))
            pruned_full.append(timed(lambda: prune.pruned_image_features(loaded, x, heads)))
            cached.append(timed(lambda: prune.features_from_residual(loaded, resid, first, heads)))
    f, pf, c = (statistics.median(v) for v in (full, pruned_full, cached))
    print(f"full forward (open_clip encode_image):    {1000 * f:8.1f} ms / batch")
    print(f"full pruned forward (from pixels):        {1000 * pf:8.1f} ms / batch")
    print(f"pruned from residual cache (layers {first}..{spec.n_layers - 1}): {1000 * c:8.1f} ms / batch")
    print(f"speed-up per configuration: {f / c:.2f}x vs encode_image, {pf / c:.2f}x vs pruned full forward "
          f"(limit {spec.n_layers / args.prunable:.1f}x; target >= 2.5x)")
    sets = [[]] + [[HeadId(first + (i % args.prunable), (3 * i) % spec.n_heads)] for i in range(7)]
    with torch.no_grad():
        one_pass = timed(lambda: prune.configs_features(loaded, [x], sets))
    print(f"{len(sets)} configurations (original + 7) in one pass, residual included: {one_pass:.2f} s vs "
          f"{len(sets)} full forwards {len(sets) * f:.2f} s -> {len(sets) * f / one_pass:.2f}x")
    cache = prune.ResidualCache(first, resid)
    print(f"residual cache: {cache.bytes_per_1000() / 2**20:.1f} MiB per 1,000 images "
          f"({tuple(resid.shape[1:])} float32 per image)")

    n, d = args.preview_images, spec.embed_dim
    layers = list(range(first, spec.n_layers))
    pv = prune.DirectEffectPreview(torch.randn(len(layers) * spec.n_heads, n, d), torch.randn(n, d), layers,
                                   spec.n_heads)
    pv.features(heads)
    t = statistics.median(timed(lambda: pv.features(heads)) for _ in range(5))
    print(f"direct-effect preview ({len(heads)} heads, {n} images): {1000 * t:.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()

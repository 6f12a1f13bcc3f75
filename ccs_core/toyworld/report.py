"""Head specialisation and ablation on the toy model: ``python -m ccs_core.toyworld.report``.

1. TEXTSPAN over the toy pool on the last layers; a span is about factor f when f is among the
   factors it mentions (``span_factors``, the exact toy judge). A head is *specialised* in f when at
   least ``--min-hits`` of its spans are about f and no other factor scores as high. The same count on a
   random-initialised model of the same config is the control.
2. Zero-ablation (on a deep copy whose ``out_proj`` head columns are zeroed; the loaded model is never
   touched) of one factor's specialised heads vs. the same number of random heads of the analysed
   layers (excluding that factor's heads), mean of ``--seeds`` seeds: drop of that factor's zero-shot
   accuracy and of its mean true-class probability.

Three pools are measured (``toyworld.pool``): "single" (every text about one factor, or a
distractor), "pairs" (+ every two-factor caption; the app's toy pool and the default here) and "full"
(+ captions naming all six factors, which count for every factor, so random-init heads that pick them
look specialised). ``--pool`` picks the one whose heads are ablated and checked against the targets.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter

import numpy as np
import torch

from ..heads import HeadId
from .pool import POOL_KINDS, span_factors, toy_pool
from .train import evaluate, render_batch
from .world import FACTORS, split_samples


def head_factor_counts(spans, texts: list[str]) -> dict[HeadId, Counter]:
    """For each head, how many of its spans are about each factor. spans[layer_i][head] -> SpanResult"""
    return {HeadId(layer, h): Counter(f for i in res.indices for f in span_factors(texts[i]))
            for layer, row in spans for h, res in enumerate(row)}


def specialised(counts: dict[HeadId, Counter], min_hits: int = 4) -> dict[str, list[HeadId]]:
    """factor -> heads with >= min_hits spans about it and no other factor as frequent."""
    out: dict[str, list[HeadId]] = {f: [] for f in FACTORS}
    for head, c in counts.items():
        top = c.most_common(2)
        if top and top[0][1] >= min_hits and (len(top) == 1 or top[1][1] < top[0][1]):
            out[top[0][0]].append(head)
    return out


def pool_spans(loaded, dec, texts: list[str], n_spans: int = 5):
    """[(layer, [SpanResult per head])] for a decomposition ``dec`` and a list of texts."""
    from ..textspan import textspan_heads

    return list(zip(dec.layers, textspan_heads(dec.heads, loaded.encode_texts(texts), n_spans=n_spans)))


def ablated_copy(model: torch.nn.Module, heads: list[HeadId]) -> torch.nn.Module:
    """A deep copy of the model with the given image-tower heads' out_proj columns zeroed."""
    twin = copy.deepcopy(model)
    blocks = twin.visual.transformer.resblocks
    with torch.no_grad():
        for h in heads:
            attn = blocks[h.layer].attn
            dh = attn.embed_dim // attn.num_heads
            attn.out_proj.weight[:, h.head * dh:(h.head + 1) * dh] = 0
    return twin.eval()


def ablation(loaded, samples, images: np.ndarray, spec_heads: dict[str, list[HeadId]],
             layers: list[int], seeds: int = 5) -> dict[str, dict]:
    """Drops in accuracy / true-class probability: factor heads vs. random heads (same count)."""
    base = evaluate(loaded.model, loaded.tokenizer, samples, images)
    out = {}
    for f, heads in spec_heads.items():
        if not heads:
            continue
        candidates = [HeadId(l, h) for l in layers for h in range(loaded.spec.n_heads)
                      if HeadId(l, h) not in heads]
        own = evaluate(ablated_copy(loaded.model, heads), loaded.tokenizer, samples, images)[f]
        row = {"heads": [str(h) for h in heads], "base": base[f], "ablated": own}
        if len(candidates) < len(heads):  # no equal-sized random set outside the factor's heads
            for metric in ("accuracy", "true_prob"):
                row[f"drop_{metric}"] = round(base[f][metric] - own[metric], 4)
                row[f"random_drop_{metric}"] = row[f"ratio_{metric}"] = float("nan")
            out[f] = row
            continue
        rand = []
        for seed in range(seeds):
            pick = np.random.default_rng(seed).choice(len(candidates), len(heads), replace=False)
            m = ablated_copy(loaded.model, [candidates[i] for i in pick])
            rand.append(evaluate(m, loaded.tokenizer, samples, images)[f])
        for metric in ("accuracy", "true_prob"):
            d_own = base[f][metric] - own[metric]
            d_rand = float(np.mean([base[f][metric] - r[metric] for r in rand]))
            row[f"drop_{metric}"] = round(d_own, 4)
            row[f"random_drop_{metric}"] = round(d_rand, 4)
            row[f"ratio_{metric}"] = (round(d_own / d_rand, 2) if d_rand > 1e-9 else
                                      float("inf") if d_own > 1e-9 else float("nan"))
        out[f] = row
    return out


def targets(spec: dict[str, list], controls: list[dict[str, int]], abl: dict[str, dict],
            min_heads: int = 2, min_factors: int = 3, min_ratio: float = 3.0,
            control_max: float = 1.0) -> dict:
    """The toy model's head-specialisation targets, per factor: >= min_heads specialised heads;
    random-init controls show almost none for that factor (mean <= control_max heads; with no controls
    this is never met); ablating its heads drops its accuracy or true-class probability
    >= min_ratio x the random-head drop (and by more than 1e-4). All met when >= min_factors factors
    meet all three."""
    rows = {}
    for f, heads in spec.items():
        if len(heads) < min_heads:
            continue
        ctrl = float(np.mean([c.get(f, 0) for c in controls])) if controls else float("inf")
        r = abl.get(f, {})
        ratio_ok = any(r.get(f"drop_{m}", 0) > 1e-4 and r.get(f"drop_{m}", 0) >= min_ratio * max(
            r.get(f"random_drop_{m}", 0), 0.0) for m in ("accuracy", "true_prob"))
        rows[f] = {"heads": len(heads), "control_mean": round(ctrl, 2), "controls_ok": ctrl <= control_max,
                   "ablation_ok": ratio_ok, "met": ctrl <= control_max and ratio_ok}
    met = [f for f, r in rows.items() if r["met"]]
    return {"factors": rows, "factors_met": met, "all_met": len(met) >= min_factors}


def bias_check(loaded, n: int = 400, k: int = 50) -> dict:
    """MaxSkew@k over backgrounds of the shape prompts, on the group-balanced bias set."""
    from ..bias import max_skew, prompt_embeddings
    from .tasks import bias_samples
    from .model import images_to_tensor
    from .world import GROUP, NEUTRAL, zero_shot_prompts

    samples = bias_samples(n, 0)
    feats = loaded.encode_images(images_to_tensor(render_batch(samples)))  # [n, d]
    classnames, templates = zero_shot_prompts(NEUTRAL)
    res = max_skew(feats, prompt_embeddings(loaded, classnames, templates),
                   [s.value(GROUP) for s in samples], k, attribute=GROUP)
    return {"k": k, "n": n, "per_prompt": dict(zip(classnames, [round(v, 3) for v in res.per_prompt])),
            "worst_group": dict(zip(classnames, res.worst_group)), "mean": round(res.mean, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="held-out (test split) images")
    p.add_argument("--layers", type=int, default=4, help="analyse the last N layers")
    p.add_argument("--min-hits", type=int, default=4, help="spans (of 5) about one factor")
    p.add_argument("--seeds", type=int, default=5, help="random-head seeds for the ablation")
    p.add_argument("--controls", type=int, default=1, help="random-init control models")
    p.add_argument("--json", type=str, default="", help="also write the numbers to this file")
    p.add_argument("--pool", choices=list(POOL_KINDS), default="pairs",
                   help="pool whose specialised heads are ablated and checked (all three are reported)")
    p.add_argument("--checkpoint", type=str, default="", help="another toy checkpoint (default: bundled)")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    from ..decompose import decompose
    from ..models import from_model, load_model
    from .model import build_toy, images_to_tensor, load_toy

    if a.checkpoint:
        model, pre, tok, key = load_toy(a.checkpoint)
        loaded = from_model(model, pre, tok, name="toy", key=key)
    else:
        loaded = load_model("toy")
    pools = {k: toy_pool(k).texts for k in POOL_KINDS}
    samples = split_samples("test", a.n)
    images = render_batch(samples)
    x = images_to_tensor(images)
    dec = decompose(loaded, x, n_layers=a.layers)
    spans = {k: pool_spans(loaded, dec, texts) for k, texts in pools.items()}
    counts = head_factor_counts(spans[a.pool], pools[a.pool])
    print(f"TEXTSPAN on the last {a.layers} layers, {a.n} test images, "
          f"pool '{a.pool}' of {len(pools[a.pool])} texts")
    for layer, row in spans[a.pool]:
        for h, res in enumerate(row):
            c = counts[HeadId(layer, h)].most_common(1)
            top = f"{c[0][0]} {c[0][1]}/5" if c else "none"
            print(f"  L{layer}.H{h}: {top:16s} | " + " | ".join(pools[a.pool][i] for i in res.indices))
    specs = {k: specialised(head_factor_counts(spans[k], pools[k]), a.min_hits) for k in POOL_KINDS}
    spec = specs[a.pool]
    result = {"pool": a.pool, "layers": a.layers, "n_images": a.n,
              "specialised": {k: {f: [str(h) for h in hs] for f, hs in sp.items()} for k, sp in specs.items()},
              "controls": {k: [] for k in POOL_KINDS}}
    for c in range(a.controls):
        torch.manual_seed(c)
        model, pre, tok = build_toy()
        rnd = from_model(model, pre, tok, name="toy-random", key=f"toy-random-{c}")
        rdec = decompose(rnd, x, n_layers=a.layers)
        for k, texts in pools.items():
            ctrl = specialised(head_factor_counts(pool_spans(rnd, rdec, texts), texts), a.min_hits)
            result["controls"][k].append({f: len(hs) for f, hs in ctrl.items()})
    for k in POOL_KINDS:
        ctrl = [sum(c.values()) for c in result["controls"][k]]
        print(f"pool '{k}' ({len(pools[k])} texts): specialised heads per factor "
              f"{ {f: len(hs) for f, hs in specs[k].items()} }; random-init controls (all factors): {ctrl}")
    layers = [layer for layer, _ in spans[a.pool]]
    abl = ablation(loaded, samples, images, spec, layers, a.seeds)
    result["ablation"] = abl
    print(f"zero-ablation of a factor's heads (pool '{a.pool}') vs. as many random heads "
          f"(mean of {a.seeds} seeds):")
    for f, r in abl.items():
        print(f"  {f:10s} k={len(r['heads'])}  acc {r['base']['accuracy']:.3f} -> "
              f"{r['ablated']['accuracy']:.3f} (drop {r['drop_accuracy']:.3f} vs random "
              f"{r['random_drop_accuracy']:.3f}, x{r['ratio_accuracy']})  true-prob drop "
              f"{r['drop_true_prob']:.3f} vs {r['random_drop_true_prob']:.3f} (x{r['ratio_true_prob']})")
    result["targets"] = t = targets(spec, result["controls"][a.pool], abl)
    print(f"targets (pool '{a.pool}'; per factor: >= 2 heads, random-init controls <= 1 head on average, "
          f"ablation >= 3x random):")
    for f, r in t["factors"].items():
        print(f"  {f:10s} heads {r['heads']:2d}  controls {r['control_mean']:.1f} "
              f"({'ok' if r['controls_ok'] else 'too many'})  ablation {'ok' if r['ablation_ok'] else '< 3x'}"
              f"  -> {'met' if r['met'] else 'not met'}")
    print(f"factors meeting all: {t['factors_met']} (need 3: {'met' if t['all_met'] else 'NOT met'})")
    result["bias"] = bias_check(loaded)
    print(f"MaxSkew@{result['bias']['k']} over backgrounds of shape prompts (balanced set): "
          f"{result['bias']['per_prompt']} worst groups {result['bias']['worst_group']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MaxSkew@K of neutral prompts over a group attribute, for original and pruned image towers.

As the paper's authors compute it (../shared/paper/README.md): for each prompt (e.g. an occupation;
text embedding = mean of its templates' normalised embeddings, renormalised) take the K images most
similar to it; for each group g present in those K, skew_g = ln((count_g / K) / share_g), share_g being
g's share of the whole image set; MaxSkew = max over g. The table value is the SUM over prompts (the
mean is reported too). Rows share the zero-shot table's columns (strategy, seed, n_heads, heads).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import DataError
from .evaluate import config_row, pruned_features, summarize
from .prune import PruneConfig
from .store import Store, cache_key

PAPER_DIR = Path(__file__).resolve().parent / "resources" / "paper"
PAPER_K = {("fairface", "race"): 900, ("fairface", "gender"): 900,
           ("socialcounterfactuals", "race"): 12, ("socialcounterfactuals", "gender"): 4}


def _lines(name: str) -> list[str]:
    return [s.strip() for s in (PAPER_DIR / name).read_text().splitlines() if s.strip()]


def occupations() -> list[str]:
    """The paper's 104 occupations (Table 5)."""
    return _lines("occupations.txt")


def bias_templates() -> list[str]:
    """The paper's 4 prompt templates (Table 6): "A {}", "A photo of {}", ..."""
    return _lines("bias_prompt_templates.txt")


def prompt_embeddings(loaded, prompts: Sequence[str], templates: Sequence[str],
                      store: Store | None = None) -> torch.Tensor:
    """Per prompt: mean of its templates' normalised text embeddings, renormalised. # [P, d]"""
    if not prompts or not templates:
        raise DataError("MaxSkew needs at least one prompt and one template.")
    key = cache_key(kind="bias_prompts", model=loaded.key, prompts=list(prompts), templates=list(templates))
    if store is not None and (hit := store.get_arrays("bias_prompts", key, {"emb": (len(prompts), None)})) is not None:
        return torch.from_numpy(hit["emb"])
    texts = [t.replace("{}", p) for p in prompts for t in templates]
    emb = loaded.encode_texts(texts).view(len(prompts), len(templates), -1).mean(1)  # [P, d]
    emb = emb / emb.norm(dim=-1, keepdim=True)
    if store is not None:
        store.set_arrays("bias_prompts", key, {"emb": emb.numpy()})
    return emb


@dataclass
class MaxSkewResult:
    attribute: str
    k: int
    per_prompt: list[float]      # MaxSkew@K of each prompt
    worst_group: list[str]       # the group that attains it
    total: float                 # sum over prompts (the paper's table value)
    mean: float                  # mean over prompts


def max_skew(image_feats: torch.Tensor, prompt_feats: torch.Tensor, groups: Sequence[str], k: int,
             attribute: str = "group") -> MaxSkewResult:
    """MaxSkew@K per prompt. image_feats [N, d] (any scale), prompt_feats [P, d] normalised, groups [N]."""
    n = len(image_feats)
    if len(groups) != n:
        raise DataError(f"{n} images but {len(groups)} group labels for {attribute!r}.")
    missing = sum(1 for g in groups if g is None or str(g).strip() == "")
    if missing:
        raise DataError(f"{missing} images have no {attribute!r} label; fill them in or remove those rows.")
    if not 1 <= k <= n:
        raise DataError(f"MaxSkew@K needs 1 <= K <= number of images ({n}); got K={k}.")
    if len(set(groups)) < 2:
        raise DataError(f"Every image has the same {attribute!r} ({groups[0]!r}): MaxSkew compares groups, so it "
                        "needs at least two (it would be 0 whatever the model does).")
    share = {g: c / n for g, c in Counter(groups).items()}
    feats = image_feats / image_feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    top = (prompt_feats @ feats.T).topk(k, dim=1).indices  # [P, K]
    per, worst = [], []
    for row in top.tolist():
        counts = Counter(groups[i] for i in row)
        skews = {g: math.log((c / k) / share[g]) for g, c in counts.items()}
        g = max(skews, key=skews.get)
        per.append(skews[g])
        worst.append(g)
    return MaxSkewResult(attribute, k, per, worst, float(sum(per)), float(sum(per) / len(per)))


def bias_eval(loaded, image_set, configs: Sequence[PruneConfig], attributes: "dict[str, Sequence[str]] | None" = None,
              k: "int | dict[str, int]" = 900, prompts: Sequence[str] | None = None,
              templates: Sequence[str] | None = None, mode: str = "zero", batch_size: int = 64,
              store: Store | None = None, progress: "Callable[[int, int], None] | None" = None,
              first_layer: int | None = None, keep_residual: bool = False) -> list[dict]:
    """MaxSkew rows (one per configuration x attribute). Defaults: the paper's occupations and templates,
    the image set's ``groups`` as the one attribute "group"."""
    if attributes is None:
        if image_set.groups is None:
            raise DataError(f"Image set {image_set.name!r} has no group labels: MaxSkew needs a group "
                            "attribute per image (e.g. a FairFace-layout CSV with race/gender columns).")
        attributes = {"group": image_set.groups}
    prompts = list(prompts) if prompts is not None else occupations()
    templates = list(templates) if templates is not None else bias_templates()
    text = prompt_embeddings(loaded, prompts, templates, store)
    feats = pruned_features(loaded, image_set, configs, mode, batch_size, store, progress, first_layer,
                            keep_residual)
    rows = []
    for c, f in zip(configs, feats):
        for attr, groups in attributes.items():
            kk = k[attr] if isinstance(k, dict) else k
            res = max_skew(f, text, list(groups), min(kk, len(f)), attr)
            rows.append(config_row(c, attribute=attr, k=res.k, maxskew_sum=res.total, maxskew_mean=res.mean,
                                   n_prompts=len(prompts), n_images=len(f), mode=mode, model=loaded.name))
    return rows


def summarize_bias(rows: Sequence[dict]) -> list[dict]:
    """Mean and std of MaxSkew per (strategy, attribute) over random seeds."""
    return summarize(rows, ("maxskew_sum", "maxskew_mean"), by=("strategy", "attribute"))


def tradeoff(acc_rows: Sequence[dict], bias_rows: Sequence[dict], attribute: str | None = None) -> list[dict]:
    """Join zero-shot rows and MaxSkew rows of the same configuration (strategy, seed, heads) for the
    accuracy-versus-bias plot. -> rows with accuracy, mean_true_prob, attribute, maxskew_sum, maxskew_mean"""
    acc = {(r["strategy"], r["seed"], tuple(r["heads"])): r for r in acc_rows}
    out = []
    for b in bias_rows:
        if attribute is not None and b["attribute"] != attribute:
            continue
        a = acc.get((b["strategy"], b["seed"], tuple(b["heads"])))
        if a is not None:
            out.append({"strategy": b["strategy"], "seed": b["seed"], "n_heads": b["n_heads"],
                        "heads": b["heads"], "accuracy": a["accuracy"], "mean_true_prob": a["mean_true_prob"],
                        "attribute": b["attribute"], "k": b["k"], "maxskew_sum": b["maxskew_sum"],
                        "maxskew_mean": b["maxskew_mean"]})
    return out

"""MaxSkew@K of neutral prompts over a group attribute, for original and pruned image towers.

As the paper's authors compute it (../shared/paper/README.md): for each prompt (e.g. an occupation;
text embedding = mean of its templates' normalised embeddings, renormalised) take the K images most
similar to it; for each group g present in those K, skew_g = ln((count_g / K) / share_g), share_g being
g's share of the whole image set; MaxSkew = max over g. The table value is the SUM over prompts (the
mean is reported too). Rows share the zero-shot table's columns (strategy, seed, n_heads, heads).

SocialCounterfactuals (Table 8, K = 12 for race and 4 for gender), as we read the protocol (the paper does
not spell it out): when the images name their occupation (the subject of their counterfactual set), each
occupation prompt's top-K is taken among that occupation's images only, and the group shares are those
images' (``occupation_pools``); so K = 12 of 6 races x 2 genders is one set's worth of images. A prompt
with no image of its occupation is skipped and counted (``n_prompts_skipped``). Without occupations every
prompt ranks all images, as on FairFace.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import DataError
from .evaluate import config_row, pruned_features, summarize
from .precision import DEFAULT, check_precision, key_part
from .prune import PruneConfig
from .store import Store, cache_key

PAPER_DIR = Path(__file__).resolve().parent / "resources" / "paper"
PAPER_K = {("fairface", "race"): 900, ("fairface", "gender"): 900,
           ("socialcounterfactuals", "race"): 12, ("socialcounterfactuals", "gender"): 4}
PAPER_K_SHARE = 900 / 10954  # the paper's K=900 over FairFace's 10,954 validation images
FAIRFACE_VAL = 10954


def _lines(name: str) -> list[str]:
    return [s.strip() for s in (PAPER_DIR / name).read_text().splitlines() if s.strip()]


def occupations() -> list[str]:
    """The paper's 104 occupations (Table 5)."""
    return _lines("occupations.txt")


def bias_templates() -> list[str]:
    """The paper's 4 prompt templates (Table 6): "A {}", "A photo of {}", ..."""
    return _lines("bias_prompt_templates.txt")


def prompt_embeddings(loaded, prompts: Sequence[str], templates: Sequence[str],
                      store: Store | None = None, precision: str = DEFAULT) -> torch.Tensor:
    """Per prompt: mean of its templates' normalised text embeddings, renormalised (the text tower
    under ``precision``; float32). # [P, d]"""
    if not prompts or not templates:
        raise DataError("MaxSkew needs at least one prompt and one template.")
    key = cache_key(kind="bias_prompts", model=loaded.key, prompts=list(prompts), templates=list(templates),
                    **key_part(precision))
    if store is not None and (hit := store.get_arrays("bias_prompts", key, {"emb": (len(prompts), None)})) is not None:
        return torch.from_numpy(hit["emb"])
    texts = [t.replace("{}", p) for p in prompts for t in templates]
    emb = loaded.encode_texts(texts, precision=precision).view(len(prompts), len(templates), -1).mean(1)  # [P, d]
    emb = emb / emb.norm(dim=-1, keepdim=True)
    if store is not None:
        store.set_arrays("bias_prompts", key, {"emb": emb.numpy()})
    return emb


@dataclass
class MaxSkewResult:
    attribute: str
    k: int
    per_prompt: list[float]      # MaxSkew@K of each prompt ranked (skipped ones left out)
    worst_group: list[str]       # the group that attains it
    total: float                 # sum over prompts (the paper's table value)
    mean: float                  # mean over prompts
    skipped: list[int] = field(default_factory=list)  # prompts with an empty pool (no image of their occupation)


def subject_key(name: str) -> str:
    """How an occupation is matched to a prompt: case, underscores and repeated spaces do not count."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def occupation_pools(prompts: Sequence[str], subjects: Sequence[str]) -> list[list[int]]:
    """Per prompt, the indices of the images whose subject (occupation) is that prompt. # P lists of indices
    into the N images; a prompt that no image names gets []"""
    by_subject: dict[str, list[int]] = {}
    for i, s in enumerate(subjects):
        by_subject.setdefault(subject_key(s), []).append(i)
    return [by_subject.get(subject_key(p), []) for p in prompts]


def default_k(kind: str, attribute: str, n_images: int) -> int:
    """The paper's K (``PAPER_K``): 900 on FairFace's full validation set, 12 for race and 4 for gender on
    SocialCounterfactuals; any other set or attribute (or a FairFace subset) gets the share 900 / 10,954 of
    ``n_images`` (the images a prompt ranks)."""
    k = PAPER_K.get((kind, attribute))
    if k is not None and (kind != "fairface" or n_images >= FAIRFACE_VAL):
        return k
    return max(1, round(PAPER_K_SHARE * n_images))


def check_pools(pools: list[list[int]], prompts: Sequence[str], subjects: Sequence[str], k: dict[str, int],
                where: str) -> list[str]:
    """The prompts with no image of their occupation (skipped); a DataError when no prompt has any, or
    when a K exceeds the images of an occupation that is ranked."""
    if not any(pools):
        names = sorted({str(s) for s in subjects})
        raise DataError(f"None of the {len(prompts)} prompts is an occupation of {where} (its occupations: "
                        f"{', '.join(repr(n) for n in names[:8])}{', ...' if len(names) > 8 else ''}): each prompt's "
                        "top-K is taken among the images of its occupation, so the 'occupation' values must match "
                        "the prompts (case-insensitive, e.g. 'doctor' for the prompt 'doctor'). Rename them, pass "
                        "--prompts with these occupations, or drop the column to rank all images for every prompt.")
    smallest = min((len(pool), prompt) for pool, prompt in zip(pools, prompts) if pool)
    for attr, kk in k.items():
        if isinstance(kk, int) and kk > smallest[0]:  # not a whole number: validate.top_k says so
            raise DataError(f"K = {kk} for {attr}, but the occupation {smallest[1]!r} has {smallest[0]} images in "
                            f"{where}, and each prompt's top-K is taken among its occupation's images: give --k "
                            f"{smallest[0]} or less, or include all of that occupation's counterfactual sets.")
    return [p for p, pool in zip(prompts, pools) if not pool]


def _skew(top: Sequence[int], pool_groups: Counter, pool_size: int, groups: Sequence[str]) -> tuple[float, str]:
    """(MaxSkew, the group attaining it) of the images ``top`` given the group counts of their pool."""
    counts = Counter(groups[i] for i in top)
    skews = {g: math.log((c / len(top)) / (pool_groups[g] / pool_size)) for g, c in counts.items()}
    g = max(skews, key=skews.get)
    return skews[g], g


def max_skew(image_feats: torch.Tensor, prompt_feats: torch.Tensor, groups: Sequence[str], k: int,
             attribute: str = "group", pools: "Sequence[Sequence[int]] | None" = None) -> MaxSkewResult:
    """MaxSkew@K per prompt. image_feats [N, d] (any scale), prompt_feats [P, d] normalised, groups [N].

    ``pools`` (optional, P lists of image indices): prompt p's top-K and the group shares are taken among
    its pool's images only; a prompt with an empty pool is skipped (listed in ``.skipped``)."""
    n = len(image_feats)
    if len(groups) != n:
        raise DataError(f"{n} images but {len(groups)} group labels for {attribute!r}.")
    missing = sum(1 for g in groups if g is None or str(g).strip() == "")
    if missing:
        raise DataError(f"{missing} images have no {attribute!r} label; fill them in or remove those rows.")
    if pools is None and not 1 <= k <= n:
        raise DataError(f"MaxSkew@K needs 1 <= K <= number of images ({n}); got K={k}.")
    if len(set(groups)) < 2:
        raise DataError(f"Every image has the same {attribute!r} ({groups[0]!r}): MaxSkew compares groups, so it "
                        "needs at least two (it would be 0 whatever the model does).")
    feats = image_feats / image_feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [N, d]
    sims = prompt_feats @ feats.T  # [P, N]
    if pools is None:
        everyone = Counter(groups)
        ranked = [(p, row, everyone, n) for p, row in enumerate(sims.topk(k, dim=1).indices.tolist())]  # rows [K]
    else:
        if len(pools) != len(prompt_feats):
            raise DataError(f"{len(prompt_feats)} prompts but {len(pools)} image pools for {attribute!r}.")
        ranked = []
        for p, pool in enumerate(pools):
            if not pool:
                continue
            if not 1 <= k <= len(pool):
                raise DataError(f"MaxSkew@K needs 1 <= K <= the images prompt {p} ranks ({len(pool)}); got K={k}.")
            idx = torch.as_tensor(list(pool), dtype=torch.long)  # [M]
            top = idx[sims[p, idx].topk(k).indices].tolist()      # [K] indices into the N images
            ranked.append((p, top, Counter(groups[i] for i in pool), len(pool)))
        if not ranked:
            raise DataError(f"No prompt has an image to rank for {attribute!r}: every image pool is empty.")
    per, worst = [], []
    for _, top, pool_groups, size in ranked:
        value, g = _skew(top, pool_groups, size, groups)
        per.append(value)
        worst.append(g)
    done = {p for p, *_ in ranked}
    skipped = [p for p in range(len(prompt_feats)) if p not in done]
    return MaxSkewResult(attribute, k, per, worst, float(sum(per)), float(sum(per) / len(per)), skipped)


def bias_eval(loaded, image_set, configs: Sequence[PruneConfig], attributes: "dict[str, Sequence[str]] | None" = None,
              k: "int | dict[str, int]" = 900, prompts: Sequence[str] | None = None,
              templates: Sequence[str] | None = None, mode: str = "zero", batch_size: int = 64,
              store: Store | None = None, progress: "Callable[[int, int], None] | None" = None,
              first_layer: int | None = None, keep_residual: bool = False,
              pools: "Sequence[Sequence[int]] | None" = None, precision: str = DEFAULT) -> list[dict]:
    """MaxSkew rows (one per configuration x attribute). Defaults: the paper's occupations and templates,
    the image set's ``groups`` as the one attribute "group". ``k``: one K, or one per attribute;
    ``pools``: per prompt the images it ranks (``max_skew``; default all); ``precision``: both towers'
    autocast (``precision.py``)."""
    check_precision(precision, loaded)
    if attributes is None:
        if image_set.groups is None:
            raise DataError(f"Image set {image_set.name!r} has no group labels: MaxSkew needs a group "
                            "attribute per image (e.g. a FairFace-layout CSV with race/gender columns).")
        attributes = {"group": image_set.groups}
    prompts = list(prompts) if prompts is not None else occupations()
    templates = list(templates) if templates is not None else bias_templates()
    text = prompt_embeddings(loaded, prompts, templates, store, precision)  # [P, d]
    feats = pruned_features(loaded, image_set, configs, mode, batch_size, store, progress, first_layer,
                            keep_residual, precision)
    rows = []
    for c, f in zip(configs, feats):
        for attr, groups in attributes.items():
            kk = k[attr] if isinstance(k, dict) else k
            res = max_skew(f, text, list(groups), kk if pools is not None else min(kk, len(f)), attr, pools)
            rows.append(config_row(c, attribute=attr, k=res.k, maxskew_sum=res.total, maxskew_mean=res.mean,
                                   n_prompts=len(res.per_prompt), n_prompts_skipped=len(res.skipped),
                                   n_images=len(f), mode=mode, model=loaded.name))
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

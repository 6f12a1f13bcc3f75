"""The toy CLIP's training losses (``train.py`` combines them; see its docstring for the recipe)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .. import tower
from .world import ALL_FACTORS, Sample, zero_shot_prompts


def multi_positive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor,
                        pos: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss with soft targets: uniform over every caption an image satisfies (and
    every image a caption fits), so an image must match *all* its captions, not just its easiest
    factor. pos[i, j]: image i satisfies caption j. img/txt # [B, d]"""
    sim = scale * img @ txt.T  # [B, B]
    target = pos.float()
    i2t = -(target * sim.log_softmax(1)).sum(1) / target.sum(1)
    t2i = -(target * sim.log_softmax(0)).sum(0) / target.sum(0)
    return (i2t.mean() + t2i.mean()) / 2


def factor_loss(model, tokenizer, img: torch.Tensor, samples: list[Sample],
                scale: torch.Tensor) -> torch.Tensor:
    """Zero-shot-style cross-entropy per factor, averaged: each image against every class prompt of
    each factor (one random template per step), so no factor is left unlearned. img # [B, d]"""
    losses = []
    for f in ALL_FACTORS:  # the unnamed property too: the model must learn it
        classnames, templates = zero_shot_prompts(f)
        tp = templates[int(torch.randint(len(templates), ()))]
        cls = model.encode_text(tokenizer([tp.format(c) for c in classnames]), normalize=True)  # [C, d]
        y = torch.tensor([s.index(f) for s in samples])
        losses.append(F.cross_entropy(scale * img @ cls.T, y))
    return torch.stack(losses).mean()


def head_group_norms(model: torch.nn.Module) -> torch.Tensor:
    """Per image-tower head: |W_V of the head| + |its out_proj columns| (Frobenius). # [layers, heads]

    The sum is a group-lasso penalty on each head's value-output path: it cannot be dodged by
    rescaling W_V against W_O, so the model pays for every head it keeps and switches off the rest
    (a capacity bottleneck: each factor lives in few heads)."""
    return tower.head_weight_norms(model)


def head_lasso(norms: torch.Tensor, head_l1: float, stem_l1: float = 0.0, analysed: int = 4) -> torch.Tensor:
    """Group lasso over every head, plus ``stem_l1`` more on the heads of the layers before the last
    ``analysed`` (the ones the app does not analyse). norms # [layers, heads] (``head_group_norms``)

    Tried for the recipe and not kept (``train --stem-l1``; measured in ``train.py``'s docstring)."""
    stem = max(0, norms.shape[0] - analysed)
    return head_l1 * norms.sum() + stem_l1 * norms[:stem].sum()


def uniformity_loss(model, tokenizer, texts: list[str], t: float = 2.0) -> torch.Tensor:
    """Wang & Isola's uniformity loss over texts about things the world never shows (distractors):
    log E exp(-t |z_i - z_j|^2). It spreads them over the embedding sphere, as CLIP's text tower
    knows many concepts beyond any one dataset, so a head whose variance no world text explains
    picks distractors, as a general pool's unrelated texts. z # [M, d]"""
    return uniformity(model.encode_text(tokenizer(texts), normalize=True), t)


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log E exp(-t |z_i - z_j|^2) over the distinct pairs of normalised embeddings z # [M, d]"""
    d2 = torch.cdist(z, z).pow(2)
    off = ~torch.eye(len(z), dtype=torch.bool)
    return torch.logsumexp(-t * d2[off], 0) - math.log(int(off.sum()))


def head_drop_image_features(model: torch.nn.Module, images: torch.Tensor, p: float) -> torch.Tensor:
    """Normalised image embeddings with each image-tower head's output dropped (zeroed before
    out_proj, as soft-pruning does) with probability ``p`` per image, survivors scaled by 1/(1-p).
    Trained this way, a factor is carried by several heads, so removing a random few costs little
    and removing all the heads of a concept costs that concept. images [B, 3, S, S] -> [B, E]

    Measured (``train --head-drop 0.3``, seeds 0 and 1): every head became redundant; 5-7 heads had
    CCS 5 and pruning any strategy's heads moved hard-task accuracy by under 0.006. At 0.1 (seed 0,
    with the class-spread loss and the lasso): the high-CCS heads cost 2.8 points on the hard tasks
    (10.2 without head drop), random heads 1.2 (5.7)."""
    loaded = SimpleNamespace(model=model, device=images.device)
    x = tower.embed(loaded, images)  # [B, T, W]
    for blk in tower.blocks(loaded):
        heads = tower.head_outputs(blk, x)  # [B, T, H, dh]
        keep = (torch.rand(heads.shape[0], 1, heads.shape[2], 1) >= p).to(heads.dtype) / (1 - p)
        x = tower.finish_block(blk, x, tower.out_proj(blk, heads * keep))
    return F.normalize(tower.pool_project(loaded, x), dim=-1)


def class_spread_loss(model, tokenizer, t: float = 2.0) -> torch.Tensor:
    """Uniformity among each factor's class prompts (one random template per step), averaged over
    factors. Without it a factor whose images the tower cannot yet tell apart can collapse: its class
    prompts are pulled to one point, the zero-shot loss then gives the image tower no gradient for it,
    and it is never learned (the bias control's backgrounds, measured: prompts at cosine 1.00)."""
    losses = []
    for f in ALL_FACTORS:
        classnames, templates = zero_shot_prompts(f)
        tp = templates[int(torch.randint(len(templates), ()))]
        z = model.encode_text(tokenizer([tp.format(c) for c in classnames]), normalize=True)  # [C, d]
        losses.append(uniformity(z, t))
    return torch.stack(losses).mean()

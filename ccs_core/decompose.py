"""Direct contribution of every attention head of the last K layers to the image embedding.

The CLS output of the image tower is a sum of terms (embedding + earlier layers, each head, each
out_proj bias, each MLP). ``ln_post`` is affine once its per-image std ``sigma`` is fixed from the real
forward pass, so each term ``c`` maps to ``gamma * (c - mean(c)) / sigma @ proj``; ``beta @ proj`` goes
to ``rest``. We centre each term by its *own* mean (the exact linear part of LayerNorm), not by the
even share ``mu / T`` of the total mean: the totals are identical, but a head's contribution then depends
on that head alone. Biases (out_proj, ln_post beta) are not a head's and go to ``rest``.

Head h of a layer contributes ``A[h, 0, :] @ V_h @ W_O[:, h]^T`` at the CLS position: only the CLS row of
the per-head attention output is kept. The forward runs block by block, mirroring open_clip's
``ResidualAttentionBlock`` (ln_1, attention, ls_1, ln_2, MLP, ls_2); model weights are only read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError, HeadSpecError, ModelLoadError
from .store import Store, cache_key

VERSION = "decompose-v1"  # bump when the maths changes: it is part of the cache key


class UnsupportedModelError(ModelLoadError):
    """The image tower has a layout the decomposition does not support."""


@dataclass
class Decomposition:
    heads: torch.Tensor   # [batch, n_layers, n_heads, embed_dim]
    rest: torch.Tensor    # [batch, embed_dim]
    layers: list[int]     # absolute indices of the decomposed layers

    def total(self) -> torch.Tensor:
        """Sum of all terms == encode_image(x, normalize=False). # [batch, embed_dim]"""
        return self.heads.sum((1, 2)) + self.rest


def _check_visual(visual: torch.nn.Module) -> None:
    from open_clip.transformer import ResidualAttentionBlock

    if getattr(visual, "attn_pool", None) is not None:
        raise UnsupportedModelError("This image tower pools with an attentional pooler (CoCa-style); "
                                    "head decomposition supports CLS-token ViTs such as ViT-B-32.")
    if getattr(visual, "pool_type", None) != "tok":
        raise UnsupportedModelError(
            f"Unsupported pool type {getattr(visual, 'pool_type', None)!r}: head decomposition needs "
            "CLS-token pooling ('tok'), as in OpenAI and LAION ViT models.")
    if not isinstance(visual.ln_post, torch.nn.LayerNorm):
        raise UnsupportedModelError("The image tower has no final LayerNorm (ln_post); cannot decompose.")
    for blk in visual.transformer.resblocks:
        if type(blk) is not ResidualAttentionBlock or hasattr(blk, "ln_1_kv"):
            raise UnsupportedModelError(
                f"Unsupported block type {type(blk).__name__} (qk-norm / scaled-cosine / cross attention); "
                "head decomposition supports standard open_clip ViT blocks.")


def _scale(ls: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    """Apply a block's layer scale out of place (an inplace LayerScale would write into t)."""
    gamma = getattr(ls, "gamma", None)
    return t * gamma if gamma is not None else ls(t)


def _attention(blk, h: torch.Tensor, cls_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Run blk.attn on ln_1 output h [B, N, W]; returns (attn output incl. bias [B, N', W],
    per-head CLS contribution before bias [B, H, W])."""
    attn = blk.attn
    B, N, W = h.shape
    H = attn.num_heads
    dh = W // H
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)               # [B, N, 3W]
    q, k, v = qkv.split(W, dim=-1)
    if cls_only:
        q = q[:, :1]                                                        # only the CLS query matters
    q = q.reshape(B, -1, H, dh).transpose(1, 2)                             # [B, H, Nq, dh]
    k = k.reshape(B, N, H, dh).transpose(1, 2)                              # [B, H, N, dh]
    v = v.reshape(B, N, H, dh).transpose(1, 2)
    o = F.scaled_dot_product_attention(q, k, v)                             # [B, H, Nq, dh]
    w_o = attn.out_proj.weight.view(W, H, dh)                               # [W, H, dh]
    per_head = torch.einsum("bhd,whd->bhw", o[:, :, 0], w_o)                # [B, H, W] = A[h,0]@V_h@W_O[:,h]^T
    out = F.linear(o.transpose(1, 2).reshape(B, -1, W), attn.out_proj.weight, attn.out_proj.bias)
    return out, per_head


@torch.no_grad()
def decompose(loaded, images: torch.Tensor, n_layers: int = 4) -> Decomposition:
    """Split encode_image(images) into per-head direct contributions of the last n_layers + rest."""
    visual = loaded.model.visual
    _check_visual(visual)
    blocks = visual.transformer.resblocks
    L = len(blocks)
    if not 1 <= n_layers <= L:
        raise HeadSpecError(f"n_layers must be between 1 and {L} for this model (got {n_layers}).")
    first = L - n_layers
    batch_first = getattr(visual.transformer, "batch_first", True)
    dtype = visual.conv1.weight.dtype
    x = visual._embeds(images.to(loaded.device, dtype))                      # [B, N, W]
    for blk in blocks[:first]:
        x = blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)
    rest = x[:, 0].float()                                                  # [B, W] embedding + early layers
    heads = []
    for i, blk in enumerate(blocks[first:]):
        last = i == n_layers - 1                                            # only CLS matters after this
        a_out, per_head = _attention(blk, blk.ln_1(x), cls_only=last)
        heads.append(_scale(blk.ls_1, per_head).float())                    # [B, H, W]
        bias = blk.attn.out_proj.bias
        if bias is not None:
            rest = rest + _scale(blk.ls_1, bias).float()
        x = (x[:, :1] if last else x) + _scale(blk.ls_1, a_out)
        mlp = _scale(blk.ls_2, blk.mlp(blk.ln_2(x)))
        rest = rest + mlp[:, 0].float()
        x = x + mlp
    heads_t = torch.stack(heads, 1)                                         # [B, K, H, W]
    resid = x[:, 0].float()                                                 # [B, W] real pre-ln_post
    ln = visual.ln_post
    sigma = torch.sqrt(resid.var(-1, unbiased=False, keepdim=True) + ln.eps)  # [B, 1]
    gamma = ln.weight.float() if ln.weight is not None else torch.ones_like(resid[0])
    beta = ln.bias.float() if ln.bias is not None else torch.zeros_like(resid[0])
    proj = visual.proj.float() if visual.proj is not None else torch.eye(resid.shape[-1],
                                                                         device=resid.device)

    def lin(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # the linear part of ln_post, then proj
        return (gamma * (c - c.mean(-1, keepdim=True)) / s) @ proj

    heads_e = lin(heads_t, sigma[:, None, None])                            # [B, K, H, E]
    rest_e = lin(rest, sigma) + beta @ proj                                 # [B, E]
    return Decomposition(heads=heads_e.cpu(), rest=rest_e.cpu(), layers=list(range(first, L)))


def decompose_image_set(loaded, image_set, n_layers: int = 4, batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None,
                        store: Store | None = None) -> Decomposition:
    """decompose() over a data.ImageSet in batches, cached in ``store`` (kind "decomposition")."""
    n_total = len(image_set)
    key = cache_key(model=loaded.key, images=image_set.key, n_layers=n_layers, version=VERSION)
    if store is not None:
        hit = store.get_arrays("decomposition", key)
        if hit is not None:
            if progress:
                progress(n_total, n_total)
            return Decomposition(torch.from_numpy(hit["heads"]), torch.from_numpy(hit["rest"]),
                                 [int(v) for v in hit["layers"]])
    heads, rest, layers, done = [], [], [], 0
    if progress:
        progress(0, n_total)
    for batch in image_set.batches(loaded.preprocess, batch_size):
        d = decompose(loaded, batch, n_layers=n_layers)
        heads.append(d.heads)
        rest.append(d.rest)
        layers = d.layers
        done += batch.shape[0]
        if progress:
            progress(done, n_total)
    if not heads:
        raise DataError(f"The image set {getattr(image_set, 'name', '?')!r} has no images to decompose.")
    out = Decomposition(torch.cat(heads), torch.cat(rest), layers)
    if store is not None:
        store.set_arrays("decomposition", key, {"heads": out.heads.numpy(), "rest": out.rest.numpy(),
                                                "layers": np.asarray(layers, dtype=np.int64)})
    return out

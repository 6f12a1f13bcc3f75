"""Direct contribution of every attention head of the last K layers to the image embedding.

The CLS output of the image tower is a sum of terms (embedding + earlier layers, each head, each
out_proj bias, each MLP). ``ln_post`` is affine once its per-image std ``sigma`` is fixed from the real
forward pass, so each term ``c`` maps to ``gamma * (c - mean(c)) / sigma @ proj``; ``beta @ proj`` goes
to ``rest``. We centre each term by its *own* mean (the exact linear part of LayerNorm), not by the
even share ``mu / T`` of the total mean: the totals are identical, but a head's contribution then depends
on that head alone. Biases (out_proj, ln_post beta) are not a head's and go to ``rest``.

Head h of a layer contributes ``A[h, 0, :] @ V_h @ W_O[:, h]^T`` at the CLS position: only the CLS row of
the per-head attention output is kept. The forward runs block by block through ``tower`` (ln_1,
attention, ls_1, ln_2, MLP, ls_2: the only module that touches open_clip's internals); weights are only
read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import tower
from .errors import DataError, HeadSpecError
from .store import Store, cache_key
from .tower import UnsupportedModelError  # noqa: F401  (re-exported: raised by decompose)

VERSION = "decompose-v1"  # bump when the maths changes: it is part of the cache key


@dataclass
class Decomposition:
    heads: torch.Tensor   # [batch, n_layers, n_heads, embed_dim]
    rest: torch.Tensor    # [batch, embed_dim]
    layers: list[int]     # absolute indices of the decomposed layers

    def total(self) -> torch.Tensor:
        """Sum of all terms == encode_image(x, normalize=False). # [batch, embed_dim]"""
        return self.heads.sum((1, 2)) + self.rest


@torch.no_grad()
def decompose(loaded, images: torch.Tensor, n_layers: int = 4) -> Decomposition:
    """Split encode_image(images) into per-head direct contributions of the last n_layers + rest."""
    tower.check_supported(loaded)
    L = loaded.spec.n_layers
    if not 1 <= n_layers <= L:
        raise HeadSpecError(f"n_layers must be between 1 and {L} for this model (got {n_layers}).")
    first = L - n_layers
    x = tower.run_blocks(loaded, tower.embed(loaded, images), 0, first)     # [B, T, W]
    rest = x[:, 0].float()                                                  # [B, W] embedding + early layers
    broken = None if bool(torch.isfinite(x).all()) else f"one of L0..L{first - 1}"  # where NaN/inf start
    heads = []
    for i, blk in enumerate(tower.blocks(loaded)[first:]):
        last = i == n_layers - 1                                            # only CLS matters after this
        o = tower.head_outputs(blk, x, cls_only=last)                       # [B, Tq, H, dh]
        heads.append(tower.layer_scale_1(blk, tower.head_writes(blk, o[:, 0])).float())  # [B, H, W] at CLS
        bias = tower.out_bias(blk)
        if bias is not None:                                                # not a head's: to rest
            rest = rest + tower.layer_scale_1(blk, bias).float()
        x = (x[:, :1] if last else x) + tower.layer_scale_1(blk, tower.out_proj(blk, o))
        mlp = tower.mlp(blk, x)                                             # [B, Tq, W] the MLP's term
        rest = rest + mlp[:, 0].float()
        x = x + mlp
        if broken is None and not bool(torch.isfinite(x).all()):
            broken = f"L{first + i}"
    heads_t = torch.stack(heads, 1)                                         # [B, K, H, W]
    resid = x[:, 0].float()                                                 # [B, W] real pre-ln_post
    sigma, gamma, beta, proj = tower.final_norm(loaded, resid)

    def lin(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # the linear part of ln_post, then proj
        return (gamma * (c - c.mean(-1, keepdim=True)) / s) @ proj

    heads_e = lin(heads_t, sigma[:, None, None])                            # [B, K, H, E]
    rest_e = lin(rest, sigma) + beta @ proj                                 # [B, E]
    if broken is not None or not (bool(torch.isfinite(heads_e).all()) and bool(torch.isfinite(rest_e).all())):
        raise DataError(f"The image tower gives non-finite values (NaN or inf) from layer {broken or 'ln_post'} "
                        "on: the checkpoint has non-finite weights or the images overflow. Check the "
                        "checkpoint (torch.isfinite on its state dict); nothing was cached.")
    return Decomposition(heads=heads_e.cpu(), rest=rest_e.cpu(), layers=list(range(first, L)))


def decompose_image_set(loaded, image_set, n_layers: int = 4, batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None,
                        store: Store | None = None) -> Decomposition:
    """decompose() over a data.ImageSet in batches, cached in ``store`` (kind "decomposition")."""
    n_total = len(image_set)
    key = cache_key(model=loaded.key, images=image_set.key, n_layers=n_layers, version=VERSION)
    if store is not None:
        hit = store.get_arrays("decomposition", key, {
            "heads": (n_total, n_layers, loaded.spec.n_heads, loaded.spec.embed_dim),
            "rest": (n_total, loaded.spec.embed_dim), "layers": (n_layers,)})
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

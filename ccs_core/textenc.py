"""Text embeddings, fast: every batch is cut to its longest text.

An open_clip ``CLIP`` text tower is causal and pools one token (the end token, found by ``argmax`` of
the ids, or a tokenizer's ``eos`` id). With a causal mask, the output at position p depends only on
tokens 0..p, so every position after the last pooled token of a batch can be dropped without changing
any embedding (up to float rounding from the smaller matmuls). The bundled pool's texts are at most
~13 tokens of CLIP's 77, so this is several times faster. Texts are also sorted by length, so each
batch is cut to similar lengths; the result comes back in the caller's order.

Towers this does not know (custom text towers, ``first``/``last``/mean pooling, no causal mask) go
through ``model.encode_text`` unchanged. The text tower's internals are read in ``tower``.
"""
from __future__ import annotations

from typing import Callable

import torch

import torch.nn.functional as F

from . import tower
from .precision import autocast

BatchProgress = Callable[[int, int], None]  # (texts done, total)


@torch.no_grad()
def encode_texts(model: torch.nn.Module, tokenizer: Callable, texts: list[str], embed_dim: int,
                 device: str = "cpu", batch_size: int = 256, cut: bool = True,
                 progress: BatchProgress | None = None, precision: str = "fp32") -> torch.Tensor:
    """L2-normalised text embeddings in the order of ``texts``, float32 whatever ``precision`` the
    tower runs under (autocast on ``device``: ``precision.py``). # [M, embed_dim]"""
    if not texts:
        return torch.zeros(0, embed_dim)
    tokens = tokenizer(list(texts))                                 # [M, context]
    pos = tower.text_pool_positions(model, tokens) if cut else None
    order = torch.argsort(pos, stable=True) if pos is not None else torch.arange(len(texts))
    out = torch.empty(len(texts), embed_dim)
    for i in range(0, len(texts), batch_size):
        idx = order[i:i + batch_size]
        batch = tokens[idx]
        with autocast(device, precision):
            if pos is not None:
                batch = batch[:, : int(pos[idx].max()) + 1]
                emb = tower.encode_text_cut(model, batch.to(device))
            else:
                emb = model.encode_text(batch.to(device), normalize=True)
        emb = emb.float() if precision == "fp32" else F.normalize(emb.float(), dim=-1)  # unit norm in float32
        out[idx] = emb.cpu()
        if progress is not None:
            progress(min(i + batch_size, len(texts)), len(texts))
    return out

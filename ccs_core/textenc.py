"""Text embeddings, fast: every batch is cut to its longest text.

An open_clip ``CLIP`` text tower is causal and pools one token (the end token, found by ``argmax`` of
the ids, or a tokenizer's ``eos`` id). With a causal mask, the output at position p depends only on
tokens 0..p, so every position after the last pooled token of a batch can be dropped without changing
any embedding (up to float rounding from the smaller matmuls). The bundled pool's texts are at most
~13 tokens of CLIP's 77, so this is several times faster. Texts are also sorted by length, so each
batch is cut to similar lengths; the result comes back in the caller's order.

Towers this does not know (custom text towers, ``first``/``last``/mean pooling, no causal mask) go
through ``model.encode_text`` unchanged.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

BatchProgress = Callable[[int, int], None]  # (texts done, total)


def _pool_positions(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor | None:
    """Per text, the position its embedding is pooled from, or None if cutting is not known safe. # [B]"""
    from open_clip.model import CLIP

    if type(model).encode_text is not CLIP.encode_text or getattr(model, "attn_mask", None) is None:
        return None
    pool = getattr(model, "text_pool_type", "argmax")
    if pool == "argmax":
        return tokens.argmax(dim=-1)
    eos = getattr(model, "text_eos_id", None)
    if pool == "eos" and eos is not None:
        return (tokens == eos).int().argmax(dim=-1)
    return None


def _encode_cut(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``CLIP.encode_text(tokens, normalize=True)`` on a batch already cut to L <= context tokens. # [B, d]"""
    from open_clip.transformer import text_global_pool

    n = tokens.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast)                      # [B, L, width]
    x = x + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])     # causal, cut to L x L
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return torch.nn.functional.normalize(x, dim=-1)


@torch.no_grad()
def encode_texts(model: torch.nn.Module, tokenizer: Callable, texts: list[str], embed_dim: int,
                 device: str = "cpu", batch_size: int = 256, cut: bool = True,
                 progress: BatchProgress | None = None) -> torch.Tensor:
    """L2-normalised text embeddings in the order of ``texts``. # [M, embed_dim]"""
    if not texts:
        return torch.zeros(0, embed_dim)
    tokens = tokenizer(list(texts))                                 # [M, context]
    pos = _pool_positions(model, tokens) if cut else None
    order = torch.argsort(pos, stable=True) if pos is not None else torch.arange(len(texts))
    out = torch.empty(len(texts), embed_dim)
    for i in range(0, len(texts), batch_size):
        idx = order[i:i + batch_size]
        batch = tokens[idx]
        if pos is not None:
            batch = batch[:, : int(pos[idx].max()) + 1]
            emb = _encode_cut(model, batch.to(device))
        else:
            emb = model.encode_text(batch.to(device), normalize=True)
        out[idx] = emb.float().cpu()
        if progress is not None:
            progress(min(i + batch_size, len(texts)), len(texts))
    return out


class Rate:
    """"d/t texts · r texts/s · ETA s" for a batch progress callback."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def text(self, done: int, total: int) -> str:
        dt = max(time.monotonic() - self.t0, 1e-6)
        rate = done / dt
        eta = (total - done) / rate if rate > 0 else float("nan")
        return f"{done:,}/{total:,} texts · {rate:,.0f} texts/s · ETA {eta:.0f} s"

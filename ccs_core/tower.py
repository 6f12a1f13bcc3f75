"""The one module that touches open_clip's tower internals (``visual._embeds``, ``resblocks``,
``nn.MultiheadAttention`` weights, ``visual._pool``, ``ln_post``/``proj``, the text tower's causal
mask). ``decompose.py`` and ``prune.py`` are the maths on top; an open_clip upgrade changes this file.

Shape glossary (as TransformerLens documents its cache names):
    B   images in a batch            T   tokens: CLS + patches (Tq: query tokens kept, 1 or T)
    W   residual stream width        H   attention heads per block
    dh  head width (W / H)           E   joint image-text embedding width
    L   text tokens kept after cutting a batch to its longest text

Model weights are only read. ``tests/test_tower.py`` pins ``image_features`` against open_clip's own
``encode_image`` for every supported variant (toy, ViT-B-32, layer scale, QuickGELU).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ModelLoadError
from .modelref import ModelSpec


class UnsupportedModelError(ModelLoadError):
    """The image tower has a layout the decomposition and pruning do not support."""


# ---- what the tower is ---------------------------------------------------------------------------

def spec_of(model: torch.nn.Module) -> ModelSpec:
    """Read the ModelSpec off an open_clip CLIP's VisionTransformer."""
    visual = getattr(model, "visual", None)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not hasattr(blocks[0], "attn"):
        raise ModelLoadError(
            "This model's image tower is not a ViT with attention heads (e.g. a ResNet or timm tower); "
            "CCS Explorer analyses open_clip ViT models such as ViT-B-32.")
    attn = blocks[0].attn
    if not isinstance(attn, torch.nn.MultiheadAttention):
        raise ModelLoadError("Unsupported attention module in the image tower: "
                             f"{type(attn).__name__}; expected nn.MultiheadAttention (open_clip ViT).")
    width = attn.embed_dim
    size = visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    embed_dim = visual.proj.shape[1] if getattr(visual, "proj", None) is not None else width
    return ModelSpec(n_layers=len(blocks), n_heads=attn.num_heads, head_dim=width // attn.num_heads,
                     width=width, embed_dim=embed_dim, image_size=size)


def check_supported(loaded) -> None:
    """Raise UnsupportedModelError unless the tower is a CLS-token ViT of standard open_clip blocks."""
    from open_clip.transformer import ResidualAttentionBlock

    visual = loaded.model.visual
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
        if blk.attn.in_proj_weight is None:
            raise UnsupportedModelError("This attention module has separate q/k/v projections; head "
                                        "decomposition and pruning support packed in_proj_weight (open_clip ViT).")


def blocks(loaded) -> torch.nn.ModuleList:
    return loaded.model.visual.transformer.resblocks


def n_tokens(loaded) -> int:
    """T: the CLS token plus one per patch."""
    grid = loaded.model.visual.grid_size
    return int(grid[0] * grid[1] + 1)


def patch_positions(model: torch.nn.Module) -> torch.nn.Parameter:
    """The image tower's position embeddings (CLS first, then patches row by row). # [T, W]
    (Training code only: the explorer never writes a model's weights.)"""
    return model.visual.positional_embedding


# ---- running the tower ---------------------------------------------------------------------------

def embed(loaded, images: torch.Tensor) -> torch.Tensor:
    """Patch + class + position embeddings after ln_pre. images [B, 3, S, S] -> [B, T, W]"""
    visual = loaded.model.visual
    return visual._embeds(images.to(loaded.device, visual.conv1.weight.dtype))


def run_block(blk, x: torch.Tensor, batch_first: bool = True) -> torch.Tensor:
    """One unmodified residual block (the model's own module). x [B, T, W] -> [B, T, W]"""
    return blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)


def run_blocks(loaded, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Blocks start..stop-1, unmodified. x [B, T, W] -> [B, T, W]"""
    bf = getattr(loaded.model.visual.transformer, "batch_first", True)
    for blk in blocks(loaded)[start:stop]:
        x = run_block(blk, x, bf)
    return x


def as_residual(loaded, x: torch.Tensor) -> torch.Tensor:
    """A stored residual stream (float32) in the tower's device and dtype. # [B, T, W]"""
    return x.to(loaded.device, loaded.model.visual.conv1.weight.dtype)


def scale(ls: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    """A block's layer scale, out of place (an inplace LayerScale would write into t)."""
    gamma = getattr(ls, "gamma", None)
    return t * gamma if gamma is not None else ls(t)


def layer_scale_1(blk, t: torch.Tensor) -> torch.Tensor:
    """The block's layer scale on its attention branch (identity without layer scale)."""
    return scale(blk.ls_1, t)


def mlp(blk, x: torch.Tensor) -> torch.Tensor:
    """The block's MLP branch on the residual x (ln_2, MLP, layer scale 2). # [B, T, W]"""
    return scale(blk.ls_2, blk.mlp(blk.ln_2(x)))


def head_outputs(blk, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
    """Every head's attention output before ``out_proj`` (self-attention, no mask) for the residual
    stream x [B, T, W] entering the block (ln_1 applied here); with ``cls_only`` only the CLS query.
    # [B, Tq, H, dh]"""
    h = blk.ln_1(x)
    attn = blk.attn
    b, t, w = h.shape
    n_heads = attn.num_heads
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)              # [B, T, 3W]
    q, k, v = qkv.view(b, t, 3, n_heads, w // n_heads).permute(2, 0, 3, 1, 4)  # each [B, H, T, dh]
    if cls_only:
        q = q[:, :, :1]
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2)         # [B, Tq, H, dh]


def out_proj(blk, heads: torch.Tensor) -> torch.Tensor:
    """The attention output from (possibly edited) head outputs, bias included. [B, T, H, dh] -> [B, T, W]"""
    return F.linear(heads.flatten(2), blk.attn.out_proj.weight, blk.attn.out_proj.bias)


def head_writes(blk, heads_cls: torch.Tensor) -> torch.Tensor:
    """Each head's write into the residual stream at one token, bias excluded:
    A[h, 0] @ V_h @ W_O[:, h]^T. heads_cls [B, H, dh] -> [B, H, W]"""
    w_o = blk.attn.out_proj.weight
    n_heads = blk.attn.num_heads
    return torch.einsum("bhd,whd->bhw", heads_cls, w_o.view(w_o.shape[0], n_heads, -1))


def out_bias(blk) -> "torch.Tensor | None":
    return blk.attn.out_proj.bias


def finish_block(blk, x: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
    """The rest of a block after its attention: residual add, then the MLP. # [B, T, W]"""
    x = x + layer_scale_1(blk, attn_out)
    return x + mlp(blk, x)


def pool_project(loaded, x: torch.Tensor) -> torch.Tensor:
    """The image embedding from the last block's output: pool (CLS), ln_post, proj. [B, T, W] -> [B, E]"""
    visual = loaded.model.visual
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled.float()


def image_features(loaded, images: torch.Tensor) -> torch.Tensor:
    """embed -> every block -> pool_project: equals ``encode_image`` (pinned by the tests). # [B, E]"""
    n = len(blocks(loaded))
    return pool_project(loaded, run_blocks(loaded, embed(loaded, images), 0, n))


def final_norm(loaded, resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """ln_post's pieces for the CLS residual resid [B, W]: (sigma [B, 1], gamma [W], beta [W], proj [W, E])."""
    visual = loaded.model.visual
    ln = visual.ln_post
    sigma = torch.sqrt(resid.var(-1, unbiased=False, keepdim=True) + ln.eps)
    gamma = ln.weight.float() if ln.weight is not None else torch.ones_like(resid[0])
    beta = ln.bias.float() if ln.bias is not None else torch.zeros_like(resid[0])
    proj = visual.proj.float() if visual.proj is not None else torch.eye(resid.shape[-1], device=resid.device)
    return sigma, gamma, beta, proj


def head_weight_norms(model: torch.nn.Module) -> torch.Tensor:
    """Per image-tower head: |W_V of the head| + |its out_proj columns| (Frobenius). # [layers, heads]"""
    rows = []
    for blk in model.visual.transformer.resblocks:
        attn = blk.attn
        w, h = attn.embed_dim, attn.num_heads
        dh = w // h
        v = attn.in_proj_weight[2 * w:].view(h, dh, w)              # [H, dh, W]
        o = attn.out_proj.weight.view(w, h, dh).transpose(0, 1)     # [H, W, dh]
        rows.append(v.flatten(1).norm(dim=1) + o.flatten(1).norm(dim=1))
    return torch.stack(rows)


# ---- the text tower ------------------------------------------------------------------------------

def text_pool_positions(model: torch.nn.Module, tokens: torch.Tensor) -> "torch.Tensor | None":
    """Per text, the token its embedding is pooled from, or None if cutting is not known to be exact
    (a custom text tower, first/last/mean pooling, no causal mask). tokens [M, ctx] -> [M]"""
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


def encode_text_cut(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``CLIP.encode_text(tokens, normalize=True)`` for a batch already cut to L <= context tokens.
    tokens [B, L] -> [B, E]"""
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
    return F.normalize(x, dim=-1)

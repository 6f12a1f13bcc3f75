"""Soft pruning of image-tower attention heads, without touching the shared model's weights.

A pruned head's output (its slice of the concatenated head outputs, i.e. the input of ``out_proj``)
is zeroed ("zero", as the paper) or replaced by its mean over a reference set ("mean"). The blocks run
through ``tower`` (embed -> blocks -> pool_project); blocks without pruned heads run the model's own
modules unchanged.

Fast path: the residual stream entering the first prunable layer is computed once per image batch
(``residual_stream``) and every configuration reruns only the later layers (``features_from_residual``).

Precision: these functions run under whatever autocast their caller opens (``evaluate.pruned_features``
opens ``precision.autocast`` around all of them); embeddings come back float32 (``tower.pool_project``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from . import tower
from .errors import HeadSpecError
from .heads import HeadId, parse_heads
from .precision import autocast, key_part
from .store import cache_key
from .strategies import (CCSTable, PruneConfig, as_heads, build_configs,  # noqa: F401 (re-export)
                         random_heads, strategy_configs)

MODES = ("zero", "mean")


def head_mask(heads: Sequence[HeadId], n_layers: int, n_heads: int) -> torch.Tensor:
    """1 = keep, 0 = pruned. # [layer, head]"""
    mask = torch.ones(n_layers, n_heads)
    for h in heads:
        mask[h.layer, h.head] = 0.0
    return mask


def _pruned_block(blk, x: torch.Tensor, keep: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
    """One residual block with heads masked (keep [H]; mean [T, H, dh] or None). x [B, T, W]."""
    heads = tower.head_outputs(blk, x)  # [B, T, H, dh]
    keep = keep.to(heads.dtype).view(1, 1, -1, 1)
    if mean is None:
        heads = heads * keep
    else:
        heads = heads * keep + mean.to(heads.dtype).unsqueeze(0) * (1 - keep)
    return tower.finish_block(blk, x, tower.out_proj(blk, heads))


@torch.no_grad()
def residual_stream(loaded, images: torch.Tensor, first_layer: int) -> torch.Tensor:
    """Residual stream entering block ``first_layer`` (0 = after ln_pre). # [B, T, W]"""
    return tower.run_blocks(loaded, tower.embed(loaded, images), 0, first_layer)


@torch.no_grad()
def features_from_residual(loaded, resid: torch.Tensor, first_layer: int, heads=(),
                           mode: str = "zero", means: "dict[int, torch.Tensor] | None" = None
                           ) -> torch.Tensor:
    """Pruned image embeddings from the residual entering ``first_layer``. # [B, embed_dim] float"""
    spec = loaded.spec
    if mode not in MODES:
        raise HeadSpecError(f"Unknown ablation mode {mode!r}: use 'zero' (the paper) or 'mean'.")
    heads = as_heads(heads, spec.n_layers, spec.n_heads)
    early = [h for h in heads if h.layer < first_layer]
    if early:
        raise HeadSpecError(f"Head(s) {', '.join(map(str, early))} lie before layer {first_layer}, where "
                            "the cached residual stream starts; rebuild the cache from an earlier layer.")
    mask = head_mask(heads, spec.n_layers, spec.n_heads)  # [L, H]
    if mode == "mean":
        missing = sorted({h.layer for h in heads} - set(means or {}))
        if missing:
            raise HeadSpecError(f"Mean-ablation needs head means for layer(s) {missing}: compute them "
                                "with prune.head_means over a reference image set.")
    x = tower.as_residual(loaded, resid)  # a Store-loaded cache is float32
    for layer in range(first_layer, spec.n_layers):
        if bool((mask[layer] < 1).any()):
            mean = means[layer].to(x.device) if mode == "mean" else None
            x = _pruned_block(tower.blocks(loaded)[layer], x, mask[layer].to(x.device), mean)
        else:
            x = tower.run_blocks(loaded, x, layer, layer + 1)
    return tower.pool_project(loaded, x)


@torch.no_grad()
def pruned_image_features(loaded, images: torch.Tensor, heads=(), mode: str = "zero",
                          means: "dict[int, torch.Tensor] | None" = None) -> torch.Tensor:
    """Image embeddings (unnormalised) of the model with ``heads`` pruned. images [B,3,H,W] -> [B, d]"""
    spec = loaded.spec
    hs = as_heads(heads, spec.n_layers, spec.n_heads)
    first = min((h.layer for h in hs), default=spec.n_layers)
    return features_from_residual(loaded, residual_stream(loaded, images, first), first, hs, mode, means)


@torch.no_grad()
def head_means(loaded, batches: Iterable[torch.Tensor], layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """Mean of every head's output per token over a reference set (unpruned model). {layer: [T, H, dh]}"""
    layers = sorted(set(layers))
    if not layers:
        return {}
    first = layers[0]
    sums: dict[int, torch.Tensor] = {}
    n = 0
    for images in batches:
        x = residual_stream(loaded, images, first)
        for layer in range(first, layers[-1] + 1):
            if layer in layers:
                out = tower.head_outputs(tower.blocks(loaded)[layer], x).float().sum(0)  # [T, H, dh]
                sums[layer] = sums[layer] + out if layer in sums else out
            x = tower.run_blocks(loaded, x, layer, layer + 1)
        n += x.shape[0]
    if n == 0:
        raise HeadSpecError("Mean-ablation needs a non-empty reference image set.")
    return {layer: s / n for layer, s in sums.items()}


# ---- residual cache (in memory; optional Store persistence) -------------------------------------

@dataclass
class ResidualCache:
    """Residual stream entering ``first_layer`` for a whole image set. resid: [N, T, W]"""
    first_layer: int
    resid: torch.Tensor
    key: str = ""

    @property
    def nbytes(self) -> int:
        return self.resid.numel() * self.resid.element_size()

    def bytes_per_1000(self) -> float:
        return self.nbytes / max(len(self.resid), 1) * 1000


def build_residual_cache(loaded, batches: Iterable[torch.Tensor], first_layer: int, key: str = "",
                         store=None, progress: "Callable[[int, int], None] | None" = None,
                         total: int | None = None, precision: str = "fp32") -> ResidualCache:
    """Run the tower up to ``first_layer`` once over all batches (persisted in ``store`` when given),
    under ``precision``'s autocast on the model's device (``precision.py``)."""
    skey = cache_key(kind="residual", model=loaded.key, data=key, first_layer=first_layer,
                     **key_part(precision)) if key else ""
    if store is not None and skey:
        hit = store.get_arrays("residual", skey)
        if hit is not None:
            return ResidualCache(first_layer, torch.from_numpy(hit["resid"]), key)
    parts, done = [], 0
    for images in batches:
        with autocast(loaded, precision):
            parts.append(residual_stream(loaded, images, first_layer).cpu())  # [B, T, W]
        done += images.shape[0]
        if progress:
            progress(done, total or done)
    if not parts:
        raise HeadSpecError("Cannot build a residual cache over an empty image set.")
    cache = ResidualCache(first_layer, torch.cat(parts), key)
    if store is not None and skey:
        store.set_arrays("residual", skey, {"resid": cache.resid.float().numpy()})
    return cache


@torch.no_grad()
def features_from_cache(loaded, cache: ResidualCache, heads=(), mode: str = "zero", means=None,
                        batch_size: int = 256) -> torch.Tensor:
    """Pruned embeddings for every cached image. # [N, embed_dim]"""
    out = [features_from_residual(loaded, cache.resid[i:i + batch_size], cache.first_layer, heads, mode,
                                  means).cpu() for i in range(0, len(cache.resid), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def configs_features(loaded, batches: Iterable[torch.Tensor], head_sets: Sequence, mode: str = "zero",
                     means=None, progress: "Callable[[int, int], None] | None" = None,
                     total: int | None = None) -> list[torch.Tensor]:
    """Embeddings for several head sets in one pass: per batch the residual stream entering the first
    pruned layer is computed once and each head set reruns only the later layers. -> list of [N, d]"""
    spec = loaded.spec
    sets = [as_heads(h, spec.n_layers, spec.n_heads) for h in head_sets]
    first = min((h.layer for hs in sets for h in hs), default=spec.n_layers)
    outs: list[list[torch.Tensor]] = [[] for _ in sets]
    done = 0
    for images in batches:
        resid = residual_stream(loaded, images, first)  # [B, T, W]
        for out, hs in zip(outs, sets):
            out.append(features_from_residual(loaded, resid, first, hs, mode, means).cpu())
        done += images.shape[0]
        if progress:
            progress(done, total or done)
    return [torch.cat(o) if o else torch.zeros(0, spec.embed_dim) for o in outs]


# ---- instant preview from the stored decomposition ------------------------------------------------

@dataclass
class DirectEffectPreview:
    """APPROXIMATE pruned embeddings from a Decomposition: the full direct sum minus pruned heads' terms.

    Ignores indirect effects through later layers and ln_post re-normalisation; label it approximate.
    by_head: [L * H, N, d] (head-major, so a head's terms are one contiguous slab), full: [N, d],
    layers: absolute layer of each of the L decomposed layers.
    """
    by_head: torch.Tensor
    full: torch.Tensor
    layers: list[int]
    n_heads: int

    @classmethod
    def from_decomposition(cls, dec) -> "DirectEffectPreview":
        """From a stored ``SetDecomposition`` without a copy (its memory maps: only the pruned heads'
        slabs are read), or from a batch's ``Decomposition``; own-mean terms only (removing a term
        centred by its own mean is the head's direct effect at a fixed ln_post std, a shared-mean
        term is not)."""
        if getattr(dec, "norm", "own-mean") != "own-mean":
            raise HeadSpecError(f"The pruning preview reads the own-mean decomposition, not {dec.norm!r} "
                                "(decompose with norm='own-mean').")
        if hasattr(dec, "by_head"):
            return cls(torch.from_numpy(dec.by_head), torch.from_numpy(dec.full), list(dec.layers), dec.n_heads)
        heads = torch.as_tensor(dec.heads).float()  # [N, L, H, d]
        n, n_layers, n_heads, d = heads.shape
        full = heads.sum(dim=(1, 2)) + torch.as_tensor(dec.rest).float()  # [N, d]
        by_head = heads.permute(1, 2, 0, 3).reshape(n_layers * n_heads, n, d).contiguous()
        return cls(by_head, full, list(dec.layers), n_heads)

    def features(self, heads=(), mode: str = "zero") -> torch.Tensor:
        """Estimated pruned embeddings (unnormalised). # [N, d]"""
        index = {layer: i for i, layer in enumerate(self.layers)}
        hs = parse_heads(heads) if heads else []
        outside = [h for h in hs if h.layer not in index or not 0 <= h.head < self.n_heads]
        if outside:
            raise HeadSpecError(f"Head(s) {', '.join(map(str, outside))} are not in the decomposed layers "
                                f"{self.layers} (heads 0..{self.n_heads - 1}); the preview covers only "
                                "those, run the exact evaluation instead.")
        out = self.full.clone()
        for h in hs:
            term = self.by_head[index[h.layer] * self.n_heads + h.head]  # [N, d]
            out -= term - term.mean(0) if mode == "mean" else term
        return out

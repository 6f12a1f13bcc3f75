"""Direct contribution of every attention head of the last K layers to the image embedding.

The CLS output of the image tower is a sum of terms (embedding + earlier layers, each head, each
out_proj bias, each MLP). ``ln_post`` is affine once its per-image mean ``mu`` and std ``sigma`` are
fixed from the real forward pass, so each term maps to a direct contribution to the embedding. Two
conventions (``norm``) give the same total:

- ``own-mean`` (the project's default): each term ``c`` maps to ``gamma * (c - mean(c)) / sigma @ proj``
  (the exact linear part of LayerNorm), so a head's contribution depends on that head alone; biases
  (out_proj, ln_post's beta) are not a head's and go to ``rest``. Terms sum to
  ``encode_image(x, normalize=False)``.
- ``gandelsman`` (Gandelsman et al.'s TEXTSPAN code, which the paper used): the total's mean and
  ln_post's bias are shared equally, ``(gamma * (c - mu * w) / sigma + beta * w) @ proj``, and each
  image's terms are divided by the norm of its embedding, so terms sum to ``encode_image(x,
  normalize=True)``. The shares ``w`` follow that code's layout of the *whole* tower: T = 2L + 1 terms
  for L blocks (the embedding, L attention outputs, L MLPs), each attention output split equally over
  its H heads, so a head's share is ``1 / (T * H)`` whatever K is; a head also carries ``1/H`` of its
  layer's out_proj bias. ``rest`` (the embedding, earlier blocks, the last K MLPs) takes the remaining
  share ``1 - K / T``.

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
from .precision import autocast, check_precision, device_type, key_part
from .protocol import check_norm
from .store import Store, cache_key
from .textspan import Moments
from .tower import UnsupportedModelError  # noqa: F401  (re-exported: raised by decompose)

VERSION = "decompose-v2"  # bump when the maths or the layout changes (v2: memory maps + moments): in the cache key


@dataclass
class Decomposition:
    heads: torch.Tensor   # [batch, n_layers, n_heads, embed_dim]
    rest: torch.Tensor    # [batch, embed_dim]
    layers: list[int]     # absolute indices of the decomposed layers
    norm: str = "own-mean"  # the convention (module docstring)

    def total(self) -> torch.Tensor:
        """Sum of all terms: encode_image(x, normalize=False) under own-mean, encode_image(x,
        normalize=True) under gandelsman. # [batch, embed_dim]"""
        return self.heads.sum((1, 2)) + self.rest


def decompose(loaded, images: torch.Tensor, n_layers: int = 4, precision: str = "fp32",
              norm: str = "own-mean") -> Decomposition:
    """Split encode_image(images) into per-head direct contributions of the last n_layers + rest,
    under the convention ``norm`` (own-mean or gandelsman: the module docstring).
    ``precision`` "bf16" / "fp16": the forward pass under that autocast (``precision.py``; bf16 about 2x
    faster on CPUs with bf16 units, fp16 GPUs only; terms returned in float32, with a relative error near
    1%). Autocast follows the device the model runs on (the batch may still be on the CPU: ``tower.embed``
    moves it)."""
    check_norm(norm)
    with autocast(loaded, precision, images):
        d = _decompose(loaded, images, n_layers, norm)
    return Decomposition(d.heads.float(), d.rest.float(), d.layers, norm)


def own_mean(heads: torch.Tensor, biases: torch.Tensor, rest: torch.Tensor, resid: torch.Tensor,
             ln: tuple, n_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each term centred by its own mean; biases and beta to rest. heads [B, K, H, W], biases [K, W],
    rest [B, W] (without the biases), resid [B, W] -> ([B, K, H, E], [B, E])"""
    sigma, gamma, beta, proj = ln

    def lin(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # the linear part of ln_post, then proj
        return (gamma * (c - c.mean(-1, keepdim=True)) / s) @ proj

    return lin(heads, sigma[:, None, None]), lin(rest + biases.sum(0), sigma) + beta @ proj


def gandelsman(heads: torch.Tensor, biases: torch.Tensor, rest: torch.Tensor, resid: torch.Tensor,
               ln: tuple, n_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The total's mean and beta shared (a head: 1 / ((2 * n_blocks + 1) * H), rest: the remainder),
    each head with 1/H of its layer's bias, everything divided by the embedding's norm. Shapes as
    ``own_mean``."""
    sigma, gamma, beta, proj = ln
    _, K, H, _ = heads.shape
    w = 1.0 / ((2 * n_blocks + 1) * H)                                      # one head's share
    mu = resid.mean(-1, keepdim=True)                                       # [B, 1] ln_post's mean

    def aff(c: torch.Tensor, share: float, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (gamma * (c - m * share) / s + beta * share) @ proj

    heads_e = aff(heads + biases[None, :, None] / H, w, mu[:, None, None], sigma[:, None, None])
    rest_e = aff(rest, 1.0 - K * H * w, mu, sigma)                          # [B, E]
    size = ((gamma * (resid - mu) / sigma + beta) @ proj).norm(dim=-1, keepdim=True)  # [B, 1] |embedding|
    return heads_e / size[:, None, None], rest_e / size


CONVENTIONS = {"own-mean": own_mean, "gandelsman": gandelsman}


def autocast_device(loaded, images: torch.Tensor) -> str:
    """The device type ("cpu", "cuda", "mps") the forward pass runs on: the model's, else the batch's."""
    return device_type(loaded, images)


@torch.no_grad()
def _decompose(loaded, images: torch.Tensor, n_layers: int = 4, norm: str = "own-mean") -> Decomposition:
    tower.check_supported(loaded)
    L = loaded.spec.n_layers
    if not 1 <= n_layers <= L:
        raise HeadSpecError(f"n_layers must be between 1 and {L} for this model (got {n_layers}).")
    first = L - n_layers
    x = tower.run_blocks(loaded, tower.embed(loaded, images), 0, first)     # [B, T, W]
    rest = x[:, 0].float()                                                  # [B, W] embedding + early layers
    broken = None if bool(torch.isfinite(x).all()) else f"one of L0..L{first - 1}"  # where NaN/inf start
    heads, biases = [], []
    for i, blk in enumerate(tower.blocks(loaded)[first:]):
        last = i == n_layers - 1                                            # only CLS matters after this
        o = tower.head_outputs(blk, x, cls_only=last)                       # [B, Tq, H, dh]
        heads.append(tower.layer_scale_1(blk, tower.head_writes(blk, o[:, 0])).float())  # [B, H, W] at CLS
        bias = tower.out_bias(blk)                                          # the convention places it
        biases.append(torch.zeros_like(rest[0]) if bias is None else tower.layer_scale_1(blk, bias).float())
        x = (x[:, :1] if last else x) + tower.layer_scale_1(blk, tower.out_proj(blk, o))
        mlp = tower.mlp(blk, x)                                             # [B, Tq, W] the MLP's term
        rest = rest + mlp[:, 0].float()
        x = x + mlp
        if broken is None and not bool(torch.isfinite(x).all()):
            broken = f"L{first + i}"
    heads_t = torch.stack(heads, 1)                                         # [B, K, H, W]
    resid = x[:, 0].float()                                                 # [B, W] real pre-ln_post
    heads_e, rest_e = CONVENTIONS[norm](heads_t, torch.stack(biases), rest, resid,  # [B, K, H, E], [B, E]
                                        tower.final_norm(loaded, resid), L)
    if broken is not None or not (bool(torch.isfinite(heads_e).all()) and bool(torch.isfinite(rest_e).all())):
        raise DataError(f"The image tower gives non-finite values (NaN or inf) from layer {broken or 'ln_post'} "
                        "on: the checkpoint has non-finite weights or the images overflow. Check the "
                        "checkpoint (torch.isfinite on its state dict); nothing was cached.")
    return Decomposition(heads=heads_e.cpu(), rest=rest_e.cpu(), layers=list(range(first, L)), norm=norm)


@dataclass
class SetDecomposition:
    """An image set's decomposition as stored: every analysed head's per-image terms, head-major (one
    head's [N, E] slab is contiguous), and TEXTSPAN's moments. From the cache the big arrays are
    copy-on-write memory maps: pages are read when used, so memory stays flat in the number of images.

    ``heads`` (every term as one [N, L, H, E] view) is for small sets and tests."""
    by_head: np.ndarray   # [L * H, N, E] float32, head h of layer index l at l * n_heads + h
    rest: np.ndarray      # [N, E] everything else (embedding, earlier layers, MLPs; biases and beta
                          #   under own-mean, their remaining shares under gandelsman)
    full: np.ndarray      # [N, E] the sum of every term == encode_image(normalize=norm == "gandelsman")
    layers: list[int]     # absolute indices of the decomposed layers
    n_heads: int
    sums: "Moments | dict"  # TEXTSPAN's moments, or the stored arrays they are read from on first use
    norm: str = "own-mean"  # the convention of the terms (module docstring)

    @property
    def moments(self) -> Moments:
        """TEXTSPAN's moments over the L * H heads, in by_head's order (read from the cache when first
        used: the preview never needs them)."""
        if isinstance(self.sums, dict):
            self.sums = Moments.from_arrays(self.sums)
        return self.sums

    def head(self, layer: int, head: int) -> torch.Tensor:
        """One head's terms (absolute layer index). # [N, E]"""
        return torch.from_numpy(self.by_head[self.layers.index(layer) * self.n_heads + head])

    @property
    def heads(self) -> torch.Tensor:
        """# [N, L, H, E] (a view: reading it all reads every term)"""
        k, n, e = self.by_head.shape
        return torch.from_numpy(np.ascontiguousarray(self.by_head)).reshape(
            len(self.layers), self.n_heads, n, e).permute(2, 0, 1, 3)

    def total(self) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.full))


def entry(loaded, image_set, n_layers: int, precision: str = "fp32", norm: str = "own-mean"
          ) -> tuple[str, dict]:
    """(cache key, {array name: shape}) of an image set's stored decomposition. The defaults (fp32,
    own-mean) leave the key as it was before those options existed."""
    n, spec = len(image_set), loaded.spec
    K, E = n_layers * spec.n_heads, spec.embed_dim
    key = cache_key(model=loaded.key, images=image_set.key, n_layers=n_layers, version=VERSION,
                    **key_part(precision),
                    **({} if check_norm(norm) == "own-mean" else {"norm": norm}))
    return key, {"by_head": (K, n, E), "rest": (n, E), "full": (n, E), "layers": (n_layers,),
                 "n": (1,), "shift": (K, E), "s1": (K, E), "s2": (K, E, E)}


ROWS = {"by_head": 1, "rest": 0, "full": 0}  # the per-image arrays and their image axis


def open_decomposition(loaded, image_set, n_layers: int, store: Store, precision: str = "fp32",
                       norm: str = "own-mean") -> SetDecomposition | None:
    """The stored decomposition of ``image_set`` under ``norm``, memory-mapped, or None."""
    key, shapes = entry(loaded, image_set, n_layers, precision, norm)
    hit = store.open_mapped("decomposition", key, shapes)
    if hit is None or int(hit["n"][0]) != len(image_set):
        return None
    return SetDecomposition(hit["by_head"], hit["rest"], hit["full"], [int(v) for v in hit["layers"]],
                            loaded.spec.n_heads, {k: hit[k] for k in ("n", "shift", "s1", "s2")}, norm)


def decompose_rows(loaded, image_set, files: dict, start: int, stop: int, n_layers: int = 4,
                   batch_size: int = 64, precision: str = "fp32",
                   progress: Callable[[int], None] | None = None, norm: str = "own-mean"
                   ) -> tuple[Moments, list[int]]:
    """Decompose images start..stop-1 into ``files`` (``ROWS`` name -> ``store.RowFile``) at their rows,
    under the convention ``norm``; -> (their moments, the decomposed layers). One process's share of a
    set, or all of it."""
    K, E = n_layers * loaded.spec.n_heads, loaded.spec.embed_dim
    moments, layers, done = Moments.empty(K, E), [], start
    whole = start == 0 and stop == len(image_set)  # (a set that is not an ImageSet may not take a range)
    batches = image_set.batches(loaded.preprocess, batch_size) if whole else \
        image_set.batches(loaded.preprocess, batch_size, start=start, stop=stop)
    for batch in batches:
        d = decompose(loaded, batch, n_layers=n_layers, precision=precision, norm=norm)
        b = d.heads.shape[0]
        if done + b > stop:
            raise DataError(f"The image set {getattr(image_set, 'name', '?')!r} gave more images than asked "
                            f"({start}..{stop}); it changed while being read. Run again.")
        flat = d.heads.reshape(b, K, E)                                     # [B, L*H, E]
        files["by_head"].write(done, flat.transpose(0, 1).numpy())
        files["rest"].write(done, d.rest.numpy())
        files["full"].write(done, d.total().numpy())
        moments.add(flat)
        layers, done = d.layers, done + b
        if progress:
            progress(b)
    if done != stop:
        raise DataError(f"The image set {getattr(image_set, 'name', '?')!r} gave {done - start} of images "
                        f"{start}..{stop}; it changed while being read. Run again.")
    return moments, layers


def decompose_image_set(loaded, image_set, n_layers: int = 4, batch_size: int = 64,
                        progress: Callable[[int, int], None] | None = None,
                        store: Store | None = None, precision: str = "fp32",
                        shards: "Callable | None" = None, norm: str = "own-mean") -> SetDecomposition:
    """decompose() over a data.ImageSet, batch by batch, streamed into the store (kind "decomposition"):
    each batch's terms go straight to files on disk and into the heads' moments, so memory is flat in
    the number of images. The entry appears whole or not at all. Without a store (or with an in-memory
    one) the arrays are held in memory. Each convention (``norm``) is an entry of its own.

    ``shards``: ``shards(paths, shapes) -> [(Moments, layers), ...]`` fills the entry's files
    (``ROWS``, at ``paths``) elsewhere, e.g. as Ray tasks (``ccs_core.shards``); their moments merge
    exactly. A runner that says its convention (``shards.norm``) must say ``norm``."""
    if getattr(shards, "norm", norm) != norm:
        raise DataError(f"The shards decompose under {shards.norm!r}, this entry is {norm!r}: build the runner "
                        "with the same norm.")
    check_precision(precision, loaded)  # fp16 on the CPU: refused before anything is read or written
    n_total = len(image_set)
    store = store if store is not None else Store(None)
    hit = open_decomposition(loaded, image_set, n_layers, store, precision, norm)
    if hit is not None:
        if progress:
            progress(n_total, n_total)
        return hit
    if n_total == 0:
        raise DataError(f"The image set {getattr(image_set, 'name', '?')!r} has no images to decompose.")
    key, shapes = entry(loaded, image_set, n_layers, precision, norm)
    seen = [0]

    def step(b: int) -> None:
        seen[0] += b
        if progress:
            progress(seen[0], n_total)

    if progress:
        progress(0, n_total)
    with store.write_mapped("decomposition", key) as w:
        files = {name: w.create(name, shapes[name], row_axis=axis) for name, axis in ROWS.items()}
        if shards is None:
            moments, layers = decompose_rows(loaded, image_set, files, 0, n_total, n_layers, batch_size,
                                             precision, step, norm=norm)
        else:
            if w.tmp is None:
                raise DataError("Sharded runs need a cache on disk that their processes share; the cache "
                                "is in memory here. Point CCS_CACHE_DIR at a writable directory.")
            for f in files.values():
                f.close()
            parts = shards({name: str(w.tmp / f"{name}.npy") for name in ROWS}, shapes)
            moments, layers = parts[0]
            for m, _ in parts[1:]:
                moments = moments.merge(m)
            if progress:
                progress(n_total, n_total)
        for name, a in {**moments.to_arrays(), "layers": np.asarray(layers, dtype=np.int64)}.items():
            w.put(name, a)
    out = open_decomposition(loaded, image_set, n_layers, store, precision, norm)  # just written, mapped
    if out is None:
        raise DataError(f"The decomposition just written to the cache cannot be read back ({store.root}); "
                        "check the disk, or point CCS_CACHE_DIR at another directory.")
    return out

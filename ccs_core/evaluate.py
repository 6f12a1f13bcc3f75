"""Zero-shot classification of original / pruned models, as one table shared by the app and the CLI.

A task is class names x prompt templates; its text classifier (mean of the normalised template
embeddings per class, renormalised) is computed once per (model, task) and cached. Image embeddings of
every pruning configuration come from ``prune.configs_features`` (residual-cache fast path) and are
cached per (model, image set, heads, mode) in the Store.

Precision (``precision.py``): the image forward (residual stream, recomputed layers, head means) and
the text classifier run under the chosen autocast on the model's device; features and classifiers are
float32, and every cache of them is keyed by the precision (the fp32 keys as before the option).

Result rows: {strategy, seed, n_heads, heads, accuracy, mean_true_prob, n_images, task, mode, model}.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import DataError
from .precision import DEFAULT, autocast, check_precision, key_part
from .threads import one_thread
from .prune import (DirectEffectPreview, PruneConfig, ResidualCache, build_residual_cache,
                    configs_features, features_from_cache, head_means)
from .store import Store, cache_key
from .zeroshot import ZeroShotTask

FEATURES_VERSION = "pruned-features-v1"

_CLASSIFIERS: dict[tuple[str, str, str], torch.Tensor] = {}


def text_classifier(loaded, task: ZeroShotTask, store: Store | None = None,
                    precision: str = DEFAULT) -> torch.Tensor:
    """Per class: mean of normalised template embeddings, renormalised (the text tower under
    ``precision``; float32). # [C, embed_dim]"""
    task.check()
    mem = (loaded.key, task.key, precision)
    if mem in _CLASSIFIERS:
        return _CLASSIFIERS[mem]
    key = cache_key(kind="classifier", model=loaded.key, task=task.key, **key_part(precision))
    hit = store.get_arrays("classifier", key, {"w": (len(task.classnames), None)}) if store is not None else None
    if hit is not None:
        clf = torch.from_numpy(hit["w"])
    else:
        emb = loaded.encode_texts(task.prompts(), precision=precision)  # [C * T, d]
        emb = emb.view(len(task.classnames), len(task.templates), -1).mean(1)  # [C, d]
        clf = emb / emb.norm(dim=-1, keepdim=True)
        if store is not None:
            store.set_arrays("classifier", key, {"w": clf.numpy()})
    if loaded.key:
        _CLASSIFIERS[mem] = clf
    return clf


def logit_scale(loaded) -> float:
    """The model's softmax temperature (exp(logit_scale), capped at 100 as CLIP does)."""
    scale = getattr(loaded.model, "logit_scale", None)
    return 100.0 if scale is None else float(min(scale.detach().float().exp().item(), 100.0))


def zero_shot_metrics(features: torch.Tensor, classifier: torch.Tensor, labels: Sequence[int],
                      scale: float = 100.0) -> dict:
    """Top-1 accuracy and mean softmax probability of the true class. features [N, d], classifier [C, d]"""
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    if len(labels_t) != len(features):
        raise DataError(f"{len(features)} images but {len(labels_t)} labels.")
    if len(labels_t) == 0:
        raise DataError("Zero-shot evaluation needs at least one labelled image.")
    feats = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    logits = scale * feats @ classifier.T  # [N, C]
    probs = logits.softmax(-1)
    true_p = probs.gather(1, labels_t[:, None]).squeeze(1)  # [N]
    return {"accuracy": float((logits.argmax(-1) == labels_t).float().mean()),
            "mean_true_prob": float(true_p.mean())}


def features_key(loaded, image_set, config: PruneConfig, mode: str, precision: str = DEFAULT) -> str:
    return cache_key(v=FEATURES_VERSION, model=loaded.key, images=image_set.key,
                     heads=config.names, mode=mode, **key_part(precision))


_RESIDUALS: "OrderedDict[tuple[str, str, str], ResidualCache]" = OrderedDict()
_RESIDUAL_LOCK = threading.Lock()
RESIDUAL_BUDGET = int(os.environ.get("CCS_RESIDUAL_CACHE_MB", "2048")) * 2**20  # bytes kept in memory


def residual_cache(loaded, image_set, first_layer: int, batch_size: int = 64,
                   progress: "Callable[[int, int], None] | None" = None,
                   precision: str = DEFAULT) -> ResidualCache | None:
    """The residual stream entering ``first_layer`` for the image set, kept in memory per (model, image
    set, precision) and reused by later calls that prune at or after it. None if it would exceed
    RESIDUAL_BUDGET."""
    if not loaded.key or not image_set.key:
        return None
    key = (loaded.key, image_set.key, precision)
    with _RESIDUAL_LOCK:
        hit = _RESIDUALS.get(key)
        if hit is not None and hit.first_layer <= first_layer:
            _RESIDUALS.move_to_end(key)
            return hit
    from .tower import n_tokens

    need = len(image_set) * n_tokens(loaded) * loaded.spec.width * 4
    if need > RESIDUAL_BUDGET:
        return None
    cache = build_residual_cache(loaded, image_set.batches(loaded.preprocess, batch_size), first_layer,
                                 progress=progress, total=len(image_set), precision=precision)
    with _RESIDUAL_LOCK:
        _RESIDUALS[key] = cache
        while sum(c.nbytes for c in _RESIDUALS.values()) > RESIDUAL_BUDGET and len(_RESIDUALS) > 1:
            _RESIDUALS.popitem(last=False)
    return cache


def pruned_features(loaded, image_set, configs: Sequence[PruneConfig], mode: str = "zero",
                    batch_size: int = 64, store: Store | None = None,
                    progress: "Callable[[int, int], None] | None" = None,
                    first_layer: int | None = None, keep_residual: bool = False,
                    precision: str = DEFAULT) -> list[torch.Tensor]:
    """Image embeddings (float32) of every configuration over the image set (Store-cached). -> list of [N, d]

    The residual stream entering the first pruned layer (or ``first_layer``, e.g. the first analysed
    layer) is computed once: per batch for all configurations, or, with ``keep_residual`` (the app),
    once per (model, image set, precision) in memory for later calls. Mean-ablation uses each head's mean
    over this same image set (per token position). All of it runs under ``precision``'s autocast on the
    model's device (``precision.py``)."""
    check_precision(precision, loaded)  # fp16 on the CPU: refused before any work
    out: list[torch.Tensor | None] = [None] * len(configs)
    keys = [features_key(loaded, image_set, c, mode, precision) for c in configs]
    if store is not None:
        for i, k in enumerate(keys):
            if (hit := store.get_arrays("pruned_features", k, {"f": (len(image_set), None)})) is not None:
                out[i] = torch.from_numpy(hit["f"])
    todo = [i for i, o in enumerate(out) if o is None]
    if not todo:
        return out  # type: ignore[return-value]
    with autocast(loaded, precision):
        means = None
        if mode == "mean":
            layers = sorted({h.layer for i in todo for h in configs[i].heads})
            means = head_means(loaded, image_set.batches(loaded.preprocess, batch_size), layers)
        first = min([h.layer for i in todo for h in configs[i].heads] + [loaded.spec.n_layers] +
                    ([first_layer] if first_layer is not None else []))
        cache = residual_cache(loaded, image_set, first, batch_size, progress, precision) if keep_residual else None
        if cache is not None:
            feats = [features_from_cache(loaded, cache, configs[i].heads, mode, means, batch_size) for i in todo]
        else:
            feats = configs_features(loaded, image_set.batches(loaded.preprocess, batch_size),
                                     [configs[i].heads for i in todo], mode, means, progress,
                                     total=len(image_set))
    for i, f in zip(todo, (f.float() for f in feats)):  # [N, d] float32 whatever the autocast
        if f.shape[0] != len(image_set) or not bool(torch.isfinite(f).all()):
            raise DataError(f"Pruned features for {configs[i].strategy!r}: {f.shape[0]} rows for {len(image_set)} "
                            "images, or non-finite values; nothing was cached (check --batch-size and the "
                            "checkpoint).")
        out[i] = f
        if store is not None:
            store.set_arrays("pruned_features", keys[i], {"f": f.numpy()})
    return out  # type: ignore[return-value]


def config_row(config: PruneConfig, **metrics) -> dict:
    return {"strategy": config.strategy, "seed": config.seed, "n_heads": len(config.heads),
            "heads": config.names, **metrics}


def prune_eval(loaded, image_set, task: ZeroShotTask, configs: Sequence[PruneConfig],
               mode: str = "zero", batch_size: int = 64, store: Store | None = None,
               progress: "Callable[[int, int], None] | None" = None, first_layer: int | None = None,
               keep_residual: bool = False, precision: str = DEFAULT) -> list[dict]:
    """Zero-shot accuracy and mean true-class probability for every configuration (image and text
    towers under ``precision``). -> table rows"""
    if image_set.labels is None:
        raise DataError(f"Image set {image_set.name!r} has no class labels; zero-shot evaluation needs "
                        "a labelled dataset (an ImageFolder with one folder per class, or a known dataset).")
    if len(image_set) == 0:
        raise DataError(f"Image set {image_set.name!r} is empty.")
    check_precision(precision, loaded)
    clf = text_classifier(loaded, task, store, precision)
    scale = logit_scale(loaded)
    feats = pruned_features(loaded, image_set, configs, mode, batch_size, store, progress, first_layer,
                            keep_residual, precision)
    return [config_row(c, **zero_shot_metrics(f, clf, image_set.labels, scale), n_images=len(f),
                       task=task.name, mode=mode, model=loaded.name)
            for c, f in zip(configs, feats)]


def preview_eval(loaded, preview: DirectEffectPreview, labels: Sequence[int], task: ZeroShotTask,
                 configs: Sequence[PruneConfig], mode: str = "zero", store: Store | None = None) -> list[dict]:
    """The instant, APPROXIMATE table from the stored decomposition (rows marked approximate=True)."""
    clf, scale = text_classifier(loaded, task, store), logit_scale(loaded)
    with one_thread():  # memory-bound sums: two threads contend on a busy machine (threads.py)
        return [config_row(c, **zero_shot_metrics(preview.features(c.heads, mode), clf, labels, scale),
                           n_images=len(labels), task=task.name, mode=mode, model=loaded.name, approximate=True)
                for c in configs]


def summarize(rows: Sequence[dict], metrics: Sequence[str] = ("accuracy", "mean_true_prob"),
              by: Sequence[str] = ("strategy",)) -> list[dict]:
    """One row per ``by`` group (default: strategy): mean and sample std (over random seeds) of each
    metric, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    out = []
    for key, rs in groups.items():
        row = {**dict(zip(by, key)), "runs": len(rs), "n_heads": rs[0]["n_heads"]}
        for m in metrics:
            vals = np.array([r[m] for r in rs if r.get(m) is not None], dtype=float)
            row[m] = float(vals.mean()) if len(vals) else math.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append(row)
    return out


# ---- text-to-video retrieval ---------------------------------------------------------------------

class _Frames:
    """All frames of a VideoSet as one image set (what ``pruned_features`` iterates)."""

    def __init__(self, videos):
        self.videos = videos
        self.key = cache_key(kind="frames", videos=videos.key)
        self.owner = [v for v, clip in enumerate(videos.frames) for _ in clip]  # [F] video of each frame

    def __len__(self) -> int:
        return len(self.owner)

    def batches(self, preprocess, batch_size: int):
        flat = [f for clip in self.videos.frames for f in clip]
        for i in range(0, len(flat), batch_size):
            yield torch.stack([preprocess(self.videos.open_frame(f)) for f in flat[i:i + batch_size]])


def video_embeddings(frame_feats: torch.Tensor, owner: Sequence[int], n_videos: int) -> torch.Tensor:
    """Video embedding = mean of its normalised frame embeddings, renormalised. # [V, d]"""
    f = frame_feats / frame_feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    idx = torch.as_tensor(list(owner), dtype=torch.long)
    sums = torch.zeros(n_videos, f.shape[1]).index_add_(0, idx, f)
    return sums / sums.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def retrieval_metrics(text: torch.Tensor, videos: torch.Tensor, target: Sequence[int]) -> dict:
    """Text-to-video R@1/5/10 and median rank (1 = best; ties count against). text [M, d], videos [V, d]"""
    sims = text @ videos.T  # [M, V]
    tgt = torch.as_tensor(list(target), dtype=torch.long)
    true = sims.gather(1, tgt[:, None])  # [M, 1]
    ranks = (sims > true).sum(1) + (sims == true).sum(1)  # [M]: 1 + better + ties other than itself
    out = {f"R@{k}": float((ranks <= k).float().mean()) for k in (1, 5, 10)}
    out["median_rank"] = float(ranks.float().median())
    return out


def retrieval_eval(loaded, videos, configs: Sequence[PruneConfig], mode: str = "zero", batch_size: int = 64,
                   store: Store | None = None, progress: "Callable[[int, int], None] | None" = None,
                   precision: str = DEFAULT) -> list[dict]:
    """R@1/5/10 and median rank of caption -> video retrieval for every configuration (both towers
    under ``precision``). -> table rows"""
    if not videos.captions or not videos.frames:
        raise DataError(f"Video set {videos.name!r} has no captioned videos.")
    check_precision(precision, loaded)
    frames = _Frames(videos)
    text = loaded.encode_texts(list(videos.captions), precision=precision)  # [M, d]
    feats = pruned_features(loaded, frames, configs, mode, batch_size, store, progress, precision=precision)
    return [config_row(c, **retrieval_metrics(text, video_embeddings(f, frames.owner, len(videos.frames)),
                                              videos.caption_video),
                       n_videos=len(videos.frames), n_captions=len(videos.captions), task=videos.name,
                       mode=mode, model=loaded.name)
            for c, f in zip(configs, feats)]

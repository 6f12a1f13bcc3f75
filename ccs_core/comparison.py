"""The paper's pruning comparison in one call: original vs high-CCS, low-CCS and random heads (5 seeds)
on many tasks at once, plus the concept-specific matrix (heads of concept X pruned x task Y).

An evaluation *suite* is a list of ``SuiteSet``: one image set with one or more zero-shot tasks over
it (the toy world: one rendered set per style, one task per factor). Embeddings are computed once per
(image set, configuration) and every task's classifier is applied to them, so 6 factor tasks cost one
pass. Rows are plain dicts (JSON-ready); ``table3`` and ``concept_matrix`` shape them like the paper.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import DataError
from .evaluate import logit_scale, pruned_features, text_classifier, zero_shot_metrics
from .zeroshot import ZeroShotTask
from .strategies import CCSTable, PruneConfig, build_configs

PAPER_STRATEGIES = ("high", "low", "random")


@dataclass
class SuiteSet:
    """One image set and the zero-shot tasks evaluated on it; labels[task.name] -> class per image."""
    name: str                        # shown in tables ("normal", "hard", "outline")
    image_set: object                # an ImageSet
    tasks: list[ZeroShotTask]
    labels: dict[str, list[int]]


def paper_configs(table: CCSTable, n_layers: int, n_heads: int, n_seeds: int = 5,
                  skipped: "list[str] | None" = None) -> list[PruneConfig]:
    """original, high (every CCS >= high head), low (every CCS <= low head), random x n_seeds (as many
    heads as high, from the analysed layers minus the high heads). An empty strategy is noted in
    ``skipped`` (or raises EmptyStrategyError when ``skipped`` is None)."""
    return build_configs(PAPER_STRATEGIES, table, n_layers, n_heads, n_seeds, skipped=skipped)


def concept_configs(table: CCSTable) -> list[PruneConfig]:
    """Per concept label: its high-CCS heads (the paper's section 4.4 prunes CCS-5 heads only)."""
    out = []
    for label in table.labels():
        heads = table.concept_heads(label, min_ccs=table.high)
        if heads:
            out.append(PruneConfig(f"concept:{label}", tuple(heads)))
    return out


def evaluate_suite(loaded, suite: Sequence[SuiteSet], configs: Sequence[PruneConfig], store=None,
                   mode: str = "zero", batch_size: int = 64,
                   progress: "Callable[[str, float], None] | None" = None,
                   precision: str = "fp32") -> list[dict]:
    """One row per (set, task, configuration): accuracy and mean true-class probability (both towers
    under ``precision``: ``precision.py``)."""
    for s in suite:
        missing = [t.name for t in s.tasks if t.name not in s.labels]
        if missing:
            raise DataError(f"Evaluation set {s.name!r} has no labels for task(s) {', '.join(missing)}.")
    scale = logit_scale(loaded)
    rows: list[dict] = []
    for i, s in enumerate(suite):
        if progress:
            progress(i, len(suite), f"Evaluating {len(configs)} configurations on '{s.name}' "
                                    f"({len(s.image_set)} images)")
        first = min([h.layer for c in configs for h in c.heads] + [loaded.spec.n_layers])
        feats = pruned_features(loaded, s.image_set, configs, mode, batch_size, store, first_layer=first,
                                precision=precision)
        for task in s.tasks:
            clf = text_classifier(loaded, task, store, precision)
            for c, f in zip(configs, feats):
                m = zero_shot_metrics(f, clf, s.labels[task.name], scale)
                rows.append({"set": s.name, "task": task.name, "strategy": c.strategy, "seed": c.seed,
                             "n_heads": len(c.heads), "heads": c.names, **m})
    if progress:
        progress(len(suite), len(suite), "Evaluation done")
    return rows


def _mean(rows: list[dict], metric: str) -> float:
    return float(np.mean([r[metric] for r in rows]))


def table3(rows: Sequence[dict], metric: str = "accuracy") -> list[dict]:
    """Paper Table 3 shape: one row per (set, task) with original, high, low and random (mean, std
    over seeds) -- plus any other strategy found (concepts excluded)."""
    out: dict[tuple, dict] = {}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["strategy"].startswith("concept:"):
            continue
        groups.setdefault((r["set"], r["task"], r["strategy"]), []).append(r)
    for (sset, task, strategy), rs in groups.items():
        row = out.setdefault((sset, task), {"set": sset, "task": task})
        vals = [r[metric] for r in rs]
        row[strategy] = float(np.mean(vals))
        if len(vals) > 1:
            row[f"{strategy}_std"] = float(np.std(vals, ddof=1))
    return list(out.values())


def mean_drops(rows: Sequence[dict], sets: "Sequence[str] | None" = None,
               metric: str = "accuracy") -> dict[str, float]:
    """Per strategy: mean over the chosen sets' tasks of (original - pruned); random averaged over seeds."""
    tab = [t for t in table3(rows, metric) if sets is None or t["set"] in sets]
    strategies = [k for k in tab[0] if k not in ("set", "task", "original") and not k.endswith("_std")] \
        if tab else []
    return {s: float(np.mean([t["original"] - t[s] for t in tab if s in t])) for s in strategies}


def concept_matrix(rows: Sequence[dict], set_name: str, metric: str = "accuracy") -> list[dict]:
    """Heads of concept X pruned (rows) x task Y (columns): drop of Y's metric, on one set."""
    base = {r["task"]: r[metric] for r in rows if r["set"] == set_name and r["strategy"] == "original"}
    out: dict[str, dict] = {}
    for r in rows:
        if r["set"] == set_name and r["strategy"].startswith("concept:"):
            row = out.setdefault(r["strategy"], {"concept": r["strategy"].split(":", 1)[1],
                                                 "n_heads": r["n_heads"]})
            row[r["task"]] = base[r["task"]] - r[metric]
    return list(out.values())

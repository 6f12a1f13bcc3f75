"""Prune-and-evaluate and bias runs for the app: which task, which head sets, preview vs exact.

Plain functions over ccs_core (no Streamlit); bias goes through ``ccs_core.analysis`` (the same
defaults as the CLI). Every run takes the session's protocol (``ccs_core.protocol``: standard or paper),
as the CLI's ``--protocol``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence


from ccs_core.errors import DataError, HeadSpecError
from ccs_core.heads import parse_heads
from ccs_core.prune import CCSTable, PruneConfig, strategy_configs

STRATEGIES = {"high": "High-CCS heads", "low": "Low-CCS heads",
              "random": "Random heads (same count as high, 5 seeds)",
              "concept": "Heads of one concept", "custom": "Custom heads"}


@dataclass(frozen=True)
class PruneRequest:
    strategy: str                  # high | low | random | concept | custom
    task: str                      # a name from ``task_names``
    n_images: int = 256
    concept: str = ""
    heads: tuple[str, ...] = ()    # custom heads, "L5.H3"
    mode: str = "zero"
    protocol: str = "standard"     # ccs_core.protocol: concept pruning, templates, groups


def task_names(images: str) -> list[str]:
    """Zero-shot tasks for the session's images: one per toy factor, or the folder's classes."""
    if images == "toy":
        from ccs_core.toyworld.tasks import toy_tasks

        return [f"toy:{f}" for f in toy_tasks()]  # the CLI's --dataset spec of the same task
    return [f"folder classes ({images})"]


def resolve_task(images: str, task: str, n_images: int, folder_set=None, protocol: str = "standard"):
    """(ZeroShotTask, labelled ImageSet) for a task of ``task_names`` (a toy task is its dataset spec,
    ``toy:<factor>``), under ``protocol`` as ``load_dataset`` applies it (the toy world's and a folder's
    tasks keep their templates under both protocols)."""
    from ccs_core import protocol as protocols

    task, data = _resolve_task(images, task, n_images, folder_set)
    data, task = protocols.apply("toy" if images == "toy" else "folder", data, task, protocols.get(protocol))
    return task, data


def _resolve_task(images: str, task: str, n_images: int, folder_set=None):
    from ccs_core.zeroshot import ZeroShotTask

    if images == "toy":
        from ccs_core.toyworld.tasks import toy_image_set, toy_tasks

        from ccs_core.datasets import parse_spec

        factor = parse_spec(task).arg if task.startswith("toy:") else ""
        tasks = toy_tasks()
        if factor not in tasks:
            raise DataError(f"Unknown toy task {task!r}; choose one of {', '.join(task_names('toy'))}.")
        # the analysed images (same split, seed and count) with this factor's labels: their
        # decomposition is already cached, so the preview is instant
        return tasks[factor], toy_image_set("test", n=n_images, seed=0, factor=factor)
    if folder_set is None or folder_set.labels is None or not folder_set.classes:
        raise DataError("This image folder has no classes (one sub-folder per class): zero-shot "
                        "evaluation needs them.")
    from ccs_core.datasets import clean_name

    names = [clean_name(c) for c in folder_set.classes]  # as the CLI's folder task: 'hot_dog' is 'hot dog'
    return ZeroShotTask(name=f"folder:{folder_set.name}", classnames=names).check(), folder_set


def configs(req: PruneRequest, table: CCSTable | None, n_layers: int, n_heads: int) -> list[PruneConfig]:
    """The original model plus the requested strategy's head set(s)."""
    if req.strategy == "custom":
        heads = parse_heads(list(req.heads))
        if not heads:
            raise HeadSpecError("Pick at least one head for a custom pruning (e.g. L5.H3).")
        spec = "heads:" + ",".join(str(h) for h in heads)
    elif req.strategy == "concept":
        if not req.concept:
            raise HeadSpecError("Choose the concept whose heads to prune.")
        spec = f"concept:{req.concept}"
    else:
        spec = req.strategy
    from ccs_core.protocol import get

    min_ccs = get(req.protocol).concept_min_ccs if req.strategy == "concept" else None
    try:
        chosen = strategy_configs(spec, table, n_layers, n_heads, concept_min_ccs=min_ccs)
    except HeadSpecError as err:
        if min_ccs is None or "concept-min-ccs" not in str(err):
            raise
        raise HeadSpecError(f"{str(err).split(';')[0]}; the {req.protocol} protocol prunes only a concept's "
                            f"CCS-{min_ccs} heads. Choose another concept, or set Protocol to standard in the "
                            "sidebar to prune every head with this label.") from None
    if all(not c.heads for c in chosen):
        raise HeadSpecError(f"The {STRATEGIES.get(req.strategy, req.strategy).lower()} set is empty "
                            "for this model: no head falls in that category. Try another strategy.")
    return [PruneConfig("original")] + chosen


def preview(loaded, image_set, task, cfgs: Sequence[PruneConfig], n_layers: int, store=None) -> list[dict]:
    """APPROXIMATE accuracies from the stored decomposition (direct effects only), in milliseconds."""
    from ccs_core.decompose import decompose_image_set
    from ccs_core.evaluate import preview_eval
    from ccs_core.prune import DirectEffectPreview

    # own-mean whatever convention the spans used: a head's own-mean term is its direct effect
    dec = decompose_image_set(loaded, image_set, n_layers=n_layers, store=store, norm="own-mean")
    return preview_eval(loaded, DirectEffectPreview.from_decomposition(dec), image_set.labels, task,
                        cfgs, store=store)


def exact(loaded, image_set, task, cfgs: Sequence[PruneConfig], store=None,
          progress: Callable[..., None] | None = None, mode: str = "zero") -> list[dict]:
    from ccs_core.evaluate import prune_eval

    return prune_eval(loaded, image_set, task, cfgs, mode=mode, store=store, progress=progress)


def bias(loaded, cfgs: Sequence[PruneConfig], images: str, n: int = 400, store=None,
         progress: Callable[..., None] | None = None, protocol: str = "standard") -> list[dict]:
    """MaxSkew rows on the toy world's group-balanced set (groups = backgrounds, prompts = shapes)."""
    if images != "toy":
        raise DataError("The bias view needs images with group labels; for an image folder use the CLI "
                        "with a FairFace or SocialCounterfactuals CSV (bias --dataset fairface:CSV or "
                        "socialcounterfactuals:CSV). With the toy world it uses its balanced bias set.")
    from ccs_core.analysis import bias_setup, run_bias

    return run_bias(loaded, bias_setup("toy-bias", n=n, protocol=protocol), cfgs, store=store, progress=progress)


METRICS = {"accuracy": "accuracy", "mean_true_prob": "mean true-class probability"}
SET_NAMES = {"normal": "as trained", "hard": "hard (fine-grained analogue)",
             "outline": "outline (out-of-domain)", "folder": "image folder"}


def summary_rows(rows: list[dict], metric: str = "accuracy") -> list[dict[str, Any]]:
    """Per strategy: the metric's mean as ``value``, its spread (min..max over random seeds) as
    ``lo``/``hi``, and the heads pruned."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["strategy"], []).append(r)
    out = []
    for strategy, rs in groups.items():
        vals = [float(r[metric]) for r in rs]
        mean = sum(vals) / len(vals)
        out.append({"config": strategy, "value": mean, "lo": min(vals) if len(vals) > 1 else None,
                    "hi": max(vals) if len(vals) > 1 else None, "runs": len(vals),
                    "n_heads": rs[0]["n_heads"],
                    "detail": ", ".join(rs[0]["heads"][:8]) + (" …" if len(rs[0]["heads"]) > 8 else "")
                    if len(rs) == 1 else f"{len(rs)} seeds"})
    return out


# ---- the paper's comparison (the Prune page's default run) --------------------------------------

STRATEGY_COLORS = {"original": "#7f7f7f", "high": "#d62728", "low": "#1f77b4", "random": "#ff7f0e",
                   "random (all layers)": "#ff7f0e"}


COMPARE_N = 512  # toy images per style in the default comparison (as toyworld.report)


def comparison(loaded, table: CCSTable, images: str, folder_set=None, store=None,
               progress: Callable[..., None] | None = None, n: int = COMPARE_N,
               protocol: str = "standard") -> dict:
    """Original vs high / low / random (5 seeds) and each concept's CCS-5 heads on every task at once.

    Toy world: every factor task in the normal, hard and outline styles, plus MaxSkew
    (``ccs_core.toyworld.miniature.compare``). An image folder with classes: its one task, no bias.
    The concept matrix prunes CCS-5 (high) heads under both protocols, as the paper's section 4.4; the
    result records ``protocol``."""
    if images == "toy":
        from ccs_core.toyworld.miniature import compare

        return {**compare(loaded, table, store, n=n, progress=progress), "protocol": protocol}
    from ccs_core.comparison import SuiteSet, concept_configs, evaluate_suite, paper_configs

    task, iset = resolve_task(images, "", 0, folder_set, protocol)
    skipped: list[str] = []
    cfgs = paper_configs(table, loaded.spec.n_layers, loaded.spec.n_heads, skipped=skipped)
    suite = [SuiteSet("folder", iset, [task], {task.name: list(iset.labels)})]
    rows = evaluate_suite(loaded, suite, cfgs + concept_configs(table), store, progress=progress)
    return {"rows": rows, "bias": [], "skipped": skipped, "n_images": len(iset), "styles": ["folder"],
            "protocol": protocol}


def comparison_frame(rows: list[dict], set_name: str, metric: str = "accuracy"):
    """Per (task, strategy) on one set: mean ``value`` and min..max over random seeds (concepts left out)."""
    import pandas as pd

    df = pd.DataFrame([r for r in rows if r["set"] == set_name and not r["strategy"].startswith("concept:")])
    if df.empty:
        return pd.DataFrame(columns=["task", "strategy", "value", "lo", "hi", "runs"])
    g = df.groupby(["task", "strategy"], sort=False)[metric]
    out = pd.DataFrame({"value": g.mean(), "lo": g.min(), "hi": g.max(), "runs": g.size()}).reset_index()
    out.loc[out["runs"] < 2, ["lo", "hi"]] = None
    from ccs_core.toyworld.world import UNNAMED

    out["task"] = [t + " (unnamed)" if t in UNNAMED else t for t in out["task"].str.removeprefix("toy-")]
    return out


def table3_frame(rows: list[dict], set_name: str, metric: str = "accuracy"):
    """Paper Table 3 shape: one row per task, columns original / high / low / random (mean ± std)."""
    import pandas as pd

    from ccs_core.comparison import table3

    tab = [t for t in table3(rows, metric) if t["set"] == set_name]
    df = pd.DataFrame(tab).drop(columns=["set"], errors="ignore")
    if df.empty:
        return df
    df["task"] = df["task"].str.removeprefix("toy-")
    from ccs_core.toyworld.world import UNNAMED  # what no text pool names: after the mean, never in it

    unnamed = df["task"].isin(UNNAMED)
    named, extra = df[~unnamed], df[unnamed].assign(task=lambda d: d["task"] + " (unnamed)")
    mean = named[[c for c in df.columns if c != "task" and not c.endswith("_std")]].mean(numeric_only=True)
    label = "mean" if extra.empty else f"mean of the {len(named)}"
    return pd.concat([named, pd.DataFrame([{"task": label, **mean.to_dict()}]), extra], ignore_index=True)


def concept_frame(rows: list[dict], set_name: str, metric: str = "accuracy"):
    """Long form of the concept matrix: concept (heads pruned) x task -> drop."""
    import pandas as pd

    from ccs_core.comparison import concept_matrix

    out = []
    for row in concept_matrix(rows, set_name, metric):
        for k, v in row.items():
            if k not in ("concept", "n_heads"):
                out.append({"concept": f"{row['concept']} ({row['n_heads']} heads)",
                            "task": k.removeprefix("toy-"), "drop": v})
    return pd.DataFrame(out, columns=["concept", "task", "drop"])


def tradeoff_frame(rows: list[dict], bias_rows: list[dict], set_name: str):
    """Mean accuracy over the set's named tasks vs MaxSkew (mean over attributes), one point per
    configuration (each random seed its own point)."""
    import pandas as pd

    from ccs_core.toyworld.world import UNNAMED

    acc = pd.DataFrame([r for r in rows if r["set"] == set_name and r["task"].removeprefix("toy-") not in UNNAMED])
    bias = pd.DataFrame(bias_rows)
    if acc.empty or bias.empty:
        return pd.DataFrame(columns=["config", "strategy", "accuracy", "maxskew"])
    acc = acc.assign(seed=acc["seed"].fillna(-1)).groupby(["strategy", "seed"], sort=False)["accuracy"].mean()
    skew = bias.assign(seed=bias["seed"].fillna(-1)).groupby(["strategy", "seed"], sort=False)["maxskew_sum"].mean()
    df = pd.concat([acc, skew.rename("maxskew")], axis=1, join="inner").reset_index()
    df["config"] = [s if seed < 0 else f"{s} · seed {int(seed)}" for s, seed in zip(df["strategy"], df["seed"])]
    df["strategy"] = df["strategy"].str.replace(r" \(all layers\)", "", regex=True)
    return df[["config", "strategy", "accuracy", "maxskew"]]


def maxskew_frames(bias_rows: list[dict], acc):
    """A single run's bias rows -> (the rows' table, MaxSkew per config and attribute, accuracy vs
    MaxSkew per config) for the Prune page's two charts and table. ``acc``: its accuracy table
    (columns config, accuracy)."""
    import pandas as pd

    bdf = pd.DataFrame(bias_rows).astype({"seed": "Int64"})
    skew = (bdf.groupby(["strategy", "attribute"], sort=False)["maxskew_mean"].mean().reset_index()
            .rename(columns={"strategy": "config", "maxskew_mean": "maxskew"}))
    trade = acc[["config", "accuracy"]].merge(
        skew.groupby("config", sort=False)["maxskew"].mean().reset_index(), on="config")
    table = bdf[["strategy", "seed", "n_heads", "attribute", "k", "maxskew_sum", "maxskew_mean"]]
    return table, skew, trade


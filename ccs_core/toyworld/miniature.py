"""The toy world as a miniature of the paper's experiments, with the app's defaults.

``analyse``: TEXTSPAN on the last 4 layers over the app's toy image set (256 test images, seed 0) and
the default toy pool, labelled and judged by the exact toy labeller and judge -> spans, scores, CCS
table. CCS comes from the spans alone: nothing here sees accuracy or pruning results.
``compare``: original vs high / low / random (5 seeds) and each concept's CCS-5 heads on every factor
task of every style (normal, hard, outline), plus MaxSkew on the group-balanced bias set. The app's
default Prune run and ``toyworld.report`` both call it.
"""
from __future__ import annotations

from typing import Callable

from ..analysis import SpanParams, run_scores, run_spans
from ..comparison import concept_configs, evaluate_suite, paper_configs
from ..strategies import CCSTable

APP_IMAGES = {"split": "test", "n": 256, "seed": 0}   # the app's default analysed images
EVAL_IMAGES = {"n": 512, "seed": 1}                   # held-out evaluation images (test split)
BIAS_N = 600                                          # group-balanced bias images (100 per background)


def analyse(loaded, store=None, n_images: int = APP_IMAGES["n"], pool=None,
            params: SpanParams = SpanParams(), progress: "Callable[[str, float], None] | None" = None):
    """(spans, scores, CCSTable) with the app's defaults and the exact toy labeller and judge."""
    from ..judges.offline import ToyJudge
    from ..judges.labels import ToyLabeller
    from .pool import toy_pool
    from .tasks import toy_image_set

    images = toy_image_set(APP_IMAGES["split"], n_images, APP_IMAGES["seed"])
    spans = run_spans(loaded, images, pool or toy_pool(), params, store,
                      progress=progress or (lambda d, t, m="": None))
    scores = run_scores(spans, ToyLabeller(), [ToyJudge()], store)
    # random heads come from the analysed layers
    table = scores.ccs_table(spans.layers) if scores.heads else None
    return spans, scores, table


def compare(loaded, table: CCSTable, store=None, n: int = EVAL_IMAGES["n"], seed: int = EVAL_IMAGES["seed"],
            n_seeds: int = 5, bias_n: int = BIAS_N, styles=None,
            progress: "Callable[[int, int, str], None] | None" = None) -> dict:
    """Every paper strategy and concept on the toy suite, and MaxSkew; JSON-ready.

    -> {"rows": zero-shot rows (set, task, strategy, seed, accuracy, mean_true_prob),
        "bias": MaxSkew rows, "skipped": [why a strategy is empty], "n_images", "seed"}"""
    from ..analysis import bias_setup, run_bias
    from .tasks import SUITE_STYLES, toy_suite

    say = progress or (lambda d, t, m="": None)
    skipped: list[str] = []
    configs = paper_configs(table, loaded.spec.n_layers, loaded.spec.n_heads, n_seeds, skipped)
    concepts = concept_configs(table)
    say(0, 4, "Step 1/4 · rendering the evaluation images")
    suite = toy_suite(n, seed, styles or SUITE_STYLES)
    rows = evaluate_suite(loaded, suite, configs + concepts, store,
                          progress=lambda d, t, m="": say(d, t, f"Step 2/4 · {m}"))
    say(3, 4, "Step 3/4 · MaxSkew on the group-balanced bias set")
    bias = run_bias(loaded, bias_setup("toy-bias", n=bias_n), configs, store=store)
    say(4, 4, "Comparison done")
    return {"rows": rows, "bias": bias, "skipped": skipped, "n_images": n, "seed": seed,
            "styles": [s.name for s in suite]}

"""The page-side view of one analysis: the background jobs over ``ccs_core.analysis`` (the one
orchestrator) for a session's ``Ctx`` (``session.py``). Pages never chain core calls themselves."""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import streamlit as st

from ccs_core import analysis
from ccs_core.errors import CCSError, JudgeError
from ccs_core.scores import ScoreResult

from . import session as sn
from .jobs import Job
from .session import Ctx


def spans_job(ctx: Ctx) -> Job:
    """TEXTSPAN for every analysed head (decomposition included), as a background job."""
    images, pool, params = ctx.image_set, ctx.pool, ctx.span_params
    if len(images) < 2:
        raise CCSError(f"The image set {images.name!r} has {len(images)} usable image(s); "
                       "TEXTSPAN needs at least 2 (ideally hundreds). Choose another folder.")
    protocol = ctx.choices.protocol  # recorded in the result (the spans depend on it through params.norm)
    key = f"spans/{protocol}/" + analysis.spans_key(ctx.loaded, images, pool, params)
    loaded, store = ctx.loaded, ctx.store
    return ctx.board.submit(key, "Finding each head's spans (TEXTSPAN)",
                            lambda p: analysis.run_spans(loaded, images, pool, params, store=store,
                                                         progress=p, protocol=protocol))


def spans(ctx: Ctx, wait_s: float = 30.0):
    """The SpansResult, or None while the job still runs (its progress is on the page)."""
    from .ui import await_job

    return await_job(spans_job(ctx), wait_s=wait_s, key="spans")


NO_SCORES = "No labels or verdicts yet: run the judges on the Judge re-scoring page."


def scores(ctx: Ctx, spans, wait_s: float = 30.0) -> "ScoreResult | None":
    """Labels, verdicts and CCS for every head under the session's settings and CCS bands; None while
    running. A failed scoring job raises its error (see ``scores_or_error``)."""
    from .ui import await_job

    return with_thresholds(await_job(scores_job(ctx, spans), wait_s=wait_s, key="scores"))


def scores_or_error(ctx: Ctx, spans, wait_s: float = 30.0) -> "tuple[ScoreResult | None, CCSError | None]":
    """``scores``, or (None, the error) when scoring failed: the page still draws what it can."""
    try:
        return scores(ctx, spans, wait_s), None
    except CCSError as err:
        return None, err


def thresholds():
    """The session's CCS bands (sidebar): high >= th_high, low <= th_low, moderate 3, other between."""
    from ccs_core.ccs import Thresholds

    s = st.session_state
    return Thresholds(high_min=int(s.get("th_high") or 5), low_max=int(s.get("th_low", 1)))


def with_thresholds(result: "ScoreResult | None", th=None) -> "ScoreResult | None":
    """A copy of a scoring result with categories under ``th`` (default: the session's bands); the
    shared result is never changed and no judge is asked again."""
    if result is None:
        return result
    th = th or thresholds()
    return result if result.thresholds == asdict(th) else result.rescored(thresholds=th)


def coverage(scores: "ScoreResult | None", spans) -> str:
    """"over 45 of 48 heads; 2 silent ...; 1 incomplete ...": what a CCS@K share is computed over."""
    n_all = len(spans.heads)
    heads = scores.heads if scores is not None else {}
    done = sum(1 for h in spans.heads if h.head in heads and heads[h.head].ccs is not None)
    silent = sum(1 for h in spans.heads if h.silent)
    missing = n_all - done - silent
    if not missing and not silent:
        return f"over all {n_all} analysed heads"
    parts = ([f"{silent} silent (the output does not vary: nothing to label)"] if silent else []) + (
        [f"{missing} incomplete (no CCS: a label or verdict is missing)"] if missing else [])
    return f"over {done} of {n_all} heads; " + "; ".join(parts)


def reask(ctx: Ctx, spans) -> Job:
    """Score again, asking only what is missing: failed requests are never cached, so every label and
    verdict already received is read from the verdict cache and only the failed ones are re-sent."""
    return scores_job(ctx, spans, fresh=True)


def score_settings(ctx: Ctx) -> dict:
    """The session's applied labeller, judges and few-shot examples."""
    s = st.session_state
    return {"labeller": s.get("labeller") or sn.default_labeller(ctx.loaded.name),
            "judges": list(ctx.choices.judges or sn.default_judges(ctx.loaded.name)),
            "examples": s.get("fewshot_rows")}  # None = the labeller's defaults


def scores_job(ctx: Ctx, spans, settings: dict | None = None, heads: list[str] | None = None,
               fresh: bool = False, submit: bool = True, labels: dict[str, str] | None = None) -> "Job | str":
    """``analysis.run_scores`` in the background, for all heads (or ``heads``) under ``settings``.

    A warm start reads the stored result (``analysis.cached_scores``) without re-scoring, unless
    ``fresh``: a new run that re-sends only what is not in the verdict cache (failed requests are never
    cached), replacing a finished job of the same key. ``submit=False`` returns the job's key only."""
    settings = dict(settings or score_settings(ctx))
    examples = settings.get("examples") or None
    extra = {k: v for k, v in (("heads", heads), ("examples", examples), ("labels", labels)) if v}
    if extra:  # a part of the heads, or edited examples: a result of its own in the store
        spans = replace(spans, heads=[h for h in spans.heads if not heads or h.head in heads],
                        params={**spans.params, "app": analysis.cache_key(**extra)})
    store, kinds, lab_kind = ctx.store, list(settings["judges"]), settings["labeller"]
    judge_settings = sn.judge_settings()
    key = "scores/" + analysis.cache_key(
        spans=analysis.spans_key(ctx.loaded, ctx.image_set, ctx.pool, ctx.span_params),
        labeller=lab_kind, judges=kinds, settings=sn.settings_fingerprint(judge_settings), **extra)
    if not submit:
        return key
    old = ctx.board.get(key) if fresh else None
    if old is not None and not old.running:  # a new run (never a second one beside a running one)
        ctx.board.forget(key)

    def run(progress):
        from ccs_core.judges import make_judges
        from ccs_core.judges.labels import examples_from_rows, make_labeller

        labeller = make_labeller(lab_kind, judge_settings,
                                 examples=examples_from_rows(examples) if examples else None)
        judges, disabled = make_judges(kinds, judge_settings)
        if disabled:
            raise JudgeError("Some chosen judges are unavailable — " +
                             "; ".join(f"{k}: {why}" for k, why in disabled.items()))
        hit = None if fresh else analysis.cached_scores(spans, labeller, judges, store)
        if hit is not None:
            progress(1, 1, "Scores loaded from cache")
            return hit
        return analysis.run_scores(spans, labeller, judges, store=store, progress=progress, labels=labels)

    label = "Labelling and judging " + (", ".join(heads) if heads else "every head")
    return ctx.board.submit(key, label, run)


def top_images(ctx: Ctx, spans, head: str, k: int = 4) -> list[list[int]]:
    """Per span of ``head``: the k image indices projecting most onto it (cached per analysis)."""
    key = analysis.spans_key(ctx.loaded, ctx.image_set, ctx.pool, ctx.span_params)
    return _top_images(key, head, k, _ctx=ctx, _spans=spans)


@st.cache_data(show_spinner="Finding the top images…", max_entries=256)
def _top_images(spans_key: str, head: str, k: int, *, _ctx: Ctx, _spans) -> list[list[int]]:
    return analysis.top_images(_ctx.loaded, _ctx.image_set, _ctx.pool, _spans, head, k=k,
                               store=_ctx.store)


def human_notes(ctx: Ctx):
    from ccs_core.judges.human import HumanAnnotations

    return HumanAnnotations(ctx.store)


def agreement(ctx: Ctx, scores: "ScoreResult | None", notes) -> list[dict]:
    """Human-vs-judge agreement rows (empty until a human answer and a verdict exist)."""
    if scores is None or not scores.used_judges:
        return []
    from ccs_core.judges.human import agreement_table

    rows = agreement_table(scores, notes, ctx.loaded.key)
    return [r for r in rows if r.get("n")]


def experiment_job(ctx: Ctx, kind: str, request: Any, fn) -> Job:
    """A prune/bias run in the background, keyed by everything its head sets depend on (the request
    carries the protocol it runs under)."""
    from dataclasses import asdict as _asdict, is_dataclass

    req = _asdict(request) if is_dataclass(request) else request
    key = f"{kind}/" + analysis.cache_key(
        model=ctx.loaded.key, images=ctx.choices.images,
        spans=analysis.spans_key(ctx.loaded, ctx.image_set, ctx.pool, ctx.span_params),
        scores=score_settings(ctx), bands=asdict(thresholds()), request=req)
    label = {"exact": "Exact pruned evaluation", "bias": "MaxSkew before and after",
             "compare": "Paper comparison: original, high, low, random on every task"}.get(kind, kind)
    return ctx.board.submit(key, label, fn)

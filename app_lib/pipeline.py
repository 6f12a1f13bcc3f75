"""The page-side view of one analysis: the session's context and the background jobs over
``ccs_core.analysis`` (the one orchestrator). Pages never chain core calls themselves."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from ccs_core import analysis
from ccs_core.errors import CCSError
from ccs_core.models import LoadedModel

from . import context as cx
from .jobs import Job, JobBoard


@dataclass
class Ctx:
    choices: cx.Choices
    loaded: LoadedModel
    store: Any
    board: JobBoard

    @property
    def n_layers(self) -> int:
        return max(1, min(self.choices.n_layers, self.loaded.spec.n_layers))

    @property
    def image_set(self):
        return cx.get_image_set(self.choices.images, self.choices.n_images)

    @property
    def pool(self):
        return cx.get_pool(self.choices.pool, self.loaded.name)

    @property
    def span_params(self) -> analysis.SpanParams:
        return analysis.SpanParams(n_layers=self.n_layers, n_spans=self.choices.n_spans)

    @property
    def paper_model(self) -> str | None:
        from ccs_core.paper import paper_model

        return paper_model(self.loaded.name, self.loaded.pretrained)


def current() -> Ctx:
    """The session's context; raises CCSError (shown by the page guard) if the model cannot load."""
    c = cx.choices()
    loaded = cx.get_model(c.model_name, c.pretrained)
    return Ctx(choices=c, loaded=loaded, store=cx.get_store(), board=cx.get_board())


def spans_job(ctx: Ctx) -> Job:
    """TEXTSPAN for every analysed head (decomposition included), as a background job."""
    images, pool, params = ctx.image_set, ctx.pool, ctx.span_params
    if len(images) < 2:
        raise CCSError(f"The image set {images.name!r} has {len(images)} usable image(s); "
                       "TEXTSPAN needs at least 2 (ideally hundreds). Choose another folder.")
    key = "spans/" + analysis.spans_key(ctx.loaded, images, pool, params)
    loaded, store = ctx.loaded, ctx.store
    return ctx.board.submit(key, "Finding each head's spans (TEXTSPAN)",
                            lambda p: analysis.run_spans(loaded, images, pool, params, store=store,
                                                         progress=p))


def spans(ctx: Ctx, wait_s: float = 30.0):
    """The SpansResult, or None while the job still runs (its progress is on the page)."""
    from .ui import await_job

    return await_job(spans_job(ctx), wait_s=wait_s, key="spans")


def scores_available() -> bool:
    return hasattr(analysis, "run_scores")


def scores_note() -> str:
    if not scores_available():
        return ("Labels, judges' verdicts and CCS are not available yet in this build "
                "(ccs_core.analysis.run_scores is missing); the grid shows variance explained.")
    return "No labels or verdicts yet: run the judges on the Judge re-scoring page."


def scores(ctx: Ctx, spans, wait_s: float = 30.0) -> dict | None:
    """Labels, verdicts and CCS for every head, or None (not available or still running)."""
    if not scores_available():
        return None
    from .ui import await_job

    return await_job(scores_job(ctx, spans), wait_s=wait_s, key="scores")


def scores_job(ctx: Ctx, spans, judges: tuple[str, ...] | None = None, **options: Any) -> Job:
    judges = tuple(judges if judges is not None else (ctx.choices.judges or
                                                       cx.default_judges(ctx.loaded.name)))
    store = ctx.store
    key = "scores/" + analysis.cache_key(spans=analysis.spans_key(ctx.loaded, ctx.image_set, ctx.pool,
                                                                  ctx.span_params),
                                         judges=judges, options=options)
    return ctx.board.submit(key, "Labelling and judging every head",
                            lambda p: analysis.run_scores(spans, judges=list(judges), store=store,
                                                          progress=p, **options))


def ccs_at_k(scores: dict) -> dict[int, float]:
    from ccs_core.ccs import ccs_at_k as share

    heads = (scores or {}).get("heads") or {}
    n = int((scores or {}).get("n_spans") or 5)
    return share([h.get("ccs") for h in heads.values()], n_spans=n)

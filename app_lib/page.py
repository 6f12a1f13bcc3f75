"""What every analysis page starts with, and the judge-failure box shown wherever CCS is shown
(above ``pipeline`` and ``views``: it uses both, neither uses it)."""
from __future__ import annotations

import streamlit as st

from ccs_core.scores import ScoreResult

from . import pipeline, session


def start(title: str, scored: bool = True):
    """A page's preamble in one line: title, context, spans (the page stops while they compute; the
    progress box reruns it) and, with ``scored``, the scores with their problems shown.
    -> (ctx, spans, scores or None)"""
    st.title(title)
    ctx = session.current()
    found = pipeline.spans(ctx)
    if found is None:
        st.stop()
    if not scored:
        return ctx, found, None
    result, error = pipeline.scores_or_error(ctx, found)
    score_problems(ctx, found, result, error)
    return ctx, found, result


def score_problems(ctx, spans, scores: "ScoreResult | None", error: BaseException | None) -> None:
    """Judge failures, on every page that shows CCS: what failed, and a one-click re-ask."""
    from .ui import error_message

    errors = scores.errors if scores is not None else []
    if error is None and not errors:
        return
    if error is not None:
        text = f"Scoring failed, so no head has a CCS: {error_message(error)}"
    else:
        agents = sorted({e.get("agent", "?") for e in errors})
        heads = sorted({e["head"] for e in errors})
        text = (f"**{len(heads)} head(s) have no CCS**: {len(errors)} request(s) to {', '.join(agents)} failed "
                f"(first: {errors[0]['head']}, {errors[0]['error'][:240]}). Answers already received are "
                "kept; re-asking sends only the failed requests.")
    c1, c2 = st.columns([5, 1])
    c1.warning(text, icon=":material/warning:")
    if c2.button("Re-ask the failed", key="reask_failed",
                 help="Retry every failed label and verdict (nothing already answered is asked again)."):
        pipeline.reask(ctx, spans)
        st.rerun()

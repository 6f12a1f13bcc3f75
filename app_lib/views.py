"""Page pieces shared by more than one page: head selection and the compact head summary."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from ccs_core.heads import HeadId
from ccs_core.scores import HeadScore, ScoreResult


def head_names(spans) -> list[str]:
    return [h.head for h in spans.heads]


def selected_head(spans) -> str:
    """The session's selected head (defaults to the first analysed head; fixes stale selections)."""
    names = head_names(spans)
    sel = st.session_state.get("selected_head")
    try:
        sel = str(HeadId.parse(sel)) if sel else None
    except Exception:
        sel = None
    if sel not in names:
        sel = names[-1] if names else None  # last analysed layer's last head
        st.session_state["selected_head"] = sel
    return sel


def head_picker(spans, key: str) -> str:
    """A selectbox over the analysed heads, kept in step with ``selected_head``."""
    names = head_names(spans)
    current = selected_head(spans)

    def changed() -> None:
        st.session_state["selected_head"] = st.session_state[key]

    st.session_state[key] = current
    st.selectbox("Head", names, key=key, on_change=changed)
    return st.session_state["selected_head"]


def head_stepper(spans, key: str) -> None:
    """Previous / next head buttons, also on the keyboard (P and N)."""
    names = head_names(spans)
    current = selected_head(spans)

    def step(by: int) -> None:
        i = names.index(current) if current in names else 0
        st.session_state["selected_head"] = names[(i + by) % len(names)]

    c1, c2 = st.columns(2)
    c1.button("Previous head", key=f"{key}_prev", icon=":material/chevron_left:", shortcut="P",
              on_click=step, args=(-1,), width="stretch", help="Keyboard: P")
    c2.button("Next head", key=f"{key}_next", icon=":material/chevron_right:", shortcut="N",
              on_click=step, args=(1,), width="stretch", help="Keyboard: N")


def head_scores(scores: "ScoreResult | None", head: str) -> "HeadScore | None":
    """The head's score record, or None when it is not scored (yet)."""
    return scores.head(head) if scores is not None else None


def ccs_text(info: "HeadScore | None", n_spans: int | None = None) -> str:
    """'4 / 5', '4' or '—' (no CCS)."""
    if info is None or info.ccs is None:
        return "—"
    return f"{info.ccs} / {n_spans}" if n_spans else str(info.ccs)


def spans_frame(spans, head: str, scores: "ScoreResult | None" = None) -> pd.DataFrame:
    """The head's spans with their variance and, if scored, every judge's verdict."""
    hs = spans.by_head()[head]
    total = sum(hs.variances) or 1.0
    df = pd.DataFrame({"#": range(1, len(hs.texts) + 1), "span": hs.texts,
                       "variance": hs.variances,
                       "share of spans' variance": [v / total for v in hs.variances]})
    info = head_scores(scores, head)
    for judge, fits in judge_fits(info).items():
        df[judge] = [_tick(fits[i] if i < len(fits) else None) for i in range(len(df))]
    if info is not None and info.accepted:
        df["all judges"] = [_tick(a) for a in info.accepted][: len(df)]
    return df


def judge_fits(info: "HeadScore | None") -> dict[str, list]:
    """{judge: [True/False/None per span]} from a head's score record."""
    return {} if info is None else {j: [None if f is None else bool(f) for f in info.fits(j)]
                                    for j in info.verdicts}


def _tick(v: Any) -> str:
    return "—" if v is None else ("yes" if v else "no")


NORM_CAPTIONS = {"own-mean": "Decomposition: own-mean centring (project default)",
                 "gandelsman": "Gandelsman's convention: shared mean and bias, divided by the embedding norm"}


def norm_caption(spans) -> str:
    """Which decomposition convention produced ``spans`` (a SpansResult's ``norm``), in one line."""
    norm = getattr(spans, "norm", "own-mean")
    return NORM_CAPTIONS.get(norm, f"Decomposition: {norm}")


def head_summary(spans, scores: "ScoreResult | None", head: str) -> None:
    """Label, CCS, category and the spans table of one head."""
    info = head_scores(scores, head)
    hs = spans.by_head()[head]
    st.subheader(head)
    c1, c2 = st.columns([2, 1])
    label, cat = (info.label, info.category) if info is not None else (None, None)
    c1.markdown(f"Label: **{label or '—'}**  \nCategory: **{cat or '—'}**")
    c2.metric("CCS", ccs_text(info, len(hs.texts)))
    if getattr(hs, "silent", False):
        st.warning("This head is **silent**: its output does not vary over the image set (variance "
                   f"{hs.total_variance:.2e}), so the spans below are arbitrary ties and it is not scored.")
    st.caption(f"The {len(hs.texts)} spans explain {hs.explained_share:.0%} of this head's variance "
               "over the image set.")
    df = spans_frame(spans, head, scores)
    df["variance"] = df["variance"].map("{:.3g}".format)  # gandelsman terms are /|embedding|: tiny
    df["share of spans' variance"] = df["share of spans' variance"].map("{:.0%}".format)
    st.table(df.set_index("#"))  # a real HTML table: readable by screen readers and browser tests


def score_changes(old: "ScoreResult | None", new: "ScoreResult") -> pd.DataFrame:
    """One row per head of ``new`` whose label, CCS or any verdict differs from ``old``."""
    rows = []
    for head, rec in new.heads.items():
        prev = old.head(head) if old is not None else None
        flips = []
        new_fits, old_fits = judge_fits(rec), judge_fits(prev)
        for judge, fits in new_fits.items():
            was = old_fits.get(judge)
            for i, f in enumerate(fits):
                if was is None or i >= len(was) or was[i] != f:
                    flips.append(f"{judge} #{i + 1}: {_tick(None if was is None or i >= len(was) else was[i])}"
                                 f"→{_tick(f)}")
        was_label, was_ccs = (prev.label, prev.ccs) if prev is not None else (None, None)
        if was_label != rec.label or was_ccs != rec.ccs or flips:
            rows.append({"head": head, "label before": was_label, "label now": rec.label,
                         "CCS before": was_ccs, "CCS now": rec.ccs, "verdicts changed": "; ".join(flips)})
    df = pd.DataFrame(rows, columns=["head", "label before", "label now", "CCS before", "CCS now",
                                     "verdicts changed"])
    return df.astype({"CCS before": "Int64", "CCS now": "Int64"})


def call_counts(result: "ScoreResult") -> dict[str, int]:
    """New requests vs cache hits of a scoring result."""
    return {"new calls": result.calls, "cache hits": sum(r.cache_hits for r in result.heads.values()),
            "errors": len(result.errors)}


def toy_summary() -> str:
    """Two sentences on what the bundled toy model shows, from the numbers in its model card
    (written by ``python -m ccs_core.toyworld.report --update-card``)."""
    from ccs_core.toyworld import TOY_CARD

    try:
        m = json.loads(TOY_CARD.read_text())["miniature"]
        k, acc, frame = m["ccs_at_k"], m["hard_mean_accuracy"], m.get("unnamed_hard_accuracy") or {}
        low = float(k["0"]) + float(k["1"])
        low_text = (f"{acc['low']:.1%} with its {m.get('n_low', '')} low-CCS heads pruned and " if "low" in acc else "")
        frame_text = (f" (the latter carry the picture frame, which no text of the pool names: pruning them takes "
                      f"frame accuracy from {frame['original']:.1%} to {frame['low']:.1%})" if "low" in frame else "")
        return (f"Measured: {float(k['5']):.0%} of the analysed heads have CCS 5 and {low:.0%} CCS ≤ 1"
                f"{frame_text}. On the hard (fine-grained) factor tasks, pruning the {m['n_high']} high-CCS "
                f"heads lowers mean accuracy from {acc['original']:.1%} to {acc['high']:.1%}, against "
                f"{low_text}{acc['random']:.1%} with as many random heads (mean of 5 seeds); the Prune & "
                "evaluate page shows it per task and per concept.")
    except (OSError, KeyError, TypeError, ValueError):
        return "(Its model card has no measured summary yet: run `python -m ccs_core.toyworld.report --update-card`.)"


def bands_legend(th) -> str:
    """What the categories mean under the session's bands (sidebar ▸ CCS bands)."""
    other = [k for k in range(th.low_max + 1, th.high_min) if not th.moderate_min <= k <= th.moderate_max]
    return (f"**high** CCS ≥ {th.high_min} · **moderate** {th.moderate_min}"
            f"{'' if th.moderate_max == th.moderate_min else f'–{th.moderate_max}'} · **low** ≤ {th.low_max}"
            f" · **other** {', '.join(map(str, other)) or '—'} (between the bands) · **incomplete** a label or "
            "verdict is missing (hover the grey cell for why)")

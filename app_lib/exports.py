"""Flat tables of an analysis for download (pure pandas, no Streamlit)."""
from __future__ import annotations

import pandas as pd

from ccs_core.heads import HeadId
from ccs_core.scores import ScoreResult


def spans_table(spans) -> pd.DataFrame:
    rows = []
    for hs in spans.heads:
        hid = HeadId.parse(hs.head)
        for i, (text, var) in enumerate(zip(hs.texts, hs.variances), 1):
            rows.append({"head": hs.head, "layer": hid.layer, "head_index": hid.head, "rank": i,
                         "span": text, "variance": var, "head_explained_share": hs.explained_share})
    return pd.DataFrame(rows)


def labels_table(scores: "ScoreResult | None") -> pd.DataFrame:
    rows = []
    for head, rec in (scores.heads if scores is not None else {}).items():
        lr = rec.label_record or {}
        rows.append({"head": head, "label": rec.label, "labeller": lr.get("labeller"),
                     "model": lr.get("model"), "prompt_version": lr.get("prompt_version"),
                     "cached": lr.get("cached")})
    return pd.DataFrame(rows, columns=["head", "label", "labeller", "model", "prompt_version", "cached"])


def verdicts_table(scores: "ScoreResult | None") -> pd.DataFrame:
    rows = []
    for head, rec in (scores.heads if scores is not None else {}).items():
        for judge, v in rec.verdicts.items():
            fits, why = rec.fits(judge), v.get("rationales") or []
            for i, span in enumerate(rec.spans):
                rows.append({"head": head, "label": rec.label, "judge": judge, "span_rank": i + 1,
                             "span": span, "fits": fits[i] if i < len(fits) else None,
                             "rationale": why[i] if i < len(why) else "", "model": v.get("model"),
                             "prompt_version": v.get("prompt_version"), "status": v.get("status")})
    return pd.DataFrame(rows, columns=["head", "label", "judge", "span_rank", "span", "fits", "rationale",
                                       "model", "prompt_version", "status"])


def ccs_table(head_rows: list[dict]) -> pd.DataFrame:
    """From ``analysis.head_table``: head, layer, head index, CCS, category, label, variance explained."""
    df = pd.DataFrame(head_rows)
    cols = [c for c in ("head", "layer", "index", "ccs", "category", "label", "explained", "top_span")
            if c in df]
    return df[cols].rename(columns={"index": "head_index"})


def run_table(result: dict) -> pd.DataFrame:
    """A Prune page run (``{"request": ..., "rows": [...]}``) as one row per result, each with the
    protocol the run was made under (as the CLI's result files record it)."""
    df = pd.DataFrame(result.get("rows") or [])
    df.insert(0, "protocol", (result.get("request") or {}).get("protocol", "standard"))
    return df

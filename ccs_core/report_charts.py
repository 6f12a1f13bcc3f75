"""PNG charts of a ``reproduce`` report (``report.py``): ours beside the paper's, one per section that
has numbers. Altair specs rendered by vl-convert (offline); each PNG is written whole or not at all."""
from __future__ import annotations

import contextlib
from pathlib import Path

import altair as alt
import pandas as pd

from .errors import DataError

STRATEGIES = ["original", "high", "low", "random"]
SOURCES = ["ours", "paper"]


def _bars(df: pd.DataFrame, y: str, title: str, facet: str | None = None) -> alt.Chart:
    base = alt.Chart(df).mark_bar().encode(
        x=alt.X("strategy:N", sort=STRATEGIES, title=None),
        xOffset=alt.XOffset("source:N", sort=SOURCES),
        y=alt.Y(f"{y}:Q", title=y),
        color=alt.Color("source:N", sort=SOURCES, scale=alt.Scale(range=["#1f77b4", "#bbbbbb"])),
        tooltip=list(df.columns)).properties(width=150, height=160)
    return (base.facet(column=alt.Column(f"{facet}:N", title=None)) if facet else base).properties(title=title)


def _strategy_frame(rows: list[dict], label: str) -> pd.DataFrame:
    out = []
    for r in rows:
        for source in SOURCES:
            for s in STRATEGIES:
                v = (r.get(source) or {}).get(s)
                if v is not None:
                    out.append({label: r[label] if label in r else r["dataset"], "source": source, "strategy": s,
                                "value": float(v)})
    return pd.DataFrame(out)


def charts(report: dict) -> dict[str, alt.Chart]:
    """Section key -> chart, for the sections with numbers."""
    out: dict[str, alt.Chart] = {}
    sec, titles = report["sections"], report["titles"]
    row = sec["table9"][0]
    ccs = pd.DataFrame([{"K": f"CCS@{k}", "source": s, "share": float(v)} for s in SOURCES
                        for k, v in (row.get(s) or {}).items()])
    if not ccs.empty and (ccs["source"] == "ours").any():
        out["table9"] = alt.Chart(ccs).mark_bar().encode(
            x=alt.X("K:N", title=None), xOffset="source:N", y=alt.Y("share:Q", title="share of heads"),
            color=alt.Color("source:N", sort=SOURCES, scale=alt.Scale(range=["#1f77b4", "#bbbbbb"])),
            tooltip=["K", "source", "share"]).properties(width=360, height=180, title=titles["table9"])
    for key in ("table3", "table4", "other"):
        df = _strategy_frame([r for r in sec.get(key, []) if r["ours"]], "dataset")
        if not df.empty:
            out[key] = _bars(df.rename(columns={"value": "accuracy %"}), "accuracy %", titles[key], "dataset")
    for key in ("table7", "table8"):
        rows = [dict(r, panel=f"{r['dataset']} {r['attribute']}") for r in sec[key] if r["ours"]]
        df = _strategy_frame(rows, "panel")
        if not df.empty:
            out[key] = _bars(df.rename(columns={"value": "MaxSkew (sum)"}), "MaxSkew (sum)", titles[key], "panel")
    video = [dict(strategy=s, source="ours", dataset=r["dataset"], metric=m, value=float(o[s]))
             for r in sec["figure5"] for m, o in (r["ours"] or {}).items() for s in STRATEGIES if s in o]
    if video:
        df = pd.DataFrame(video)
        out["figure5"] = alt.Chart(df).mark_bar().encode(
            x=alt.X("strategy:N", sort=STRATEGIES, title=None), y=alt.Y("value:Q", title="recall"),
            color=alt.Color("strategy:N", sort=STRATEGIES), column=alt.Column("metric:N", title=None),
            row=alt.Row("dataset:N", title=None), tooltip=["dataset", "metric", "strategy", "value"]
        ).properties(width=120, height=120, title=titles["figure5"])
    concepts = sec["concepts"][0]["ours"]
    if concepts:
        df = pd.DataFrame(concepts)
        out["concepts"] = alt.Chart(df).mark_rect().encode(
            x=alt.X("dataset:N", title="task"), y=alt.Y("concept:N", title="concept's heads pruned"),
            color=alt.Color("drop:Q", title="accuracy drop (points)", scale=alt.Scale(scheme="orangered")),
            tooltip=["dataset", "concept", "n_heads", "original", "pruned", "drop"]
        ).properties(title=titles["concepts"])
    return out


def write_charts(report: dict, folder: Path) -> list[str]:
    """Each chart as ``folder/<section>.png``; -> the paths written, relative to the report folder."""
    import vl_convert as vlc

    folder = Path(folder)
    written = []
    tmp = folder / ".chart.png.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for key, chart in charts(report).items():
            png = vlc.vegalite_to_png(chart.to_json(), scale=2)
            tmp = folder / f".{key}.png.tmp"
            tmp.write_bytes(png)
            tmp.replace(folder / f"{key}.png")
            written.append(f"charts/{key}.png")
        for stale in folder.glob("*.png"):  # a section without numbers this time keeps no old chart
            if f"charts/{stale.name}" not in written:
                stale.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise DataError(f"Cannot write the report's charts in {folder}: {err.strerror or err} "
                        f"({err.filename or folder}). Make it a writable folder of PNG files, or choose another "
                        "--out-dir; the steps' results are kept, and the next run only redraws the report.") from err
    return written

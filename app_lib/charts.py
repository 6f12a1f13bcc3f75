"""Altair charts of the explorer, built from plain DataFrames (no Streamlit here)."""
from __future__ import annotations

import altair as alt
import pandas as pd

CATEGORY_ORDER = ["high", "moderate", "low", "other", "incomplete", "unscored"]
CATEGORY_COLORS = ["#1a9850", "#fdae61", "#d73027", "#bdbdbd", "#e6e6e6", "#f0f0f0"]
UNKNOWN = "#e6e6e6"  # a cell whose CCS is unknown: drawn, hoverable and clickable, never a hole
COLOR_BY = {"ccs": "CCS (spans all judges accept)", "category": "Category (high / moderate / low)",
            "explained": "Variance explained by the spans (%)"}
SELECTION = "cell"


def grid_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per head (from ``analysis.head_table``) with display columns filled in."""
    df = pd.DataFrame(rows)
    for col in ("label", "ccs", "category", "explained", "top_span", "note"):
        if col not in df:
            df[col] = None
    df["category"] = df["category"].fillna("unscored")
    df["label"] = df["label"].fillna("")
    df["note"] = df["note"].fillna("")
    df["status"] = [n or "scored" for n in df["note"]]
    df["cell_text"] = [("?" if pd.isna(c) else f"{int(c)}") for c in df["ccs"]]
    # two digits fit a 16-px cell; the tooltip has the exact share
    df["explained_text"] = [("" if pd.isna(e) else f"{round(100 * float(e))}") for e in df["explained"]]
    return df


def _color(color_by: str) -> alt.Color:
    if color_by == "category":
        return alt.Color("category:N", title="Category",
                         scale=alt.Scale(domain=CATEGORY_ORDER, range=CATEGORY_COLORS))
    if color_by == "ccs":  # unknown CCS: grey, not a hole (a null on a colour scale draws nothing)
        return alt.when("isValid(datum.ccs)").then(
            alt.Color("ccs:Q", title="CCS", scale=alt.Scale(domain=[0, 5], scheme="viridis"))
        ).otherwise(alt.value(UNKNOWN))
    return alt.Color("explained:Q", title="Variance explained", scale=alt.Scale(scheme="blues"))


def head_grid(df: pd.DataFrame, color_by: str = "ccs", selected: str | None = None,
              title: str = "", selectable: bool = True, cell: int | None = None) -> alt.LayerChart:
    """Layers (rows, last layer on top) x heads (columns); click selects a head."""
    n_heads = int(df["index"].max()) + 1 if len(df) else 1
    cell = cell or max(16, min(40, 288 // n_heads))  # fits a half-width column: 8 heads 36 px, 16 heads 18 px
    layers = sorted(df["layer"].unique(), reverse=True)
    x = alt.X("index:O", title="head", axis=alt.Axis(labelAngle=0))
    y = alt.Y("layer:O", title="layer", sort=layers)
    tooltip = [alt.Tooltip("head:N", title="Head"), alt.Tooltip("label:N", title="Label"),
               alt.Tooltip("ccs:Q", title="CCS"), alt.Tooltip("category:N", title="Category"),
               alt.Tooltip("explained:Q", title="Variance explained", format=".2f"),
               alt.Tooltip("top_span:N", title="First span"), alt.Tooltip("status:N", title="Status")]
    base = alt.Chart(df).encode(x=x, y=y)
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(color=_color(color_by), tooltip=tooltip)
    if selectable:
        pick = alt.selection_point(name=SELECTION, fields=["layer", "index"], on="click",
                                   clear=False, empty=False)
        rect = rect.add_params(pick).encode(
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.85)))
    text_field = "cell_text" if color_by != "explained" else "explained_text"
    text = base.mark_text(fontSize=11 if cell >= 24 else 9).encode(
        text=alt.Text(f"{text_field}:N"), tooltip=tooltip,
        color=(alt.when("isValid(datum.ccs) && datum.ccs <= 2").then(alt.value("white")).otherwise(alt.value("black"))
               if color_by == "ccs" else alt.value("black")))
    layers_ = [rect, text]
    if selected and selected in set(df["head"]):
        ring = alt.Chart(df[df["head"] == selected]).mark_rect(
            fill=None, stroke="#e7298a", strokeWidth=3).encode(x=x, y=y)
        layers_.append(ring)
    # SVG (not canvas): crisp cells, and each cell is a DOM node a browser test can click.
    return alt.layer(*layers_).properties(width=max(cell * n_heads, 160),
                                          height=max(cell * len(layers), 80), title=title,
                                          autosize=alt.AutoSizeParams(type="pad"),  # no squashing
                                          usermeta={"embedOptions": {"renderer": "svg"}})


def paper_grid_frame(computed: pd.DataFrame, paper_heads: pd.DataFrame) -> pd.DataFrame:
    """The paper's categories and labels on the computed grid's cells ('other' where the paper's
    Tables 10-12 list the head in no category)."""
    ref = paper_heads.assign(head=[f"L{l}.H{h}" for l, h in zip(paper_heads["layer"], paper_heads["head"])])
    out = computed[["head", "layer", "index"]].merge(ref[["head", "category", "label"]], on="head",
                                                     how="left")
    out["category"] = out["category"].fillna("other")
    out["ccs"] = None
    return grid_frame(out.to_dict("records"))


def for_slides(chart, width: int = 1100) -> tuple:
    """(chart, PNG scale factor) at slide size: >= 1200 px wide, labels readable and apart. A chart
    with a fixed pixel width (the head grid) keeps its shape and is scaled up instead."""
    fixed = chart.to_dict().get("width")
    if isinstance(fixed, (int, float)):
        return chart, max(1.25, 1250 / max(float(fixed), 1.0))
    try:
        chart = chart.properties(width=width)
    except Exception:  # concatenated charts have no single width
        pass
    return (chart.configure_axis(labelFontSize=14, titleFontSize=16, labelLimit=320)
            .configure_title(fontSize=20).configure_legend(labelFontSize=14, titleFontSize=14, labelLimit=320)
            ), 1.25


def picked_head(event: object) -> str | None:
    """The head clicked in ``st.altair_chart(..., on_select="rerun")``'s event, as "L5.H3"."""
    try:
        points = event.selection[SELECTION]  # type: ignore[attr-defined]
    except (AttributeError, KeyError, TypeError):
        return None
    if not points:
        return None
    p = points[0]
    if "layer" not in p or "index" not in p:
        return None
    return f"L{int(p['layer'])}.H{int(p['index'])}"


def ccs_at_k_frame(computed: dict[int, float] | None, paper_row: pd.DataFrame | None) -> pd.DataFrame:
    """Long table K, share, source for the histogram (computed and, if any, the paper's rows)."""
    rows = []
    for k, share in (computed or {}).items():
        rows.append({"K": int(k), "share": float(share), "source": "computed"})
    for _, r in (paper_row if paper_row is not None else pd.DataFrame()).iterrows():
        for k in range(6):
            rows.append({"K": k, "share": float(r[f"ccs_at_{k}"]), "source": f"paper ({r['model']})"})
    return pd.DataFrame(rows, columns=["K", "share", "source"])


def ccs_histogram(df: pd.DataFrame) -> alt.Chart:
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("K:O", title="CCS = K"), xOffset="source:N",
        y=alt.Y("share:Q", title="share of heads", axis=alt.Axis(format="%")),
        color=alt.Color("source:N", title=None),
        tooltip=["source", "K", alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=220, title="CCS@K")


def accuracy_bars(df: pd.DataFrame, metric: str = "accuracy") -> alt.LayerChart:
    """Bars of a metric per configuration (columns config, value, lo, hi, detail); the rule is the
    spread over random seeds."""
    order = list(df["config"])
    bars = alt.Chart(df).mark_bar().encode(
        x=alt.X("config:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=metric, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=_strategy_color(order, "config", legend=False),
        tooltip=["config", alt.Tooltip("value:Q", title=metric, format=".2%"), "detail"])
    err = alt.Chart(df.dropna(subset=["lo", "hi"])).mark_rule(strokeWidth=2).encode(
        x=alt.X("config:N", sort=order), y="lo:Q", y2="hi:Q")
    return alt.layer(bars, err).properties(height=260, title=f"Zero-shot {metric}: original vs pruned")


def maxskew_bars(df: pd.DataFrame) -> alt.Chart:
    """MaxSkew before / after per attribute (columns attribute, config, maxskew)."""
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("attribute:N", title=None, axis=alt.Axis(labelAngle=0)), xOffset="config:N",
        y=alt.Y("maxskew:Q", title="MaxSkew (mean over prompts)"),
        color=_strategy_color(list(dict.fromkeys(df["config"])), "config"),
        tooltip=["attribute", "config", alt.Tooltip("maxskew:Q", format=".3f")],
    ).properties(height=240, title="Bias (MaxSkew@K)")


def tradeoff(df: pd.DataFrame) -> alt.Chart:
    """Accuracy versus MaxSkew, one point per configuration (columns config, accuracy, maxskew)."""
    return alt.Chart(df).mark_point(size=120, filled=True).encode(
        # axes from zero (accuracy 0..1): a 0.004 difference must not look large
        x=alt.X("maxskew:Q", title="MaxSkew (lower = less biased)", scale=alt.Scale(zero=True, nice=True)),
        y=alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1])),
        color=_strategy_color(list(dict.fromkeys(df["config"])), "config"), shape="config:N",
        tooltip=["config", alt.Tooltip("accuracy:Q", format=".2%"), alt.Tooltip("maxskew:Q", format=".3f")],
    ).properties(height=260, title="Accuracy versus bias")


SVG = {"embedOptions": {"renderer": "svg"}}  # marks as DOM nodes (crisp; a browser test can find them)


OTHER_COLORS = ["#9467bd", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def _strategy_color(domain: list[str], field: str = "strategy", legend: bool = True) -> alt.Color:
    """One colour per strategy on every chart ("original" is always grey, "high" red, ...)."""
    from .experiments import STRATEGY_COLORS

    others = iter(OTHER_COLORS * 4)
    colors = [STRATEGY_COLORS.get(s.split(" (")[0]) or STRATEGY_COLORS.get(s) or next(others) for s in domain]
    return alt.Color(f"{field}:N", title=None, sort=domain, legend=alt.Legend() if legend else None,
                     scale=alt.Scale(domain=domain, range=colors))


def strategy_bars(df: pd.DataFrame, metric: str = "accuracy") -> alt.LayerChart:
    """Grouped bars: per task, one bar per strategy (columns task, strategy, value, lo, hi); the rule on
    random is its min..max over seeds."""
    order = list(dict.fromkeys(df["strategy"]))
    tasks = list(dict.fromkeys(df["task"]))
    base = alt.Chart(df).encode(x=alt.X("task:N", sort=tasks, title=None, axis=alt.Axis(labelAngle=0)),
                                xOffset=alt.XOffset("strategy:N", sort=order))
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=metric, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=_strategy_color(order),
        tooltip=["task", "strategy", alt.Tooltip("value:Q", title=metric, format=".1%"),
                 alt.Tooltip("lo:Q", title="min over seeds", format=".1%"),
                 alt.Tooltip("hi:Q", title="max over seeds", format=".1%")])
    err = base.transform_filter("isValid(datum.lo)").mark_rule(color="black", strokeWidth=1.5).encode(
        y="lo:Q", y2="hi:Q")
    return alt.layer(bars, err).properties(height=300, title=f"Zero-shot {metric} per task: original vs pruned",
                                           usermeta=SVG)


def concept_heatmap(df: pd.DataFrame) -> alt.LayerChart:
    """Concept X's CCS-5 heads pruned (rows) x task Y (columns): accuracy drop (columns concept, task, drop)."""
    base = alt.Chart(df).encode(x=alt.X("task:N", title="task", sort=list(dict.fromkeys(df["task"])),
                                        axis=alt.Axis(labelAngle=-30)),
                                y=alt.Y("concept:N", title="heads pruned", axis=alt.Axis(labelLimit=220)))
    cells = base.mark_rect().encode(
        color=alt.Color("drop:Q", title="accuracy drop", scale=alt.Scale(scheme="reds", domainMin=0)),
        tooltip=["concept", "task", alt.Tooltip("drop:Q", format="+.1%")])
    text = base.mark_text(fontSize=12).encode(text=alt.Text("drop:Q", format="+.0%"))
    return alt.layer(cells, text).properties(height=alt.Step(34), width=alt.Step(52),
                                             title="Concept-specific pruning",
                                             usermeta=SVG)


def strategy_tradeoff(df: pd.DataFrame) -> alt.Chart:
    """Mean accuracy vs MaxSkew, one point per configuration (columns config, strategy, accuracy, maxskew)."""
    order = list(dict.fromkeys(df["strategy"]))
    return alt.Chart(df).mark_point(size=110, filled=True).encode(
        x=alt.X("maxskew:Q", title="MaxSkew, sum over prompts (lower = less biased)",
                scale=alt.Scale(zero=True, nice=True)),
        y=alt.Y("accuracy:Q", title="mean accuracy", axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1])),
        color=_strategy_color(order), shape=alt.Shape("strategy:N", sort=order, title=None),
        tooltip=["config", alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("maxskew:Q", format=".3f")],
    ).properties(height=300, title="Accuracy versus bias", usermeta=SVG)

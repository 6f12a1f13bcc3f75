"""Head grid: layers x heads coloured by CCS, category or variance explained; click a head."""
import streamlit as st

from app_lib import charts, page, pipeline, views
from ccs_core import analysis, paper

ctx, spans, scores = page.start("Head grid")

# The colour mode is the user's: kept in a key of its own, so a page drawn while scoring runs (only
# "explained" available) or a long job on another page never changes it.
s = st.session_state
modes = ["ccs", "category", "explained"] if scores else ["explained"]
s["grid_color"] = s.get("grid_color_pref", modes[0]) if s.get("grid_color_pref", modes[0]) in modes else modes[0]
st.radio("Colour by", modes, key="grid_color", horizontal=True, format_func=charts.COLOR_BY.get,
         on_change=lambda: s.__setitem__("grid_color_pref", s["grid_color"]))
if not scores:
    st.caption(pipeline.NO_SCORES)
elif scores:
    st.caption(views.bands_legend(pipeline.thresholds()))

# A click arrives as the chart's selection state; mirror it into the session's selected head.
clicked = charts.picked_head(st.session_state.get("grid_chart"))
if clicked and clicked != st.session_state.get("_grid_clicked"):
    st.session_state["_grid_clicked"] = clicked
    st.session_state["selected_head"] = clicked
df = charts.grid_frame(analysis.head_table(spans, scores))
selected = views.selected_head(spans)

left, right = st.columns([1, 1], gap="large")
with left:
    chart = charts.head_grid(df, st.session_state["grid_color"], selected,
                             title=f"{ctx.loaded.name}: last {len(spans.layers)} layers")
    st.altair_chart(chart, on_select="rerun", selection_mode=charts.SELECTION, key="grid_chart",
                    width="content", theme=None)
    st.caption("Click a cell to inspect that head. Hover for its label, first span and status"
               + (" (grey ? = no CCS, hover for why)." if scores and scores.n_incomplete else "."))
    if ctx.paper_model:
        ref = charts.paper_grid_frame(df, paper.head_categories(ctx.paper_model))
        st.altair_chart(charts.head_grid(ref, "category", selected, selectable=False,
                                         title=f"Paper: {ctx.paper_model} (Tables 10–12)"),
                        width="content", theme=None)
        listed = df.merge(ref[["head", "category"]], on="head", suffixes=("", "_paper"))
        listed = listed[listed["category_paper"] != "other"]
        same = int((listed["category"] == listed["category_paper"]).sum())
        st.caption(f"The paper lists {len(listed)} of these heads as high, moderate or low; "
                   f"{same} have the same category here ('other' = not in the paper's tables).")
with right:
    views.head_stepper(spans, key="grid_step")
    views.head_summary(spans, scores, selected)
    st.page_link("app_pages/inspector.py", label="Open in the inspector", icon=":material/search:")

st.divider()
st.subheader("CCS@K")
# the paper's model, or for the toy all six rows of the paper's Table 9 beside it
paper_row = paper.ccs_at_k(ctx.paper_model) if ctx.paper_model else (
    paper.ccs_at_k() if ctx.loaded.name == "toy" else None)
computed = scores.ccs_at_k if scores else None
hist = charts.ccs_at_k_frame(computed, paper_row)
if len(hist):
    if computed:
        st.caption(f"Computed CCS@K is the share of heads with CCS = K, {pipeline.coverage(scores, spans)}.")
    c1, c2 = st.columns([2, 3])
    c1.dataframe(hist.pivot(index="K", columns="source", values="share").reset_index(),
                 hide_index=True, width="stretch")
    c2.altair_chart(charts.ccs_histogram(hist), width="stretch")
else:
    st.caption("CCS@K appears once the heads are labelled and judged.")

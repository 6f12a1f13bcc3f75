"""Export: spans, labels, verdicts, the CCS table, pruning and bias results; charts as PNG or SVG."""
import pandas as pd
import streamlit as st

from app_lib import charts, exports, pipeline, session, ui
from app_lib import experiments as ex
from ccs_core import analysis, paper

st.title("Export")
ctx = session.current()
spans = pipeline.spans(ctx)
if spans is None:
    st.stop()
scores = pipeline.scores(ctx, spans)
stem = f"ccs_{ctx.loaded.name}_{len(spans.layers)}L".replace("/", "_")

st.subheader("Tables")
st.caption(f"{ctx.loaded.name}, images {spans.image_set} ({spans.n_images}), pool {spans.pool}, "
           f"layers {spans.layers[0]}–{spans.layers[-1]}.")
ui.download_table(exports.spans_table(spans), f"{stem}_spans", "dl_spans", "Spans")
head_rows = analysis.head_table(spans, scores)
ui.download_table(exports.ccs_table(head_rows), f"{stem}_ccs", "dl_ccs", "CCS table")
if scores:
    ui.download_table(exports.labels_table(scores), f"{stem}_labels", "dl_labels", "Labels")
    ui.download_table(exports.verdicts_table(scores), f"{stem}_verdicts", "dl_verdicts", "Verdicts")
    ui.download_json(scores.to_json(), f"{stem}_scores_full", "dl_scores_full", "Full scoring record")
else:
    st.caption("Labels, verdicts: " + pipeline.NO_SCORES)
prune_result = st.session_state.get("prune_result")
bias_result = st.session_state.get("bias_result")
if prune_result:
    ui.download_table(exports.run_table(prune_result), f"{stem}_pruning", "dl_prune", "Pruning results")
if bias_result:
    ui.download_table(exports.run_table(bias_result), f"{stem}_bias", "dl_bias", "Bias results")
if not (prune_result or bias_result):
    st.caption("Pruning and bias results appear here after a run on the Prune & evaluate page.")

st.subheader("Charts")
grid_df = charts.grid_frame(head_rows)
chart_list = [("head_grid", charts.head_grid(grid_df, "ccs" if scores else "explained",
                                             title=ctx.loaded.name, selectable=False))]
paper_row = paper.ccs_at_k(ctx.paper_model) if ctx.paper_model else None
hist = charts.ccs_at_k_frame(scores.ccs_at_k if scores else None, paper_row)
if len(hist):
    chart_list.append(("ccs_at_k", charts.ccs_histogram(hist)))
if prune_result:
    chart_list.append(("pruning_accuracy",
                       charts.accuracy_bars(pd.DataFrame(ex.summary_rows(prune_result["rows"])))))
for name, chart in chart_list:
    with st.container(border=True):
        st.markdown(f"**{name}**")
        ui.download_chart(chart, f"{stem}_{name}", f"dl_chart_{name}")

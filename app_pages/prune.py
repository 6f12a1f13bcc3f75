"""Live prune-and-evaluate: the paper's comparison (original, high, low, random on every task, the
concept matrix, accuracy vs bias) by default; single runs (a strategy, a task, preview then exact)."""
import pandas as pd
import streamlit as st

from app_lib import charts, page, pipeline, protocols, ui, views
from app_lib import experiments as ex

ctx, spans, scores = page.start("Prune & evaluate")
table = scores.ccs_table(spans.layers) if scores is not None else None
st.caption("Soft pruning zeroes a head's output in the image tower (the shared model is never "
           "changed). The preview subtracts the heads' direct effects (approximate, instant); the "
           "exact result re-runs the affected layers.")
protocol = protocols.checked(ctx.choices.protocol)
st.caption(protocols.caption(protocol))


@st.fragment
@ui.guarded
def comparison_panel() -> None:
    """The paper's comparison, run without any setting changed (cached: instant on a warm start)."""
    if table is None:
        st.info("The comparison needs CCS scores; " + pipeline.NO_SCORES)
        return
    folder = ctx.image_set if ctx.choices.images != "toy" else None
    n = int(st.session_state.get("compare_n") or ex.COMPARE_N)
    job = pipeline.experiment_job(ctx, "compare", {"kind": "paper-comparison", "n": n, "protocol": protocol},
                                  lambda p: ex.comparison(ctx.loaded, table, ctx.choices.images, folder, ctx.store,
                                                          p, n=n, protocol=protocol))
    res = ui.await_job(job, wait_s=90, key="prune_compare")
    if res is None:
        return
    st.session_state.compare_result = res
    for why in res["skipped"]:
        st.warning(why)
    sets = res["styles"]
    c1, c2 = st.columns([3, 2])
    set_name = c1.radio("Images", sets, index=sets.index("hard") if "hard" in sets else 0, horizontal=True,
                        key="compare_set", format_func=lambda s: ex.SET_NAMES.get(s, s))
    metric = c2.radio("Metric", list(ex.METRICS), horizontal=True, key="compare_metric",
                      format_func=ex.METRICS.get)
    rows = res["rows"]
    st.altair_chart(charts.strategy_bars(ex.comparison_frame(rows, set_name, metric), ex.METRICS[metric]),
                    width="stretch", key="compare_chart")
    tab = ex.table3_frame(rows, set_name, metric)
    st.markdown(f"**Table 3 layout** ({res['n_images']} images per style; random = mean ± std of 5 seeds)")
    st.dataframe(tab, hide_index=True, width="stretch", key="compare_table",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in tab.columns if c != "task"})
    c1, c2 = st.columns(2)
    for col, frame, chart, key, empty, caption in (
            (c1, ex.concept_frame(rows, set_name, metric), charts.concept_heatmap, "compare_concepts",
             "No concept has CCS-5 heads: no concept-specific matrix.",
             "Each row prunes the CCS-5 heads with that label (paper section 4.4); cells are the drop of "
             "each task's accuracy."),
            (c2, ex.tradeoff_frame(rows, res["bias"], set_name), charts.strategy_tradeoff, "compare_tradeoff",
             "No bias set for these images (the toy world has one; image folders use the CLI).",
             "Mean accuracy over the tasks shown against MaxSkew@K on the group-balanced bias set (shapes "
             "over backgrounds); one point per configuration, each random seed its own.")):
        if frame.empty:
            col.caption(empty)
        else:
            col.altair_chart(chart(frame), width="stretch", key=key)
            col.caption(caption)


@st.fragment
@ui.guarded
def prune_panel() -> None:
    s = st.session_state
    strategies = list(ex.STRATEGIES) if table else ["custom"]
    if not table:
        st.info("High / low / random / concept strategies need CCS scores; "
                + pipeline.NO_SCORES + " Custom head sets work now.")
    c1, c2, c3 = st.columns([2, 2, 1])
    strategy = c1.selectbox("Strategy", strategies, key="prune_strategy", format_func=ex.STRATEGIES.get)
    task = c2.selectbox("Task", ex.task_names(ctx.choices.images), key="prune_task")
    if ctx.choices.images == "toy":
        s.setdefault("prune_n", ctx.choices.n_images)
        n_eval = c3.number_input("Images", 16, 4096, step=32, key="prune_n")
    else:  # a folder is evaluated whole
        n_eval = len(ctx.image_set)
        c3.metric("Images", n_eval)
    concept, custom = "", ()
    if strategy == "concept":
        concept = st.selectbox("Concept", table.labels() if table else [], key="prune_concept")
    if strategy == "custom":
        s.setdefault("prune_heads", [views.selected_head(spans)])
        custom = tuple(st.multiselect("Heads to prune", views.head_names(spans), key="prune_heads",
                                      help="Defaults to the head selected in the grid."))
    if st.button("Run", type="primary", key="prune_run"):
        s.prune_request = ex.PruneRequest(strategy, task, int(n_eval), concept or "", custom, protocol=protocol)
    req = s.get("prune_request")
    if req is None:
        return
    # one slot for the whole result: a new run replaces the previous one at once (no greyed copy below)
    with st.empty().container():
        single_run(req)


def single_run(req) -> None:
    s = st.session_state
    folder = ctx.image_set if ctx.choices.images != "toy" else None
    zs_task, eval_set = ex.resolve_task(ctx.choices.images, req.task, req.n_images, folder, req.protocol)
    st.markdown(f"**{ex.STRATEGIES[req.strategy]}** on **{req.task}** ({len(eval_set)} images, "
                f"protocol {req.protocol})")
    cfgs = ex.configs(req, table, ctx.loaded.spec.n_layers, ctx.loaded.spec.n_heads)

    exact_job = pipeline.experiment_job(ctx, "exact", req, lambda p: ex.exact(
        ctx.loaded, eval_set, zs_task, cfgs, ctx.store, p))
    preview, prev = st.empty(), None
    if exact_job.running:  # the instant preview, shown while the exact run computes
        try:
            prev = ex.preview(ctx.loaded, eval_set, zs_task, cfgs, ctx.n_layers, ctx.store)
            with preview.container():
                st.markdown("**Preview** (direct effects only, approximate)")
                show_accuracy(prev, "preview")
        except Exception as err:
            preview.caption(f"No instant preview: {ui.error_message(err)}")
    rows = ui.await_job(exact_job, wait_s=60, key="prune_exact")
    if rows is None:
        return
    preview.empty()
    st.markdown("**Exact result**")
    acc = show_accuracy(rows, "exact", prev)
    s.prune_result = {"request": req.__dict__, "rows": rows}

    st.subheader("Bias: MaxSkew before and after")
    bias_job = pipeline.experiment_job(ctx, "bias", req, lambda p: ex.bias(
        ctx.loaded, cfgs, ctx.choices.images, store=ctx.store, progress=p, protocol=req.protocol))
    brows = ui.await_job(bias_job, wait_s=60, key="prune_bias")
    if brows is None:
        return
    s.bias_result = {"request": req.__dict__, "rows": brows}
    skew_rows, skew, trade = ex.maxskew_frames(brows, acc)
    st.caption("Toy world: groups are the backgrounds, the neutral prompts are the shapes; "
               "MaxSkew@K with K = 8.2% of the set, the paper's share (lower = less biased).")
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.maxskew_bars(skew), width="stretch", theme=None)
    c2.altair_chart(charts.tradeoff(trade), width="stretch")
    st.dataframe(skew_rows, hide_index=True, width="stretch")
    if ctx.paper_model:
        from ccs_core.paper import bias_maxskew

        st.markdown("**Paper (Tables 7–8)**")
        st.dataframe(bias_maxskew(ctx.paper_model), hide_index=True, width="stretch")


def show_accuracy(rows: list[dict], key: str, preview: list[dict] | None = None) -> pd.DataFrame:
    """Table (accuracy, true-class probability, preview, seed spread) and bar chart of a run."""
    acc = pd.DataFrame(ex.summary_rows(rows, "accuracy")).rename(columns={"value": "accuracy"})
    acc.insert(4, "true-class prob", [r["value"] for r in ex.summary_rows(rows, "mean_true_prob")])
    cols = ["config", "n_heads", "runs", "accuracy", "true-class prob", "lo", "hi", "detail"]
    if preview:
        acc.insert(4, "preview", [r["value"] for r in ex.summary_rows(preview, "accuracy")])
        cols.insert(4, "preview")
    if acc["lo"].isna().all():  # no random seeds: no spread to show
        cols = [c for c in cols if c not in ("lo", "hi")]
    percent = (("accuracy", "accuracy"), ("preview", "preview (approx.)"),
               ("true-class prob", "true-class prob"), ("lo", "min acc. over seeds"),
               ("hi", "max acc. over seeds"))
    c1, c2 = st.columns([3, 2])
    c1.dataframe(acc[cols], hide_index=True, width="stretch", key=f"prune_table_{key}",
                 column_config={c: st.column_config.NumberColumn(t, format="percent") for c, t in percent})
    metric = c2.radio("Chart", list(ex.METRICS), horizontal=True, key=f"prune_metric_{key}",
                      format_func=ex.METRICS.get, label_visibility="collapsed")
    c2.altair_chart(charts.accuracy_bars(pd.DataFrame(ex.summary_rows(rows, metric)), ex.METRICS[metric]),
                    width="stretch", key=f"prune_chart_{key}")
    if ctx.paper_model and key == "exact":
        from ccs_core.paper import pruning_accuracy

        st.markdown("**Paper (Tables 3–4)**")
        st.dataframe(pruning_accuracy(ctx.paper_model), hide_index=True, width="stretch")
    return acc


st.subheader("The paper's comparison")
comparison_panel()
st.subheader("Single run")
st.caption("One strategy on one task, with the instant preview and the bias view.")
prune_panel()

"""Judge re-scoring: choose labeller and judges, edit few-shot examples, re-label and re-judge."""
import pandas as pd
import streamlit as st

from app_lib import judge_panel, page, pipeline, session, ui, views

st.title("Judge re-scoring")
ctx = session.current()
spans = pipeline.spans(ctx)
if spans is None:
    st.stop()
s = st.session_state
applied = pipeline.score_settings(ctx)

st.subheader("Judges")
options = session.judge_options()
st.dataframe(pd.DataFrame([{"judge": title, "kind": kind, "in use": kind in applied["judges"],
                            "status": "available" if why is None else f"disabled — {why}"}
                           for kind, title, why in options]), hide_index=True, width="stretch")
st.caption("Tick judges in the sidebar (▸ Judges); a judge without its API key is disabled there. "
           "CCS counts the spans that every chosen judge accepts.")
judge_panel.settings_panel()
current, error = pipeline.scores_or_error(ctx, spans)
page.score_problems(ctx, spans, current, error)  # "Re-ask the failed": only the failed requests

st.subheader("Labeller")
available = [k for k, _, why in options if why is None]
titles = {k: t for k, t, _ in options}
s.setdefault("labeller_pending", applied["labeller"] if applied["labeller"] in available else
             session.default_labeller(ctx.loaded.name))
st.selectbox("Labeller", available, key="labeller_pending", format_func=titles.get)
with st.expander("Few-shot examples for the LLM labeller (spans → label)"):
    from ccs_core.judges.labels import default_examples, examples_to_rows

    base = applied["examples"] or examples_to_rows(default_examples())
    edited = st.data_editor(pd.DataFrame(base), num_rows="dynamic", key="fewshot_editor",
                            width="stretch", hide_index=True)
    st.caption("Rows with the same example number form one example head. The offline labellers "
               "(toy, embedding) do not use examples.")
pending = {"labeller": s.labeller_pending, "judges": applied["judges"],
           "examples": edited.dropna(how="all").to_dict("records") if len(edited) else None}

st.subheader("Re-label and re-judge")
scope = st.radio("Heads", ["selected", "all"], horizontal=True, key="rescore_scope",
                 format_func={"selected": "The selected head", "all": "All analysed heads"}.get)
head = views.head_picker(spans, key="judges_head") if scope == "selected" else None
if st.button("Run", type="primary", key="rescore_run"):
    # one click = one job: submitted here, found again by its key on every later rerun
    job = pipeline.scores_job(ctx, spans, pending, [head] if head else None, fresh=True)
    s.rescore_request = {"job": job.key, "previous": current}
    if scope == "all":  # the new settings become the session's: the grid follows
        s.labeller, s.fewshot_rows = pending["labeller"], pending["examples"]

request = s.get("rescore_request")
job = ctx.board.get(request["job"]) if request else None
if request and job is None:
    st.caption("That run is no longer in memory (the server restarted); press Run again.")
elif job is not None:
    previous = request["previous"]
    result = ui.await_job(job, wait_s=60, key="rescore")
    if result is not None:
        counts = views.call_counts(result)
        c1, c2, c3 = st.columns(3)
        c1.metric("New calls", counts["new calls"])
        c2.metric("Cache hits", counts["cache hits"])
        c3.metric("Errors", counts["errors"])
        for err in result.errors:
            st.warning(f"{err['head']} ({err['stage']}, {err['agent']}): {err['error']}")
        changes = views.score_changes(previous, result)
        if len(changes):
            st.markdown(f"**{len(changes)} head(s) changed** against the previous verdicts:")
            st.dataframe(changes, hide_index=True, width="stretch")
        else:
            st.success("Nothing changed against the previous verdicts.")

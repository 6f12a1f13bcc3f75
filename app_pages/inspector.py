"""Span & label inspector: the selected head's spans, label, verdicts, top images, human yes/no."""
import pandas as pd
import streamlit as st

from app_lib import page, pipeline, ui, views

ctx, spans, scores = page.start("Span & label inspector")
c1, c2 = st.columns([2, 3])
with c1:
    head = views.head_picker(spans, key="inspector_head")
with c2:
    views.head_stepper(spans, key="inspector_step")
st.caption(views.norm_caption(spans))
other = st.session_state.get("compare_head")
if st.toggle("Compare with another head", key="compare_on"):
    names = [n for n in views.head_names(spans) if n != head]
    if other not in names:
        st.session_state["compare_head"] = names[0]
    st.selectbox("Second head", names, key="compare_head")
    left, right = st.columns(2, gap="large")
    with left:
        views.head_summary(spans, scores, head)
    with right:
        views.head_summary(spans, scores, st.session_state["compare_head"])
else:
    views.head_summary(spans, scores, head)
info = views.head_scores(scores, head)  # None: not scored (yet)
label = info.label if info is not None else None
hs = spans.by_head()[head]
if not scores:
    st.caption(pipeline.NO_SCORES)

# The user's own label for this head, judged by the same judges as the labeller's.
if scores:
    with st.expander("Your own label for this head", expanded=bool(st.session_state.get("own_label"))):
        with st.form(f"own_label_form_{head}"):
            mine = st.text_input("Label", key=f"own_label_{head}", placeholder=label or "")
            asked = st.form_submit_button("Judge the spans against my label")
        if asked and mine.strip():
            st.session_state["own_label"] = {"head": head, "label": mine.strip()}
        own = st.session_state.get("own_label")
        if own and own["head"] == head:
            res = ui.await_job(pipeline.scores_job(ctx, spans, heads=[head], labels={head: own["label"]}),
                               wait_s=60, key="own_label")
            if res is not None:
                mine_ccs = views.ccs_text(views.head_scores(res, head), len(hs.texts))
                st.markdown(f"With **{own['label']}**: CCS **{mine_ccs}** "
                            f"(the labeller's **{label or '—'}**: {views.ccs_text(info)}).")
                verdicts = views.spans_frame(spans, head, res).drop(columns=["variance", "share of spans' variance"])
                st.table(verdicts.set_index("#"))

# Each judge's verdict and rationale per span.
for judge, rec in (info.verdicts if info is not None else {}).items():
    with st.expander(f"Judge **{judge}** — {rec.get('model') or rec.get('provider') or ''}"
                     f"{' (cached)' if rec.get('cached') else ''}"):
        fits, why = rec.get("fits") or [], rec.get("rationales") or []
        st.dataframe(pd.DataFrame({"span": hs.texts,
                                   "fits": [views._tick(fits[i] if i < len(fits) else None)
                                            for i in range(len(hs.texts))],
                                   "rationale": [why[i] if i < len(why) else "" for i in
                                                 range(len(hs.texts))]}),
                     hide_index=True, width="stretch")
        if rec.get("problem"):
            st.warning(rec["problem"])

# The images each span explains most, along the direction TEXTSPAN used for it.
st.subheader("Top images per span")
st.caption("Each row ranks the images by how far this head's output moves along the span's direction "
           "as TEXTSPAN chose it: the span's text without the directions of the spans before it, so a "
           "span shows what it adds, not what it shares with the first one.")
n_top = st.slider("Images per span", 1, 8, 4, key="inspector_topk")
top = pipeline.top_images(ctx, spans, head, n_top)
images = ctx.image_set
for text, idx in zip(hs.texts, top):
    st.markdown(f"**{text}**")
    st.image([images.image(i) for i in idx], width=96, caption=[f"#{i}" for i in idx])

# Human yes/no per span, saved, and agreement with the judges.
st.subheader("Your verdicts")
if not label:
    st.caption("Label this head first (Judge re-scoring page) to record whether its spans fit the label.")
else:
    notes = pipeline.human_notes(ctx)
    st.caption(f"Does each span fit the label **{label}**? Answers are saved in the cache "
               "(per model, head, span and label).")
    options = ["—", "yes", "no"]
    with st.form(f"human_{head}"):
        answers = []
        for i, text in enumerate(hs.texts):
            old = notes.get(ctx.loaded.key, head, text, label)
            answers.append(st.radio(text, options, horizontal=True, key=f"human_{head}_{i}",
                                    index=0 if old is None else (1 if old else 2)))
        if st.form_submit_button("Save my verdicts"):
            for text, a in zip(hs.texts, answers):
                notes.set(ctx.loaded.key, head, text, label, None if a == "—" else a == "yes",
                          annotator=st.session_state.get("annotator", ""))
            st.success("Saved.")
    table = pipeline.agreement(ctx, scores, notes)
    if table:
        st.markdown("**Agreement with the judges** (over every span you have answered, all heads)")
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")

"""Overview: which model is loaded, its spec, the session's choices and where the paper fits."""
import streamlit as st

from app_lib import pipeline, session

st.title("CCS Explorer")
st.caption("Concept Consistency Scores for the attention heads of CLIP image encoders "
           "(Madasu et al., *Pruning the Paradox*, 2025).")

ctx = session.current()
spec, c = ctx.loaded.spec, ctx.choices
st.subheader(f"Model: {ctx.loaded.name}"
             + (f" / {ctx.loaded.pretrained}" if ctx.loaded.pretrained else ""))
cols = st.columns(6)
for col, (name, value) in zip(cols, [("Layers", spec.n_layers), ("Heads / layer", spec.n_heads),
                                      ("Head width", spec.head_dim), ("Width", spec.width),
                                      ("Embedding", spec.embed_dim), ("Image size", spec.image_size)]):
    col.metric(name, value)
if ctx.paper_model:
    st.info(f"This is the paper's **{ctx.paper_model}**: the grid and tables show the paper's numbers "
            "beside the computed ones.")
elif ctx.loaded.name == "toy":
    from app_lib.views import toy_summary

    st.info("The bundled **toy model** sees a procedural world of coloured shapes; its heads have "
            "known concepts (colour, background, size, …), so spans, labels and pruning are meaningful "
            "offline. " + toy_summary())
else:
    st.caption("Not one of the paper's six models: no paper reference numbers for it.")

st.markdown(
    f"**Analysis:** the last **{ctx.n_layers}** layers ({ctx.n_layers * spec.n_heads} heads), "
    f"**{c.n_spans}** spans per head, images **{c.images}**"
    + (f" ({c.n_images})" if c.images == "toy" else "")
    + f", text pool **{c.pool or 'default'}**, judges **{', '.join(c.judges) or 'default'}**, "
    f"protocol **{c.protocol}**, device **{c.device}**.")
st.markdown("""
1. **Head grid** — every analysed head coloured by CCS, category or variance explained; click a cell.
2. **Span & label inspector** — the selected head's spans, label, verdicts, top images, your own yes/no.
3. **Judge re-scoring** — choose judges, edit few-shot examples, re-label and see what changed.
4. **Prune & evaluate** — remove high/low/random/concept/custom heads; accuracy and MaxSkew.
5. **Export** — spans, labels, verdicts, CCS, pruning and bias results; charts as PNG/SVG.
""")

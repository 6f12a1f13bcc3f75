"""AppTest of every page on the toy model (the selection is set through session_state: AppTest
cannot click charts). Streamlit's caches are cleared between tests; the artifact store is a temp dir
shared by this module's tests, so the toy analysis is computed once."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

N_IMAGES = 64  # small toy image set: the whole module stays well under a minute


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("app-cache")


@pytest.fixture
def app(cache_dir, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("CCS_CACHE_DIR", str(cache_dir))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["n_images"] = N_IMAGES
    yield at
    st.cache_resource.clear()
    st.cache_data.clear()


def page(at: AppTest, path: str | None = None, **state) -> AppTest:
    """Run the entry point once (it registers the pages), then switch to ``path`` with ``state``."""
    at.run()
    for k, v in state.items():
        at.session_state[k] = v
    if path:
        at.switch_page(path)
    at.run()
    return at


def assert_clean(at: AppTest) -> None:
    """No traceback and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [m.value for m in at.subheader] + [m.value for m in at.title] + [m.value for m in at.info]
    parts += [str(m.value) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def spans_of(head: str) -> list[str]:
    """The head's spans as the core computes them (same store as the app)."""
    from ccs_core import analysis
    from ccs_core.models import load_model
    from ccs_core.store import open_store
    import os

    loaded = load_model("toy")
    images = analysis.resolve_images("toy", n=N_IMAGES)
    pool = analysis.resolve_pool(None, "toy")
    res = analysis.run_spans(loaded, images, pool, analysis.SpanParams(4, 5),
                             store=open_store(os.environ["CCS_CACHE_DIR"]))
    return res.by_head()[head].texts


def test_home_shows_loaded_toy_model(app):
    at = page(app)
    assert_clean(at)
    assert "Model: toy" in texts(at)
    from ccs_core.models import load_model

    spec = load_model("toy").spec
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layers"] == str(spec.n_layers) and metrics["Heads / layer"] == str(spec.n_heads)


@pytest.mark.parametrize("asked,chosen,said", [("CPU", "cpu", None), (" auto ", "auto", None),
                                               (["cpu"], "auto", "unknown device: auto, cpu, cuda, mps"),
                                               ("tpu", "auto", "unknown device")])
def test_a_device_in_the_session_is_read_as_the_sidebar_offers_it(app, asked, chosen, said):
    """A device set in session_state (a script, an old session): case and spaces do not count, and a
    value that is not a device name is said and auto used, never a traceback."""
    app.session_state["device"] = asked
    at = app.run()
    assert_clean(at)
    assert at.selectbox(key="device").value == chosen
    notes = [i.value for i in at.info if "Device" in i.value]
    assert (any(said in n for n in notes) if said else not notes), notes

def test_unknown_model_is_a_readable_error_not_a_traceback(app):
    at = page(app, model_name="ViT-Nonsense-99")
    assert not at.exception
    assert at.error and "Unknown model architecture" in at.error[0].value


def test_device_setting_defaults_to_auto_and_offers_only_this_servers_devices(app):
    from app_lib import devices

    here = [d for d, why in devices.available().items() if why is None]
    missing = next((d for d in ("cuda", "mps") if d not in here), None)
    if missing:  # asked for (before the widget exists: AppTest keeps a drawn widget's value) but not here
        app.session_state["device"] = missing
    at = app.run()
    assert_clean(at)
    if missing:  # said, and auto is used
        assert any(f"{missing!r} is not available" in i.value for i in at.info)
    box = at.selectbox(key="device")
    assert box.value == "auto" and box.options == [devices.TITLES[d] for d in here]
    assert any(f"Auto runs the model on {devices.resolved('auto')}" in c.value for c in at.sidebar.caption)
    at.selectbox(key="device").set_value("cpu")
    at.run()
    assert_clean(at) and at.session_state["device"] == "cpu"
    assert "Model: toy" in texts(at)


def test_grid_follows_the_selected_head(app):
    at = page(app, "app_pages/grid.py", selected_head="L3.H2")
    assert_clean(at)
    assert "L3.H2" in [s.value for s in at.subheader]
    table = at.table[0].value
    assert list(table["span"]) == spans_of("L3.H2")
    assert at.get("vega_lite_chart")  # the grid (and the CCS@K histogram)
    at.session_state["selected_head"] = "L3.H0"
    at.run()
    assert "L3.H0" in [s.value for s in at.subheader]
    assert list(at.table[0].value["span"]) == spans_of("L3.H0")


def test_grid_colour_modes_and_ccs_at_k(app):
    at = page(app, "app_pages/grid.py")
    assert_clean(at)
    from app_lib.charts import COLOR_BY

    assert at.radio(key="grid_color").options == [COLOR_BY[k] for k in ("ccs", "category", "explained")]
    at.radio(key="grid_color").set_value("category").run()
    assert_clean(at)
    shares = at.dataframe[0].value  # CCS@K table: K and the computed share
    assert list(shares["K"]) == list(range(6)) and abs(shares["computed"].sum() - 1) < 1e-6


def test_grid_colour_mode_survives_a_page_without_it_and_bands_follow_the_sidebar(app):
    at = page(app, "app_pages/grid.py")
    at.radio(key="grid_color").set_value("category").run()
    at.switch_page("app_pages/home.py").run()   # the radio is not drawn here
    at.switch_page("app_pages/grid.py").run()
    assert at.radio(key="grid_color").value == "category"
    assert any("**high** CCS ≥ 5" in c.value for c in at.caption)
    at.session_state["th_high"], at.session_state["th_low"] = 4, 2
    at.run()
    assert_clean(at)
    assert any("**high** CCS ≥ 4" in c.value and "**low** ≤ 2" in c.value for c in at.caption)
    assert any(re.search(r"over (all 64 analysed heads|\d+ of 64 heads; \d+ silent)", c.value)
               for c in at.caption)  # CCS@K coverage (the bundled model has silent heads)


def test_a_real_architecture_gets_its_own_judges_and_a_random_weights_banner(app, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    at = page(app)
    assert at.session_state["judges"] == ["toy"] and not at.warning
    at.session_state["model_name"] = "ViT-B-32"
    at.run()
    assert not at.exception
    assert at.session_state["judges"] == ["embedding"]
    assert any("random weights" in w.value for w in at.warning)
    assert any("no LLM API key" in c.value for c in at.sidebar.caption)
    at.session_state["model_name"] = "toy"
    at.run()
    assert at.session_state["judges"] == ["toy"] and not at.warning


def test_grid_stale_selection_falls_back_to_an_analysed_head(app):
    at = page(app, "app_pages/grid.py", selected_head="L0.H0", n_layers=2)
    assert_clean(at)
    assert at.session_state["selected_head"].startswith(("L3.", "L4."))  # the toy has layers L0..L4


def test_inspector_shows_verdicts_images_and_saves_human_answers(app):
    at = page(app, "app_pages/inspector.py", selected_head="L2.H1")
    assert_clean(at)
    assert at.selectbox(key="inspector_head").value == "L2.H1"
    assert "Decomposition: own-mean centring (project default)" in texts(at)
    assert len(at.get("image")) == 5  # one row of top images per span
    assert at.expander  # one expander per judge with its rationales
    for i in range(5):
        at.radio(key=f"human_L2.H1_{i}").set_value("yes" if i % 2 == 0 else "no")
    at.button[[b.label for b in at.button].index("Save my verdicts")].click().run()  # the form's submit
    assert_clean(at)
    assert "Saved." in [s.value for s in at.success]
    agreement = at.dataframe[-1].value
    assert set(agreement["judge"]) >= {"unanimous"} and (agreement["n"] == 5).all()


def test_inspector_spans_follow_the_sessions_norm(app):
    """Session key ``norm`` (no widget yet) chooses the decomposition's convention; the caption says which."""
    from ccs_core import analysis
    from ccs_core.models import load_model
    from ccs_core.store import open_store
    import os

    res = analysis.run_spans(load_model("toy"), analysis.resolve_images("toy", n=N_IMAGES),
                             analysis.resolve_pool(None, "toy"), analysis.SpanParams(4, 5, norm="gandelsman"),
                             store=open_store(os.environ["CCS_CACHE_DIR"]))
    head = next(h.head for h in res.heads if not h.silent and h.texts != spans_of(h.head))  # spans differ
    at = page(app, "app_pages/inspector.py", selected_head=head, norm="gandelsman")
    assert_clean(at)
    shown = texts(at)
    assert "Gandelsman's convention: shared mean and bias, divided by the embedding norm" in shown
    assert "own-mean centring" not in shown
    assert list(at.table[0].value["span"]) == res.by_head()[head].texts != spans_of(head)


def test_judges_rescoring_of_the_selected_head(app):
    at = page(app, "app_pages/judges.py", selected_head="L3.H0")
    assert_clean(at)
    judges = at.dataframe[0].value
    assert "available" in set(judges["status"])
    disabled = judges[judges["status"].str.startswith("disabled")]
    assert disabled["status"].str.contains("API key|install", case=False).all()
    at.button(key="rescore_run").click().run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert {"New calls", "Cache hits", "Errors"} <= set(metrics)
    assert metrics["Errors"] == "0"


def test_prune_custom_heads_exact_and_bias(app):
    at = page(app, "app_pages/prune.py", selected_head="L3.H3")
    assert_clean(at)
    at.selectbox(key="prune_strategy").set_value("custom")
    at.run()
    assert at.multiselect(key="prune_heads").value == ["L3.H3"]
    at.number_input(key="prune_n").set_value(64)
    at.button(key="prune_run").click().run()
    assert_clean(at)
    assert "**Exact result**" in [m.value for m in at.markdown]
    exact = [d.value for d in at.dataframe if "config" in d.value][-1]
    assert list(exact["config"]) == ["original", "custom"]
    assert ((exact["accuracy"] >= 0) & (exact["accuracy"] <= 1)).all()
    bias = at.dataframe[-1].value
    assert set(bias["strategy"]) == {"original", "custom"} and (bias["maxskew_mean"] >= 0).all()


def concept_heads_of(label: str, norm: str = "own-mean") -> dict[str, int]:
    """head -> CCS of every head labelled ``label``, as the app scores the toy model (same store) with
    the decomposition convention ``norm`` (the paper protocol uses gandelsman: other spans, other CCS)."""
    import os

    from ccs_core import analysis
    from ccs_core.judges import make_judges
    from ccs_core.judges.config import load_settings
    from ccs_core.judges.labels import make_labeller
    from ccs_core.models import load_model
    from ccs_core.store import open_store

    store = open_store(os.environ["CCS_CACHE_DIR"])
    spans = analysis.run_spans(load_model("toy"), analysis.resolve_images("toy", n=N_IMAGES),
                               analysis.resolve_pool(None, "toy"), analysis.SpanParams(4, 5, norm=norm), store=store)
    settings = load_settings({})
    res = analysis.run_scores(spans, make_labeller("toy", settings), make_judges(["toy"], settings)[0], store=store)
    table = res.ccs_table(spans.layers)
    return {str(h): r.get("ccs") for h, r in zip(table.heads, table.rows) if r.get("label") == label}


def test_protocol_paper_prunes_only_a_concepts_ccs5_heads_and_is_recorded(app):
    from app_lib import exports
    from ccs_core.heads import HeadId

    at = page(app, "app_pages/prune.py")
    assert_clean(at)
    assert at.selectbox(key="protocol").value == "standard"
    assert "norm" not in at.session_state or at.session_state["norm"] == "own-mean"  # (a default elsewhere)
    assert any("Protocol: **standard**" in c.value for c in at.caption)
    labelled = concept_heads_of("shape")
    paper = concept_heads_of("shape", norm="gandelsman")
    top = sorted((h for h, ccs in paper.items() if ccs == 5), key=HeadId.parse)  # L3.H2 before L3.H10
    assert 0 < len(top) < len(paper)  # the toy model has shape heads of CCS 5 and below

    def run_concept(label: str) -> AppTest:
        at.selectbox(key="prune_strategy").set_value("concept").run()
        at.selectbox(key="prune_concept").set_value(label)
        at.number_input(key="prune_n").set_value(64)
        return at.button(key="prune_run").click().run()

    at.selectbox(key="protocol").set_value("paper").run()
    assert at.session_state["norm"] == "gandelsman"  # the span pipeline's convention follows the protocol
    assert any("Protocol: **paper**" in c.value and "CCS-5" in c.value for c in at.caption)
    run_concept("shape")
    assert_clean(at)
    exact = [d.value for d in at.dataframe if "config" in d.value][-1]
    row = exact[exact["config"] == "concept:shape"].iloc[0]
    assert row["n_heads"] == len(top) and row["detail"] == ", ".join(top[:8]) + (" …" if len(top) > 8 else "")
    result = at.session_state["prune_result"]
    assert result["request"]["protocol"] == "paper" and set(exports.run_table(result)["protocol"]) == {"paper"}
    assert set(exports.run_table(at.session_state["bias_result"])["protocol"]) == {"paper"}

    at.session_state["protocol"] = "standard"
    at.run()
    assert at.session_state["norm"] == "own-mean"
    run_concept("shape")
    assert_clean(at)
    exact = [d.value for d in at.dataframe if "config" in d.value][-1]
    assert exact[exact["config"] == "concept:shape"].iloc[0]["n_heads"] == len(labelled)
    assert at.session_state["prune_result"]["request"]["protocol"] == "standard"

    low = next((label for label in ("size", "count", "position")
                if (heads := concept_heads_of(label, norm="gandelsman")) and max(heads.values()) < 5), None)
    if low:  # a concept with no CCS-5 head: under paper, a message says why and what to do
        at.session_state["protocol"] = "paper"
        at.run()
        run_concept(low)
        assert not at.exception
        assert any("paper protocol prunes only" in e.value and "Protocol to standard" in e.value for e in at.error)


def test_export_offers_tables_and_chart_images(app):
    at = page(app, "app_pages/export.py")
    assert_clean(at)
    names = {b.label for b in at.get("download_button")}
    for want in ("Spans (CSV)", "Spans (JSON)", "CCS table (CSV)", "Labels (CSV)", "Verdicts (JSON)"):
        assert want in names
    at.button(key="dl_chart_head_grid_prep").click().run()
    assert_clean(at)
    kind, data = at.session_state["dl_chart_head_grid_bytes"]
    assert kind == "PNG" and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_image_folder_is_a_readable_error(app, tmp_path):
    at = page(app, "app_pages/grid.py", images_kind="folder", images_path=str(tmp_path / "nowhere"))
    assert not at.exception
    assert at.error and str(tmp_path / "nowhere") in at.error[0].value


def test_unexpected_bug_shows_a_short_message_not_a_traceback(app, monkeypatch):
    from app_lib import pipeline

    def broken(ctx, wait_s=30.0):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pipeline, "spans", broken)
    at = page(app, "app_pages/inspector.py")
    assert not at.exception
    assert "Something went wrong (ZeroDivisionError" in at.error[0].value


def test_prune_random_heads_shows_the_spread_over_five_seeds(app):
    at = page(app, "app_pages/prune.py")
    assert_clean(at)
    at.selectbox(key="prune_strategy").set_value("random")
    at.number_input(key="prune_n").set_value(64)
    at.button(key="prune_run").click().run()
    assert_clean(at)
    exact = [d.value for d in at.dataframe if "config" in d.value][-1]
    assert list(exact["config"]) == ["original", "random"]
    rnd = exact.set_index("config").loc["random"]
    assert rnd["runs"] == 5 and rnd["lo"] <= rnd["accuracy"] <= rnd["hi"]


def test_prune_page_runs_the_paper_comparison_by_default(app):
    at = page(app, "app_pages/prune.py", compare_n=48)
    assert_clean(at)
    tab = next(d.value for d in at.dataframe if "task" in d.value)
    assert list(tab["task"]) == ["colour", "shape", "size", "position", "count", "background", "mean of the 6",
                                 "frame (unnamed)"]
    assert {"original", "high"} <= set(tab.columns)
    assert any(c.startswith("random") for c in tab.columns)
    assert at.radio(key="compare_set").value == "hard"
    at.radio(key="compare_set").set_value("outline").run()
    assert_clean(at)
    assert at.session_state["compare_result"]["styles"] == ["normal", "hard", "outline"]


def test_inspector_steps_compares_and_judges_an_own_label(app):
    at = page(app, "app_pages/inspector.py", selected_head="L3.H0")
    assert_clean(at)
    at.button(key="inspector_step_next").click().run()
    assert at.session_state["selected_head"] == "L3.H1"
    at.button(key="inspector_step_prev").click().run()
    at.button(key="inspector_step_prev").click().run()
    assert at.session_state["selected_head"] == "L2.H15"
    at.toggle(key="compare_on").set_value(True).run()
    assert_clean(at)
    heads = [s.value for s in at.subheader]
    assert "L2.H15" in heads and at.session_state["compare_head"] in heads
    at.text_input(key="own_label_L2.H15").input("colour")
    at.button[[b.label for b in at.button].index("Judge the spans against my label")].click().run()
    assert_clean(at)
    assert any("With **colour**: CCS" in m.value for m in at.markdown)


def test_a_link_opens_the_same_head_on_the_same_page(app):
    app.query_params["head"] = "L2.H7"
    app.query_params["page"] = "inspector"
    app.query_params["high"] = "4"
    app.run()
    assert_clean(app)
    assert app.session_state["selected_head"] == "L2.H7" and app.session_state["th_high"] == 4
    assert app.selectbox(key="inspector_head").value == "L2.H7"
    assert app.query_params["head"] in ("L2.H7", ["L2.H7"]) and app.query_params["model"] in ("toy", ["toy"])


def test_a_link_out_of_range_is_clamped_and_said(app):
    app.query_params["spans"] = "50"
    app.query_params["layers"] = "x"
    app.run()
    assert_clean(app)
    notes = [i.value for i in app.info]
    assert any("spans=50; the range is 1..10, so 10 is used" in n for n in notes), notes
    assert any("layers='x' is not a whole number" in n for n in notes), notes
    assert app.session_state["n_spans"] == 10


def test_a_folder_is_re_read_when_it_changes_and_its_skipped_files_are_listed(app, tmp_path):
    import time

    from PIL import Image

    for i in range(6):
        Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    at = page(app, images_kind="folder", images_path=str(tmp_path))
    assert any("6 image(s) · 1 file(s) skipped" in c.value for c in at.sidebar.caption)
    Image.new("RGB", (32, 32), (0, 200, 0)).save(tmp_path / "broken.png")  # repaired
    time.sleep(3.2)  # the content stamp is re-read every 3 s
    at.run()
    assert any(c.value == "7 image(s)" for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "bad_dir").mkdir()
    (tmp_path / "bad_dir" / "x.png").write_text("not an image")
    (tmp_path / "comments.txt").write_text("# nothing\n\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "weights.pt").write_text("not weights")
    return tmp_path


APP_FAULTS = [
    ("empty-folder", dict(images_kind="folder", images_path="{tmp}/empty_dir"), "No readable images"),
    ("unreadable-folder", dict(images_kind="folder", images_path="{tmp}/bad_dir"), "1 unreadable"),
    ("pool-missing", dict(pool_kind="file", pool_path="{tmp}/nope.txt"), "does not exist"),
    ("pool-only-comments", dict(pool_kind="file", pool_path="{tmp}/comments.txt"), "has no descriptions"),
    ("pool-latin1", dict(pool_kind="file", pool_path="{tmp}/latin1.txt"), "not valid UTF-8"),
    ("checkpoint-missing", dict(model_name="ViT-B-32", pretrained="{tmp}/nope.pt"), "does not exist"),
    ("checkpoint-not-weights", dict(model_name="ViT-B-32", pretrained="{tmp}/weights.pt"),
     "Could not load the checkpoint"),
]


@pytest.mark.parametrize("name,state,message", APP_FAULTS, ids=[c[0] for c in APP_FAULTS])
def test_bad_app_input_is_a_readable_error_not_a_traceback(app, bad_inputs, name, state, message):
    """The CLI sweep's inputs typed into the sidebar: one error box saying what to fix, no exception."""
    at = page(app, "app_pages/grid.py", **{k: v.replace("{tmp}", str(bad_inputs)) for k, v in state.items()})
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and any(message in e.value for e in at.error), [e.value for e in at.error]


def test_a_link_capped_by_the_model_or_the_spans_says_so(app):
    app.query_params["layers"] = "999"
    app.query_params["high"] = "10"
    app.run()
    assert_clean(app)
    notes = " ".join(i.value for i in app.info)
    assert "has 5 layers, so the last 5 are analysed (the link asked for 999)" in notes, notes
    assert "High CCS at least 10 is more than the 5 spans allow; 5 is used" in notes, notes


def test_a_link_carries_the_protocol_and_an_unknown_one_falls_back_to_standard(app):
    app.query_params["protocol"] = "Paper"
    app.run()
    assert_clean(app)
    assert app.session_state["protocol"] == "paper" and app.session_state["norm"] == "gandelsman"
    assert app.query_params["protocol"] in ("paper", ["paper"])
    assert "protocol **paper**" in texts(app)


def test_an_unknown_protocol_in_a_link_is_said_and_standard_is_used(app):
    app.query_params["protocol"] = "nature"
    app.run()
    assert not app.exception
    assert any("Protocol 'nature' is unknown" in i.value for i in app.info)
    assert app.session_state["protocol"] == "standard" and "protocol" not in app.query_params

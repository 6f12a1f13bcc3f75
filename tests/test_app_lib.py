"""The app's plain helpers: background jobs, chart frames, click events, score diffs, exports,
and the paper tables with the model -> paper-row mapping. No Streamlit runtime needed."""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from app_lib import charts, exports
from app_lib.jobs import JobBoard
from ccs_core import paper


def test_job_runs_in_background_reports_progress_and_is_shared_by_key():
    gate = threading.Event()

    def work(progress):
        progress("half way", 0.5)
        gate.wait(5)
        return 42

    board = JobBoard()
    job = board.submit("k", "work", work)
    time.sleep(0.05)
    assert job.running and job.fraction == 0.5 and "half way" in job.text()
    assert board.submit("k", "work", lambda p: 0) is job  # same key: the running job, not a new one
    gate.set()
    assert job.wait(5) and job.ok and job.result == 42
    assert board.submit("k", "work", lambda p: 0).result == 42  # finished ones are reused too


def test_failed_job_keeps_its_error_and_is_retried_on_resubmit():
    board = JobBoard()

    def boom(progress):
        progress(3, 4)
        raise ValueError("bad input")

    job = board.submit("k", "boom", boom)
    job.wait(5)
    assert not job.ok and isinstance(job.error, ValueError) and (job.done, job.total) == (3, 4)
    again = board.submit("k", "ok", lambda p: "fine")
    again.wait(5)
    assert again is not job and again.result == "fine"


def test_board_keeps_only_recent_finished_jobs():
    board = JobBoard(keep=3)
    for i in range(6):
        board.submit(str(i), "j", lambda p, i=i: i).wait(5)
    assert board.get("0") is None and board.get("5").result == 5


def rows(scores: dict | None = None) -> list[dict]:
    out = []
    for layer in (4, 5):
        for h in range(3):
            name = f"L{layer}.H{h}"
            s = (scores or {}).get(name, {})
            out.append({"head": name, "layer": layer, "index": h, "explained": 0.1 * h, "top_span": "x",
                        "label": s.get("label"), "ccs": s.get("ccs"), "category": s.get("category")})
    return out


def test_grid_chart_has_one_cell_per_head_and_a_click_selection():
    df = charts.grid_frame(rows({"L5.H1": {"label": "colour", "ccs": 5, "category": "high"}}))
    assert list(df.loc[df["head"] == "L5.H1", "cell_text"]) == ["5"]
    assert (df.loc[df["head"] != "L5.H1", "category"] == "unscored").all()
    spec = charts.head_grid(df, "ccs", selected="L5.H1").to_dict()
    assert spec["params"][0]["name"] == charts.SELECTION
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"
    ring = [l for l in spec["layer"] if l["mark"].get("stroke") == "#e7298a"]
    assert len(ring) == 1


@pytest.mark.parametrize("event, want", [
    ({"selection": {"cell": [{"layer": 5, "index": 2}]}}, "L5.H2"),
    ({"selection": {"cell": []}}, None),
    ({"selection": {}}, None),
    (None, None),
])
def test_picked_head_reads_the_chart_selection(event, want):
    class Event:  # what st.altair_chart(on_select="rerun") returns: attribute access
        def __init__(self, d):
            self.selection = d["selection"]

    assert charts.picked_head(Event(event) if event else None) == want


def test_paper_grid_frame_places_the_papers_categories_on_the_cells():
    df = charts.grid_frame(rows())
    ref = pd.DataFrame({"model": ["m", "m"], "layer": [5, 9], "head": [1, 1],
                        "category": ["high", "low"], "label": ["Colors", "Objects"]})
    out = charts.paper_grid_frame(df, ref)
    assert len(out) == len(df)  # heads outside the analysed layers are dropped
    assert out.set_index("head").loc["L5.H1", "category"] == "high"
    assert (out[out["head"] != "L5.H1"]["category"] == "other").all()


def test_ccs_at_k_frame_puts_computed_beside_the_paper_row():
    row = paper.ccs_at_k("ViT-B-32-OpenAI")
    df = charts.ccs_at_k_frame({k: 1 / 6 for k in range(6)}, row)
    assert set(df["source"]) == {"computed", "paper (ViT-B-32-OpenAI)"}
    assert df[df["source"] != "computed"]["share"].sum() == pytest.approx(1.0, abs=0.01)


def test_score_changes_lists_only_heads_that_changed():
    from app_lib.views import call_counts, score_changes
    from ccs_core.scores import ScoreResult

    def rec(label, ccs, fits, cached=False):
        return {"spans": ["a", "b", "c"], "label": label, "ccs": ccs,
                "verdicts": {"toy": {"fits": fits, "cached": cached}}, "label_record": {"cached": cached}}

    old = ScoreResult.from_json({"heads": {"L5.H0": rec("colour", 2, [True, True, False]),
                                           "L5.H1": rec("size", 1, [True, False, False])}})
    new = ScoreResult.from_json({"heads": {"L5.H0": rec("colour", 2, [True, True, False], cached=True),
                                           "L5.H1": rec("count", 2, [True, True, False])}, "calls": 2})
    diff = score_changes(old, new)
    assert list(diff["head"]) == ["L5.H1"]
    assert diff.iloc[0]["label before"] == "size" and diff.iloc[0]["label now"] == "count"
    assert "toy #2" in diff.iloc[0]["verdicts changed"]
    assert call_counts(new) == {"new calls": 2, "cache hits": 2, "errors": 0}


def test_export_tables_flatten_spans_and_verdicts():
    from ccs_core.analysis import HeadSpans, SpansResult
    from ccs_core.scores import ScoreResult

    spans = SpansResult("m", "toy", "imgs", "ik", "pool", "pk", {"n_layers": 1}, [5], 2, 10,
                        [HeadSpans("L5.H0", ["a red", "a blue"], [0, 1], [0.3, 0.1], 0.4),
                         HeadSpans("L5.H1", ["a dog", "a cat"], [2, 3], [0.2, 0.2], 0.5)])
    t = exports.spans_table(spans)
    assert len(t) == 4 and list(t.columns[:5]) == ["head", "layer", "head_index", "rank", "span"]
    scores = ScoreResult.from_json({"heads": {"L5.H0": {
        "spans": ["a red", "a blue"], "label": "colour",
        "verdicts": {"toy": {"fits": [True, True], "rationales": ["r", "b"]}}}}})
    v = exports.verdicts_table(scores)
    assert list(v["fits"]) == [True, True] and list(v["rationale"]) == ["r", "b"]
    assert exports.labels_table(scores)["label"].tolist() == ["colour"]


@pytest.mark.parametrize("name, tag, want", [
    ("ViT-B-32-quickgelu", "openai", "ViT-B-32-OpenAI"),
    ("ViT-B-32", "openai", "ViT-B-32-OpenAI"),
    ("ViT-B-32", "datacomp_xl_s13b_b90k", "ViT-B-32-datacomp"),
    ("ViT-B-16", "laion2b_s34b_b88k", "ViT-B-16-LAION"),
    ("ViT-L-14-quickgelu", "openai", "ViT-L-14-OpenAI"),
    ("ViT-L-14", "laion2b_s32b_b82k", "ViT-L-14-LAION"),
    ("ViT-B-32", "laion2b_s34b_b79k", None),     # not a paper model
    ("ViT-B-32", None, None),                    # random init
    ("ViT-B-32", "/models/b32.pt", None),        # a local checkpoint: unknown provenance
    ("toy", None, None),
])
def test_paper_model_mapping(name, tag, want):
    assert paper.paper_model(name, tag) == want


def test_paper_tables_load_with_their_columns():
    assert set(paper.paper_models()) == set(paper.head_categories()["model"])
    cats = paper.head_categories("ViT-B-32-OpenAI")
    assert set(cats["category"]) <= {"high", "moderate", "low"} and (cats["layer"] <= 11).all()
    acc = paper.pruning_accuracy("ViT-B-16-OpenAI")
    assert {"CIFAR-10", "ImageNet-R"} <= set(acc["dataset"])
    assert (paper.bias_maxskew()["k"] > 0).all()
    t = paper.table("ccs_at_k")
    t.loc[0, "model"] = "changed"  # callers get copies
    assert paper.ccs_at_k()["model"][0] != "changed"


def scored(ccs_by_head: dict, errors=()):
    """A scoring result as ``score_heads`` writes it, for heads L0.H<i> with the given CCS (None =
    a verdict missing)."""
    from ccs_core.judges import summarise
    from ccs_core.scores import ScoreResult

    heads = {}
    for h, c in ccs_by_head.items():
        fits = None if c is None else [i < c for i in range(5)]
        heads[h] = {"spans": [f"s{i}" for i in range(5)], "label": "red",
                    "verdicts": {} if fits is None else {"toy": {"fits": fits}}}
    return summarise(ScoreResult.from_json({"n_spans": 5, "judges": [{"name": "toy"}], "heads": heads,
                                            "errors": list(errors)}))


def test_bands_recategorise_a_copy_and_coverage_counts_incomplete_heads():
    from types import SimpleNamespace

    from app_lib import pipeline
    from ccs_core.ccs import Thresholds

    res = scored({"L0.H0": 5, "L0.H1": 4, "L0.H2": 2, "L0.H3": None},
                 errors=[{"head": "L0.H3", "stage": "judge", "agent": "toy", "error": "HTTP 500"}])
    assert res.heads["L0.H1"].category == "other"
    wide = pipeline.with_thresholds(res, Thresholds(high_min=4, low_max=2))
    assert wide.heads["L0.H1"].category == "high" and wide.heads["L0.H2"].category == "low"
    assert wide.categories["high"] == ["L0.H0", "L0.H1"] and wide.to_json()["thresholds"]["high_min"] == 4
    assert res.heads["L0.H1"].category == "other"  # the shared result is untouched
    assert pipeline.with_thresholds(res, Thresholds()) is res
    spans = SimpleNamespace(heads=[SimpleNamespace(head=h, silent=False) for h in ["L0.H0", "L0.H1", "L0.H2", "L0.H3"]])
    assert pipeline.coverage(res, spans) == "over 3 of 4 heads; 1 incomplete (no CCS: a label or verdict is missing)"
    assert pipeline.coverage(scored({"L0.H0": 5}), SimpleNamespace(heads=spans.heads[:1])) == "over all 1 analysed heads"
    # a silent head (the toy recipe's lasso switches a few off) is never scored, and said so
    with_silent = SimpleNamespace(heads=spans.heads + [SimpleNamespace(head="L0.H4", silent=True)])
    assert pipeline.coverage(res, with_silent) == ("over 3 of 5 heads; 1 silent (the output does not vary: nothing "
                                                   "to label); 1 incomplete (no CCS: a label or verdict is missing)")


def test_unknown_ccs_cells_are_drawn_grey_with_the_reason_in_the_tooltip():
    from ccs_core.analysis import head_note

    res = scored({"L0.H0": 3, "L0.H1": None},
                 errors=[{"head": "L0.H1", "stage": "judge", "agent": "openai", "error": "429 Too Many Requests"}])
    res.used_judges = ["toy", "openai"]
    assert head_note(res, "L0.H0") == ""
    assert "no verdict from toy, openai: 429 Too Many Requests; re-ask" in head_note(res, "L0.H1")
    assert head_note(None, "L0.H0") == "not labelled or judged yet"
    rows = [{"head": h, "layer": 0, "index": i, "explained": 0.5, "ccs": res.heads[h].ccs,
             "category": res.heads[h].category, "note": head_note(res, h)} for i, h in enumerate(res.heads)]
    df = charts.grid_frame(rows)
    assert list(df["cell_text"]) == ["3", "?"] and df["status"][0] == "scored"
    spec = charts.head_grid(df, "ccs").to_dict()
    rect = spec["layer"][0]
    assert rect["encoding"]["color"]["condition"]["test"] == "isValid(datum.ccs)"
    assert rect["encoding"]["color"]["value"] == charts.UNKNOWN  # not a hole: a grey, clickable cell
    assert "Status" in [t.get("title") for t in rect["encoding"]["tooltip"]]


def test_charts_export_at_slide_size():
    import struct

    from app_lib import ui

    bars = charts.accuracy_bars(pd.DataFrame([{"config": "original", "value": 0.9, "lo": None, "hi": None,
                                               "detail": ""}, {"config": "high", "value": 0.5, "lo": None,
                                                               "hi": None, "detail": ""}]))
    grid = charts.head_grid(charts.grid_frame([{"head": f"L{l}.H{i}", "layer": l, "index": i,
                                                "explained": 0.3, "ccs": i % 6} for l in range(2) for i in range(12)]))
    for chart in (bars, grid):
        png = ui.chart_bytes(chart, "png")
        width, height = struct.unpack(">II", png[16:24])
        assert width >= 1200 and height >= 150, (width, height)
    assert b"<svg" in ui.chart_bytes(bars, "svg")[:400]


def test_original_has_one_colour_on_every_chart():
    bars = charts.accuracy_bars(pd.DataFrame([{"config": c, "value": 0.5, "lo": None, "hi": None, "detail": ""}
                                              for c in ("high", "original", "random")]))
    scale = bars.to_dict()["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["original"] == "#7f7f7f"
    skew = charts.maxskew_bars(pd.DataFrame([{"attribute": "group", "config": c, "maxskew": 1.0}
                                             for c in ("original", "high")]))
    scale = skew.to_dict()["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["original"] == "#7f7f7f"


def test_job_text_gives_each_steps_rate_and_eta():
    from app_lib.jobs import Job

    job = Job(key="k", label="Spans")
    job.progress(0, 100, "Step 2/3 · embedding the text pool")
    job.stage_started -= 10  # ten seconds into the step
    job.progress(50, 100, "Step 2/3 · embedding the text pool")
    text = job.text()
    assert "Step 2/3 · embedding the text pool 50/100 · 5.0/s · ETA 10 s" in text
    job.progress(1, 4, "Step 3/3 · TEXTSPAN")  # a new step: its own clock
    assert "ETA" not in job.text()


def test_maxskew_frames_average_seeds_and_attributes_per_config():
    import pandas as pd

    from app_lib.experiments import maxskew_frames

    rows = [{"strategy": s, "seed": seed, "n_heads": n, "attribute": a, "k": 8, "maxskew_sum": v * 2,
             "maxskew_mean": v}
            for s, seed, n, a, v in [("original", None, 0, "background", 0.5), ("high", None, 3, "background", 0.2),
                                     ("random", 0, 3, "background", 0.4), ("random", 1, 3, "background", 0.6)]]
    acc = pd.DataFrame({"config": ["original", "high", "random"], "accuracy": [0.9, 0.6, 0.8]})
    table, skew, trade = maxskew_frames(rows, acc)
    assert len(table) == 4 and str(table["seed"].dtype) == "Int64"
    assert dict(zip(skew["config"], skew["maxskew"])) == pytest.approx({"original": 0.5, "high": 0.2, "random": 0.5})
    assert list(trade.columns) == ["config", "accuracy", "maxskew"] and trade["maxskew"].tolist() == pytest.approx([0.5, 0.2, 0.5])


def test_the_app_loads_one_model_per_device_and_offers_only_devices_it_has(monkeypatch):
    import sys

    import ccs_core.models as models
    from app_lib import devices, resources

    calls, spec = [], models.load_model("toy", device="cpu").spec
    monkeypatch.setattr(models, "load_model", lambda name, pretrained=None, device="auto": _fake_loaded(device, calls,
                                                                                                          spec))
    monkeypatch.setattr(resources, "_LOADED", type(resources._LOADED)())
    a = resources.load_full("toy", "", None, "cpu")
    b = resources.load_full("toy", "", None, "auto")
    # auto is the cpu here: one copy of the model, not two (on a GPU, auto and cuda likewise)
    assert resources.load_full("toy", "", None, "cpu") is a and a is b and calls == ["cpu"]
    lazy = resources.LazyModel(resources.ModelRef("toy", None, "k", spec, False), ("toy", "", "cpu"))
    assert lazy.is_loaded and lazy.full() is a
    ok = devices.available()
    assert ok["auto"] is None and ok["cpu"] is None and set(ok) == set(devices.DEVICES)
    if "torch" in sys.modules:  # once torch is imported its answer is used
        import torch

        assert (ok["cuda"] is None) == torch.cuda.is_available()
        assert devices.resolved("auto") == models.check_device("auto")
    assert devices.resolved("cpu") == "cpu"


def _fake_loaded(device, calls, spec):
    from types import SimpleNamespace

    calls.append(device)
    return SimpleNamespace(name="toy", pretrained=None, key="k", spec=spec, random_init=False, device=device)


def test_the_app_protocol_drives_concept_heads_and_is_recorded_in_exports():
    from app_lib import experiments as ex
    from app_lib import protocols
    from ccs_core.errors import HeadSpecError
    from ccs_core.strategies import CCSTable

    table = CCSTable([{"head": "L5.H0", "ccs": 5, "label": "colour"}, {"head": "L5.H1", "ccs": 3, "label": "colour"},
                      {"head": "L5.H2", "ccs": 4, "label": "size"}], layers=[5])
    heads = {p: [str(h) for h in ex.configs(ex.PruneRequest("concept", "toy:colour", concept="colour", protocol=p),
                                            table, 6, 4)[1].heads] for p in protocols.NAMES}
    assert heads == {"standard": ["L5.H0", "L5.H1"], "paper": ["L5.H0"]}
    with pytest.raises(HeadSpecError, match=r"none has CCS >= 5 \(the highest is 4\); the paper protocol prunes "
                                            r"only a concept's CCS-5 heads.*Protocol to standard"):
        ex.configs(ex.PruneRequest("concept", "toy:colour", concept="size", protocol="paper"), table, 6, 4)
    assert [c.strategy for c in ex.configs(ex.PruneRequest("high", "t", protocol="paper"), table, 6, 4)] == ["original", "high"]
    table_ = exports.run_table({"request": {"protocol": "paper"}, "rows": [{"strategy": "original", "accuracy": 1.0}]})
    assert list(table_.columns) == ["protocol", "strategy", "accuracy"] and list(table_["protocol"]) == ["paper"]
    assert list(exports.run_table({"rows": [{"a": 1}]})["protocol"]) == ["standard"]  # a run from before the setting
    assert protocols.norm_for("paper") == "gandelsman" and protocols.norm_for("standard") == "own-mean"
    assert all(w in protocols.HELP for w in ("templates", "6 race groups", "CCS-5", "Gandelsman", "Country-211"))

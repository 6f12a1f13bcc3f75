"""``python -m ccs_core reproduce`` end to end: the toy model on its world's analogues, and a random-init
ViT-B-32 on tiny synthetic datasets in the torchvision layouts (made here), so every section and
branch runs; the report has every section with the paper's numbers beside ours."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from ccs_core.cli import main
from ccs_core.report import TITLES, read_report
from ccs_core.errors import DataError

SECTIONS = ["table9", "table3", "table4", "concepts", "figure5", "table7", "table8"]


def png(path, colour=(10, 20, 30), size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, format="PNG")


def _outputs(folder):
    return {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")
            if p.name not in ("steps.json", "report.json")}


TOY = ["-q", "reproduce", "--model", "toy", "--n-images", "80"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "run"
    assert main([*TOY, "--out-dir", str(out)]) == 0
    return out


def test_reproduce_toy_every_section_beside_the_paper(toy_run, capsys):
    out = toy_run
    report = read_report(out)
    assert list(report["sections"]) == SECTIONS and report["protocol"] == "paper"
    assert report["paper_model"] == "ViT-B-32-OpenAI" and report["paper_match"] == "reference"
    t3 = {r["dataset"]: r for r in report["sections"]["table3"]}
    assert t3["toy-hard:background"]["status"] == "ok"
    ours = t3["toy-hard:background"]["ours"]
    assert {"original", "high", "low", "random", "random_std"} <= set(ours) and ours["random_runs"] == 5
    assert 0 <= ours["high"] <= 100 and ours["n_high"] > 0
    # the paper's datasets the toy run has no data for are listed with the paper's numbers
    assert t3["CIFAR-10"]["status"] == "skipped" and t3["CIFAR-10"]["paper"]["original"] == pytest.approx(75.68)
    assert "--cifar10" in t3["CIFAR-10"]["note"]
    assert report["sections"]["table9"][0]["paper"]["5"] == pytest.approx(0.167)
    assert report["sections"]["concepts"][0]["ours"], "every concept's CCS-5 heads pruned on every task"
    assert report["sections"]["figure5"][0]["status"] == "ok"
    assert report["sections"]["table7"][0]["dataset"] == "toy-bias"
    assert report["sections"]["table8"][0]["status"] == "skipped"
    md = (out / "report.md").read_text()
    for key in SECTIONS:
        assert f"## {TITLES[key]}" in md
    assert "| CIFAR-10 | — |" in md and "75.68" in md
    for chart in report["charts"]:
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"charts/table3.png", "charts/table9.png"} <= set(report["charts"])
    for name, obj in _outputs(out).items():  # every result file records its protocol
        assert obj.get("protocol") == "paper", name
    # a second run reads every step from the cache and rewrites the same report
    assert main([*TOY, "--out-dir", str(out)]) == 0
    assert "toy-hard:background: original" in capsys.readouterr().out
    again = read_report(out)
    assert {s["status"] for s in again["steps"]} == {"ok"}
    assert again["sections"] == report["sections"]


def test_reproduce_checks_paths_first_and_reports_only_this_runs_results(toy_run, tmp_path, capsys):
    import shutil

    # a typo in a dataset path: said before any step, nothing written
    fresh = tmp_path / "fresh"
    assert main([*TOY, "--cifar10", str(tmp_path / "nope"), "--out-dir", str(fresh)]) == 2
    assert "nope" in capsys.readouterr().err and not (fresh / "spans.json").exists()
    # a folder holding an earlier run: this run's failed score must not show the old CCS@K or concepts
    out = tmp_path / "again"
    shutil.copytree(toy_run, out)
    assert main([*TOY, "--judges", "bogus", "--out-dir", str(out)]) == 2
    report = read_report(out)
    assert report["sections"]["table9"][0]["status"] == "failed" and not report["sections"]["table9"][0]["ours"]
    assert not report["sections"]["concepts"][0]["ours"] and report["judges"] == []
    assert all(r["status"] != "ok" for r in report["sections"]["table3"])


def test_a_failing_dataset_does_not_stop_the_others(tmp_path, cifar_integrity, capsys):
    bad = tmp_path / "cifar"
    (bad / "cifar-10-batches-py").mkdir(parents=True)  # the folder is there, its files are not
    out = tmp_path / "run"
    code = main([*TOY, "--cifar10", str(bad), "--dataset", "toy-hard:colour", "--out-dir", str(out)])
    assert code == 2
    report = read_report(out)
    rows = {r["dataset"]: r for key in ("table3", "other") for r in report["sections"][key]}
    assert rows["CIFAR-10"]["status"] == "failed" and rows["toy-hard:colour"]["status"] == "ok"


def _cifar10(root):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    data = np.random.default_rng(0).integers(0, 255, (6, 3 * 32 * 32), dtype=np.uint8)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": [0, 1, 2, 0, 1, 2]}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird"]}, f)


def _data(tmp_path) -> dict[str, str]:
    """Tiny copies of the paper's datasets in their on-disk layouts."""
    root = tmp_path / "data"
    _cifar10(root / "cifar")
    food = root / "food" / "food-101"
    (food / "meta").mkdir(parents=True)
    (food / "meta" / "test.json").write_text(json.dumps({"apple_pie": ["apple_pie/1"], "sushi": ["sushi/2"]}))
    png(food / "images" / "apple_pie/1.jpg", (200, 120, 40))
    png(food / "images" / "sushi/2.jpg", (240, 240, 240))
    for code, colour in (("FR", (0, 0, 200)), ("JP", (200, 0, 0))):
        png(root / "c211" / "country211" / "test" / code / "0.jpg", colour)
    pets = root / "pets" / "oxford-iiit-pet"
    (pets / "annotations").mkdir(parents=True)
    (pets / "annotations" / "test.txt").write_text("Abyssinian_1 1 1 1\nbeagle_3 2 2 1\n")
    png(pets / "images" / "Abyssinian_1.jpg")
    png(pets / "images" / "beagle_3.jpg", (90, 60, 30))
    png(root / "in-r" / "n01443537" / "a.jpg", (250, 150, 0))  # goldfish
    png(root / "in-r" / "n02051845" / "b.jpg", (250, 250, 250))  # pelican
    png(root / "in-a" / "n01498041" / "a.jpg", (100, 100, 160))  # stingray (an ImageNet-A class)
    png(root / "in-a" / "n01531178" / "b.jpg", (200, 200, 0))  # goldfinch
    vids = root / "videos"
    for v, colour in (("v1", (255, 0, 0)), ("v2", (0, 0, 255))):
        for i in range(2):
            png(vids / v / f"{i:04d}.jpg", colour)
    (vids / "captions.txt").write_text("v1\ta red screen\nv2\ta blue screen\n")
    ff = root / "fairface"
    rows = [(f"val/{i}.jpg", g, r) for i, (g, r) in enumerate(
        [("Male", "White"), ("Female", "Black"), ("Female", "East Asian"), ("Male", "Southeast Asian"),
         ("Male", "Indian"), ("Female", "White")])]
    ff.mkdir(parents=True)
    (ff / "labels.csv").write_text("file,age,gender,race\n" + "".join(f"{f},20-29,{g},{r}\n" for f, g, r in rows))
    for i, (f, _, _) in enumerate(rows):
        png(ff / f, (i * 40, 80, 120))
    scf = root / "scf"
    scf.mkdir()
    races = ("Asian", "Black", "Indian", "Latino", "Middle Eastern", "White")
    lines = ["file,occupation,race,gender,counterfactual_set"]
    for o, occupation in enumerate(("doctor", "nurse")):
        for r, race in enumerate(races):
            for g, gender in enumerate(("male", "female")):
                name = f"{occupation}_{r}_{g}.png"
                png(scf / name, (r * 40, g * 200, o * 120))
                lines.append(f"{name},{occupation},{race},{gender},{occupation}-0")
    (scf / "labels.csv").write_text("\n".join(lines) + "\n")
    return {"cifar10": str(root / "cifar"), "socialcounterfactuals": str(scf / "labels.csv"),
            "food101": str(root / "food"), "country211": str(root / "c211"),
            "pets": str(root / "pets"), "imagenet-r": str(root / "in-r"), "imagenet-a": str(root / "in-a"),
            "videos": str(vids), "fairface": str(ff / "labels.csv")}


@pytest.fixture
def cifar_integrity(monkeypatch):
    import torchvision.datasets.cifar as tvc

    monkeypatch.setattr(tvc.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvc, "check_integrity", lambda *a, **k: True)


def test_reproduce_toy_on_every_dataset_layout(tmp_path, cifar_integrity):
    """The toy model on all the paper's dataset layouts at once (its text tower makes ImageNet-A/R's
    200 classes x 80 templates cheap); the ViT-B-32 test below takes the others."""
    out = tmp_path / "run"
    argv = ["-q", "reproduce", "--model", "toy", "--out-dir", str(out), "--batch-size", "8", "--workers", "0"]
    for flag, path in _data(tmp_path).items():
        argv += [f"--{flag}", path]
    assert main(argv) == 0
    report = read_report(out)
    rows = {r["dataset"]: r for key in ("table3", "table4") for r in report["sections"][key]}
    assert {d for d, r in rows.items() if r["status"] == "ok"} == {
        "CIFAR-10", "Food-101", "Country-211", "Oxford-pets", "ImageNet-A", "ImageNet-R"}
    assert rows["CIFAR-100"]["status"] == "skipped" and "toy-hard:colour" not in rows  # data given: no toy tasks
    assert {r["status"] for r in report["sections"]["table7"] + report["sections"]["table8"]} == {"ok"}
    assert report["sections"]["figure5"][0]["status"] == "ok"
    # the toy model has CCS-5 heads: high, random and the concepts ran on the real layouts too
    assert {"high", "low", "random"} <= set(rows["ImageNet-R"]["ours"])
    assert report["sections"]["concepts"][0]["ours"]


def test_reproduce_random_init_vit_b32_on_synthetic_datasets(tmp_path, cifar_integrity):
    data = {k: v for k, v in _data(tmp_path).items() if k not in ("imagenet-a", "imagenet-r")}
    images = tmp_path / "spans-images"
    for i in range(6):
        png(images / f"{i}.png", (i * 40, 255 - i * 40, 90))
    out = tmp_path / "run"
    argv = ["-q", "reproduce", "--model", "ViT-B-32", "--images", str(images), "--out-dir", str(out),
            "--batch-size", "4", "--workers", "0"]
    for flag, path in data.items():
        argv += [f"--{flag}", path]
    code = main(argv)
    assert code == 0
    report = read_report(out)
    assert report["paper_model"] == "ViT-B-32-OpenAI" and report["paper_match"] == "architecture"
    assert any("same architecture with other weights" in n for n in report["notes"])
    sections = report["sections"]
    assert list(sections) == SECTIONS
    t3 = {r["dataset"]: r for r in sections["table3"]}
    assert t3["CIFAR-10"]["status"] == "ok" and 0 <= t3["CIFAR-10"]["ours"]["original"] <= 100
    assert t3["CIFAR-10"]["paper"]["high"] == pytest.approx(71.31)
    assert t3["CIFAR-100"]["status"] == "skipped"
    t4 = {r["dataset"]: r for r in sections["table4"]}
    assert all(t4[d]["status"] == "ok" for d in ("Country-211", "Oxford-pets"))
    assert t4["ImageNet-R"]["status"] == "skipped" and t4["ImageNet-R"]["paper"]["low"] == pytest.approx(64.45)
    assert sections["figure5"][0]["status"] == "ok" and "R@1" in sections["figure5"][0]["ours"]
    scf = {r["attribute"]: r for r in sections["table8"]}
    assert scf["race"]["status"] == "ok" and scf["race"]["k"] == 12 and scf["gender"]["k"] == 4
    assert scf["race"]["paper"] == {"original": pytest.approx(3.65), "high": pytest.approx(2.43), "k": 12}
    ff = {r["attribute"]: r for r in sections["table7"]}
    assert set(ff) == {"race", "gender"} and ff["race"]["paper"]["original"] == pytest.approx(61.75)
    assert ff["race"]["status"] == "ok" and "original" in ff["race"]["ours"]
    # random weights: few heads reach CCS 5; what was empty is said, not dropped
    for r in sections["table3"] + sections["table4"]:
        if r["status"] == "ok" and "high" not in r["ours"]:
            assert any("CCS" in s for s in r["skipped_strategies"])
    spans = json.loads((out / "spans.json").read_text())
    assert spans["protocol"] == "paper" and spans["norm"] == "gandelsman"
    for name, obj in _outputs(out).items():
        assert obj.get("protocol") == "paper", name


def test_reproduce_says_what_is_missing(tmp_path, capsys):
    with pytest.raises(DataError, match="--images"):
        from argparse import Namespace

        from ccs_core.reproduce import plan

        plan(Namespace(model="ViT-B-32", pretrained=None, device=None, images=None, out_dir=str(tmp_path)))
    assert main(["reproduce", "--model", "toy", "--paper-model", "ViT-Z-99", "--n-images", "40",
                 "--out-dir", str(tmp_path / "r")]) == 2
    assert "not one of the paper's models" in capsys.readouterr().err
    assert not (tmp_path / "r" / "spans.json").exists()


def test_the_app_opens_a_reproduce_report(toy_run, tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["n_images"] = 64
    at.run()
    at.session_state["reproduce_dir"] = str(toy_run)
    at.switch_page("app_pages/reproduce.py")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.subheader] == [TITLES[k] for k in SECTIONS]
    assert "ViT-B-32-OpenAI" in at.markdown[0].value and len(at.dataframe) == len(SECTIONS)
    assert any("CIFAR-10" in str(df.value) for df in at.dataframe)
    at.session_state["reproduce_dir"] = str(tmp_path)  # a folder without a report: said, not a traceback
    at.run()
    assert not at.exception and "has no report.json" in at.error[0].value


def test_skip_empty_notes_an_empty_strategy_instead_of_refusing(tmp_path, capsys):
    ccs = tmp_path / "ccs.json"
    ccs.write_text(json.dumps([{"head": "L3.H0", "ccs": 3, "label": "colour"}, {"head": "L3.H1", "ccs": 0, "label": "x"}]))
    argv = ["-q", "prune-eval", "--model", "toy", "--dataset", "toy:colour", "--n-images", "40", "--ccs", str(ccs),
            "--strategy", "high", "--strategy", "low", "--out", str(tmp_path / "p.json")]
    assert main(argv) == 2 and "no analysed head has CCS >= 5" in capsys.readouterr().err
    assert main([*argv, "--skip-empty"]) == 0
    out = json.loads((tmp_path / "p.json").read_text())
    assert [r["strategy"] for r in out["summary"]] == ["original", "low"]
    assert len(out["skipped_strategies"]) == 1 and "CCS >= 5" in out["skipped_strategies"][0]


# ---- the bad-input sweep of issue 13 (reproduce, its report, the page) ----------------------------

QUICK = ["-q", "reproduce", "--model", "toy", "--n-images", "40"]


def test_damaged_step_files_and_steps_json_are_rerun_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main([*QUICK, "--out-dir", str(out)]) == 0
    (out / "steps.json").write_text(json.dumps({"spans.json": 5, "scores.json": "x"}))  # edited by hand
    assert main([*QUICK, "--out-dir", str(out)]) == 0
    assert {s["status"] for s in read_report(out)["steps"]} == {"ok"}  # all rerun (from the cache)
    good = json.loads((out / "prune__toy-hard-colour.json").read_text())
    for summary in ("x", [{"x": 1}]):  # JSON of the right outline whose summary the report cannot read
        (out / "prune__toy-hard-colour.json").write_text(json.dumps(dict(good, summary=summary)))
        assert main([*QUICK, "--out-dir", str(out)]) == 0
        steps = {s["step"]: s["status"] for s in read_report(out)["steps"]}
        assert steps["prune__toy-hard-colour.json"] == "ok"
        assert json.loads((out / "prune__toy-hard-colour.json").read_text())["summary"] == good["summary"]


def test_no_judge_available_stops_the_chain_exits_3_and_the_report_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "run"
    assert main([*QUICK, "--judges", "openai", "--out-dir", str(out)]) == 3
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and "Cannot read the CCS file" not in err  # no step ran on a missing file
    report = read_report(out)
    assert [s["status"] for s in report["steps"]][:3] == ["ok", "incomplete", "not run"]
    assert report["notes"][0].startswith("No CCS: the score step exited 3 (no requested judge is available")
    assert "OPENAI_API_KEY" in report["sections"]["table9"][0]["note"] and not report["sections"]["table9"][0]["ours"]
    assert "| scores.json | incomplete | 3 | no requested judge is available" in (out / "report.md").read_text()
    # one judge of two missing: scored with the other, the chain goes on, still not exit 0
    assert main([*QUICK, "--judges", "toy,openai", "--out-dir", str(out)]) == 3
    row = read_report(out)["sections"]["table9"][0]
    assert row["status"] == "incomplete" and "openai unavailable" in row["note"] and row["ours"]


def test_a_failed_run_does_not_report_another_models_files_left_in_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main([*QUICK, "--out-dir", str(out)]) == 0
    (tmp_path / "empty").mkdir()  # there (so checked fine before the first step), but no image: spans fails
    assert main(["-q", "reproduce", "--model", "ViT-B-32", "--images", str(tmp_path / "empty"), "--dataset",
                 "toy:colour", "--out-dir", str(out)]) == 2
    report = read_report(out)
    assert report["model"] == "ViT-B-32" and report["model_key"] is None and report["judges"] == []
    assert report["sections"]["table9"][0]["ours"] == {} and report["charts"] == []  # not the toy's CCS
    assert "No readable images" in report["steps"][0]["message"]


def test_an_interrupted_step_exits_130_and_the_next_run_resumes(tmp_path, monkeypatch):
    import ccs_core.cli as cli

    monkeypatch.setenv("CCS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    real = cli.cmd_bias

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_bias", interrupted)
    assert main([*QUICK, "--out-dir", str(out)]) == 130
    row = read_report(out)["sections"]["table7"][0]
    assert row["status"] == "failed" and "interrupted" in row["note"] and "resume" in row["note"]
    monkeypatch.setattr(cli, "cmd_bias", real)
    assert main([*QUICK, "--out-dir", str(out)]) == 0
    steps = read_report(out)["steps"]
    assert {s["status"] for s in steps} == {"ok"}  # every step again, from the cache


def test_the_reproduce_page_says_what_is_wrong_with_a_folder_or_its_report(toy_run, tmp_path):
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    good = json.loads((toy_run / "report.json").read_text())
    folders = {}
    for name, report in {"no_titles": {k: v for k, v in good.items() if k != "titles"},
                         "rows_not_rows": dict(good, sections=dict(good["sections"], table3="x")),
                         "row_without_ours": dict(good, sections=dict(good["sections"], table3=[{"dataset": "x"}]))
                         }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(report))
        folders[name] = tmp_path / name
    charts = tmp_path / "charts_damaged"
    shutil.copytree(toy_run, charts)
    (charts / "charts" / "table3.png").unlink()
    (charts / "charts" / "table9.png").write_bytes(b"not a png")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["n_images"] = 64
    at.run()
    at.switch_page("app_pages/reproduce.py")
    for folder, message in ((tmp_path / "nope", "does not exist"), (toy_run / "report.md", "is a file, not a folder"),
                            (folders["no_titles"], "'titles' is missing or not a mapping"),
                            (folders["rows_not_rows"], "the section 'table3' is not a list of rows"),
                            (folders["row_without_ours"], "lacks its 'ours', 'paper' or 'status'")):
        at.session_state["reproduce_dir"] = str(folder)
        at.run()
        assert not at.exception and at.error and message in at.error[0].value, [e.value for e in at.error]
    at.session_state["reproduce_dir"] = str(charts)  # the tables stand; each chart that cannot be shown is said
    at.run()
    assert not at.exception and not at.error and len(at.subheader) == len(SECTIONS)
    said = [c.value for c in at.caption if "cannot be shown" in c.value]
    assert len(said) == 2 and any("table3.png" in c and "FileNotFoundError" in c for c in said)
    at.session_state["reproduce_dir"] = str(toy_run / "report.json")  # the file itself opens its folder
    at.run()
    assert not at.exception and not at.error and len(at.get("image")) == len(good["charts"])

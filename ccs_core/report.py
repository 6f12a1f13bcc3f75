"""The ``reproduce`` report: each step's JSON gathered into sections shaped like the paper's tables,
with the paper's numbers for the chosen paper model beside ours.

Sections: ``table9`` CCS@K; ``table3`` / ``table4`` zero-shot accuracy (%) original, high, low, random
(mean and std over seeds); ``concepts`` the concept-specific drops (Figures 3-4); ``figure5`` video
retrieval; ``table7`` / ``table8`` MaxSkew (sum over prompts) original vs pruned. Every row says
``status``: ok, skipped (with why: no data given, no such head) or failed (the step's exit code).
``report.json`` is the whole report; ``report.md`` the same as tables; ``charts/*.png`` the charts
(``report_charts.py``). ``read_report`` is what the app opens.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import paper
from .cliutil import write_json, write_text
from .errors import DataError

VERSION = 1
TITLES = {"table9": "CCS@K (Table 9)", "table3": "Zero-shot accuracy, in-domain (Table 3)",
          "table4": "Zero-shot accuracy, location, pets and out-of-domain (Table 4)",
          "concepts": "Concept-specific pruning (Figures 3-4)", "figure5": "Video retrieval (Figure 5)",
          "table7": "MaxSkew on FairFace (Table 7)", "table8": "MaxSkew on SocialCounterfactuals (Table 8)",
          "other": "Other datasets"}
PAPER_DATASETS = {"table3": ("CIFAR-10", "CIFAR-100", "Food-101"),
                  "table4": ("Country-211", "Oxford-pets", "ImageNet-A", "ImageNet-R")}
FLAGS = {"CIFAR-10": "--cifar10 ROOT", "CIFAR-100": "--cifar100 ROOT", "Food-101": "--food101 ROOT",
         "Country-211": "--country211 ROOT", "Oxford-pets": "--pets ROOT", "ImageNet-A": "--imagenet-a DIR",
         "ImageNet-R": "--imagenet-r DIR", "FairFace": "--fairface CSV[:ROOT]",
         "SocialCounterfactuals": "--socialcounterfactuals CSV[:ROOT]"}
# Figures 3-5 give no table; the paper's text quotes these (model, dataset, concept pruned, before, after).
# The text names the architecture only ("the ViT-B-16 model", "the ViT-B-32 model"): the OpenAI rows and
# CIFAR-10 (Figure 4's caption) for the object/location/colour passage are our reading, said in the report.
PAPER_TEXT = [("ViT-B-16-OpenAI", "Country-211", "location", 22.81, 14.09),
              ("ViT-B-32-OpenAI", "CIFAR-10", "objects", 87.6, 86.02),
              ("ViT-B-32-OpenAI", "CIFAR-10", "location", 87.6, 87.02),
              ("ViT-B-32-OpenAI", "CIFAR-10", "colour", 87.6, 87.22),
              ("ViT-L-14-OpenAI", "CIFAR-10", "objects", 92.1, 91.25)]
PAPER_JUDGES = {"openai", "anthropic", "gemini"}


def paper_reference(model: str, pretrained: str | None, override: str | None = None) -> tuple[str, str]:
    """(paper model row, how it matches): given, exact, architecture (same ViT, other weights) or
    reference (not a paper architecture: the ViT-B-32-OpenAI row, for scale only)."""
    names = paper.paper_models()
    if override:
        if override not in names:
            raise DataError(f"--paper-model {override!r} is not one of the paper's models: {', '.join(names)}.")
        return override, "given"
    exact = paper.paper_model(model, pretrained)
    if exact:
        return exact, "exact"
    arch = (model or "").strip().removesuffix("-quickgelu")
    for row in paper.ccs_at_k().itertuples(index=False):
        if row.open_clip_name.removesuffix("-quickgelu") == arch and row.pretraining == "openai":
            return str(row.model), "architecture"
    return "ViT-B-32-OpenAI", "reference"


def _read(folder: Path, file: str) -> dict | None:
    try:
        obj = json.loads((folder / file).read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def _strategies(summary: list[dict], metric: str, scale: float = 1.0) -> dict:
    """original / high / low / random (mean, std over seeds) / concept:X of a summary table."""
    out: dict = {}
    for r in summary:
        s = "random" if r["strategy"].startswith("random") else r["strategy"]
        if r.get(metric) is None:
            continue
        out[s] = r[metric] * scale
        out[f"n_{s}"] = r.get("n_heads")
        if s == "random":
            out["random_std"] = (r.get(f"{metric}_std") or 0.0) * scale
            out["random_runs"] = r.get("runs")
            if r["strategy"] != "random":  # "random (all layers)": the analysed layers had too few heads
                out["random_name"] = r["strategy"]
    return out


def _usable(record: dict | None) -> bool:
    """The step's file is this run's result: it finished (now or before), or it was incomplete (exit 3)
    but wrote its output. Otherwise a file there is an older run's (another model's, other options')."""
    return record is not None and (record["code"] == 0 or (record["code"] == 3 and bool(record.get("fresh"))))


def _result(folder: Path, file: str, recs: dict) -> dict | None:
    return _read(folder, file) if _usable(recs.get(file)) else None


def _status(record: dict | None, obj: dict | None) -> tuple[str, str]:
    if record is None or record["code"] is None:
        return "failed", "not run (an earlier step failed)"
    if record["code"] == 130:
        return "failed", "interrupted (exit 130); run the same reproduce command again to resume"
    said = f": {record['message']}" if record.get("message") else "; rerun it alone to see why"
    if record["code"] == 3 and _usable(record) and obj is not None:
        return "incomplete", f"the step exited 3{said}"
    if record["code"] != 0:
        return "failed", f"the step exited {record['code']}{said}"
    return ("ok", "") if obj is not None else ("failed", "its output file is missing or unreadable")


def _accuracy_rows(folder: Path, datasets: list[dict], recs: dict, section: str, ref: str) -> list[dict]:
    prow = {r.dataset: r for r in paper.pruning_accuracy(ref).itertuples(index=False)}
    rows = []
    for d in [d for d in datasets if d["section"] == section]:
        obj = _result(folder, d["file"], recs)
        status, why = _status(recs.get(d["file"]), obj)
        ours = _strategies(obj.get("summary", []), "accuracy", 100.0) if status == "ok" else {}
        rows.append({"dataset": d["name"], "spec": d["spec"], "status": status, "note": why, "ours": ours,
                     "skipped_strategies": (obj or {}).get("skipped_strategies", []),
                     "paper": _paper_acc(prow.get(d["name"]))})
    given = {r["dataset"] for r in rows}
    for name in PAPER_DATASETS.get(section, ()):
        if name not in given:
            rows.append({"dataset": name, "spec": None, "status": "skipped", "ours": {},
                         "note": f"no data given ({FLAGS[name]})", "paper": _paper_acc(prow.get(name))})
    return rows


def _paper_acc(row) -> dict:
    return {} if row is None else {"original": row.original, "high": row.high_ccs_pruned, "low": row.low_ccs_pruned}


def _concept_rows(folder: Path, datasets: list[dict], recs: dict, ref: str) -> list[dict]:
    rows = []
    for d in datasets:
        obj = _result(folder, d["file"], recs) if d["section"] in ("table3", "table4", "other") else None
        summary = (obj or {}).get("summary", [])
        base = next((r["accuracy"] for r in summary if r["strategy"] == "original"), None)
        for r in summary:
            if r["strategy"].startswith("concept:") and base is not None:
                rows.append({"dataset": d["name"], "concept": r["strategy"].split(":", 1)[1], "n_heads": r["n_heads"],
                             "original": base * 100, "pruned": r["accuracy"] * 100,
                             "drop": (base - r["accuracy"]) * 100})
    paper_rows = [{"dataset": ds, "concept": c, "original": a, "pruned": b, "drop": round(a - b, 2),
                   "source": "paper text (model row and dataset inferred)"}
                  for m, ds, c, a, b in PAPER_TEXT if m == ref]
    return [{"ours": rows, "paper": paper_rows}]


def _video_rows(folder: Path, datasets: list[dict], recs: dict) -> list[dict]:
    rows = []
    for d in [d for d in datasets if d["section"] == "figure5"]:
        obj = _result(folder, d["file"], recs)
        status, why = _status(recs.get(d["file"]), obj)
        ours = {m: _strategies(obj.get("summary", []), m) for m in ("R@1", "R@5", "R@10")} if status == "ok" else {}
        rows.append({"dataset": d["name"], "spec": d["spec"], "status": status, "note": why, "ours": ours,
                     "skipped_strategies": (obj or {}).get("skipped_strategies", []), "paper": {}})
    if not rows:
        rows.append({"dataset": "MSR-VTT / MSVD / DiDeMo", "spec": None, "status": "skipped", "ours": {},
                     "note": "no data given (--videos DIR)", "paper": {}})
    return rows


def _bias_rows(folder: Path, datasets: list[dict], recs: dict, section: str, ref: str) -> list[dict]:
    pname = "FairFace" if section == "table7" else "SocialCounterfactuals"
    prow = {r.attribute: r for r in paper.bias_maxskew(ref).itertuples(index=False) if r.dataset == pname}
    rows = []
    for d in [d for d in datasets if d["section"] == section]:
        obj = _result(folder, d["file"], recs)
        status, why = _status(recs.get(d["file"]), obj)
        summary = (obj or {}).get("summary", []) if status == "ok" else []
        attributes = sorted({r["attribute"] for r in summary}) or ["—"]
        k = (obj or {}).get("k")
        skipped = len((obj or {}).get("skipped_prompts") or []) if status == "ok" else 0
        n_prompts = next((r.get("n_prompts") for r in (obj or {}).get("rows", [])), None) if status == "ok" else None
        if skipped:  # a sum over fewer prompts than the paper's 104 is smaller for that reason alone
            why = (f"summed over {n_prompts} prompts: {skipped} have no image of their occupation "
                   "(the paper sums over 104)")
        for a in attributes:
            p = prow.get(a)
            rows.append({"dataset": d["name"], "spec": d["spec"], "attribute": a, "status": status, "note": why,
                         "n_prompts": n_prompts, "skipped_prompts": skipped,
                         "k": k.get(a) if isinstance(k, dict) else k,
                         "ours": _strategies([r for r in summary if r["attribute"] == a], "maxskew_sum"),
                         "skipped_strategies": (obj or {}).get("skipped_strategies", []),
                         "paper": {} if p is None else {"original": p.original, "high": p.high_ccs_pruned, "k": p.k}})
    if not rows:
        for a, p in sorted(prow.items()) or [("race", None), ("gender", None)]:
            rows.append({"dataset": pname, "spec": None, "attribute": a, "status": "skipped", "ours": {},
                         "note": f"no data given ({FLAGS[pname]})",
                         "paper": {} if p is None else {"original": p.original, "high": p.high_ccs_pruned, "k": p.k}})
    return rows


def build_report(folder: Path, chain: dict, records: list[dict], args) -> dict:
    """The report as a JSON-ready dict (see the module docstring)."""
    folder = Path(folder)
    recs = {r["step"]: r for r in records}
    ref, match = paper_reference(args.model, args.pretrained, getattr(args, "paper_model", None))
    # only this run's files: one a failed step left from an older run (another model's) is not reported
    spans, scores = _result(folder, "spans.json", recs), _result(folder, "scores.json", recs)
    datasets = chain["datasets"]
    judges = (scores or {}).get("used_judges") or []
    pk = paper.ccs_at_k(ref)
    sections = {
        "table9": [{"status": _status(recs.get("scores.json"), scores)[0],
                    "note": _status(recs.get("scores.json"), scores)[1],
                    "ours": {k: v for k, v in ((scores or {}).get("ccs_at_k") or {}).items()},
                    "n_heads": (scores or {}).get("n_heads"),
                    "paper": {str(k): float(pk[f"ccs_at_{k}"].iloc[0]) for k in range(6)} if len(pk) else {}}],
        "table3": _accuracy_rows(folder, datasets, recs, "table3", ref),
        "table4": _accuracy_rows(folder, datasets, recs, "table4", ref),
        "concepts": _concept_rows(folder, datasets, recs, ref),
        "figure5": _video_rows(folder, datasets, recs),
        "table7": _bias_rows(folder, datasets, recs, "table7", ref),
        "table8": _bias_rows(folder, datasets, recs, "table8", ref),
    }
    if any(d["section"] == "other" for d in datasets):
        sections["other"] = _accuracy_rows(folder, datasets, recs, "other", ref)
    notes = []
    score = recs.get("scores.json")
    if scores is None and score is not None and score["code"] not in (0, None):
        notes.append(f"No CCS: the score step exited {score['code']}"
                     + (f" ({score['message']})" if score.get("message") else "")
                     + "; the steps after it need its scores and were not run. Fix that, then run the same "
                       "reproduce command again (finished steps are not recomputed).")
    if match != "exact":
        notes.append({"given": f"Compared with the paper's {ref} row, as asked (--paper-model).",
                      "architecture": f"Not one of the paper's models: the paper's {ref} row is the same "
                                      "architecture with other weights; compare the drops, not the values.",
                      "reference": f"Not one of the paper's architectures: the paper's {ref} row is shown for "
                                   "scale only; compare the drops' pattern."}[match])
    if scores is not None and not PAPER_JUDGES <= set(judges):
        notes.append(f"Judges used: {', '.join(judges) or 'none'}; the paper's are GPT-4o, Claude and Gemini "
                     "(score --judges openai,anthropic,gemini with their keys).")
    if spans is not None and spans.get("pool") not in (None, "") and "general" not in str(spans.get("pool")):
        notes.append(f"Pool: {spans.get('pool')}; the paper's spans come from Gandelsman et al.'s general "
                     "image descriptions (--pool image_descriptions_general.txt).")
    return {"report": "reproduce", "version": VERSION, "protocol": "paper", "model": args.model,
            "pretrained": args.pretrained, "model_key": (scores or spans or {}).get("model_key"),
            "paper_model": ref, "paper_match": match, "judges": judges,
            "pool": (spans or {}).get("pool"), "norm": (spans or {}).get("norm"),
            "precision": getattr(args, "precision", None) or "fp32",
            "image_set": (spans or {}).get("image_set"), "notes": notes,
            "steps": [{"step": r["step"], "status": r["status"], "code": r["code"],
                       **({"message": r["message"]} if r.get("message") else {})} for r in records],
            "sections": sections, "titles": {k: TITLES[k] for k in sections}}


def write_report(folder: Path, chain: dict, records: list[dict], args) -> dict:
    """report.json, report.md and charts/*.png in ``folder``; returns the report plus ``charts`` (the
    PNG files written) and ``summary_lines`` (what the command prints)."""
    from .report_charts import write_charts
    from .report_md import markdown, summary_lines

    report = build_report(folder, chain, records, args)
    try:
        report["charts"] = write_charts(report, Path(folder) / "charts")
    except Exception as err:  # the tables matter more than the pictures: write them whatever happens
        report["charts"] = []
        report["notes"].append(f"The charts could not be drawn ({err.__class__.__name__}: {err}); the tables "
                               "are complete. Run reproduce again to retry (nothing is recomputed).")
    write_json(Path(folder) / "report.json", report)
    write_text(Path(folder) / "report.md", markdown(report))
    report["summary_lines"] = summary_lines(report)
    return report


def report_folder(folder: "str | Path") -> Path:
    """The report folder a typed path names: the folder itself, or the folder of its report.json."""
    path = Path(folder).expanduser()
    return path.parent if path.name == "report.json" and path.is_file() else path


def _check_report(obj: dict, path: Path) -> dict:
    """What the app and ``flat_rows`` read is there with its type, or a DataError saying what is not."""
    def damaged(what: str):
        raise DataError(f"{path} is damaged or was not written by reproduce: {what}. Run reproduce again to "
                        "rewrite it (finished steps are not recomputed).")

    words = {str: "text", list: "a list", dict: "a mapping"}
    for key, kind in (("model", str), ("protocol", str), ("paper_model", str), ("paper_match", str),
                      ("judges", list), ("notes", list), ("steps", list), ("titles", dict), ("charts", list)):
        if not isinstance(obj.get(key, [] if key == "charts" else None), kind):
            damaged(f"{key!r} is missing or not {words[kind]}")
    if not all(isinstance(x, str) for x in obj["judges"] + obj["notes"] + obj.get("charts", [])):
        damaged("'judges', 'notes' and 'charts' hold text only")
    if not all(isinstance(s, dict) and {"step", "status", "code"} <= s.keys() for s in obj["steps"]):
        damaged("every step needs 'step', 'status' and 'code'")
    sections, titles = obj["sections"], obj["titles"]
    if set(titles) != set(sections) or not all(isinstance(v, str) for v in titles.values()):
        damaged("'titles' must name every section, and only those")
    for key, rows in sections.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or (key == "concepts" and not rows):
            damaged(f"the section {key!r} is not a list of rows")
        for r in rows:
            if key == "concepts":
                fine = all(isinstance(r.get(k), list) and all(isinstance(x, dict) for x in r[k])
                           for k in ("ours", "paper"))
            else:
                fine = (isinstance(r.get("ours"), dict) and isinstance(r.get("paper"), dict)
                        and isinstance(r.get("status"), str) and isinstance(r.get("skipped_strategies", []), list)
                        and (key != "figure5" or all(isinstance(v, dict) for v in r["ours"].values())))
            if not fine:
                damaged(f"a row of the section {key!r} lacks its 'ours', 'paper' or 'status'")
    return obj


def read_report(folder: "str | Path") -> dict:
    """A reproduce report folder's report.json (or that file, named), checked (what the app opens)."""
    given = Path(folder).expanduser()
    root = report_folder(folder)
    path = root / "report.json"
    if not given.exists():
        raise DataError(f"{given} does not exist: give the --out-dir of a finished 'python -m ccs_core reproduce' run.")
    if not root.is_dir():
        raise DataError(f"{given} is a file, not a folder: give the --out-dir of a finished 'python -m ccs_core "
                        "reproduce' run (the folder that holds its report.json).")
    if not path.is_file():
        raise DataError(f"{root} has no report.json: give the --out-dir of a finished 'python -m ccs_core reproduce' "
                        "run.")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"Cannot read {path}: {err}. Run reproduce again to rewrite it.") from err
    if not isinstance(obj, dict) or obj.get("report") != "reproduce" or not isinstance(obj.get("sections"), dict):
        raise DataError(f"{path} is not a reproduce report (no 'sections'); give the folder reproduce wrote.")
    if obj.get("version") != VERSION:
        raise DataError(f"{path} is a version {obj.get('version')!r} report; this CCS Explorer reads version "
                        f"{VERSION}: run reproduce again (finished steps are not recomputed).")
    return _check_report(obj, path)


def flat_rows(report: dict, key: str) -> list[dict]:
    """One section's rows as flat records (ours_original, paper_high, ...) for a table view."""
    out = []
    rows = report["sections"][key]
    if key == "concepts":
        return [dict(r, source="ours") for r in rows[0]["ours"]] + [dict(r, source="paper") for r in rows[0]["paper"]]
    for r in rows:
        flat = {k: v for k, v in r.items() if k not in ("ours", "paper", "skipped_strategies")}
        if key == "table9":
            flat = {"source": "ours", **{f"CCS@{k}": v for k, v in r["ours"].items()}, "status": r["status"]}
            out += [flat, {"source": "paper", **{f"CCS@{k}": v for k, v in r["paper"].items()}}]
            continue
        ours = r["ours"]
        if key == "figure5":
            for metric, o in (ours or {"—": {}}).items():
                out.append({**flat, "metric": metric, **{f"ours_{s}": v for s, v in o.items()}})
            continue
        flat.update({f"ours_{s}": v for s, v in ours.items()})
        flat.update({f"paper_{s}": v for s, v in r["paper"].items()})
        if r.get("skipped_strategies"):
            flat["skipped"] = "; ".join(r["skipped_strategies"])
        out.append(flat)
    return out

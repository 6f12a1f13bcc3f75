"""The ``reproduce`` report (``report.py``) as Markdown tables, ours beside the paper's, and the few
lines the command prints."""
from __future__ import annotations

DASH = "—"


def _f(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _pm(ours: dict, key: str, digits: int = 2) -> str:
    if key not in ours:
        return DASH
    std = ours.get(f"{key}_std")
    text = f"{ours[key]:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{ours[key]:.{digits}f}"
    return text + (" (all layers)" if key == "random" and ours.get("random_name") else "")


def _change(d: dict, key: str) -> str:
    """pruned minus original, signed (a drop is negative)."""
    return f"{d[key] - d['original']:+.2f}" if key in d and "original" in d else DASH


def _status(row: dict) -> str:
    notes = [row.get("note") or ""] + [f"skipped: {s}" for s in row.get("skipped_strategies", [])]
    text = "; ".join(n for n in notes if n)
    return row["status"] + (f": {text}" if text else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def _accuracy(rows: list[dict]) -> list[str]:
    head = ["dataset", "original", "high", "low", "random (5 seeds)", "high Δ", "low Δ",
            "paper original", "paper high", "paper low", "paper high Δ", "paper low Δ", "status"]
    body = []
    for r in rows:
        o, p = r["ours"], r["paper"]
        body.append([r["dataset"], _f(o.get("original")), _pm(o, "high") if "high" in o else DASH,
                     _f(o.get("low")), _pm(o, "random"), _change(o, "high"), _change(o, "low"),
                     _f(p.get("original")), _f(p.get("high")), _f(p.get("low")), _change(p, "high"),
                     _change(p, "low"), _status(r)])
    return _table(head, body)


def _bias(rows: list[dict]) -> list[str]:
    head = ["dataset", "attribute", "K", "original", "high", "low", "random (5 seeds)", "paper K",
            "paper original", "paper high", "status"]
    body = [[r["dataset"], r["attribute"], str(r.get("k") or DASH), _f(r["ours"].get("original")),
             _f(r["ours"].get("high")), _f(r["ours"].get("low")), _pm(r["ours"], "random"),
             str(r["paper"].get("k", DASH)), _f(r["paper"].get("original")), _f(r["paper"].get("high")),
             _status(r)] for r in rows]
    return _table(head, body)


def _video(rows: list[dict]) -> list[str]:
    head = ["dataset", "metric", "original", "high", "low", "random (5 seeds)", "status"]
    body = []
    for r in rows:
        for metric, o in (r["ours"] or {DASH: {}}).items():
            body.append([r["dataset"], metric, _f(o.get("original"), 3), _f(o.get("high"), 3),
                         _f(o.get("low"), 3), _pm(o, "random", 3), _status(r)])
    return _table(head, body) + ["", "The paper's Figure 5 is a chart without numbers in its text: compare "
                                     "the pattern (high-CCS pruning hurts retrieval most)."]


def _concepts(block: dict) -> list[str]:
    out = _table(["dataset", "concept pruned", "heads", "original", "pruned", "drop"],
                 [[r["dataset"], r["concept"], str(r["n_heads"]), _f(r["original"]), _f(r["pruned"]),
                   _f(r["drop"])] for r in block["ours"]] or [[DASH] * 6])
    if block["paper"]:
        out += ["", "The paper's text (its Figures 3-4 give no table; it names the architecture only, so the "
                "weights' row, and CIFAR-10 for the objects passage, are our reading):", ""]
        out += _table(["dataset", "concept pruned", "original", "pruned", "drop"],
                      [[r["dataset"], r["concept"], _f(r["original"]), _f(r["pruned"]), _f(r["drop"])]
                       for r in block["paper"]])
    return out


def _ccs(row: dict) -> list[str]:
    ks = [str(k) for k in range(6)]
    ours = [_f(row["ours"].get(k), 3) for k in ks]
    paper = [_f(row["paper"].get(k), 3) for k in ks]
    return _table(["", *[f"CCS@{k}" for k in ks], "heads", "status"],
                  [["ours", *ours, str(row.get("n_heads") or DASH), _status(row)],
                   ["paper", *paper, "", ""]])


def markdown(report: dict) -> str:
    lines = [f"# Reproduce: {report['model']}" + (f" ({report['pretrained']})" if report.get("pretrained") else ""),
             "", f"Protocol **{report['protocol']}**; compared with the paper's **{report['paper_model']}** row "
             f"({report['paper_match']}). Judges: {', '.join(report['judges']) or DASH}. Pool: "
             f"{report.get('pool') or DASH}. Decomposition: {report.get('norm') or 'own-mean'}. Precision: "
             f"{report.get('precision') or 'fp32'}. Spans from: "
             f"{report.get('image_set') or DASH}. Accuracy in %, MaxSkew summed over prompts.", ""]
    lines += [f"- {n}" for n in report["notes"]] + ([""] if report["notes"] else [])
    render = {"table9": lambda rows: _ccs(rows[0]), "table3": _accuracy, "table4": _accuracy,
              "other": _accuracy, "concepts": lambda rows: _concepts(rows[0]), "figure5": _video,
              "table7": _bias, "table8": _bias}
    for key, rows in report["sections"].items():
        lines += [f"## {report['titles'][key]}", ""] + render[key](rows) + [""]
        chart = next((c for c in report.get("charts", []) if c.startswith(f"charts/{key}")), None)
        if chart:
            lines += [f"![{report['titles'][key]}]({chart})", ""]
    lines += ["## Steps", ""] + _table(["step", "status", "exit", "why"], [
        [s["step"], s["status"], str(s["code"]), (s.get("message") or "").replace("|", "\\|")]
        for s in report["steps"]])
    return "\n".join(lines) + "\n"


def summary_lines(report: dict) -> list[str]:
    """One line per section row that ran: ours beside the paper's."""
    out = []
    for key in ("table3", "table4", "other"):
        for r in report["sections"].get(key, []):
            if r["status"] == "ok":
                o, p = r["ours"], r["paper"]
                out.append(f"{r['dataset']}: original {_f(o.get('original'))}, high {_f(o.get('high'))}, low "
                           f"{_f(o.get('low'))}, random {_f(o.get('random'))}"
                           + (f" | paper {_f(p.get('original'))}, {_f(p.get('high'))}, {_f(p.get('low'))}" if p else ""))
    for key in ("table7", "table8"):
        for r in report["sections"][key]:
            if r["status"] == "ok":
                out.append(f"{r['dataset']} {r['attribute']} MaxSkew: original {_f(r['ours'].get('original'))}, "
                           f"high {_f(r['ours'].get('high'))}"
                           + (f" | paper {_f(r['paper'].get('original'))}, {_f(r['paper'].get('high'))}"
                              if r["paper"] else ""))
    row = report["sections"]["table9"][0]
    if row["status"] == "ok":
        out.append("CCS@0..5: " + ", ".join(_f(row["ours"].get(str(k)), 3) for k in range(6)) +
                   (" | paper " + ", ".join(_f(row["paper"].get(str(k)), 3) for k in range(6)) if row["paper"] else ""))
    return out

"""Calibrate and report the offline embedding judge on the project's labelled (span, label) set.

    python -m ccs_core.judges.calibrate            # report agreement of the committed calibration
    python -m ccs_core.judges.calibrate --write    # re-fit template + threshold, write the JSON

The threshold maximises accuracy on the set; the honest estimate is cross-validated by label
(the threshold is fitted on the other labels' pairs, never on the label it is tested on).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from ..ccs import cohen_kappa, spearman
from .offline import (CALIBRATION_FILE, EMBEDDING_MODEL, RESOURCES, load_calibration,
                      relative_similarities)

LABELLED_SET = RESOURCES / "judge_calibration.csv"
TEMPLATES = ("{label}", "a photo of {label}", "an image showing {label}")


def load_pairs(path: Path = LABELLED_SET) -> list[tuple[str, str, bool]]:
    with open(path, newline="") as f:
        return [(r["span"], r["label"], r["fits"].strip() in ("1", "true", "True", "yes"))
                for r in csv.DictReader(f)]


def pair_similarities(pairs, template: str) -> np.ndarray:
    """The embedding judge's relative similarity of each (span, label) pair. # [P]"""
    by_label: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_label.setdefault(p[1], []).append(i)
    out = np.zeros(len(pairs))
    for label, idx in by_label.items():
        out[idx] = relative_similarities([label], [pairs[i][0] for i in idx], template)[:, 0]
    return out


def best_threshold(sims: np.ndarray, truth: np.ndarray) -> float:
    """The midpoint threshold with the highest accuracy (ties: the middle of the best run)."""
    s = np.sort(np.unique(sims))
    cands = np.concatenate([[s[0] - 1e-3], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-3]])
    acc = np.array([((sims >= t) == truth).mean() for t in cands])
    best = np.flatnonzero(acc == acc.max())
    return float(cands[best[len(best) // 2]])


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {"accuracy": round(float((pred == truth).mean()), 4),
            "kappa": round(float(cohen_kappa(list(map(bool, truth)), list(map(bool, pred)))), 4)}


def cross_validated(sims: np.ndarray, truth: np.ndarray, groups: list[str], folds: int = 5) -> dict:
    """Predictions where each label's threshold was fitted on the other labels (grouped k-fold)."""
    names = sorted(set(groups))
    fold_of = {g: i % folds for i, g in enumerate(names)}
    f = np.array([fold_of[g] for g in groups])
    pred = np.zeros_like(truth)
    for k in range(folds):
        test = f == k
        t = best_threshold(sims[~test], truth[~test])
        pred[test] = sims[test] >= t
    return scores(pred, truth)


def calibrate(pairs=None) -> dict:
    """Pick the template with the best cross-validated accuracy, fit its threshold on all pairs."""
    pairs = pairs or load_pairs()
    truth = np.array([p[2] for p in pairs])
    groups = [p[1] for p in pairs]
    best = None
    for template in TEMPLATES:
        sims = pair_similarities(pairs, template)
        cv = cross_validated(sims, truth, groups)
        if best is None or cv["accuracy"] > best["cv"]["accuracy"]:
            t = best_threshold(sims, truth)
            best = {"model": EMBEDDING_MODEL, "template": template, "threshold": round(t, 4),
                    "n_pairs": len(pairs), "n_fits": int(truth.sum()),
                    "fit": scores(sims >= t, truth), "cv": cv}
    return best


def report(calibration: "dict | None" = None, pairs=None) -> dict:
    """Agreement of a calibration (default: the committed one) with the labelled set."""
    cal = calibration or load_calibration()
    pairs = pairs or load_pairs()
    truth = np.array([p[2] for p in pairs])
    sims = pair_similarities(pairs, cal["template"])
    return {"threshold": cal["threshold"], "template": cal["template"], "n_pairs": len(pairs),
            **scores(sims >= cal["threshold"], truth),
            "cv_by_label": cross_validated(sims, truth, [p[1] for p in pairs])}


def table1_check(judge=None) -> dict:
    """CCS of the embedding judge on the paper's Table 1 heads under the paper's labels, vs the paper."""
    from .labels import TABLE1_CSV
    from .offline import EmbeddingJudge

    judge = judge or EmbeddingJudge()
    heads: dict[tuple, dict] = {}
    with open(TABLE1_CSV, newline="") as f:
        for r in csv.DictReader(f):
            h = heads.setdefault((r["layer"], r["head"]), {"label": r["label"],
                                                         "paper_ccs": int(r["ccs"]), "spans": []})
            h["spans"].append(r["span"])
    rows = [{"head": f"L{l}.H{h}", "label": v["label"], "paper_ccs": v["paper_ccs"],
             "ccs": sum(judge.judge(v["label"], v["spans"]).fits)} for (l, h), v in heads.items()]
    paper, ours = [r["paper_ccs"] for r in rows], [r["ccs"] for r in rows]
    return {"heads": rows, "exact": sum(a == b for a, b in zip(paper, ours)), "n": len(rows),
            "spearman": round(spearman(paper, ours), 4)}


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ccs_core.judges.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"re-fit and write {CALIBRATION_FILE.name}")
    ap.add_argument("--pairs", type=Path, default=LABELLED_SET, help="CSV with span,label,fits")
    args = ap.parse_args(argv)
    pairs = load_pairs(args.pairs)
    if args.write:
        cal = calibrate(pairs)
        CALIBRATION_FILE.write_text(json.dumps(cal, indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}", file=sys.stderr)
    print(json.dumps({**report(pairs=pairs), "paper_table1": table1_check()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

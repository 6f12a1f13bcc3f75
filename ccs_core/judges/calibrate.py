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

from ..ccs import cohen_kappa
from .offline import (CALIBRATION_FILE, EMBEDDING_MODEL, RESOURCES, label_text, load_calibration,
                      embed, span_vectors)

LABELLED_SET = RESOURCES / "judge_calibration.csv"
TEMPLATES = ("{label}", "a photo of {label}", "an image showing {label}")


def load_pairs(path: Path = LABELLED_SET) -> list[tuple[str, str, bool]]:
    with open(path, newline="") as f:
        return [(r["span"], r["label"], r["fits"].strip() in ("1", "true", "True", "yes"))
                for r in csv.DictReader(f)]


def pair_similarities(pairs, template: str) -> np.ndarray:
    """cos(span, templated label) per pair. # [P]"""
    spans = span_vectors([p[0] for p in pairs])
    labels = embed([label_text(p[1], template) for p in pairs])
    return (spans * labels).sum(1)


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
    print(json.dumps(report(pairs=pairs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

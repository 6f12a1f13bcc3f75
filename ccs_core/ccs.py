"""Concept Consistency Score (paper, section 3.2.3), CCS@K, head categories, and agreement (3.3).

A head's verdicts are ``{judge_name: [fits_span_1, ..., fits_span_n]}`` with each entry True, False or
None (the judge's answer could not be parsed). A span counts only if *every* judge accepts it.

Unparseable verdicts (None) are never counted as yes or no:
- a span that some judge rejects (False) is rejected, whatever the others said (unanimity cannot hold);
- otherwise a span with any None is *undetermined*, and a head with an undetermined span gets
  CCS None and category "incomplete". CCS@K is computed over the complete heads only, and the number
  of incomplete heads is reported next to it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence

from .errors import DataError

N_SPANS = 5


def check_verdicts(verdicts: Mapping[str, Sequence["bool | None"]], judges: Sequence[str],
                   n_spans: int = N_SPANS) -> None:
    """Raise DataError if a judge is missing, has the wrong number of spans, or a non-boolean entry."""
    if not judges:
        raise DataError("No judges were chosen: pick at least one judge to compute CCS.")
    missing = [j for j in judges if j not in verdicts]
    if missing:
        raise DataError(f"Verdicts from judge(s) {', '.join(missing)} are missing (have: "
                        f"{', '.join(sorted(verdicts)) or 'none'}). Run those judges or deselect them.")
    for j in judges:
        vals = list(verdicts[j])
        if len(vals) != n_spans:
            raise DataError(f"Judge {j!r} gave {len(vals)} verdicts but the head has {n_spans} spans; "
                            "re-run the judge on this head.")
        bad = [v for v in vals if v is not None and not isinstance(v, bool)]
        if bad:
            raise DataError(f"Judge {j!r} has non-boolean verdicts {bad!r}; expected True/False/None.")


def span_accepted(values: Iterable["bool | None"]) -> "bool | None":
    """Unanimity for one span: False if any judge rejects, None if undetermined, else True."""
    values = list(values)
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def accepted_spans(verdicts: Mapping[str, Sequence["bool | None"]], judges: Sequence[str],
                   n_spans: int = N_SPANS) -> list["bool | None"]:
    """Per span: accepted by all judges (True), rejected by one (False), or undetermined (None)."""
    check_verdicts(verdicts, judges, n_spans)
    return [span_accepted(verdicts[j][i] for j in judges) for i in range(n_spans)]


def head_ccs(verdicts: Mapping[str, Sequence["bool | None"]], judges: Sequence[str],
             n_spans: int = N_SPANS) -> "int | None":
    """CCS(h) = number of spans all judges accept; None if a span is undetermined."""
    acc = accepted_spans(verdicts, judges, n_spans)
    if any(a is None for a in acc):
        return None
    return sum(1 for a in acc if a)


def ccs_at_k(scores: Iterable["int | None"], n_spans: int = N_SPANS) -> dict[int, float]:
    """Share of complete heads with CCS = K, for K = 0..n_spans (all 0.0 when no head is complete)."""
    done = [s for s in scores if s is not None]
    for s in done:
        if not (isinstance(s, int) and 0 <= s <= n_spans):
            raise DataError(f"CCS {s!r} is outside 0..{n_spans}.")
    n = len(done)
    return {k: (sum(1 for s in done if s == k) / n if n else 0.0) for k in range(n_spans + 1)}


@dataclass(frozen=True)
class Thresholds:
    """Category bounds (paper: high = 5, moderate = 3, low <= 1; 2 and 4 are uncategorised)."""
    high_min: int = 5
    moderate_min: int = 3
    moderate_max: int = 3
    low_max: int = 1

    def __post_init__(self) -> None:
        if not (self.low_max < self.moderate_min <= self.moderate_max < self.high_min):
            raise DataError(
                f"CCS thresholds must satisfy low_max < moderate_min <= moderate_max < high_min; got "
                f"low<={self.low_max}, moderate {self.moderate_min}..{self.moderate_max}, "
                f"high>={self.high_min}.")


CATEGORIES = ("high", "moderate", "low", "other", "incomplete")


def category(ccs: "int | None", thresholds: Thresholds = Thresholds()) -> str:
    """'high' / 'moderate' / 'low', 'other' between the bands, 'incomplete' for CCS None."""
    if ccs is None:
        return "incomplete"
    if ccs >= thresholds.high_min:
        return "high"
    if thresholds.moderate_min <= ccs <= thresholds.moderate_max:
        return "moderate"
    if ccs <= thresholds.low_max:
        return "low"
    return "other"


# ---- agreement between human and judge (paper Table 2) -------------------------------------------

def _pairs(a: Sequence, b: Sequence) -> tuple[list, list]:
    if len(a) != len(b):
        raise DataError(f"Cannot compare {len(a)} human answers with {len(b)} judge answers: "
                        "they must be paired span by span.")
    keep = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return [x for x, _ in keep], [y for _, y in keep]


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters (None pairs dropped). NaN when undefined: no pairs, or both raters
    constant on the same answer (chance agreement p_e = 1), as in sklearn."""
    a, b = _pairs(a, b)
    n = len(a)
    if n == 0:
        return math.nan
    cats = set(a) | set(b)
    p_o = sum(1 for x, y in zip(a, b) if x == y) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    if p_e >= 1.0:
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def _corr(fn, a: Sequence, b: Sequence) -> float:
    a, b = _pairs(a, b)
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan  # correlation undefined for constant input

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn([float(x) for x in a], [float(y) for y in b]).statistic)
    return value


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (NaN for constant or too-short input)."""
    from scipy.stats import spearmanr

    return _corr(spearmanr, a, b)


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (NaN for constant or too-short input)."""
    from scipy.stats import kendalltau

    return _corr(kendalltau, a, b)


@dataclass(frozen=True)
class Agreement:
    n: int                 # pairs compared (both answers present)
    n_skipped: int         # pairs with a missing / unparseable answer
    accuracy: float        # share of identical answers
    kappa: float
    spearman: float
    kendall: float

    def as_dict(self) -> dict:
        """JSON-friendly: NaN becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in self.__dict__.items()}


def agreement(human: Sequence, judge: Sequence) -> Agreement:
    """Agreement of two paired answer lists (bools per span, or CCS per head)."""
    a, b = _pairs(human, judge)
    n = len(a)
    acc = sum(1 for x, y in zip(a, b) if x == y) / n if n else math.nan
    return Agreement(n=n, n_skipped=len(human) - n, accuracy=acc, kappa=cohen_kappa(a, b),
                     spearman=spearman(a, b), kendall=kendall(a, b))

"""The typed result of scoring heads (``judges.score_heads``, ``analysis.run_scores``): one
``HeadScore`` per head, the run's labeller and judges, failed requests, and CCS@K.

Its JSON (``to_json``, what ``score --out`` writes and the store keeps) is the documented scores
file: ``heads`` {name: {spans, label, label_record, verdicts, accepted, ccs, category, status}},
``n_spans``, ``labeller``, ``judges``, ``used_judges``, ``thresholds``, ``errors``, ``calls``,
``silent``, where the spans came from (``source``: model, image set, pool, parameters, the spans'
protocol and decomposition convention ``norm``) and, derived
from the heads, ``ccs``, ``ccs_at_k``, ``n_heads``, ``n_complete``, ``n_incomplete``,
``categories`` (``from_json`` recomputes these from the heads: a file cannot disagree with itself). Pure Python: reading a stored result imports neither torch nor a judge.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .ccs import CATEGORIES, Thresholds, accepted_spans, category, ccs_at_k, head_ccs
from .errors import DataError
from .strategies import CCSTable

SOURCE = ("model_key", "model_name", "image_set", "pool", "params", "layers", "n_heads_per_layer",
          "unavailable_judges", "protocol", "norm")  # provenance, written at the top level of the JSON as
# before; protocol and norm are the spans' (absent in files written before they were recorded)


@dataclass
class HeadScore:
    """One head: its spans, label, every judge's verdicts and the CCS they give."""
    spans: list[str]
    label: "str | None" = None
    label_record: "dict | None" = None        # the labeller's LabelResult JSON (+ "cached")
    verdicts: dict[str, dict] = field(default_factory=dict)  # judge -> JudgeResult JSON (+ "cached")
    accepted: list = field(default_factory=list)  # per span: True / False / None (undetermined)
    ccs: "int | None" = None
    category: str = "incomplete"
    status: str = "unlabelled"                # ok | incomplete | unlabelled

    def fits(self, judge: str) -> list:
        """That judge's verdict per span (True / False / None); [] if it gave none."""
        v = self.verdicts.get(judge)
        return list(v.get("fits") or []) if isinstance(v, dict) else []

    @property
    def unparseable(self) -> bool:
        """Some answer about this head (label or verdict) could not be read."""
        return (any(v.get("status") == "unparseable" for v in self.verdicts.values())
                or (self.label_record or {}).get("status") == "unparseable")

    @property
    def cache_hits(self) -> int:
        """How many of its label and verdicts came from the verdict cache."""
        return (bool((self.label_record or {}).get("cached"))
                + sum(bool(v.get("cached")) for v in self.verdicts.values()))

    def rescore(self, judges: Sequence[str], n_spans: int, thresholds: Thresholds) -> None:
        """Accepted spans, CCS, category and status from the stored verdicts of ``judges``."""
        if self.label is None:
            self.accepted, self.ccs, self.category, self.status = [None] * n_spans, None, "incomplete", "unlabelled"
            return
        fits = {j: (self.verdicts[j]["fits"] if j in self.verdicts else [None] * n_spans) for j in judges}
        self.accepted = accepted_spans(fits, judges, n_spans)
        self.ccs = head_ccs(fits, judges, n_spans)
        self.category = category(self.ccs, thresholds)
        self.status = "ok" if self.ccs is not None else "incomplete"


@dataclass
class ScoreResult:
    """Every scored head of one run (see the module docstring for the JSON)."""
    n_spans: int
    labeller: dict
    judges: list[dict]
    heads: dict[str, HeadScore]
    errors: list[dict] = field(default_factory=list)   # {head, stage, agent, error} per failed request
    calls: int = 0                                      # requests answered in this run
    used_judges: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=lambda: asdict(Thresholds()))
    silent: list[str] = field(default_factory=list)     # heads never scored: their output does not vary
    source: dict = field(default_factory=dict)          # model_key, image_set, pool, params, layers, ...

    # ---- derived from the heads ----
    @property
    def ccs(self) -> dict[str, "int | None"]:
        return {h: r.ccs for h, r in self.heads.items()}

    @property
    def ccs_at_k(self) -> dict[int, float]:
        """Share of the complete heads with CCS = K, K = 0..n_spans."""
        return ccs_at_k(self.ccs.values(), self.n_spans)

    @property
    def n_heads(self) -> int:
        return len(self.heads)

    @property
    def n_complete(self) -> int:
        return sum(r.ccs is not None for r in self.heads.values())

    @property
    def n_incomplete(self) -> int:
        return self.n_heads - self.n_complete

    @property
    def categories(self) -> dict[str, list[str]]:
        return {c: [h for h, r in self.heads.items() if r.category == c] for c in CATEGORIES}

    @property
    def bands(self) -> Thresholds:
        return Thresholds(**self.thresholds)

    def head(self, name: str) -> "HeadScore | None":
        return self.heads.get(str(name))

    def errors_of(self, name: str) -> list[dict]:
        return [e for e in self.errors if e.get("head") == str(name)]

    def ccs_table(self, layers: Sequence[int] = ()) -> CCSTable:
        """The strategies' view: one {head, ccs, label} row per head, under this result's bands."""
        rows = [{"head": h, "ccs": r.ccs, "label": r.label} for h, r in self.heads.items()]
        th = self.bands
        return CCSTable(rows, high=th.high_min, low=th.low_max, layers=list(layers))

    def rescored(self, judges: "Sequence[str] | None" = None,
                 thresholds: "Thresholds | None" = None) -> "ScoreResult":
        """A copy with CCS and categories recomputed over ``judges`` (default: the run's) and
        ``thresholds`` (default: the result's); no request is made and ``self`` is unchanged."""
        out = copy.deepcopy(self)
        out.summarise(judges, thresholds)
        return out

    def summarise(self, judges: "Sequence[str] | None" = None,
                  thresholds: "Thresholds | None" = None) -> "ScoreResult":
        """Recompute every head's CCS and category in place (over ``judges``, under ``thresholds``)."""
        names = list(judges or self.used_judges or [j["name"] for j in self.judges])
        th = thresholds if thresholds is not None else self.bands
        for rec in self.heads.values():
            rec.rescore(names, self.n_spans, th)
        self.used_judges, self.thresholds = names, asdict(th)
        return self

    # ---- JSON ----
    def to_json(self) -> dict:
        out = {"n_spans": self.n_spans, "labeller": self.labeller, "judges": self.judges,
               "heads": {h: asdict(r) for h, r in self.heads.items()}, "errors": self.errors,
               "calls": self.calls, "used_judges": self.used_judges, "thresholds": self.thresholds,
               "silent": self.silent, **self.source}
        out.update(ccs=self.ccs, ccs_at_k={str(k): v for k, v in self.ccs_at_k.items()},
                   n_heads=self.n_heads, n_complete=self.n_complete, n_incomplete=self.n_incomplete,
                   categories=self.categories)
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "scores") -> "ScoreResult":
        """Read a scores JSON (as ``to_json`` writes it); a malformed one raises DataError naming what."""
        if not isinstance(d, dict) or not isinstance(d.get("heads"), dict):
            raise DataError(f"{where}: not a scores result (expected an object with 'heads'); write one "
                            "with 'python -m ccs_core score'.")
        heads = {}
        for h, r in d["heads"].items():
            if not isinstance(r, dict) or not isinstance(r.get("spans"), list):
                raise DataError(f"{where}: head {h} is {r!r:.80}, expected an object with its 'spans'.")
            heads[str(h)] = HeadScore(**{k: r[k] for k in HeadScore.__dataclass_fields__ if k in r})
        try:
            n_spans = int(d.get("n_spans") or 5)
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: 'n_spans' must be a whole number, not {d.get('n_spans')!r}.") from err
        th = d.get("thresholds") or asdict(Thresholds())
        if not isinstance(th, dict) or set(th) - set(Thresholds.__dataclass_fields__):
            raise DataError(f"{where}: 'thresholds' must be an object like {asdict(Thresholds())}, not {th!r}.")
        return cls(n_spans=n_spans, labeller=d.get("labeller") or {}, judges=list(d.get("judges") or []),
                   heads=heads, errors=list(d.get("errors") or []), calls=int(d.get("calls") or 0),
                   used_judges=list(d.get("used_judges") or []), thresholds=dict(th),
                   silent=list(d.get("silent") or []), source={k: d[k] for k in SOURCE if k in d})

"""Which heads to prune: strategies over a per-head CCS table (the paper's section 4).

high = CCS >= high threshold (5), low = CCS <= low threshold (1), random = as many heads as "high",
drawn from the analysed layers excluding the high-CCS heads (one configuration per seed), concept:LABEL
= heads with that label, concepts = one concept:LABEL per label (the paper's section 4.4 matrix),
heads:L11.H5,... = a custom set. Heads with CCS None (incomplete) are in no
category.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .errors import HeadSpecError
from .heads import HeadId, check_heads, parse_heads


class EmptyStrategyError(HeadSpecError):
    """A strategy selects no head with these CCS scores (e.g. no head has CCS 5)."""


def as_heads(heads, n_layers: int, n_heads: int, first_layer: int = 0) -> list[HeadId]:
    """Parse + range-check a head set ("L11.H5, L10.H8", names or HeadIds)."""
    if heads is None:
        return []
    return check_heads(parse_heads(heads), n_layers, n_heads, first_layer)


@dataclass(frozen=True)
class PruneConfig:
    """One pruning configuration: a named head set (seed set for random draws)."""
    strategy: str
    heads: tuple[HeadId, ...] = ()
    seed: int | None = None

    @property
    def names(self) -> list[str]:
        return [str(h) for h in self.heads]


@dataclass
class CCSTable:
    """Per-head CCS rows ({"head": "L11.H5", "ccs": int|None, "label": str}) plus category thresholds."""
    rows: list[dict]
    high: int = 5
    low: int = 1
    layers: list[int] = field(default_factory=list)

    def __post_init__(self):
        if any(not isinstance(r, dict) or "head" not in r for r in self.rows):
            raise HeadSpecError("CCS rows need a 'head' field (e.g. {'head': 'L11.H5', 'ccs': 5, 'label': 'colour'}).")
        self.heads = [HeadId.parse(r["head"]) for r in self.rows]
        if not self.layers:
            self.layers = sorted({h.layer for h in self.heads})

    @classmethod
    def from_json(cls, obj, high: int | None = None, low: int | None = None) -> "CCSTable":
        """From a list of rows, {"rows": [...]}, or a judges score result {"heads": {name: {ccs, label}},
        "thresholds": {high_min, low_max}}."""
        th = obj.get("thresholds", {}) if isinstance(obj, dict) else {}
        if not isinstance(th, dict):
            raise HeadSpecError("The CCS file's 'thresholds' must be an object like {\"high_min\": 5, \"low_max\": 1}.")
        if isinstance(obj, dict) and isinstance(obj.get("heads"), dict):
            bad = [h for h, r in obj["heads"].items() if not isinstance(r, dict)]
            if bad:
                raise HeadSpecError(f"CCS file: head {bad[0]} is {obj['heads'][bad[0]]!r}, expected an object "
                                    "with 'ccs' and 'label' (the scores JSON written by 'score').")
            rows = [{"head": h, "ccs": r.get("ccs"), "label": r.get("label")} for h, r in obj["heads"].items()]
        elif isinstance(obj, dict) and isinstance(obj.get("rows"), list):
            rows = obj["rows"]
        elif isinstance(obj, list):
            rows = obj
        else:
            raise HeadSpecError("CCS file not understood: give a list of {head, ccs, label} rows or the "
                                "scores JSON written by the judges.")
        if not rows or any(not isinstance(r, dict) or "head" not in r for r in rows):
            raise HeadSpecError("CCS rows need a 'head' field (e.g. 'L11.H5') and there must be at least one.")
        n_spans = obj.get("n_spans", 5) if isinstance(obj, dict) else 5
        if isinstance(n_spans, bool) or not isinstance(n_spans, int) or n_spans < 1:
            raise HeadSpecError(f"CCS file: 'n_spans' must be a whole number >= 1, not {n_spans!r}.")
        for r in rows:
            c = r.get("ccs")
            if c is not None and (isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= n_spans):
                raise HeadSpecError(f"CCS file: head {r['head']} has CCS {c!r}; a CCS is a whole number "
                                    f"0..{n_spans} (or null for an incomplete head).")
            if r.get("label") is not None and not isinstance(r.get("label"), str):
                raise HeadSpecError(f"CCS file: head {r['head']} has the label {r.get('label')!r}; a label is "
                                    "text (or null).")
        key = obj.get("model_key") if isinstance(obj, dict) else None
        if key is not None and not isinstance(key, str):
            raise HeadSpecError(f"CCS file: 'model_key' must be the text key the scores were made with, not {key!r}.")
        names = [str(HeadId.parse(r["head"])) for r in rows]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise HeadSpecError(f"CCS file: head(s) {', '.join(dup)} appear more than once; give each head one row.")
        high = high if high is not None else th.get("high_min", 5)
        low = low if low is not None else th.get("low_max", 1)
        if any(isinstance(t, bool) or not isinstance(t, int) for t in (high, low)):
            raise HeadSpecError(f"CCS file: thresholds must be whole numbers ({th!r}): a CCS counts accepted "
                                "spans, so high_min 4.7 would mean 4 or 5.")
        if not 0 <= low < high <= n_spans:
            raise HeadSpecError(f"CCS file: thresholds need 0 <= low_max < high_min <= {n_spans} (got "
                                f"low_max {low}, high_min {high}); the paper's are 1 and 5.")
        return cls(rows, high, low)

    def select(self, pred: Callable[[dict], bool]) -> list[HeadId]:
        return sorted(h for h, r in zip(self.heads, self.rows) if pred(r))

    def high_heads(self) -> list[HeadId]:
        return self.select(lambda r: r.get("ccs") is not None and r["ccs"] >= self.high)

    def low_heads(self) -> list[HeadId]:
        return self.select(lambda r: r.get("ccs") is not None and r["ccs"] <= self.low)

    def concept_heads(self, label: str, min_ccs: int | None = None) -> list[HeadId]:
        want = label.strip().lower()
        return self.select(lambda r: str(r.get("label") or "").strip().lower() == want and
                           (min_ccs is None or (r.get("ccs") is not None and r["ccs"] >= min_ccs)))

    def labels(self) -> list[str]:
        return sorted({str(r.get("label")) for r in self.rows if r.get("label")})


MAX_SEEDS = 1000  # random draws: each is a full evaluation (seconds each); the paper uses 5


def random_heads(pool: Sequence[HeadId], count: int, seed: int) -> list[HeadId]:
    """``count`` heads drawn without replacement from ``pool`` with a seeded RNG."""
    pool = sorted(set(pool))
    if count > len(pool):
        raise HeadSpecError(f"Cannot draw {count} random heads from only {len(pool)} candidates "
                            "(all layers minus the high-CCS heads); raise the high threshold.")
    return sorted(random.Random(seed).sample(pool, count))


def strategy_configs(strategy: str, table: CCSTable | None, n_layers: int, n_heads: int,
                     n_seeds: int = 5, concept_min_ccs: int | None = None) -> list[PruneConfig]:
    """Configurations for "original", "high", "low", "random", "concept:LABEL", "concepts" (every label's
    concept:LABEL that selects a head) or "heads:L3.H1,L4.H2"."""
    s = strategy.strip()
    kind, colon, arg = s.partition(":")
    kind = kind.strip().lower()
    if colon and kind in ("original", "high", "low", "random", "concepts"):  # 'high:5' would silently mean 'high'
        raise HeadSpecError(f"Strategy {strategy!r}: {kind} takes no argument (thresholds come from the CCS file, "
                            f"random's seeds from --seeds); write {kind}.")
    if kind == "random" and (isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or not 1 <= n_seeds <= MAX_SEEDS):
        raise HeadSpecError(f"The random strategy needs 1..{MAX_SEEDS} seeds (got {n_seeds!r}); the paper uses 5.")
    if kind == "original":
        return [PruneConfig("original")]
    if kind == "heads":
        heads = as_heads(arg, n_layers, n_heads)
        if not heads:
            raise HeadSpecError("Strategy 'heads:' names no head: write e.g. heads:L11.H5,L10.H8.")
        return [PruneConfig("custom", tuple(heads))]
    if kind not in ("high", "low", "random", "concept", "concepts"):
        raise HeadSpecError(f"Unknown strategy {strategy!r}: use original, high, low, random, concept:LABEL, "
                            "concepts or heads:L11.H5,L10.H8.")
    if table is None:
        raise HeadSpecError(f"Strategy {strategy!r} needs CCS scores: run the analysis first or pass "
                            "--ccs FILE.json (rows with head, ccs, label).")
    check_heads(table.heads, n_layers, n_heads)
    high = set(table.high_heads())
    if kind in ("high", "random") and not high:
        raise EmptyStrategyError(f"Strategy {kind!r}: no analysed head has CCS >= {table.high}, so there is "
                                 "nothing to prune (random draws as many heads as high); lower the high "
                                 "threshold or score more heads.")
    if kind == "high":
        return [PruneConfig("high", tuple(sorted(high)))]
    if kind == "concepts":
        found = [PruneConfig(f"concept:{label}", tuple(heads)) for label in table.labels()
                 if (heads := table.concept_heads(label, concept_min_ccs))]
        if not found:
            floor = f" with CCS >= {concept_min_ccs}" if concept_min_ccs is not None else ""
            raise EmptyStrategyError(f"Strategy 'concepts': no labelled head{floor}, so no concept to prune.")
        return found
    if kind == "low":
        if not table.low_heads():
            raise EmptyStrategyError(f"Strategy 'low': no analysed head has CCS <= {table.low}; raise the "
                                     "low threshold or score more heads.")
        return [PruneConfig("low", tuple(table.low_heads()))]
    if kind == "random":
        pool = [HeadId(l, h) for l in table.layers for h in range(n_heads) if HeadId(l, h) not in high]
        name = "random"
        if len(pool) < len(high):
            # most analysed heads are high-CCS (e.g. the toy model): keep the count, widen the draw to
            # every layer of the tower (still excluding the high heads) and say so in the name
            pool = [HeadId(l, h) for l in range(n_layers) for h in range(n_heads)
                    if HeadId(l, h) not in high]
            name = "random (all layers)"
        return [PruneConfig(name, tuple(random_heads(pool, len(high), seed)), seed)
                for seed in range(n_seeds)]
    # concept:LABEL
    heads = table.concept_heads(arg, concept_min_ccs)
    if not heads:
        labelled = table.concept_heads(arg, None)
        if labelled and concept_min_ccs is not None:
            best = max((r.get("ccs") or 0) for h, r in zip(table.heads, table.rows) if h in labelled)
            raise HeadSpecError(f"{len(labelled)} head(s) are labelled {arg.strip()!r}, but none has CCS >= "
                                f"{concept_min_ccs} (the highest is {best}); lower --concept-min-ccs.")
        raise HeadSpecError(f"No head is labelled {arg.strip()!r}; known labels: "
                            f"{', '.join(table.labels()) or 'none'}.")
    return [PruneConfig(f"concept:{arg.strip()}", tuple(heads))]


def build_configs(strategies: Sequence[str], table: CCSTable | None, n_layers: int, n_heads: int,
                  n_seeds: int = 5, concept_min_ccs: int | None = None,
                  skipped: "list[str] | None" = None) -> list[PruneConfig]:
    """"original" first, then every strategy's configurations (duplicates dropped). With a ``skipped``
    list, strategies that select no head are noted there instead of raising EmptyStrategyError."""
    out = [PruneConfig("original")]
    seen = set(out)
    for s in strategies:
        try:
            found = strategy_configs(s, table, n_layers, n_heads, n_seeds, concept_min_ccs)
        except EmptyStrategyError as err:
            if skipped is None:
                raise
            skipped.append(str(err))
            continue
        for c in found:
            if c not in seen:
                seen.add(c)
                out.append(c)
    return out

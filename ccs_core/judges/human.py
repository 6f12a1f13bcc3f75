"""Human yes/no annotations per span, and their agreement with each judge (paper Table 2).

Stored in the Store as JSON, one entry per (model key, head, span, label), plus an index per model
so all of a model's annotations can be listed.
"""
from __future__ import annotations

import threading
from typing import Any

from ..ccs import Agreement, agreement
from ..scores import ScoreResult
from ..store import Store, cache_key
from .base import now
from .score import head_name

KIND, INDEX_KIND = "human", "human_index"
_lock = threading.Lock()


class HumanAnnotations:
    """``set``/``get`` a human yes/no (None clears) for a span under a label; ``all(model_key)``."""

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def key(model_key: str, head: Any, span: str, label: str) -> str:
        return cache_key(model=model_key, head=head_name(head), span=span, label=label.strip())

    def set(self, model_key: str, head: Any, span: str, label: str, fits: "bool | None",
            annotator: str = "") -> None:
        if fits is not None and not isinstance(fits, bool):
            raise TypeError("A human annotation is True, False or None (to clear it).")
        k = self.key(model_key, head, span, label)
        entry = {"model": model_key, "head": head_name(head), "span": span, "label": label.strip(),
                 "fits": fits, "annotator": annotator, "time": now()}
        with _lock:
            self.store.set(KIND, k, entry)
            index = self.store.get(INDEX_KIND, model_key) or []
            if k not in index:
                self.store.set(INDEX_KIND, model_key, index + [k])

    def get(self, model_key: str, head: Any, span: str, label: str) -> "bool | None":
        entry = self.store.get(KIND, self.key(model_key, head, span, label))
        return None if entry is None else entry["fits"]

    def all(self, model_key: str) -> list[dict]:
        """Every answered annotation of a model (cleared ones are left out)."""
        entries = (self.store.get(KIND, k) for k in self.store.get(INDEX_KIND, model_key) or [])
        return [e for e in entries if e is not None and e["fits"] is not None]


def paired_answers(result: ScoreResult, notes: HumanAnnotations, model_key: str
                   ) -> tuple[list[bool], dict[str, list["bool | None"]]]:
    """Human answers for the result's spans (under each head's current label) paired with each
    judge's and the unanimous verdict ("unanimous")."""
    human: list[bool] = []
    judges: dict[str, list] = {j: [] for j in result.used_judges}
    judges["unanimous"] = []
    for h, rec in result.heads.items():
        if rec.label is None:
            continue
        for i, span in enumerate(rec.spans):
            fits = notes.get(model_key, h, span, rec.label)
            if fits is None:
                continue
            human.append(fits)
            for j in judges:
                if j == "unanimous":
                    judges[j].append(rec.accepted[i])
                else:
                    fits_j = rec.fits(j)
                    judges[j].append(fits_j[i] if i < len(fits_j) else None)
    return human, judges


def human_agreement(result: ScoreResult, notes: HumanAnnotations, model_key: str) -> dict[str, dict]:
    """{judge or "unanimous": Agreement.as_dict()} over the spans a human has annotated."""
    human, judges = paired_answers(result, notes, model_key)
    return {j: agreement(human, answers).as_dict() for j, answers in judges.items()}


def agreement_table(result: ScoreResult, notes: HumanAnnotations, model_key: str) -> list[dict]:
    """Rows for display: judge, n, kappa, spearman, kendall, accuracy."""
    return [{"judge": j, **a} for j, a in human_agreement(result, notes, model_key).items()]


__all__ = ["HumanAnnotations", "human_agreement", "agreement_table", "paired_answers", "Agreement"]

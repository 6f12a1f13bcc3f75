"""Typed answers of the labeller and judges (pydantic), their JSON schemas, and validation.

Parsing is strict: booleans must be JSON booleans, every span must be judged exactly once, the label
must be a short phrase. Anything else raises ``AnswerError`` (the caller retries once, then marks the
answer unparseable).
"""
from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

MAX_LABEL_WORDS = 4
MAX_LABEL_CHARS = 40


class AnswerError(ValueError):
    """The model's answer is malformed, incomplete or a refusal."""


class SpanVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    span: StrictInt = Field(description="1-based number of the description")
    fits: StrictBool = Field(description="true if the description fits the concept label")
    rationale: StrictStr = Field(description="one short line explaining the decision")


class JudgeAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    verdicts: list[SpanVerdict]


class LabelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr = Field(description="the concept label, one or two words")


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"verdicts": {"type": "array", "items": {
        "type": "object",
        "properties": {"span": {"type": "integer"}, "fits": {"type": "boolean"},
                       "rationale": {"type": "string"}},
        "required": ["span", "fits", "rationale"], "additionalProperties": False}}},
    "required": ["verdicts"], "additionalProperties": False,
}
LABEL_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"label": {"type": "string"}},
    "required": ["label"], "additionalProperties": False,
}
JUDGE_SCHEMA_NAME = "span_verdicts"
LABEL_SCHEMA_NAME = "concept_label"


def _load(data: "str | dict | None") -> Any:
    if data is None:
        raise AnswerError("empty answer")
    if isinstance(data, dict):
        return data
    text = data.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AnswerError(f"not valid JSON ({err.msg} at char {err.pos})") from err


def parse_judge(data: "str | dict | None", n_spans: int) -> list[SpanVerdict]:
    """Validated verdicts ordered by span number 1..n_spans."""
    try:
        answer = JudgeAnswer.model_validate(_load(data))
    except ValidationError as err:
        raise AnswerError(f"wrong shape: {err.errors()[0]['msg']} at "
                          f"{'.'.join(map(str, err.errors()[0]['loc']))}") from err
    numbers = sorted(v.span for v in answer.verdicts)
    if numbers != list(range(1, n_spans + 1)):
        raise AnswerError(f"expected verdicts for descriptions 1..{n_spans} exactly once, got {numbers}")
    return sorted(answer.verdicts, key=lambda v: v.span)


def clean_label(text: str) -> str:
    """Strip quotes, trailing punctuation and a leading 'Label:'; capitalise the first letter."""
    label = re.sub(r"^\s*(concept\s+)?label\s*:\s*", "", text.strip(), flags=re.IGNORECASE)
    label = label.strip().strip("\"'`“”‘’*").strip().rstrip(".!;:,").strip()
    label = re.sub(r"\s+", " ", label)
    return label[:1].upper() + label[1:]


def parse_label(data: "str | dict | None") -> str:
    """A short cleaned concept label, or AnswerError."""
    try:
        answer = LabelAnswer.model_validate(_load(data))
    except ValidationError as err:
        raise AnswerError(f"wrong shape: {err.errors()[0]['msg']}") from err
    label = clean_label(answer.label)
    if not label:
        raise AnswerError("empty label")
    if len(label.split()) > MAX_LABEL_WORDS or len(label) > MAX_LABEL_CHARS:
        raise AnswerError(f"label too long ({label!r}); expected one or two words")
    return label

"""Build judges from names + settings; unavailable ones are reported, not raised."""
from __future__ import annotations

from typing import Sequence

from ..errors import JudgeError
from .backends import make_backend
from .base import Judge, LLMJudge
from .offline import EmbeddingJudge, ToyJudge
from .settings import OFFLINE, PROVIDERS, JudgeSettings

DEFAULT_JUDGES = PROVIDERS  # the paper's three: GPT-4o, Claude, Gemini


def make_judge(kind: str, settings: "JudgeSettings | None" = None) -> Judge:
    """A judge by kind: "openai", "anthropic", "gemini", "toy" or "embedding"."""
    settings = settings or JudgeSettings()
    if kind in PROVIDERS:
        return LLMJudge(make_backend(kind, settings), settings.judge_prompt)
    if kind == "toy":
        return ToyJudge()
    if kind == "embedding":
        return EmbeddingJudge()
    raise JudgeError(f"Unknown judge {kind!r}; choose from {', '.join(PROVIDERS + OFFLINE)}.")


def make_judges(kinds: Sequence[str] = DEFAULT_JUDGES, settings: "JudgeSettings | None" = None
                ) -> tuple[list[Judge], dict[str, str]]:
    """(available judges, {kind: why disabled}) — the page shows the reasons, never fails."""
    judges, disabled = [], {}
    for kind in kinds:
        judge = make_judge(kind, settings)
        ok, why = judge.available()
        if ok:
            judges.append(judge)
        else:
            disabled[kind] = why
    return judges, disabled


def offline_defaults(toy: bool) -> tuple[str, list[str]]:
    """(labeller kind, judge kinds) to use with no API keys: exact for the toy model, else approximate."""
    return ("toy", ["toy"]) if toy else ("embedding", ["embedding"])

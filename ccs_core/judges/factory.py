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
    """A judge by kind: "openai", "anthropic", "gemini", "toy" or "embedding" (LLM judges: with
    ``settings``, default the effective ones of ``config.load_settings``: files, environment)."""
    if settings is None and kind not in OFFLINE:
        from .config import load_settings

        settings = load_settings()
    settings = settings or JudgeSettings()
    if kind in PROVIDERS or kind in settings.compatible_names():
        return LLMJudge(make_backend(kind, settings), settings.judge_prompt, name=kind)
    if kind == "toy":
        return ToyJudge()
    if kind == "embedding":
        return EmbeddingJudge()
    raise JudgeError(f"Unknown judge {kind!r}; choose from "
                     f"{', '.join(PROVIDERS + OFFLINE + tuple(settings.compatible_names()))}.")


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


def default_scoring(model_name: str, ready: "Sequence[str] | None" = None,
                    settings: "JudgeSettings | None" = None) -> tuple[str, list[str], str]:
    """(labeller, judges, why) that fit the model: the exact toy judge for the toy model; for any other
    model the LLM judges whose keys are present (the paper's setup), else the offline embedding judge.

    ``ready``: the LLM providers known to be available (None = check each one now)."""
    from .settings import TITLES

    if model_name == "toy":
        return "toy", ["toy"], "the toy model: its world's judge is exact"
    if ready is None:
        ready = [k for k in PROVIDERS if make_judge(k, settings).available()[0]]
    ready = [k for k in PROVIDERS if k in ready]
    if ready:
        return ready[0], ready, (f"{model_name}: the LLM judges with an API key "
                                 f"({', '.join(TITLES[k] for k in ready)})")
    return "embedding", ["embedding"], (
        f"{model_name}: no LLM API key is set (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY), so the "
        "offline embedding judge (the toy judge only knows the toy world)")

"""LLM and offline judges of concept consistency, their verdict cache, and human annotations.

Public API (see each module): ``JudgeSettings``, ``make_judge``/``make_judges``, ``score_heads``,
``summarise``, ``HumanAnnotations``, ``human_agreement``; labellers live in ``ccs_core.judges.labels``.
"""
from __future__ import annotations

from .base import Judge, JudgeResult, Labeller, LabelResult, LLMJudge, load_prompt
from .factory import DEFAULT_JUDGES, default_scoring, make_judge, make_judges, offline_defaults
from .human import HumanAnnotations, agreement_table, human_agreement
from .offline import EmbeddingJudge, ToyJudge
from .score import score_heads, summarise
from .settings import OFFLINE, PROVIDERS, JudgeSettings, api_key

__all__ = ["Judge", "JudgeResult", "Labeller", "LabelResult", "LLMJudge", "load_prompt",
           "DEFAULT_JUDGES", "default_scoring", "make_judge", "make_judges", "offline_defaults", "HumanAnnotations",
           "agreement_table", "human_agreement", "EmbeddingJudge", "ToyJudge", "score_heads",
           "summarise", "OFFLINE", "PROVIDERS", "JudgeSettings", "api_key"]

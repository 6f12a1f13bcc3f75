"""The Judge and Labeller interfaces, their results, versioned prompts, and the LLM judge.

A judge decides, for every span of a head, whether it fits the head's label, in one request per head.
Results are JSON-serialisable records with provider, model, prompt version, time and the raw answer.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import JudgeError
from .backends import ChatBackend
from .schema import JUDGE_SCHEMA, JUDGE_SCHEMA_NAME, AnswerError, parse_judge

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
OK, UNPARSEABLE, UNSUPPORTED = "ok", "unparseable", "unsupported"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Prompt:
    version: str   # file stem, e.g. "judge_v1": part of every cache key
    system: str
    user: str

    def messages(self, **values: Any) -> list[dict]:
        """System + user messages with ``$placeholders`` filled in."""
        return [{"role": "system", "content": string.Template(self.system).substitute(values)},
                {"role": "user", "content": string.Template(self.user).substitute(values)}]


def load_prompt(version: str) -> Prompt:
    """Read ``prompts/<version>.txt`` ([system] and [user] sections, '#' comment lines at the top)."""
    path = PROMPT_DIR / f"{version}.txt"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", version) or not path.exists():
        have = ", ".join(sorted(p.stem for p in PROMPT_DIR.glob("*.txt")))
        raise JudgeError(f"Unknown prompt version {version!r}; available: {have}.")
    text = "\n".join(l for l in path.read_text().splitlines() if not l.startswith("#"))
    m = re.search(r"\[system\]\n(.*?)\n\[user\]\n(.*)", text, re.DOTALL)
    if not m:
        raise JudgeError(f"Prompt file {path} needs a [system] and a [user] section.")
    return Prompt(version=version, system=m.group(1).strip(), user=m.group(2).strip())


def numbered(spans: Sequence[str]) -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(spans, 1))


class _Record:
    """JSON round trip of a result dataclass (unknown keys in stored JSON are ignored)."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class JudgeResult(_Record):
    """One judge's verdicts on one head. ``fits[i]`` is None when the answer was unparseable."""
    judge: str
    provider: str
    model: str
    prompt_version: str
    label: str
    fits: list  # list[bool | None]
    rationales: list  # list[str]
    status: str = OK            # ok | unparseable | unsupported
    problem: str = ""           # why the answer is unparseable / unsupported
    raw: Any = None             # the raw response(s), for auditing
    time: str = field(default_factory=now)
    attempts: int = 1
    approximate: bool = False


@dataclass
class LabelResult(_Record):
    labeller: str
    provider: str
    model: str
    prompt_version: str
    label: "str | None"
    status: str = OK
    problem: str = ""
    raw: Any = None
    time: str = field(default_factory=now)
    attempts: int = 1
    approximate: bool = False


class Agent:
    """What labellers and judges share: identity, availability, description."""
    name = "agent"
    provider = ""
    model = ""
    prompt_version = ""
    approximate = False   # offline embedding judge: shown as approximate in the UI
    calls_api = False     # costs money / needs a key

    def available(self) -> tuple[bool, str]:
        """(True, description) or (False, why it is disabled and how to enable it)."""
        return True, self.name

    def describe(self) -> dict:
        return {"name": self.name, "provider": self.provider, "model": self.model,
                "prompt_version": self.prompt_version, "approximate": self.approximate}


class Judge(Agent):
    """Interface: ``judge(label, spans) -> JudgeResult``."""

    def cache_parts(self, label: str, spans: Sequence[str]) -> dict:
        """Everything that determines the verdicts (hashed into the cache key)."""
        return {"judge": self.provider, "model": self.model, "prompt": self.prompt_version,
                "label": label, "spans": list(spans)}

    def judge(self, label: str, spans: Sequence[str]) -> JudgeResult:
        raise NotImplementedError


class Labeller(Agent):
    """Interface: ``label(spans) -> LabelResult``."""

    def cache_parts(self, spans: Sequence[str]) -> dict:
        return {"labeller": self.provider, "model": self.model, "prompt": self.prompt_version,
                "spans": list(spans)}

    def label(self, spans: Sequence[str]) -> LabelResult:
        raise NotImplementedError


def ask_structured(backend: ChatBackend, messages: list[dict], schema_name: str, schema: dict,
                   parse: Callable[[Any], Any]) -> tuple[Any, list, int, str]:
    """Send, parse; on a malformed or refused answer ask once more. -> (parsed|None, raws, attempts,
    problem). API failures (after the SDK's own retries) raise JudgeError."""
    raws: list = []
    problem = ""
    for attempt in (1, 2):
        reply = backend.complete(messages, schema_name, schema)
        raws.append(reply.raw)
        try:
            if reply.refusal:
                raise AnswerError(f"refused: {reply.refusal[:200]}")
            return parse(reply.data), raws, attempt, ""
        except AnswerError as err:
            problem = str(err)
        messages = messages + reask_turns(reply, problem)
    return None, raws, 2, problem


def reask_turns(reply, problem: str) -> list[dict]:
    """The turns that ask again: the model's real previous answer (its text, or its tool input as
    JSON, or its refusal) and why it could not be used. With no answer at all, none: the same
    request is simply sent again (never a made-up previous answer)."""
    if isinstance(reply.data, str) and reply.data.strip():
        answer = reply.data
    elif isinstance(reply.data, (dict, list)):
        answer = json.dumps(reply.data, ensure_ascii=False)
    else:
        answer = reply.refusal or ""
    if not answer:
        return []
    return [{"role": "assistant", "content": answer},
            {"role": "user", "content": f"That answer could not be used ({problem}). Answer again, "
                                        "only with JSON that follows the requested format."}]


class LLMJudge(Judge):
    """A judge backed by an LLM provider: one request per head, all spans at once."""
    calls_api = True

    def __init__(self, backend: ChatBackend, prompt_version: str = "judge_v2",
                 name: "str | None" = None):
        self.backend = backend
        self.provider, self.model = backend.provider, backend.model
        self.prompt = load_prompt(prompt_version)
        self.prompt_version = prompt_version
        self.name = name or backend.provider

    def available(self) -> tuple[bool, str]:
        return self.backend.available("judge")

    def messages(self, label: str, spans: Sequence[str]) -> list[dict]:
        return self.prompt.messages(label=label, n=len(spans), spans=numbered(spans))

    def cache_parts(self, label: str, spans: Sequence[str]) -> dict:
        return {**self.backend.request_parts(), "prompt": self.prompt_version,
                "messages": self.messages(label, spans), "schema": JUDGE_SCHEMA}

    def judge(self, label: str, spans: Sequence[str]) -> JudgeResult:
        n = len(spans)
        verdicts, raws, attempts, problem = ask_structured(
            self.backend, self.messages(label, spans), JUDGE_SCHEMA_NAME, JUDGE_SCHEMA,
            lambda data: parse_judge(data, n))
        base = dict(judge=self.name, provider=self.provider, model=self.model,
                    prompt_version=self.prompt_version, label=label, raw=raws, attempts=attempts)
        if verdicts is None:
            return JudgeResult(fits=[None] * n, rationales=[""] * n, status=UNPARSEABLE,
                               problem=problem, **base)
        return JudgeResult(fits=[v.fits for v in verdicts], rationales=[v.rationale for v in verdicts],
                           **base)

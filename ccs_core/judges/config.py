"""One settings source for the labeller and every judge.

From lowest to highest precedence:
1. the defaults of ``JudgeSettings``;
2. a ``[judges]`` table in ``ccs.toml`` (current directory, or ``$CCS_CONFIG``), then in
   ``.streamlit/secrets.toml`` (current directory or ``~/.streamlit/``), keys = field names
   (``openai_base_url = "http://localhost:8000/v1"``, ``timeout = 120``, ...);
3. the environment: ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``, ``GEMINI_BASE_URL``, and
   ``CCS_<FIELD>`` for any field (``CCS_OPENAI_MODEL=gpt-4o-mini``, ``CCS_TIMEOUT=120``,
   ``CCS_MAX_RETRIES``, ``CCS_MAX_WORKERS``, ``CCS_MAX_TOKENS``, ``CCS_JUDGE_PROMPT``, ...);
4. explicit overrides (CLI flags, the app's settings panel).

API keys are not settings fields: they come from ``*_API_KEY`` variables, secrets, or keys typed into
the app (``JudgeSettings.api_keys``, never written anywhere). ``describe`` masks them.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import JudgeError
from .settings import KEY_VARS, PROVIDERS, JudgeSettings, api_key

BASE_URL_VARS = {"openai_base_url": "OPENAI_BASE_URL", "anthropic_base_url": "ANTHROPIC_BASE_URL",
                 "gemini_base_url": "GEMINI_BASE_URL"}
FIELDS = {f.name: f for f in fields(JudgeSettings) if f.name != "api_keys"}


def _config_files() -> list[Path]:
    env = os.environ.get("CCS_CONFIG")
    files = [Path(env)] if env else [Path("ccs.toml")]
    return files + [Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"]


def _coerce(name: str, value: Any, where: str) -> Any:
    """A field's value from a file, a variable or a flag, as the field's type; a clear error if not."""
    kind = type(getattr(JudgeSettings(), name))
    if kind is float and name == "temperature" and value in (None, "", "none", "None"):
        return None
    try:
        if kind is bool:
            return str(value).lower() in ("1", "true", "yes", "on")
        return kind(value)
    except (TypeError, ValueError) as err:
        raise JudgeError(f"Judge setting {name} from {where} is {value!r}, not a {kind.__name__}. "
                         f"Fix it there (e.g. {name} = {getattr(JudgeSettings(), name)!r}).") from err


def from_files(files: "list[Path] | None" = None) -> dict[str, Any]:
    """Fields from the ``[judges]`` tables of the config files (earlier files win)."""
    out: dict[str, Any] = {}
    for path in reversed(files if files is not None else _config_files()):
        if not path.is_file():
            continue
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("judges") or {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise JudgeError(f"Cannot read the judge settings in {path}: {err}. Fix the file (TOML, a "
                             "[judges] table of field = value lines) or remove it.") from err
        unknown = sorted(set(table) - set(FIELDS))
        if unknown:
            raise JudgeError(f"Unknown judge setting(s) {', '.join(unknown)} in {path}; known: "
                             f"{', '.join(FIELDS)}.")
        out.update({k: _coerce(k, v, str(path)) for k, v in table.items()})
    return out


def from_env(env: "Mapping[str, str] | None" = None) -> dict[str, Any]:
    """Fields from the environment (``*_BASE_URL`` and ``CCS_<FIELD>``)."""
    env = os.environ if env is None else env
    out: dict[str, Any] = {}
    for name in FIELDS:
        for var in ([BASE_URL_VARS[name]] if name in BASE_URL_VARS else []) + [f"CCS_{name.upper()}"]:
            if env.get(var):
                out[name] = _coerce(name, env[var], f"${var}")
    return out


def load_settings(overrides: "Mapping[str, Any] | None" = None, api_keys: "Mapping[str, str] | None" = None,
                  env: "Mapping[str, str] | None" = None, files: "list[Path] | None" = None) -> JudgeSettings:
    """The effective settings: defaults < config files < environment < ``overrides``."""
    values = {**from_files(files), **from_env(env)}
    for k, v in (overrides or {}).items():
        if k not in FIELDS:
            raise JudgeError(f"Unknown judge setting {k!r}; known: {', '.join(FIELDS)}.")
        if v is not None and v != "":
            values[k] = _coerce(k, v, "the given settings")
    return JudgeSettings(**values, api_keys=dict(api_keys or {}))


def parse_pairs(items: "list[str] | None", field_suffix: str, flag: str) -> dict[str, str]:
    """``["openai=gpt-4o-mini", "gemini=gemini-2.5-flash"]`` -> {"openai_model": ..., ...}."""
    out = {}
    for item in items or []:
        provider, sep, value = item.partition("=")
        provider = provider.strip().lower()
        if not sep or provider not in PROVIDERS or not value.strip():
            raise JudgeError(f"{flag} takes PROVIDER=VALUE with PROVIDER one of {', '.join(PROVIDERS)} "
                             f"(got {item!r}), e.g. {flag} openai={'gpt-4o-mini' if 'model' in field_suffix else 'http://localhost:8000/v1'}.")
        out[f"{provider}_{field_suffix}"] = value.strip()
    return out


def mask(key: str | None) -> str:
    if not key:
        return "(none)"
    return key[:3] + "…" + key[-2:] if len(key) > 8 else "…"


def describe(settings: JudgeSettings) -> dict[str, Any]:
    """The effective settings as JSON, keys masked (``score --show-settings``, the app's panel)."""
    out: dict[str, Any] = {name: getattr(settings, name) for name in FIELDS}
    out["api_keys"] = {p: f"{KEY_VARS[p][0]}: {mask(api_key(p, settings))}" for p in PROVIDERS}
    return out


# ---- command-line flags (``python -m ccs_core score``) ---------------------------------------------

def add_flags(p) -> None:
    """The judge settings as CLI flags (highest precedence)."""
    p.add_argument("--judge-model", action="append", metavar="PROVIDER=MODEL",
                   help="model per provider, e.g. openai=gpt-4o-mini (repeatable; env CCS_OPENAI_MODEL ...)")
    p.add_argument("--base-url", action="append", metavar="PROVIDER=URL",
                   help="endpoint per provider, e.g. openai=http://localhost:8000/v1 for any OpenAI-"
                        "compatible server (repeatable; env OPENAI_BASE_URL ...)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per request (env CCS_TIMEOUT)")
    p.add_argument("--retries", type=int, default=None,
                   help="SDK retries on 408/409/429/5xx/timeouts (env CCS_MAX_RETRIES)")
    p.add_argument("--max-workers", type=int, default=None, help="concurrent requests (env CCS_MAX_WORKERS)")
    p.add_argument("--max-tokens", type=int, default=None, help="output tokens per answer (env CCS_MAX_TOKENS)")
    p.add_argument("--show-settings", action="store_true",
                   help="print the effective judge settings (keys masked) and exit")


def settings_from_args(args) -> JudgeSettings:
    overrides: dict[str, Any] = {**parse_pairs(args.judge_model, "model", "--judge-model"),
                                 **parse_pairs(args.base_url, "base_url", "--base-url"),
                                 "timeout": args.timeout, "max_retries": args.retries,
                                 "max_workers": args.max_workers, "max_tokens": args.max_tokens}
    return load_settings(overrides)

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

import json
import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..errors import DataError, JudgeError
from .settings import KEY_VARS, PROVIDERS, Compatible, JudgeSettings, api_key, hide_password, lookup_key

BASE_URL_VARS = {"openai_base_url": "OPENAI_BASE_URL", "anthropic_base_url": "ANTHROPIC_BASE_URL",
                 "gemini_base_url": "GEMINI_BASE_URL"}
FIELDS = {f.name: f for f in fields(JudgeSettings) if f.name not in ("api_keys", "compatible")}
COMPATIBLE_ENV = re.compile(r"^CCS_COMPATIBLE_([A-Z0-9_]+?)_(BASE_URL|MODEL|KEY_ENV)$")


COMPATIBLE_KEYS = ("base_url", "model", "key_env")
COMPATIBLE_EXAMPLE = ('[judges.compatible.local] with base_url = "http://localhost:8000/v1" and model = '
                      '"llama-3.1-70b" (key_env optional)')


def _kind(value: Any) -> str:
    """What a value read from a file is, to its author: a TOML string, an integer, a table, ..."""
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "a table",
            list: "a list"}.get(type(value), f"a {type(value).__name__}")


def check_base_url(url: str, judge: str, where: str) -> str:
    """An endpoint must be an http(s) URL with a host (``localhost:8000`` alone would only fail later, as a
    connection error that says nothing about the URL)."""
    try:
        parts = urlsplit(url.strip())
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname)
              and not any(c.isspace() for c in parts.netloc))
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise DataError(f"The {judge} endpoint (base URL) from {where} is {url!r}, which is not an http(s) URL "
                        "with a host, so no request could reach it; write it in full, like "
                        "http://localhost:8000/v1 (scheme, host, optional port and path).")
    return url.strip()


def _compatible(table: Any, where: str) -> list[Compatible]:
    """{name: {base_url, model, key_env}} -> Compatible endpoints (a clear error for a missing part)."""
    if not isinstance(table, Mapping):
        raise DataError(f"compatible in {where} is {table!r} ({_kind(table)}), not a table of named "
                        f"OpenAI-compatible judges; write one table per judge, e.g. {COMPATIBLE_EXAMPLE}.")
    out = []
    for name, spec in table.items():
        name = str(name).strip().lower()
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name in PROVIDERS or name in ("toy", "embedding"):
            raise JudgeError(f"OpenAI-compatible judge name {name!r} in {where}: use letters, digits, - or _, "
                             "and not a built-in judge's name.")
        if not isinstance(spec, Mapping) or not spec.get("base_url") or not spec.get("model"):
            raise JudgeError(f"OpenAI-compatible judge {name!r} in {where} needs a base_url and a model "
                             f"(e.g. base_url = \"http://localhost:8000/v1\", model = \"llama-3.1-70b\").")
        unknown = sorted(set(map(str, spec)) - set(COMPATIBLE_KEYS))
        if unknown:
            raise DataError(f"Unknown key(s) {', '.join(unknown)} for the OpenAI-compatible judge {name!r} in "
                            f"{where}; known: {', '.join(COMPATIBLE_KEYS)} (its API key itself goes in the "
                            f"variable named by key_env, default {name.upper()}_API_KEY, never in a file).")
        for key in COMPATIBLE_KEYS:
            if key in spec and not isinstance(spec[key], str):
                raise DataError(f"{key} of the OpenAI-compatible judge {name!r} in {where} is {spec[key]!r} "
                                f"({_kind(spec[key])}), not a string; quote it, e.g. {COMPATIBLE_EXAMPLE}.")
        url = check_base_url(spec["base_url"], name, where)
        out.append(Compatible(name, url, spec["model"].strip(), (spec.get("key_env") or "").strip()))
    return out


def _config_files() -> list[Path]:
    env = os.environ.get("CCS_CONFIG")
    if env:  # named explicitly: a file that is not there is an error, not "no settings"
        path = Path(env).expanduser()
        if not path.is_file():
            what = ("is a directory" if path.is_dir() else "is not a regular file (a pipe or device)" if path.exists()
                    else "does not exist")
            raise DataError(f"$CCS_CONFIG names {path}, which {what}"
                            "; point it at a TOML file with a [judges] table (e.g. ccs.toml), or unset it to use "
                            "./ccs.toml.")
    files = [Path(env).expanduser()] if env else [Path("ccs.toml")]
    return files + [Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"]


def _example(name: str) -> str:
    """``name = default`` as a TOML line (strings in double quotes)."""
    value = getattr(JudgeSettings(), name)
    return f"{name} = {json.dumps(value) if isinstance(value, str) else repr(value)}"


def _coerce(name: str, value: Any, where: str) -> Any:
    """A field's value from a file, a variable or a flag, as the field's type; a clear error if not."""
    kind = type(getattr(JudgeSettings(), name))
    if kind is float and name == "temperature" and value in (None, "", "none", "None"):
        return None
    wrong = (not isinstance(value, (str, int, float)) or isinstance(value, bool)
             or (kind is str and not isinstance(value, str))
             or (kind is int and isinstance(value, float) and not value.is_integer()))
    if wrong:  # a table, list, date, true/false, 4.5 retries or an unquoted number where a name goes
        want = {str: "string (in double quotes)", int: "whole number"}.get(kind, "number")
        raise DataError(f"Judge setting {name} from {where} is {value!r} ({_kind(value)}), not a {want}. "
                        f"Fix it there (e.g. {_example(name)}).")
    try:
        if kind is bool:
            return str(value).lower() in ("1", "true", "yes", "on")
        out = kind(value)
    except (TypeError, ValueError) as err:
        raise JudgeError(f"Judge setting {name} from {where} is {value!r}, not a {kind.__name__}. "
                         f"Fix it there (e.g. {_example(name)}).") from err
    low, high = MINIMUM.get(name), MAXIMUM.get(name)
    if low is not None and (out != out or out < low):  # NaN or below the range
        raise JudgeError(f"Judge setting {name} from {where} is {value!r}; it must be at least {low} "
                         f"(e.g. {_example(name)}).")
    if high is not None and out > high:
        raise DataError(f"Judge setting {name} from {where} is {value!r}; it must be at most {high} (the providers "
                        f"refuse more; e.g. {_example(name)}).")
    if kind is str and name.endswith("_model") and not out.strip():
        raise DataError(f"Judge setting {name} from {where} is blank; give a model name (e.g. {_example(name)}) "
                        "or leave it out for the default.")
    if kind is str:
        out = out.strip()
    if name in BASE_URL_VARS:
        return check_base_url(out, name.removesuffix("_base_url"), where)
    return out


MINIMUM = {"timeout": 0.1, "max_retries": 0, "max_workers": 1, "max_tokens": 1, "temperature": 0.0}
MAXIMUM = {"temperature": 2.0}  # OpenAI's limit (Anthropic's and Gemini's are lower or equal)


def from_files(files: "list[Path] | None" = None) -> dict[str, Any]:
    """Fields from the ``[judges]`` tables of the config files (earlier files win)."""
    out: dict[str, Any] = {}
    for path in reversed(files if files is not None else _config_files()):
        if not path.is_file():
            continue
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8-sig")).get("judges", {})  # -sig: a BOM is fine
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise JudgeError(f"Cannot read the judge settings in {path}: {err}. Fix the file (TOML, a "
                             "[judges] table of field = value lines) or remove it.") from err
        if not isinstance(table, dict):
            raise DataError(f"judges in {path} is {table!r} ({_kind(table)}), not a table; write the judge "
                            "settings as a [judges] table of field = value lines, e.g. [judges] then "
                            "openai_model = \"gpt-4o-mini\" on the next line.")
        unknown = sorted(set(table) - set(FIELDS) - {"compatible"})
        if unknown:
            raise JudgeError(f"Unknown judge setting(s) {', '.join(unknown)} in {path}; known: "
                             f"{', '.join(FIELDS)}, compatible.")
        out.update({k: _coerce(k, v, str(path)) for k, v in table.items() if k != "compatible"})
        if "compatible" in table:
            merged = {c.name: c for c in out.get("compatible", [])}
            merged.update({c.name: c for c in _compatible(table["compatible"], str(path))})
            out["compatible"] = list(merged.values())
    return out


def from_env(env: "Mapping[str, str] | None" = None) -> dict[str, Any]:
    """Fields from the environment (``*_BASE_URL`` and ``CCS_<FIELD>``)."""
    env = os.environ if env is None else env
    out: dict[str, Any] = {}
    for name in FIELDS:
        for var in ([BASE_URL_VARS[name]] if name in BASE_URL_VARS else []) + [f"CCS_{name.upper()}"]:
            if env.get(var):
                out[name] = _coerce(name, env[var], f"${var}")
    found: dict[str, dict] = {}
    for var, value in env.items():
        m = COMPATIBLE_ENV.match(var)
        if m and value:
            found.setdefault(m.group(1).lower(), {})[m.group(2).lower()] = value
    if found:
        out["compatible"] = _compatible(found, "the environment (CCS_COMPATIBLE_<NAME>_BASE_URL / _MODEL)")
    return out


def load_settings(overrides: "Mapping[str, Any] | None" = None, api_keys: "Mapping[str, str] | None" = None,
                  env: "Mapping[str, str] | None" = None, files: "list[Path] | None" = None,
                  where: str = "the given settings") -> JudgeSettings:
    """The effective settings: defaults < config files < environment < ``overrides``."""
    file_values, env_values = from_files(files), from_env(env)
    compatible = {c.name: c for c in file_values.pop("compatible", []) + env_values.pop("compatible", [])}
    values = {**file_values, **env_values}
    for k, v in (overrides or {}).items():
        if k == "compatible":
            continue
        if k not in FIELDS:
            raise JudgeError(f"Unknown judge setting {k!r}; known: {', '.join(FIELDS)}.")
        if v is not None and v != "":
            values[k] = _coerce(k, v, where)
    for c in (overrides or {}).get("compatible") or []:
        compatible[c.name] = c
    return JudgeSettings(**values, compatible=tuple(compatible.values()), api_keys=dict(api_keys or {}))


def parse_pairs(items: "list[str] | None", field_suffix: str, flag: str) -> dict[str, str]:
    """``["openai=gpt-4o-mini", "gemini=gemini-2.5-flash"]`` -> {"openai_model": ..., ...}."""
    out = {}
    for item in items or []:
        provider, sep, value = item.partition("=")
        provider = provider.strip().lower()
        if not sep or provider not in PROVIDERS or not value.strip():
            raise JudgeError(f"{flag} takes PROVIDER=VALUE with PROVIDER one of {', '.join(PROVIDERS)} "
                             f"(got {item!r}), e.g. {flag} openai={'gpt-4o-mini' if 'model' in field_suffix else 'http://localhost:8000/v1'}.")
        if f"{provider}_{field_suffix}" in out:  # the last would silently win
            raise DataError(f"{flag} gives {provider} twice ({out[f'{provider}_{field_suffix}']!r} and "
                            f"{value.strip()!r}); give each provider once.")
        out[f"{provider}_{field_suffix}"] = value.strip()
    return out


def mask(key: str | None) -> str:
    if not key:
        return "(none)"
    return key[:3] + "…" + key[-2:] if len(key) > 8 else "…"


def describe(settings: JudgeSettings) -> dict[str, Any]:
    """The effective settings as JSON, keys (and passwords in URLs) masked (``score --show-settings``,
    the app's panel)."""
    out: dict[str, Any] = {name: hide_password(getattr(settings, name)) for name in FIELDS}
    out["api_keys"] = {p: f"{KEY_VARS[p][0]}: {mask(api_key(p, settings))}" for p in PROVIDERS}
    out["compatible"] = {c.name: {"base_url": hide_password(c.base_url), "model": c.model,
                                  "key": f"{c.key_vars[0]}: {mask(lookup_key(c.key_vars, settings))}"}
                         for c in settings.compatible}
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
    p.add_argument("--compatible", action="append", metavar="NAME=URL,MODEL",
                   help="a named OpenAI-compatible judge, e.g. local=http://localhost:8000/v1,llama-3.1-70b "
                        "(then --judges openai,local; key from NAME_API_KEY if it needs one)")
    p.add_argument("--show-settings", action="store_true",
                   help="print the effective judge settings (keys masked) and exit")


def settings_from_args(args) -> JudgeSettings:
    overrides: dict[str, Any] = {**parse_pairs(args.judge_model, "model", "--judge-model"),
                                 **parse_pairs(args.base_url, "base_url", "--base-url"),
                                 "timeout": args.timeout, "max_retries": args.retries,
                                 "max_workers": args.max_workers, "max_tokens": args.max_tokens}
    specs = {}
    for item in args.compatible or []:
        name, sep, rest = item.partition("=")
        url, comma, model = rest.rpartition(",")
        if not sep or not comma:
            raise JudgeError(f"--compatible takes NAME=URL,MODEL (got {item!r}), e.g. "
                             "--compatible local=http://localhost:8000/v1,llama-3.1-70b.")
        name = name.strip().lower()
        if name in specs:  # the last would silently win
            raise DataError(f"--compatible names the judge {name!r} twice ({specs[name]['base_url']},"
                            f"{specs[name]['model']} and {url},{model}); give each name once, or another name "
                            "to the second (then --judges ...,NAME).")
        specs[name] = {"base_url": url, "model": model}
    if specs:
        overrides["compatible"] = _compatible(specs, "--compatible")
    return load_settings(overrides, where="the command line")

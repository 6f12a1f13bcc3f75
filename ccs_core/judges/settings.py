"""Settings of the LLM labeller and judges: model names, endpoints, timeouts, keys.

Keys are looked up, in order, in ``JudgeSettings.api_keys``, the environment, and Streamlit secrets
(only when Streamlit is already running in this process). A missing key disables that provider with a
message; it never fails the page.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from ..validate import lan_mode

PROVIDERS = ("openai", "anthropic", "gemini")
OFFLINE = ("toy", "embedding")

# provider -> (environment variables holding its key, in order of preference)
KEY_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}

TITLES = {"openai": "OpenAI", "anthropic": "Anthropic Claude", "gemini": "Google Gemini",
          "toy": "Toy world (exact, offline)", "embedding": "Embedding similarity (approximate, offline)"}


@dataclass(frozen=True)
class Compatible:
    """A named OpenAI-compatible endpoint used as a judge or labeller of its own (a local vLLM, a
    proxy, OpenRouter, ...), beside the three providers. Its key comes from ``key_env`` (default
    ``<NAME>_API_KEY``); a server that needs no key works without one."""
    name: str
    base_url: str
    model: str
    key_env: str = ""

    @property
    def key_vars(self) -> tuple[str, ...]:
        return (self.key_env or f"{self.name.upper()}_API_KEY",)


@dataclass(frozen=True)
class Endpoint:
    kind: str             # the judge's name: "openai", ..., or a Compatible's name
    provider: str         # "openai", "anthropic", "gemini" or "openai-compatible"
    base_url: str
    model: str
    key_vars: tuple[str, ...]
    title: str
    key_required: bool = True


@dataclass(frozen=True)
class JudgeSettings:
    openai_model: str = "gpt-4o"
    anthropic_model: str = "claude-sonnet-5-5"
    gemini_model: str = "gemini-2.5-pro"
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta/openai/"
    timeout: float = 60.0          # seconds per request
    max_retries: int = 4           # SDK retries on 408/409/429/5xx/timeouts, honouring retry-after
    max_workers: int = 4           # concurrent requests across heads and judges
    max_tokens: int = 1024
    temperature: float = 0.0
    judge_prompt: str = "judge_v2"  # judge_v1 adds "Be strict"
    label_prompt: str = "label_v1"
    compatible: tuple = ()        # Compatible endpoints, judges named by their name
    api_keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def compatible_names(self) -> list[str]:
        return [c.name for c in self.compatible]

    def endpoint(self, kind: str) -> Endpoint:
        """Where a judge kind sends its requests, with which model and key variables."""
        if kind in PROVIDERS:
            return Endpoint(kind, kind, self.base_url_for(kind), self.model_for(kind), KEY_VARS[kind],
                            TITLES[kind])
        for c in self.compatible:
            if c.name == kind:
                return Endpoint(kind, "openai-compatible", c.base_url, c.model, c.key_vars,
                                f"{c.name} (OpenAI-compatible)", key_required=False)
        raise KeyError(kind)

    def model_for(self, provider: str) -> str:
        return {"openai": self.openai_model, "anthropic": self.anthropic_model,
                "gemini": self.gemini_model}[provider]

    def base_url_for(self, provider: str) -> str:
        return {"openai": self.openai_base_url, "anthropic": self.anthropic_base_url,
                "gemini": self.gemini_base_url}[provider]

    def with_(self, **changes: Any) -> "JudgeSettings":
        return replace(self, **changes)


def _streamlit_secret(name: str) -> str | None:
    st = sys.modules.get("streamlit")
    if st is None:
        return None
    try:
        secrets = st.secrets
        probe = getattr(secrets, "load_if_toml_exists", None)  # False: no secrets file, no error
        if probe is not None and not probe():
            return None
        value = secrets.get(name)
    except Exception:
        return None
    return str(value) if value else None


def api_key(provider: str, settings: JudgeSettings) -> str | None:
    """The provider's (or a Compatible endpoint's) key from settings, environment or Streamlit secrets;
    None if absent."""
    return lookup_key(KEY_VARS[provider] if provider in KEY_VARS else settings.endpoint(provider).key_vars,
                      settings)


def lookup_key(key_vars: tuple[str, ...], settings: JudgeSettings) -> str | None:
    """A key typed for this session, else the environment's or Streamlit secrets' — except when the app
    is served to the network (CCS_LAN=1): then only keys typed in that browser session count, so a
    visitor never spends the server owner's keys."""
    lan = lan_mode()
    for var in key_vars:
        value = settings.api_keys.get(var) or (None if lan else (os.environ.get(var) or _streamlit_secret(var)))
        if value:
            return value
    return None


def missing_key_message(provider: str, purpose: str = "judge") -> str:
    var = KEY_VARS[provider][0] if provider in KEY_VARS else f"{provider.upper()}_API_KEY"
    return (f"The {TITLES.get(provider, provider)} {purpose} is disabled: no API key. Set the environment variable "
            f"{var} or add {var} to .streamlit/secrets.toml, then reload.")


def hide_password(url: Any) -> Any:
    """``http://user:secret@host/v1`` -> ``http://user:…@host/v1`` (a password in a URL is a key too)."""
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:…@", url) if isinstance(url, str) else url

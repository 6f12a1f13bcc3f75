"""Chat backends: one structured-output request to OpenAI (also Gemini, through its OpenAI-compatible
endpoint) or Anthropic, through the official SDKs.

Retries on 408/409/429/5xx and timeouts, with backoff honouring ``retry-after``, are the SDKs' own
(``max_retries``); what is left after them is raised as ``JudgeError``. Structured output: OpenAI
``response_format`` json_schema; Anthropic a forced tool whose ``input_schema`` is the schema.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import EndpointUnreachable, JudgeError
from .settings import KEY_VARS, JudgeSettings, hide_password, lookup_key, missing_key_message


@dataclass
class Reply:
    data: "dict | str | None"   # the structured answer: a dict (tool input) or JSON text
    refusal: "str | None"       # the model declined to answer
    raw: dict                   # the whole response, as JSON


class ChatBackend:
    """One provider + model. ``complete`` sends messages and returns the structured reply."""

    provider = ""

    def __init__(self, settings: JudgeSettings, provider: "str | None" = None,
                 model: "str | None" = None, kind: "str | None" = None):
        ep = settings.endpoint(kind or provider or self.provider)
        self.kind, self.provider, self.settings = ep.kind, ep.provider, settings
        self.model = model or ep.model
        self.base_url, self.key_vars, self._title = ep.base_url, ep.key_vars, ep.title
        self._key = lookup_key(ep.key_vars, settings) or (None if ep.key_required else "no-key")
        self._client = None
        self._lock = threading.Lock()

    @property
    def title(self) -> str:
        return self._title

    def available(self, purpose: str = "judge") -> tuple[bool, str]:
        if not self._key:
            return False, missing_key_message(self.kind, purpose)
        return True, f"{self.title} {self.model}"

    def request_parts(self) -> dict:
        """What besides the messages and schema determines the answer (for cache keys)."""
        s = self.settings
        parts = {"provider": self.provider, "model": self.model, "temperature": s.temperature,
                 "max_tokens": s.max_tokens}
        return self._with_endpoint(parts)

    def _with_endpoint(self, parts: dict) -> dict:
        """The same model name on two servers: two cache entries. A provider's default endpoint stays out
        of the key (so caches written before the endpoint was part of it stay valid)."""
        default = JudgeSettings().base_url_for(self.provider) if self.provider in KEY_VARS else None
        if default is None or self.base_url.rstrip("/") != default.rstrip("/"):
            parts["base_url"] = hide_password(self.base_url)  # no secret in the cache's keys
        return parts

    def client(self):
        with self._lock:
            if self._client is None:
                if not self._key:
                    raise JudgeError(missing_key_message(self.provider))
                self._client = self._make_client()
            return self._client

    def _make_client(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def complete(self, messages: list[dict], schema_name: str, schema: dict) -> Reply:
        raise NotImplementedError

    def _fail(self, err: Exception) -> JudgeError:
        """The SDK's error after its retries, with the provider's own text and a hint that matches
        what happened (refused and never retried, vs retried and given up)."""
        status = getattr(err, "status_code", None)
        env = self.kind.upper() if self.kind in KEY_VARS else f"COMPATIBLE_{self.kind.upper()}"
        if status in (401, 403):
            hint = f"check the API key in {self.key_vars[0]} (not retried)"
        elif status == 404:
            hint = (f"check the model name {self.model!r} (CCS_{env}_MODEL) and the endpoint {hide_password(self.base_url)} "
                    f"({env}_BASE_URL) (not retried)")
        elif status is not None and 400 <= status < 500 and status not in (408, 409, 429):
            hint = (f"the request was refused and is not retried; check the model {self.model!r} and "
                    f"max_tokens={self.settings.max_tokens} (CCS_MAX_TOKENS / --max-tokens; some reasoning "
                    "models refuse max_tokens)")
        else:
            hint = (f"gave up after {self.settings.max_retries} retries with a {self.settings.timeout:g} s "
                    "timeout; try again later, or raise CCS_MAX_RETRIES / --retries or CCS_TIMEOUT / --timeout")
        no_answer = status is None and ("Connection" in type(err).__name__ or "Timeout" in type(err).__name__)
        if no_answer and "Timeout" not in type(err).__name__:  # no connection at all: often a wrong URL
            where = (f"--base-url {self.kind}=URL / {env}_BASE_URL" if self.kind in KEY_VARS
                     else f"--compatible {self.kind}=URL,MODEL / CCS_{env}_BASE_URL")
            hint = (f"nothing answered at {hide_password(self.base_url)}: check that this endpoint ({where}) is right and its "
                    f"server is up, then try again (gave up after {self.settings.max_retries} retries)")
        kind = EndpointUnreachable if no_answer else JudgeError
        return kind(f"{self.title} request failed ({err.__class__.__name__}"
                    f"{f' {status}' if status else ''}: {provider_text(err)[:240]}); {hint}.")

    def _not_json(self, detail: str) -> JudgeError:
        """A 200 whose body is not the API's JSON (e.g. an HTML page): usually a wrong endpoint."""
        return JudgeError(f"{self.title} answered with something that is not its API's JSON "
                          f"({detail[:200]}); check the endpoint {hide_password(self.base_url)} and the model name.")


def provider_text(err: Exception) -> str:
    """The provider's own error message: OpenAI/Anthropic {"error": {"message"}}, Google's list-shaped
    body [{"error": {...}}] (which the openai SDK reduces to "Error code: 400"), else ``str(err)``."""
    body = getattr(err, "body", None)
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str) and inner:
            return inner
    return str(err)


class OpenAIBackend(ChatBackend):
    """OpenAI chat completions; with provider="gemini" the Gemini OpenAI-compatible endpoint."""

    provider = "openai"
    _json_mode = False  # set once the endpoint rejected json_schema response_format

    def _make_client(self):
        import openai

        return openai.OpenAI(api_key=self._key, base_url=self.base_url,
                             timeout=self.settings.timeout, max_retries=self.settings.max_retries)

    def complete(self, messages: list[dict], schema_name: str, schema: dict) -> Reply:
        import openai

        kwargs: dict[str, Any] = {}
        if self.settings.temperature is not None:
            kwargs["temperature"] = self.settings.temperature
        strict = {"type": "json_schema",
                  "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
        create = self.client().chat.completions.create
        try:
            json_mode = self._json_mode  # what *this* request sends: the fallback is per request
            try:
                resp = create(model=self.model, messages=messages, max_tokens=self.settings.max_tokens,
                              response_format={"type": "json_object"} if json_mode else strict,
                              **kwargs)
            except openai.BadRequestError as err:
                msg = provider_text(err).lower() + " " + str(err).lower()
                if json_mode or not ("response_format" in msg or "schema" in msg):
                    raise
                # an OpenAI-compatible endpoint without json_schema support: plain JSON mode
                # (the prompt spells out the format; the answer is validated all the same). Every
                # request that sent json_schema falls back itself, also those in flight meanwhile.
                self._json_mode = True
                resp = create(model=self.model, messages=messages, max_tokens=self.settings.max_tokens,
                              response_format={"type": "json_object"}, **kwargs)
        except openai.APIError as err:
            raise self._fail(err) from err
        except json.JSONDecodeError as err:
            raise self._not_json(f"invalid JSON body: {err}") from err
        if not hasattr(resp, "model_dump"):  # a non-JSON content type: the SDK hands back the text
            raise self._not_json(repr(resp))
        raw = resp.model_dump(mode="json")
        if not resp.choices:
            return Reply(data=None, refusal=None, raw=raw)
        choice = resp.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if choice.finish_reason == "content_filter" and not refusal:
            refusal = "blocked by the provider's content filter"
        return Reply(data=choice.message.content, refusal=refusal, raw=raw)


class AnthropicBackend(ChatBackend):
    """Anthropic messages API with a forced tool call carrying the schema."""

    provider = "anthropic"

    def request_parts(self) -> dict:  # this SDK has no temperature parameter
        return self._with_endpoint({"provider": self.provider, "model": self.model,
                                    "max_tokens": self.settings.max_tokens})

    def _make_client(self):
        import anthropic

        return anthropic.Anthropic(api_key=self._key, base_url=self.base_url,
                                   timeout=self.settings.timeout, max_retries=self.settings.max_retries)

    def complete(self, messages: list[dict], schema_name: str, schema: dict) -> Reply:
        import anthropic

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        try:
            resp = self.client().messages.create(
                model=self.model, max_tokens=self.settings.max_tokens, system=system, messages=turns,
                tools=[{"name": schema_name, "description": "Record your answer.",
                        "input_schema": schema}],
                tool_choice={"type": "tool", "name": schema_name})
        except anthropic.APIError as err:
            raise self._fail(err) from err
        except json.JSONDecodeError as err:
            raise self._not_json(f"invalid JSON body: {err}") from err
        if not hasattr(resp, "model_dump"):
            raise self._not_json(repr(resp))
        raw = resp.model_dump(mode="json")
        tool = [b for b in resp.content if getattr(b, "type", None) == "tool_use"]
        text = "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", None) == "text")
        refusal = (text or "refused") if resp.stop_reason == "refusal" else None
        if tool:
            data = tool[0].input if isinstance(tool[0].input, dict) else None
            return Reply(data=data, refusal=refusal, raw=raw)
        return Reply(data=text or None, refusal=refusal, raw=raw)


def make_backend(provider: str, settings: JudgeSettings, model: "str | None" = None) -> ChatBackend:
    """The backend for "openai", "anthropic", "gemini" or a named OpenAI-compatible endpoint."""
    if provider == "anthropic":
        return AnthropicBackend(settings, model=model)
    if provider in ("openai", "gemini") or provider in settings.compatible_names():
        return OpenAIBackend(settings, model=model, kind=provider)
    raise JudgeError(f"Unknown LLM provider {provider!r}; choose openai, anthropic, gemini"
                     f"{''.join(', ' + n for n in settings.compatible_names())} (or name an OpenAI-compatible "
                     "endpoint in the judge settings: [judges.compatible.NAME] or CCS_COMPATIBLE_NAME_BASE_URL).")

"""A fake LLM server on 127.0.0.1 speaking OpenAI chat-completions and Anthropic messages.

The real ``openai`` / ``anthropic`` clients are pointed at it with ``base_url``. Each request takes
the behaviour of the first matching ``server.rules`` entry, else the next of ``server.script``
(default "ok"): ok, slow, 429, 500, malformed, refusal,
wrong_count, 400_schema (an endpoint without json_schema), bad_body / html_body (a 200 that is not JSON). A correct answer follows fixed rules:
label = the most common word (> 2 letters) of the spans; a span fits iff it contains the label.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fake_label(spans: list[str]) -> str:
    words = [w for s in spans for w in re.findall(r"[a-z]+", s.lower()) if len(w) > 2]
    counts = Counter(words)
    return min(counts, key=lambda w: (-counts[w], words.index(w))) if words else "thing"


def fake_verdicts(label: str, spans: list[str]) -> list[dict]:
    return [{"span": i, "fits": label.lower() in s.lower(), "rationale": f"mentions {label}?"}
            for i, s in enumerate(spans, 1)]


def _parse_prompt(text: str) -> tuple[str | None, list[str]]:
    label = re.search(r"^Concept label: (.*)$", text, re.MULTILINE)
    block = text.rsplit("Descriptions", 1)[-1]
    spans = re.findall(r"^\d+\. (.*)$", block, re.MULTILINE)
    return (label.group(1).strip() if label else None), spans


class FakeLLMServer:
    def __init__(self, slow_s: float = 0.5, retry_after: str = "0.01", delay: float = 0.0):
        self.script: list[str] = []
        # (predicate(body, path), mode): checked before the script, e.g. a judge that always fails
        # for one head, or an endpoint that refuses every json_schema request
        self.rules: list = []
        self.slow_s, self.retry_after, self.delay = slow_s, retry_after, delay
        self.calls = 0
        self.paths: Counter = Counter()
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.generation = 0  # reset() starts a new one; in_flight counts this generation's requests
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeLLMServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        """Forget the last test: also its requests still in flight (a slow answer whose client gave
        up keeps its handler asleep into the next test), which then no longer count."""
        with self.lock:
            self.script, self.rules, self.calls, self.bodies = [], [], 0, []
            self.paths.clear()
            self.max_in_flight = self.in_flight = 0
            self.generation += 1

    def _next(self, body: dict, path: str) -> tuple[str, int]:
        with self.lock:
            self.calls += 1
            self.paths[path] += 1
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            for when, mode in self.rules:
                if when(body, path):
                    return mode, self.generation
            return (self.script.pop(0) if self.script else "ok"), self.generation

    # ---- answers -----------------------------------------------------------------------------
    @staticmethod
    def _answer(kind: str, text: str, mode: str) -> dict:
        label, spans = _parse_prompt(text)
        if kind == "label":
            return {"label": fake_label(spans)}
        verdicts = fake_verdicts(label or "", spans)
        return {"verdicts": verdicts[:-1] if mode == "wrong_count" else verdicts}

    def openai_reply(self, body: dict, mode: str) -> dict:
        text = next(m["content"] for m in body["messages"] if m["role"] == "user")
        schema = body["response_format"].get("json_schema", {}).get("name")  # None in JSON mode
        kind = "label" if schema == "concept_label" or "Concept label:" not in text else "judge"
        msg: dict = {"role": "assistant", "content": None, "refusal": None}
        if mode == "refusal":
            msg["refusal"] = "I'm sorry, I can't help with that."
        elif mode == "malformed":
            msg["content"] = '{"verdicts": [{"span": 1, "fits": "maybe"'
        else:
            msg["content"] = json.dumps(self._answer(kind, text, mode))
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "message": msg,
                                                     "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}

    def anthropic_reply(self, body: dict, mode: str) -> dict:
        name = body["tool_choice"]["name"]
        kind = "label" if name == "concept_label" else "judge"
        text = body["messages"][0]["content"]
        stop, content = "tool_use", None
        if mode == "refusal":
            stop, content = "refusal", [{"type": "text", "text": "I can't help with that."}]
        elif mode == "malformed":
            content = [{"type": "tool_use", "id": "toolu_1", "name": name,
                        "input": {"verdicts": "all of them fit"}}]
        else:
            content = [{"type": "tool_use", "id": "toolu_1", "name": name,
                        "input": self._answer(kind, text, mode)}]
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"],
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 10}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: "dict | bytes", headers: dict | None = None,
                      ctype: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self._leave()  # before the client can see the answer and send its next request
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                mode, self._counted = server._next(body, self.path)
                try:
                    time.sleep(server.delay)
                    if mode == "slow":
                        time.sleep(server.slow_s)
                    if mode == "429":
                        return self._send(429, {"error": {"message": "rate limited", "type": "rate"}},
                                          {"retry-after": server.retry_after})
                    if mode == "400_schema":
                        return self._send(400, {"error": {
                            "message": "Invalid value for 'response_format': json_schema is not "
                                       "supported by this endpoint", "type": "invalid_request_error"}})
                    if mode == "400_google":  # Google's OpenAI-compatible endpoint: a list-shaped body
                        data = json.dumps([{"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                      "message": "API key not valid. Please pass a valid API key."}}])
                        return self._send(400, data.encode())
                    if mode == "500":
                        return self._send(500, {"error": {"message": "boom", "type": "server"}},
                                          {"retry-after-ms": "10"})
                    if mode in ("bad_body", "html_body"):  # a 200 that is not the API's JSON
                        return self._send(200, b"<html>Welcome to nginx</html>", ctype="text/html"
                                          if mode == "html_body" else "application/json")
                    if self.path.endswith("/chat/completions"):
                        return self._send(200, server.openai_reply(body, mode))
                    if self.path.endswith("/messages"):
                        return self._send(200, server.anthropic_reply(body, mode))
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                finally:
                    self._leave()

            def _leave(self) -> None:
                """Count this request out of ``in_flight`` once (a request counted in by ``_next``)."""
                with server.lock:
                    if getattr(self, "_counted", None) == server.generation:
                        server.in_flight -= 1
                    self._counted = None

        return Handler

"""Ollama native API <-> OpenAI API, as pure functions (no I/O, no web framework).

Shapes follow ollama v0.32.15:
* requests: api/types.go GenerateRequest (l.61), ChatRequest (l.132), Message (l.196), ToolCall
  (l.219), EmbedRequest (l.599);
* answers: ChatResponse (l.520), GenerateResponse (l.891), Metrics (l.557: durations are Go
  time.Duration, i.e. integer nanoseconds, omitted when zero), Logprob / TokenLogprob (l.498-516);
* the translation Ollama itself does when its runner is llama-server's OpenAI API: llm/llama_server.go
  `Chat` (SSE deltas -> native chunks, finish_reason "length" -> done_reason "length", everything else
  "stop"; tool-call argument strings accumulated per index and parsed into an object at the end,
  `accumulatedToolCalls`), `llamaServerChatRequest` (format "json" -> response_format json_object,
  a schema -> json_schema named "schema"; think -> chat_template_kwargs.enable_thinking; logprobs ->
  logprobs + top_logprobs max(n, 1)), `convertLogprobs` (top list only when top_logprobs > 0).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class RequestError(Exception):
    """An answer for the client: HTTP status and Ollama's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- small formats


def created_at(ns: int | None = None) -> str:
    """Go's time.Time JSON form (RFC 3339 with up to 9 fraction digits, trailing zeros dropped, "Z"
    for UTC), as Ollama writes `created_at` from time.Now().UTC()."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def response_format(fmt: Any) -> dict[str, Any] | None:
    """Ollama `format` -> OpenAI response_format (llm/llama_server.go llamaServerChatResponseFormat)."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "schema", "schema": fmt}}
    raise RequestError(400, f'invalid format: {json.dumps(fmt)!r}; expected "json" or a valid JSON Schema object')


def think_params(think: Any) -> dict[str, Any]:
    """Ollama `think` (bool or "low"/"medium"/"high"/"max") -> chat_template_kwargs (llm/llama_server.go
    llamaServerChatTemplateKwargs)."""
    if think is None:
        return {}
    if isinstance(think, bool):
        return {"chat_template_kwargs": {"enable_thinking": think}}
    if isinstance(think, str) and think in ("low", "medium", "high", "max"):
        effort = "high" if think == "max" else think
        return {"chat_template_kwargs": {"enable_thinking": True, "reasoning_effort": effort},
                "reasoning_effort": effort}
    raise RequestError(400, f"invalid think value: {json.dumps(think)}")


def logprob_params(logprobs: Any, top: Any, *, chat: bool) -> dict[str, Any]:
    if top is None:
        top = 0
    if not isinstance(top, int) or isinstance(top, bool) or top < 0 or top > 20:
        raise RequestError(400, "top_logprobs must be between 0 and 20")
    if not logprobs:
        return {}
    if chat:
        return {"logprobs": True, "top_logprobs": max(top, 1)}
    return {"logprobs": max(top, 1)}  # the completions API takes the count in `logprobs`


def image_part(image: Any) -> dict[str, Any]:
    """An Ollama image (base64 text in JSON, api/types.go ImageData) -> an OpenAI image_url part."""
    if not isinstance(image, str):
        raise RequestError(400, "images must be base64-encoded strings")
    try:
        head = base64.b64decode(image[:64] + "=" * (-len(image[:64]) % 4), validate=False)[:16]
    except (binascii.Error, ValueError):
        raise RequestError(400, "illegal base64 data in images") from None
    mime = "image/jpeg"
    if head.startswith(b"\x89PNG"):
        mime = "image/png"
    elif head.startswith(b"GIF8"):
        mime = "image/gif"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        mime = "image/webp"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{image}"}}


# --------------------------------------------------------------------------- messages


def openai_message(msg: Any) -> dict[str, Any]:
    """One Ollama chat message -> OpenAI (tool-call arguments object -> JSON text, tool_name -> name,
    images -> content parts; llm/llama_server.go llamaServerChatMessage)."""
    if not isinstance(msg, dict):
        raise RequestError(400, "each message must be a JSON object")
    role = str(msg.get("role", "")).lower()
    content = msg.get("content") or ""
    if not isinstance(content, str):
        raise RequestError(400, "message content must be a string")
    out: dict[str, Any] = {"role": role}
    if msg.get("tool_call_id"):
        out["tool_call_id"] = msg["tool_call_id"]
    if msg.get("tool_name"):
        out["name"] = msg["tool_name"]
    if msg.get("tool_calls"):
        calls = []
        for i, tc in enumerate(msg["tool_calls"]):
            fn = (tc or {}).get("function") or {}
            args = fn.get("arguments")
            calls.append({
                "id": tc.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": fn.get("name", ""),
                             "arguments": args if isinstance(args, str) else json.dumps(args or {})},
            })
        out["tool_calls"] = calls
    images = msg.get("images") or []
    if images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
        parts += [image_part(img) for img in images]
        out["content"] = parts
    else:
        out["content"] = content
    return out


def with_modelfile(messages: list[dict[str, Any]], system: str | None, model_messages: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The Modelfile's MESSAGEs before the request's, and its SYSTEM first unless the request's first
    message is a system message (server/routes.go ChatHandler l.2656-2659)."""
    msgs = [*model_messages, *messages]
    if system and (not messages or messages[0].get("role") != "system"):
        msgs = [{"role": "system", "content": system}, *msgs]
    return msgs


def generate_messages(prompt: str, system: str | None, model_system: str | None,
                      model_messages: list[dict[str, Any]], images: list[Any], with_history: bool
                      ) -> list[dict[str, Any]]:
    """/api/generate's prompt as chat messages: the request's system, else the Modelfile's; the
    Modelfile's MESSAGEs unless `context` was sent; then the prompt as the user message
    (server/routes.go GenerateHandler l.515-529)."""
    msgs: list[dict[str, Any]] = []
    if system:
        msgs.append({"role": "system", "content": system})
    elif model_system:
        msgs.append({"role": "system", "content": model_system})
    if with_history:
        msgs += model_messages
    user: dict[str, Any] = {"role": "user", "content": prompt}
    if images:
        user["images"] = images
    msgs.append(user)
    return [openai_message(m) for m in msgs]


# --------------------------------------------------------------------------- tool calls and logprobs


def tool_calls_from_openai(accumulated: dict[int, dict[str, str]]) -> list[dict[str, Any]]:
    """Accumulated OpenAI tool-call deltas (index -> id, name, arguments text) -> Ollama tool calls with
    `arguments` as an object (llm/llama_server.go accumulatedToolCalls; api/types.go ToolCall l.219)."""
    out = []
    for index in sorted(accumulated):
        acc = accumulated[index]
        args: Any = {}
        if acc["arguments"].strip():
            try:
                args = json.loads(acc["arguments"])
            except json.JSONDecodeError as exc:
                raise RequestError(500, f"the backend returned invalid tool call arguments for "
                                        f"{acc['name']!r}: {exc}") from None
        call: dict[str, Any] = {"function": {"index": index, "name": acc["name"], "arguments": args}}
        if acc["id"]:
            call = {"id": acc["id"], **call}
        out.append(call)
    return out


def accumulate_tool_calls(acc: dict[int, dict[str, str]], deltas: list[dict[str, Any]] | None) -> None:
    for tc in deltas or []:
        index = tc.get("index", len(acc))
        slot = acc.setdefault(index, {"id": "", "name": "", "arguments": ""})
        slot["id"] += tc.get("id") or ""
        fn = tc.get("function") or {}
        slot["name"] += fn.get("name") or ""
        args = fn.get("arguments")
        if isinstance(args, dict):  # some servers send an object already
            args = json.dumps(args)
        slot["arguments"] += args or ""


def logprobs_from_chat(content: list[dict[str, Any]] | None, include_top: bool) -> list[dict[str, Any]]:
    """OpenAI chat logprobs.content -> Ollama Logprob list (api/types.go l.498-516)."""
    out = []
    for item in content or []:
        lp: dict[str, Any] = {"token": item.get("token", ""), "logprob": item.get("logprob", 0.0)}
        if item.get("bytes"):
            lp["bytes"] = item["bytes"]
        if include_top and item.get("top_logprobs"):
            lp["top_logprobs"] = [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                                   **({"bytes": t["bytes"]} if t.get("bytes") else {})}
                                  for t in item["top_logprobs"]]
        out.append(lp)
    return out


def logprobs_from_completion(lp: dict[str, Any] | None, include_top: bool) -> list[dict[str, Any]]:
    """OpenAI completions logprobs {tokens, token_logprobs, top_logprobs: [{token: logprob}]} -> Ollama.
    llama-server answers /v1/completions in the chat shape ({content: [{token, logprob, top_logprobs}]})."""
    if not lp:
        return []
    if isinstance(lp.get("content"), list):
        return logprobs_from_chat(lp["content"], include_top)
    tokens = lp.get("tokens") or []
    values = lp.get("token_logprobs") or []
    tops = lp.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        item: dict[str, Any] = {"token": tok, "logprob": values[i] if i < len(values) and values[i] is not None else 0.0}
        if include_top and i < len(tops) and tops[i]:
            item["top_logprobs"] = [{"token": t, "logprob": v} for t, v in tops[i].items()]
        out.append(item)
    return out


# --------------------------------------------------------------------------- the stream


@dataclass
class StreamState:
    """What one backend stream told so far; turns each SSE event into Ollama chunks.

    Durations (nanoseconds): llama-server sends `timings` (prompt_ms, predicted_ms, prompt_n,
    cache_n, predicted_n) in its last chunk, used as Ollama's runner uses them; other backends
    (vLLM) send `usage` only, and the durations are measured here: prompt eval = request sent ->
    first token, eval = first token -> last token."""

    model: str  # the name the client asked for, echoed in every chunk
    chat: bool  # the backend answers chat completions (delta) rather than completions (text)
    shape: str = "chat"  # the Ollama answer: "chat" (message) or "generate" (response)
    include_top: bool = False
    start_ns: int = field(default_factory=time.monotonic_ns)  # the request arrived
    sent_ns: int = 0  # the backend request went out
    first_ns: int = 0
    last_ns: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    tool_acc: dict[int, dict[str, str]] = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    def sent(self) -> None:
        self.sent_ns = time.monotonic_ns()

    def event(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """One decoded SSE `data:` object -> an Ollama chunk to send now (None: nothing to send)."""
        if data.get("error"):
            err = data["error"]
            msg = err.get("message") if isinstance(err, dict) else str(err)
            raise RequestError(500, msg or "the backend reported an error")
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        if isinstance(data.get("timings"), dict):
            self.timings = data["timings"]
        choices = data.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if self.chat:
            delta = choice.get("delta") or choice.get("message") or {}
            text = delta.get("content") or ""
            think = delta.get("reasoning_content") or delta.get("reasoning") or ""
            accumulate_tool_calls(self.tool_acc, delta.get("tool_calls"))
            lps = logprobs_from_chat((choice.get("logprobs") or {}).get("content"), self.include_top)
        else:
            text = choice.get("text") or ""
            think = ""
            lps = logprobs_from_completion(choice.get("logprobs"), self.include_top)
        if not (text or think or lps):
            return None
        now = time.monotonic_ns()
        self.first_ns = self.first_ns or now
        self.last_ns = now
        self.content.append(text)
        self.thinking.append(think)
        self.logprobs += lps
        return self._chunk(text, think, lps)

    def _chunk(self, text: str, think: str, lps: list[dict[str, Any]], done: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "created_at": created_at()}
        if self.shape == "chat":
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if think:
                msg["thinking"] = think
            out["message"] = msg
        else:
            out["response"] = text
            if think:
                out["thinking"] = think
        out["done"] = done
        if lps:
            out["logprobs"] = lps
        return out

    def final(self, *, whole: bool) -> dict[str, Any]:
        """The closing chunk (done: true, done_reason, metrics, tool calls); `whole`: it carries the
        whole answer (a non-streaming request) instead of nothing new."""
        text = "".join(self.content) if whole else ""
        think = "".join(self.thinking) if whole else ""
        out = self._chunk(text, think, self.logprobs if whole else [], done=True)
        calls = tool_calls_from_openai(self.tool_acc)
        if calls:
            if self.shape == "chat":
                out["message"]["tool_calls"] = calls
            else:
                out["tool_calls"] = calls
        out["done_reason"] = "length" if self.finish_reason == "length" else "stop"
        out.update(self.metrics())
        return {k: v for k, v in out.items() if v not in (0, None) or k == "done"}

    def metrics(self) -> dict[str, int]:
        end = time.monotonic_ns()
        t = self.timings
        if t and ("prompt_ms" in t or "predicted_ms" in t):
            prompt_n = int(t.get("prompt_n") or 0) + int(t.get("cache_n") or 0)
            prompt_ns = int(float(t.get("prompt_ms") or 0) * 1e6)
            eval_n = int(t.get("predicted_n") or 0)
            eval_ns = int(float(t.get("predicted_ms") or 0) * 1e6)
        else:
            prompt_n = int(self.usage.get("prompt_tokens") or 0)
            eval_n = int(self.usage.get("completion_tokens") or 0)
            first = self.first_ns or end
            prompt_ns = max(first - (self.sent_ns or self.start_ns), 0)
            eval_ns = max((self.last_ns or first) - first, 0)
        return {
            "total_duration": max(end - self.start_ns, 1),
            "load_duration": max((self.sent_ns or end) - self.start_ns, 1),
            "prompt_eval_count": prompt_n,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_n,
            "eval_duration": eval_ns,
        }


# --------------------------------------------------------------------------- embeddings


def normalize(vec: list[float]) -> list[float]:
    """L2-normalise like Ollama's EmbedHandler `normalize` (server/routes.go l.1026): NaN or Inf is an
    error; the norm is floored at 1e-12."""
    total = 0.0
    for v in vec:
        if math.isnan(v) or math.isinf(v):
            raise RequestError(400, "embedding contains NaN or Inf values")
        total += v * v
    scale = 1.0 / max(math.sqrt(total), 1e-12)
    return [v * scale for v in vec]


def embed_inputs(value: Any) -> list[str]:
    """EmbedRequest.input: a string (empty -> nothing) or a list of strings (server/routes.go l.820-840)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RequestError(400, "invalid input type")


def backend_error_message(body: bytes) -> str:
    """The message of an OpenAI-style error answer ({"error": {"message"}}, {"error": "..."},
    {"message"}, FastAPI's {"detail"}), else the body's text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:2000] or "the backend answered with an error and no message"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        for key in ("message", "detail"):
            if data.get(key):
                return data[key] if isinstance(data[key], str) else json.dumps(data[key])
    return text[:2000]

"""The two API dialects `llmctl bench` speaks, over one asyncio httpx client.

* ``openai`` — POST /v1/completions with a raw prompt (so the prompt's length is the text's, with no
  chat template added), ``stream: true`` and ``stream_options.include_usage`` (the last event carries
  `usage`: prompt and completion tokens), ``ignore_eos`` so the answer runs to `max_tokens` (vLLM and
  llama-server both accept it; others ignore it). Server-sent events, one `data:` line per chunk.
* ``ollama`` — POST /api/generate with ``raw: true`` and ``options.num_predict``; NDJSON lines, the last
  with ``done: true``, `eval_count` (output tokens) and `prompt_eval_count`.

Every request is bounded by an httpx timeout; failures become a record with the cause in words
(llmctl.smoke._short), never an exception out of the run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from llmctl.sse import EventStream


@dataclass
class Record:
    ok: bool
    start: float  # monotonic seconds
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    chunk_times: list[float] = field(default_factory=list)  # monotonic seconds of each chunk with text
    output_tokens: int | None = None  # from the server's usage counts (None: it gave none)
    prompt_tokens: int | None = None
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.output_tokens if self.output_tokens is not None else len(self.chunk_times)

    @property
    def itl_ms(self) -> list[float]:
        t = self.chunk_times
        return [(b - a) * 1000 for a, b in zip(t, t[1:])]

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first (vLLM's TPOT): (E2E − TTFT) / (tokens − 1)."""
        if not self.ok or self.ttft_ms is None or self.e2e_ms is None or self.tokens < 2:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.tokens - 1)


class Api:
    name = ""
    models_path = ""

    def __init__(self, client, base_url: str, model: str, timeout_s: float):
        self.client = client
        self.base = base_url
        self.model = model
        self.timeout_s = timeout_s

    def _timeout(self):
        import httpx

        return httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s))

    async def models(self) -> list[str]:
        raise NotImplementedError

    async def count_tokens(self, text: str) -> int | None:
        """The server's token count of `text` (None when it has no /tokenize)."""
        return None

    async def usage_tokens(self, text: str) -> int | None:
        """The prompt tokens the server counted for `text` (one request, one output token)."""
        rec = await self.generate(text, 1)
        return rec.prompt_tokens if rec.ok else None

    async def generate(self, prompt: str, max_tokens: int) -> Record:
        start = time.monotonic()
        rec = Record(ok=False, start=start)
        try:
            await self._stream(prompt, max_tokens, rec)
            if not rec.chunk_times:
                raise RuntimeError("the stream ended without any text")
            rec.ok = True
        except Exception as exc:  # noqa: BLE001 - every failure is a record with its cause
            from llmctl.smoke import _short

            rec.error = _short(exc)
        end = time.monotonic()
        if rec.chunk_times:
            rec.ttft_ms = (rec.chunk_times[0] - start) * 1000
        rec.e2e_ms = (end - start) * 1000
        return rec

    async def _stream(self, prompt: str, max_tokens: int, rec: Record) -> None:
        raise NotImplementedError


async def _lines(response):
    async for line in response.aiter_lines():
        yield line


class OpenAI(Api):
    name = "openai"
    models_path = "/v1/models"

    async def models(self) -> list[str]:
        r = await self.client.get(self.base + self.models_path, timeout=self._timeout())
        r.raise_for_status()
        return [str(m.get("id")) for m in r.json().get("data", []) if isinstance(m, dict)]

    _tokenize_body: int | None = None  # which request shape this server's /tokenize took

    async def count_tokens(self, text: str) -> int | None:
        # vLLM: POST /tokenize {"model", "prompt", "add_special_tokens"} → {"count", "tokens"}
        # (entrypoints/serve/tokenize); llama-server: POST /tokenize {"content"} → {"tokens"}
        # (tools/server/README.md). A shape the server ignores answers zero tokens for a non-empty text.
        shapes = ({"model": self.model, "prompt": text, "add_special_tokens": False},
                  {"content": text, "add_special": False})
        order = [self._tokenize_body] if self._tokenize_body is not None else [0, 1]
        for i in order:
            try:
                r = await self.client.post(self.base + "/tokenize", json=shapes[i], timeout=self._timeout())
            except Exception:  # noqa: BLE001 - no tokenizer endpoint: the caller falls back
                return None
            if r.status_code == 404:
                return None
            if r.status_code >= 400:
                continue
            try:
                data = r.json()
            except ValueError:
                return None
            n = data.get("count") if isinstance(data.get("count"), int) else (
                len(data["tokens"]) if isinstance(data.get("tokens"), list) else None)
            if n:
                self._tokenize_body = i
                return n
        return None

    async def _stream(self, prompt: str, max_tokens: int, rec: Record) -> None:
        body = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True}
        async with self.client.stream("POST", self.base + "/v1/completions", json=body,
                                      timeout=self._timeout()) as r:
            if r.status_code >= 400:
                await r.aread()
                r.raise_for_status()
            stream = EventStream()
            async for line in _lines(r):
                event = stream.event(line)
                if stream.done:
                    break
                if event is None:
                    continue
                for choice in event.get("choices") or []:
                    if choice.get("text"):
                        rec.chunk_times.append(time.monotonic())
                usage = event.get("usage")
                if isinstance(usage, dict):
                    rec.output_tokens = usage.get("completion_tokens", rec.output_tokens)
                    rec.prompt_tokens = usage.get("prompt_tokens", rec.prompt_tokens)
            stream.close()


class Ollama(Api):
    name = "ollama"
    models_path = "/api/tags"

    async def models(self) -> list[str]:
        r = await self.client.get(self.base + self.models_path, timeout=self._timeout())
        r.raise_for_status()
        return [str(m.get("name") or m.get("model")) for m in r.json().get("models") or [] if isinstance(m, dict)]

    async def _stream(self, prompt: str, max_tokens: int, rec: Record) -> None:
        body = {"model": self.model, "prompt": prompt, "raw": True, "stream": True,
                "options": {"num_predict": max_tokens, "temperature": 0}}
        async with self.client.stream("POST", self.base + "/api/generate", json=body, timeout=self._timeout()) as r:
            if r.status_code >= 400:
                await r.aread()
                r.raise_for_status()
            done = False
            async for line in _lines(r):
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("error"):
                    raise RuntimeError(f"server error in stream: {event['error']}")
                if event.get("response"):
                    rec.chunk_times.append(time.monotonic())
                if event.get("done"):
                    rec.output_tokens = event.get("eval_count", rec.output_tokens)
                    rec.prompt_tokens = event.get("prompt_eval_count", rec.prompt_tokens)
                    done = True
                    break
            if not done:
                raise RuntimeError('the stream ended without its closing `"done": true`')


DIALECTS = {"openai": OpenAI, "ollama": Ollama}

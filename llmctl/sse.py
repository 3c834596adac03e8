"""Lines of an OpenAI-compatible server-sent event stream (`data: {...}` lines ending in `data: [DONE]`),
as vLLM, llama-server and Ollama's /v1 send them; read by the smoke test and by `llmctl bench`."""

from __future__ import annotations

import json
from typing import Any

DONE = object()  # the `data: [DONE]` line: the answer is complete


def sse_event(line: str) -> dict[str, Any] | object | None:
    """The event of a `data:` line, DONE at the stream's end, None for any other line (blank lines,
    comments, `event:` names). An `error` event raises: the server gave up mid-answer."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return DONE
    event = json.loads(data)
    if isinstance(event, dict) and "error" in event:
        raise RuntimeError(f"server error in stream: {event['error']}")
    return event


class EventStream:
    """One stream read line by line: `event(line)` gives each `data:` event, `done` turns true at
    `data: [DONE]`, and `close()` raises if the stream ended before it (the server died mid-answer)."""

    def __init__(self) -> None:
        self.done = False

    def event(self, line: str) -> dict[str, Any] | None:
        if self.done:
            return None
        event = sse_event(line)
        if event is DONE:
            self.done = True
            return None
        return event  # type: ignore[return-value]

    def close(self) -> None:
        if not self.done:
            raise RuntimeError("the stream ended without its closing `data: [DONE]`")

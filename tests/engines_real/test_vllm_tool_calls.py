"""A real vLLM server on the CPU serves chat requests with `tools` once it is started with the flags
the vLLM engine renders for tool calling (`--enable-auto-tool-choice --tool-call-parser hermes`),
and refuses them without those flags.

The tiny model's chat template has no tool syntax and its weights are random, so what it answers is
junk: the tests assert that the request is accepted and the answer has the OpenAI shape, not its
quality. The server with the flags is started once for this module (~45 s, ~3 GB); the one without
is the session's shared `vllm_server`.
"""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def _chat(base_url: str, **extra) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "weather in Paris?"}],
            "max_tokens": 12, "temperature": 0, "tools": TOOLS, **extra}
    return httpx.post(base_url + "/v1/chat/completions", json=body, timeout=120)


@pytest.mark.parametrize("tool_choice", ["auto", None])
def test_chat_with_tools_is_served(vllm_tools_server, tool_choice):
    extra = {"tool_choice": tool_choice} if tool_choice else {}
    r = _chat(vllm_tools_server.base_url, **extra)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length", "tool_calls")
    for call in choice["message"].get("tool_calls") or []:  # junk weights: usually none
        assert call["type"] == "function" and call["function"]["name"]


def test_streamed_chat_with_tools_is_served(vllm_tools_server):
    with httpx.stream("POST", vllm_tools_server.base_url + "/v1/chat/completions", timeout=120,
                      json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
                            "temperature": 0, "tools": TOOLS, "tool_choice": "auto", "stream": True}) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) >= 2


def test_auto_tool_choice_is_refused_without_the_flags(vllm_server):
    r = _chat(vllm_server.base_url, tool_choice="auto")
    assert r.status_code == 400, r.text
    assert "--enable-auto-tool-choice and --tool-call-parser" in r.text

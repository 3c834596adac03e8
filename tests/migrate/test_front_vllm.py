"""The Ollama-compatible front on its production backend: the real vLLM OpenAI server (CPU build, the
tiny model, the session's shared `vllm_server`, served as "tiny"), driven by the official `ollama`
client. vLLM sends no llama.cpp `timings`, so the durations here are the ones the front measures, and
its `usage` chunk (stream_options.include_usage) gives the token counts."""

from __future__ import annotations

import httpx
import pytest

from support.requires import require_module
from migrate.test_front_real import MODEL, SYSTEM, assert_final_metrics, front_config, running_front

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vfront(vllm_server, tmp_path_factory):
    cfg = front_config(vllm_server.port)
    cfg["models"].append({"name": "ghost:7b", "served_name": "ghost"})  # in front.json, not served by vLLM
    with running_front(cfg, tmp_path_factory.mktemp("vfront")) as f:
        yield f


def test_ollama_client_through_the_front_to_vllm(vfront):
    require_module("ollama", "the official Ollama Python client (PyPI ollama)")
    import ollama

    c = ollama.Client(host=vfront.url, timeout=120)
    # Modelfile options carried per request: vLLM accepts top_k, repetition_penalty, seed, stop, max_tokens
    opts = {"temperature": 0, "num_predict": 6, "repeat_penalty": 1.1, "min_p": 0.01}
    res = c.chat(model=MODEL, messages=[{"role": "user", "content": "hello"}], options=opts)
    assert res.done and res.message.content and res.eval_count == 6 and res.done_reason == "length"
    assert_final_metrics(res.model_dump(exclude_none=True) | {"created_at": res.created_at})
    parts = list(c.chat(model=MODEL, messages=[{"role": "user", "content": "hello"}], options=opts, stream=True))
    assert "".join(p.message.content for p in parts) == res.message.content
    gen = c.generate(model=MODEL, prompt="hello", options=opts)
    assert gen.response and gen.eval_count == 6
    raw = c.generate(model=MODEL, prompt="one two", raw=True, options=opts)
    assert raw.response and raw.prompt_eval_count > 0
    assert {m.model for m in c.ps().models} == {"tiny-chat:1b", "plain:latest"}  # not ghost:7b


def test_system_injection_counts_on_vllm(vfront):
    with httpx.Client(base_url=vfront.url, timeout=120) as c:
        q = {"messages": [{"role": "user", "content": "four"}], "stream": False, "options": {"num_predict": 1}}
        with_mf = c.post("/api/chat", json={"model": MODEL, **q}).json()
        plain = c.post("/api/chat", json={"model": "plain", **q}).json()
    # vLLM's usage.prompt_tokens counts the injected SYSTEM and MESSAGE lines
    assert with_mf["prompt_eval_count"] >= plain["prompt_eval_count"] + len(SYSTEM.split())


def test_model_the_backend_does_not_serve(vfront):
    with httpx.Client(base_url=vfront.url, timeout=120) as c:
        r = c.post("/api/chat", json={"model": "ghost:7b", "messages": [{"role": "user", "content": "x"}]})
    # vLLM answers 404 "The model `ghost` does not exist."; clients see Ollama's words for it
    assert r.status_code == 404 and r.json() == {"error": "model 'ghost:7b' not found"}

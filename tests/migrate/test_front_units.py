"""The Ollama-compatible front's pure parts: front.json checking, Ollama name rules, options -> OpenAI
parameters, the SSE -> NDJSON translation (on vLLM's real chunk format), embedding normalisation,
and the ServiceSpec. No server runs here; tests/migrate/test_front_real.py drives the real thing."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmctl.errors import InputError
from llmctl.migrate.front import front_service, parse_front_config
from llmctl.migrate.front.names import canonical, display_shortest
from llmctl.migrate.front.options import check_options, merged, to_openai
from llmctl.migrate.front.translate import (
    RequestError,
    StreamState,
    created_at,
    generate_messages,
    normalize,
    openai_message,
    response_format,
    with_modelfile,
)

REPO = Path(__file__).resolve().parents[2]

GOOD = {
    "schema": "llmctl.migrate.front/v1",
    "backend": "http://127.0.0.1:8000",
    "api_key_env": None,
    "version": "0.32.15",
    "models": [{
        "name": "llama3.2:1b", "aliases": ["llama3.2:1b-instruct-q8_0"], "served_name": "llama3.2:1b",
        "system": "You are terse.", "messages": [{"role": "user", "content": "hi"}],
        "options": {"temperature": 0.7, "stop": ["<|eot_id|>"], "seed": 42, "num_ctx": 8192},
        "template": None, "show": None, "embedding": False, "context_length": 8192,
    }],
}


def _text(data) -> str:
    return json.dumps(data, indent=2)


# --------------------------------------------------------------------------- front.json


def test_good_config_loads_typed():
    cfg = parse_front_config(_text(GOOD))
    m = cfg.models[0]
    assert cfg.backend == "http://127.0.0.1:8000"
    assert m.options == {"temperature": 0.7, "stop": ["<|eot_id|>"], "seed": 42, "num_ctx": 8192}
    assert m.messages[0].role == "user"


def _line(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth - 1]


@pytest.mark.parametrize("mutate, needle, words", [
    (lambda d: d.update(schema="llmctl.migrate.front/v2"), '"schema"', "must be 'llmctl.migrate.front/v1'"),
    (lambda d: d["models"][0]["options"].update(temperature="hot"), '"temperature"',
     'models.0.options.temperature: option "temperature" must be of type float32'),
    (lambda d: d["models"][0].update(servedname="x"), '"servedname"', "models.0.servedname: unknown key"),
    (lambda d: d["models"][0].pop("served_name"), '"models"',  # the entry's "{" is on the next line
     "models.0.served_name: required field is missing"),
    (lambda d: d.update(backend="127.0.0.1:8000"), '"backend"', "must be an http:// or https:// URL"),
    (lambda d: d.update(models=5), '"models": 5', "models: expected a list, got 5"),
    (lambda d: d["models"][0].update(messages=3), '"messages"', "models.0.messages: expected a list, got 3"),
    (lambda d: d["models"].append({**d["models"][0], "name": "other", "aliases": ["Llama3.2:1B"]}), '"Llama3.2:1B"',
     "models.1.aliases.0: model name 'Llama3.2:1B' is also a name of 'llama3.2:1b'"),
])
def test_bad_config_names_line_and_field(mutate, needle, words):
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    text = _text(data)
    with pytest.raises(InputError) as exc:
        parse_front_config(text, "front.json")
    assert exc.value.exit_code == 2
    line = _line(text, needle) + (1 if needle == '"models"' else 0)
    assert str(exc.value).startswith(f"front.json:{line}: "), str(exc.value)
    assert words in str(exc.value)


def test_unrecorded_version_answers_the_implemented_one():
    assert parse_front_config(_text({**GOOD, "version": None})).version == "0.32.15"
    assert parse_front_config(_text({**GOOD, "version": "0.30.1"})).version == "0.30.1"


def test_bad_json_names_line():
    with pytest.raises(InputError) as exc:
        parse_front_config('{\n  "schema": "llmctl.migrate.front/v1",\n  "backend": \n}', "front.json")
    assert "front.json:4" in str(exc.value) and "not valid JSON" in str(exc.value)


def test_api_key_env_must_be_set(monkeypatch):
    monkeypatch.delenv("FRONT_TEST_KEY", raising=False)
    data = {**GOOD, "api_key_env": "FRONT_TEST_KEY"}
    with pytest.raises(InputError, match="FRONT_TEST_KEY, which is not set"):
        parse_front_config(_text(data))
    monkeypatch.setenv("FRONT_TEST_KEY", "k")
    assert parse_front_config(_text(data)).api_key() == "k"


def test_module_exits_2_on_bad_config_without_traceback(tmp_path):
    bad = tmp_path / "front.json"
    bad.write_text(text := _text({**GOOD, "models": [{"name": "x"}]}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "llmctl.migrate.front", "--config", str(bad), "--port", "1"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    line = _line(text, '"models"') + 1  # the entry's "{"
    assert f"{bad}:{line}: models.0.served_name: required field is missing" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "llmctl.migrate.front", "--config", str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=60, env=env)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_importing_the_package_does_not_import_the_web_framework():
    code = ("import sys, llmctl.migrate.front as f; f.front_service('front.json', 11434, image='x');"
            "print([m for m in ('starlette', 'uvicorn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("a, b", [
    ("llama3.2", "llama3.2:latest"),
    ("llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b"),
    ("LLama3.2:1B", "library/llama3.2:1b"),
    ("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", "hf.co/bartowski/llama-3.2-1b-gguf:q4_k_m"),
])
def test_names_that_are_one_model(a, b):
    assert canonical(a) == canonical(b)


def test_names_that_differ():
    assert canonical("llama3.2:1b") != canonical("llama3.2")  # the default tag is "latest", not any tag
    assert canonical("me/llama3.2") != canonical("llama3.2")


def test_display_shortest():
    # types/model/name.go DisplayShortest: default host/namespace dropped, tag always shown
    assert display_shortest("llama3.2") == "llama3.2:latest"
    assert display_shortest("registry.ollama.ai/library/llama3.2:1b") == "llama3.2:1b"
    assert display_shortest("me/llama3.2") == "me/llama3.2:latest"
    assert display_shortest("hf.co/org/repo:Q4_K_M") == "hf.co/org/repo:Q4_K_M"


# --------------------------------------------------------------------------- options


def test_options_mapping_to_openai():
    opts = check_options({"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1,
                          "seed": 7, "stop": ["END"], "num_predict": 12, "num_ctx": 4096, "typical_p": 0.5,
                          "presence_penalty": 0.1, "frequency_penalty": 0.2, "bogus": 1})
    assert "bogus" not in opts  # Options.FromMap ignores unknown names
    assert to_openai(opts) == {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                               "repetition_penalty": 1.1, "seed": 7, "stop": ["END"], "max_tokens": 12,
                               "presence_penalty": 0.1, "frequency_penalty": 0.2}


def test_options_special_values_are_not_sent():
    # num_predict -1 (no limit) / -2 (fill the context) and seed -1 (random): the backend's default
    assert to_openai(check_options({"num_predict": -1, "seed": -1})) == {}
    assert to_openai(check_options({"num_predict": -2})) == {}


@pytest.mark.parametrize("opts, message", [
    ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
    ({"num_predict": "10"}, 'option "num_predict" must be of type integer'),
    ({"stop": "END"}, 'option "stop" must be of type array'),
    ({"stop": [1]}, 'option "stop" must be of an array of strings'),
])
def test_options_wrong_types_use_ollamas_messages(opts, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_options(opts)


def test_request_options_win_over_modelfile():
    assert merged({"temperature": 0.7, "seed": 42}, {"temperature": 0.1}) == {"temperature": 0.1, "seed": 42}


# --------------------------------------------------------------------------- messages


def test_system_injected_only_when_request_has_none():
    # server/routes.go ChatHandler l.2656-2659
    hist = [{"role": "user", "content": "m1"}, {"role": "assistant", "content": "m2"}]
    out = with_modelfile([{"role": "user", "content": "q"}], "SYS", hist)
    assert [m["content"] for m in out] == ["SYS", "m1", "m2", "q"]
    own = with_modelfile([{"role": "system", "content": "mine"}, {"role": "user", "content": "q"}], "SYS", hist)
    assert [m["content"] for m in own] == ["m1", "m2", "mine", "q"]


def test_generate_prompt_as_messages():
    # GenerateHandler l.515-529: request system wins, Modelfile MESSAGEs unless `context` was sent
    msgs = generate_messages("q", None, "SYS", [{"role": "user", "content": "m1"}], [], with_history=True)
    assert [(m["role"], m["content"]) for m in msgs] == [("system", "SYS"), ("user", "m1"), ("user", "q")]
    msgs = generate_messages("q", "mine", "SYS", [{"role": "user", "content": "m1"}], [], with_history=False)
    assert [(m["role"], m["content"]) for m in msgs] == [("system", "mine"), ("user", "q")]


def test_tool_call_arguments_object_becomes_json_text_for_the_backend():
    msg = openai_message({"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]})
    assert msg["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    assert msg["tool_calls"][0]["type"] == "function"
    tool = openai_message({"role": "tool", "content": "20C", "tool_name": "get_weather"})
    assert tool == {"role": "tool", "name": "get_weather", "content": "20C"}


def test_images_become_data_urls():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    msg = openai_message({"role": "user", "content": "what is this", "images": [png]})
    assert msg["content"][0] == {"type": "text", "text": "what is this"}
    assert msg["content"][1]["image_url"]["url"] == f"data:image/png;base64,{png}"


def test_format_to_response_format():
    assert response_format("json") == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert response_format(schema) == {"type": "json_schema", "json_schema": {"name": "schema", "schema": schema}}
    assert response_format(None) is None
    with pytest.raises(RequestError):
        response_format("yaml")


# --------------------------------------------------------------------------- the stream

# Recorded: a streamed tool call exactly as vLLM 0.32.0 serialises it. Made with vLLM's own classes
# (vllm/entrypoints/openai/chat_completion/protocol.py ChatCompletionStreamResponse, .model_dump_json(
# exclude_unset=True) as chat_completion/serving.py sends it; DeltaToolCall / DeltaFunctionCall from
# vllm/entrypoints/generate/base/protocol.py), in the order vllm/tool_parsers/hermes_tool_parser.py
# streams one call: the name with id and type, then argument text in pieces, then finish_reason
# "tool_calls", then the usage chunk (stream_options.include_usage).
VLLM_TOOL_CALL_STREAM = """\
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-8b1f","type":"function","index":0,"function":{"name":"get_weather"}}]},"logprobs":null,"finish_reason":null}]}
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\": \\"Par"}}]},"logprobs":null,"finish_reason":null}]}
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\\", \\"days\\": 3}"}}]},"logprobs":null,"finish_reason":null}]}
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls"}]}
data: {"id":"chatcmpl-rec","created":1796050000,"model":"llama3.2:1b","choices":[],"usage":{"prompt_tokens":187,"total_tokens":211,"completion_tokens":24}}
data: [DONE]
"""


def _feed(state: StreamState, sse: str) -> list[dict]:
    sent = []
    for line in sse.splitlines():
        data = line.removeprefix("data: ")
        if data == "[DONE]":
            break
        chunk = state.event(json.loads(data))
        if chunk is not None:
            sent.append(chunk)
    return sent


def test_vllm_tool_call_stream_becomes_ollama_tool_call_with_object_arguments():
    state = StreamState(model="llama3.2:1b", chat=True)
    state.sent()
    assert _feed(state, VLLM_TOOL_CALL_STREAM) == []  # no text: nothing to stream before the end
    final = state.final(whole=False)
    # api/types.go ToolCall (l.219): {id, function: {index, name, arguments: object}}
    assert final["message"]["tool_calls"] == [
        {"id": "chatcmpl-tool-8b1f", "function": {"index": 0, "name": "get_weather",
                                                  "arguments": {"city": "Paris", "days": 3}}}]
    assert final["done"] is True and final["done_reason"] == "stop"  # only "length" is kept (llama_server.go)
    assert final["prompt_eval_count"] == 187 and final["eval_count"] == 24


def test_invalid_tool_arguments_are_an_error():
    state = StreamState(model="m", chat=True)
    state.event({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{bad"}}]}}]})
    with pytest.raises(RequestError, match="invalid tool call arguments"):
        state.final(whole=True)


def test_reasoning_becomes_thinking():
    state = StreamState(model="m", chat=True)
    chunk = state.event({"choices": [{"delta": {"reasoning_content": "hmm"}}]})  # llama-server's name
    assert chunk["message"] == {"role": "assistant", "content": "", "thinking": "hmm"}
    chunk = state.event({"choices": [{"delta": {"reasoning": "more"}}]})  # vLLM 0.32's DeltaMessage.reasoning
    assert chunk["message"]["thinking"] == "more"
    assert state.final(whole=True)["message"]["thinking"] == "hmmmore"


def test_logprobs_both_ways():
    state = StreamState(model="m", chat=True, include_top=True)
    chunk = state.event({"choices": [{"delta": {"content": "a"}, "logprobs": {"content": [
        {"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": [{"token": "a", "logprob": -0.1},
                                                                         {"token": "b", "logprob": -2.0}]}]}}]})
    assert chunk["logprobs"] == [{"token": "a", "logprob": -0.1, "bytes": [97],
                                  "top_logprobs": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -2.0}]}]
    gen = StreamState(model="m", chat=False, shape="generate", include_top=False)
    chunk = gen.event({"choices": [{"text": "x", "logprobs": {"tokens": ["x"], "token_logprobs": [-0.5],
                                                             "top_logprobs": [{"x": -0.5}]}}]})
    assert chunk["response"] == "x" and chunk["logprobs"] == [{"token": "x", "logprob": -0.5}]


def test_llama_server_timings_become_nanoseconds():
    state = StreamState(model="m", chat=False, shape="generate")
    state.event({"choices": [{"text": "x", "finish_reason": "length"}]})
    state.event({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1},
                 "timings": {"cache_n": 3, "prompt_n": 6, "prompt_ms": 1.5, "predicted_n": 1, "predicted_ms": 0.25}})
    final = state.final(whole=True)
    assert final["prompt_eval_count"] == 9 and final["prompt_eval_duration"] == 1_500_000
    assert final["eval_count"] == 1 and final["eval_duration"] == 250_000
    assert final["done_reason"] == "length" and final["response"] == "x"
    assert isinstance(final["total_duration"], int) and final["total_duration"] > 0


def test_created_at_is_gos_rfc3339nano():
    assert created_at(1_796_050_000_123_456_789) == "2026-11-30T14:46:40.123456789Z"
    assert created_at(1_796_050_000_120_000_000) == "2026-11-30T14:46:40.12Z"  # trailing zeros dropped
    assert created_at(1_796_050_000_000_000_000) == "2026-11-30T14:46:40Z"


# --------------------------------------------------------------------------- embeddings


def test_normalize_like_ollama():
    v = normalize([3.0, 4.0])
    assert v == pytest.approx([0.6, 0.8], abs=1e-12)
    assert normalize([0.0, 0.0]) == [0.0, 0.0]  # the norm is floored at 1e-12
    with pytest.raises(RequestError, match="NaN or Inf"):
        normalize([math.nan, 1.0])


# --------------------------------------------------------------------------- ServiceSpec


def test_front_service_spec(tmp_path):
    cfg = tmp_path / "front.json"
    cfg.write_text(_text(GOOD))
    s = front_service(cfg, 11500, image="registry.example/llmctl:0.1.0", api_key_env="VLLM_API_KEY")
    assert s.image == "registry.example/llmctl:0.1.0"
    assert s.argv[:3] == ["python3", "-m", "llmctl.migrate.front"]
    assert s.argv[s.argv.index("--config") + 1] == "/etc/llmctl/front.json"
    assert s.volumes[0].host_path == str(cfg.resolve()) and s.volumes[0].read_only
    assert s.ports[0].host == 11500 and s.ports[0].container == 11434
    assert s.health.path == "/health" and s.secrets[0].env == "VLLM_API_KEY"
    assert s.native_argv[s.native_argv.index("--port") + 1] == "11500"


def test_front_service_renders_as_compose(tmp_path):
    from llmctl.targets.base import RenderOptions, parse_yaml_documents
    from llmctl.targets.compose.render import ComposeTarget

    cfg = tmp_path / "front.json"
    cfg.write_text(_text(GOOD))
    files = ComposeTarget().render(front_service(cfg, 11500, image="registry.example/llmctl:0.1.0"), RenderOptions())
    svc = parse_yaml_documents(files["compose.yaml"], "compose.yaml")[0]["services"]["ollama-front"]
    assert svc["image"] == "registry.example/llmctl:0.1.0"
    assert svc["volumes"][0]["source"] == str(cfg.resolve()) and svc["volumes"][0]["read_only"] is True
    assert svc["healthcheck"]["test"][:2] == ["CMD", "python3"]
    assert svc["ports"][0]["published"] == "11500" and svc["ports"][0]["target"] == 11434


def test_front_service_renders_for_kubernetes(tmp_path):
    """The front's ServiceSpec carries its own health check and no autoscale series, so the Kubernetes
    target renders it without any engine profile (checked by kubernetes-validate, strict)."""
    import kubernetes_validate

    from llmctl.targets.base import RenderOptions, parse_yaml_documents
    from llmctl.targets.kubernetes.render import KubernetesTarget

    cfg = tmp_path / "front.json"
    cfg.write_text(_text(GOOD))
    files = KubernetesTarget().render(front_service(cfg, 11500, image="registry.example/llmctl:0.1.0"),
                                      RenderOptions(namespace="llm"))
    for name, text in files.items():
        for doc in parse_yaml_documents(text, name):
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
    pod = parse_yaml_documents(files["deployment.yaml"], "deployment.yaml")[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"

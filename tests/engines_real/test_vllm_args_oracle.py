"""vLLM's own parser and start-up checks judge `vllm serve` command lines (no server, no model).

These tests prove the judge: a command line shaped like the vLLM engine's render passes, and each
kind of mistake the engine would stop at start-up is caught, with vLLM's own message. All command
lines go through ONE subprocess in the vLLM venv (importing vLLM takes seconds).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GOOD = ["vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", "8000", "--served-model-name", "llama-8b",
        "--tensor-parallel-size", "1", "--pipeline-parallel-size", "1", "--max-model-len", "8192",
        "--gpu-memory-utilization", "0.9", "--max-num-seqs", "16", "--dtype", "bfloat16",
        "--kv-cache-dtype", "fp8", "--enable-prefix-caching"]

CASES: dict[str, list[str]] = {
    "good": GOOD,
    "good, local folder": ["vllm", "serve", "/models/tiny", "--max-model-len", "256"],
    "good, --model form": ["vllm", "serve", "--model", MODEL, "--port", "8000"],
    "good, tools": [*GOOD, "--enable-auto-tool-choice", "--tool-call-parser", "hermes"],
    "good, lora": [*GOOD, "--enable-lora", "--max-loras", "1", "--lora-modules", "a=/adapters/a-0"],
    "good, awq": ["vllm", "serve", "org/model-AWQ", "--quantization", "awq"],
    # what a spec's `serving` block renders (llmctl migrate writes one): several served names, the
    # sampling defaults, the queue limit
    "good, serving": ["vllm", "serve", MODEL, "--served-model-name", "llama3.1:8b", "llama3.1", "llama3.1:latest",
                      "--generation-config", "vllm", "--override-generation-config",
                      '{"max_new_tokens":128,"repetition_penalty":1.1,"temperature":0.7,"top_k":40}',
                      "--max-num-queued-reqs", "512", "--max-model-len", "8192"],
    "good, pooling": ["vllm", "serve", "BAAI/bge-small-en-v1.5", "--runner", "pooling"],
    "bogus flag": [*GOOD, "--no-such-flag"],
    "bad kv cache dtype": [*GOOD[:-3], "--kv-cache-dtype", "bogus"],
    "auto tool choice without parser": [*GOOD, "--enable-auto-tool-choice"],
    "unknown tool parser": [*GOOD, "--enable-auto-tool-choice", "--tool-call-parser", "nonexistent"],
    "bad quantization": [*GOOD, "--quantization", "nonsense"],
    "bad dtype": [*GOOD[:-5], "--dtype", "float7"],
    "not an int": ["vllm", "serve", MODEL, "--max-num-seqs", "many"],
    "not vllm serve": ["vllm", "bench", MODEL],
}


@pytest.fixture(scope="module")
def verdicts(vllm_argv_oracle) -> dict:
    results = vllm_argv_oracle(list(CASES.values()))
    return dict(zip(CASES, results))


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("good")])
def test_good_command_lines_pass(verdicts, name):
    v = verdicts[name]
    assert v.ok and v.stage == "done" and v.error == "", str(v)


def test_bogus_flag_fails_in_the_parser(verdicts):
    v = verdicts["bogus flag"]
    assert not v.ok and v.stage == "parse", str(v)
    assert "unrecognized arguments: --no-such-flag" in v.error


def test_bad_kv_cache_dtype_fails(verdicts):
    v = verdicts["bad kv cache dtype"]
    assert not v.ok and v.stage == "parse", str(v)
    assert "--kv-cache-dtype" in v.error and "bogus" in v.error


def test_auto_tool_choice_needs_a_parser(verdicts):
    v = verdicts["auto tool choice without parser"]
    assert not v.ok and v.stage == "validate", str(v)
    assert "--enable-auto-tool-choice requires --tool-call-parser" in v.error


def test_unknown_tool_parser_fails(verdicts):
    v = verdicts["unknown tool parser"]
    assert not v.ok and v.stage == "api_server", str(v)
    assert "invalid tool call parser: nonexistent" in v.error
    assert "hermes" in v.error  # the message lists the registered ones


def test_bad_quantization_fails(verdicts):
    # the parser takes any string for --quantization; vLLM checks the name when it builds the model config
    v = verdicts["bad quantization"]
    assert not v.ok and v.stage == "quantization", str(v)
    assert "Unknown quantization method: nonsense" in v.error and "awq" in v.error


def test_bad_dtype_and_non_integer_fail_in_the_parser(verdicts):
    for name in ("bad dtype", "not an int"):
        v = verdicts[name]
        assert not v.ok and v.stage == "parse", str(v)


def test_other_subcommands_are_not_judged(verdicts):
    v = verdicts["not vllm serve"]
    assert not v.ok and v.stage == "argv", str(v)

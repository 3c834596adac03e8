"""The reverse direction (vLLM → a development copy on Ollama) and the spec's `serving` block: strict
validation with file:line, and how each engine renders it (vLLM flags, llama.cpp sampling flags, a
plan warning where an engine cannot)."""

from __future__ import annotations

import json

import pytest
from support.cli import run_llmctl

from llmctl.errors import InputError
from llmctl.migrate.modelfile import parse_modelfile
from llmctl.planner import make_plan
from llmctl.render import build_service
from llmctl.spec import load_spec, load_spec_text

VLLM_SPEC = """name: bot
model: Qwen/Qwen2.5-7B-Instruct
workload:
  concurrency: 8
  context_length: 16384
hardware:
  - gpu: A100-80GB
serving:
  served_names: [qwen2.5:7b, qwen2.5, qwen2.5:latest]
  generation:
    temperature: 0.2
    top_k: 20
    repetition_penalty: 1.05
    max_new_tokens: 512
  max_queued_requests: 100
overrides:
  backend: vllm
"""


def test_reverse_writes_a_modelfile_ollama_reads_back(tmp_path):
    spec = tmp_path / "vllm.yaml"
    spec.write_text(VLLM_SPEC)
    out = tmp_path / "dev"
    r = run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(out), "-o", "json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "llmctl.migrate.reverse/v1" and doc["tag"] == "qwen2.5:7b"
    mf = parse_modelfile((out / "Modelfile").read_text())
    assert mf.from_ == "qwen2.5:7b"
    assert mf.parameters() == {"temperature": 0.2, "top_k": 20, "repeat_penalty": 1.05, "num_predict": 512,
                               "num_ctx": 16384}
    items = {i["item"]: i for i in doc["items"]}
    assert items["generation repetition_penalty"]["status"] == "approximated"
    assert items["max_queued_requests"]["vllm"] == {"OLLAMA_MAX_QUEUE": 100}
    o = load_spec(out / "ollama.yaml")
    assert o.model == "qwen2.5:7b" and o.overrides.backend == "ollama" and o.workload.context_length == 16384
    # a named GGUF quantization picks the library tag that carries it
    r = run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(tmp_path / "q"), "--quant", "Q8_0")
    assert r.code == 0, r.output
    assert parse_modelfile((tmp_path / "q" / "Modelfile").read_text()).from_ == "qwen2.5:7b-instruct-q8_0"


def test_reverse_refuses_an_ollama_spec_and_overwrites_only_with_force(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodel: llama3.2:1b\nhardware:\n  - gpu: L4\noverrides:\n  backend: ollama\n")
    r = run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(tmp_path / "o"))
    assert r.code == 2 and "not vLLM" in r.stderr, r.output
    spec.write_text(VLLM_SPEC)
    assert run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(tmp_path / "o")).code == 0
    r = run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(tmp_path / "o"))
    assert r.code == 2 and "already holds" in r.stderr
    assert run_llmctl("migrate", "vllm-to-ollama", "--from", str(spec), "--out", str(tmp_path / "o"), "--force").code == 0


def test_vllm_renders_the_serving_block():
    spec = load_spec_text(VLLM_SPEC, "s.yaml")
    argv = build_service(make_plan(spec), spec).argv
    i = argv.index("--served-model-name")
    assert argv[i + 1:i + 4] == ["qwen2.5:7b", "qwen2.5", "qwen2.5:latest"]
    j = argv.index("--override-generation-config")
    assert argv[j - 2:j] == ["--generation-config", "vllm"]
    assert json.loads(argv[j + 1]) == {"temperature": 0.2, "top_k": 20, "repetition_penalty": 1.05,
                                       "max_new_tokens": 512}
    assert argv[argv.index("--max-num-queued-reqs") + 1] == "100"


def test_llamacpp_renders_sampling_and_warns_about_the_rest():
    text = VLLM_SPEC.replace("backend: vllm", "backend: llama.cpp").replace("Qwen/Qwen2.5-7B-Instruct", "qwen2.5:7b")
    spec = load_spec_text(text, "s.yaml")
    plan = make_plan(spec)
    argv = build_service(plan, spec).argv
    assert argv[argv.index("--temp") + 1] == "0.2" and argv[argv.index("--top-k") + 1] == "20"
    assert argv[argv.index("--repeat-penalty") + 1] == "1.05" and argv[argv.index("--n-predict") + 1] == "512"
    assert any("serving.served_names" in w for w in plan.warnings)
    assert any("serving.max_queued_requests" in w for w in plan.warnings)


def test_ollama_warns_that_generation_is_not_rendered():
    text = VLLM_SPEC.replace("backend: vllm", "backend: ollama").replace("Qwen/Qwen2.5-7B-Instruct", "qwen2.5:7b")
    plan = make_plan(load_spec_text(text, "s.yaml"))
    assert any("serving.generation is not rendered for Ollama" in w for w in plan.warnings)


def test_a_spec_without_serving_keeps_its_digest():
    from llmctl.spec import spec_digest

    a = load_spec_text("name: x\nmodel: llama3.2:1b\n")
    b = load_spec_text("name: x\nmodel: llama3.2:1b\nserving: {}\n")
    assert spec_digest(a) == spec_digest(b)
    c = load_spec_text("name: x\nmodel: llama3.2:1b\nserving: {generation: {temperature: 0.1}}\n")
    assert spec_digest(c) != spec_digest(a)


@pytest.mark.parametrize("block, line, words", [
    ("serving:\n  generation:\n    temprature: 0.7\n", 3, "did you mean 'temperature'"),
    ("serving:\n  generation:\n    top_p: 1.5\n", 3, "less than or equal to 1"),
    ("serving:\n  served_names: [a, a]\n", 2, "listed twice"),
    ("serving:\n  served_names: ['two words']\n", 2, "must be one word"),
    ("serving:\n  max_queued_requests: 0\n", 2, "greater than or equal to 1"),
    ("serving:\n  generation:\n    top_k: \"40\"\n", 3, "expected a whole number"),
])
def test_serving_is_validated_strictly_with_lines(block, line, words):
    with pytest.raises(InputError) as exc:
        load_spec_text("name: x\nmodel: llama3.2:1b\n" + block, "s.yaml")
    assert f"s.yaml:{line + 2}" in str(exc.value) and words in str(exc.value), str(exc.value)

"""The planner's decisions: rules, feasibility, forced overrides and the JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmctl.errors import InputError
from llmctl.plan import SCHEMA
from llmctl.planner import Trace, make_plan
from llmctl.spec import load_spec, load_spec_text
from support.cli import run_llmctl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def spec_text(model="llama3.1:8b", hardware="  - gpu: A100-80GB\n    gpus: 1\n", extra="", env="production",
              concurrency=8) -> str:
    return (f"name: t\nmodel: {model}\nenvironment: {env}\nworkload:\n  concurrency: {concurrency}\n"
            f"  prompt_tokens: 512\n  output_tokens: 128\n  context_length: 4096\nhardware:\n{hardware}{extra}")


def plan_of(text: str, base_dir: Path | None = None):
    return make_plan(load_spec_text(text), base_dir=base_dir)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_plans_feasibly(path: Path) -> None:
    plan = make_plan(load_spec(path), base_dir=path.parent)
    assert plan.feasible, plan.problems
    assert plan.memory.per_gpu_gib.total <= plan.memory.per_gpu_gib.capacity
    assert plan.rationale and plan.alternatives


def test_cpu_laptop_gets_ollama_or_llamacpp() -> None:
    plan = plan_of(spec_text(hardware="  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n", env="development", concurrency=1))
    assert plan.backend in ("ollama", "llama.cpp")
    assert plan.gpu.kind == "cpu"
    assert any(r.rule == "vllm ruled out" for r in plan.rationale)


def test_apple_silicon_gets_ollama() -> None:
    plan = plan_of(spec_text(hardware="  - gpu: M2 Max\n    memory_gb: 32\n", env="development", concurrency=1))
    assert plan.backend == "ollama" and plan.gpu.type == "Apple-M2-Max"
    assert plan.memory.per_gpu_gib.capacity == pytest.approx(32 * 0.667, rel=0.01)


def test_production_many_users_on_a100_gets_vllm() -> None:
    plan = plan_of(spec_text(concurrency=64))
    assert plan.backend == "vllm"


def test_lora_needs_lean_to_vllm_even_in_development() -> None:
    plan = plan_of(spec_text(env="development", extra="needs: [lora]\n"))
    assert plan.backend == "vllm" and plan.engine_args.get("enable_lora") is True


def test_70b_bf16_needs_tensor_parallelism() -> None:
    plan = plan_of(spec_text(model="meta-llama/Llama-3.1-70B-Instruct", hardware="  - gpu: H100\n    gpus: 8\n",
                             extra="overrides:\n  quantization: BF16\n"))
    assert plan.backend == "vllm" and plan.quantization == "BF16"
    assert plan.tensor_parallel >= 2
    assert 140 / plan.tensor_parallel < plan.memory.per_gpu_gib.weights * 1.1


def test_pipeline_parallel_only_when_one_node_is_not_enough() -> None:
    hw = "  - gpu: H100\n    gpus: 8\n    count: 2\n"
    plan = plan_of(spec_text(model="meta-llama/Llama-3.1-405B-Instruct", hardware=hw,
                             extra="overrides:\n  quantization: BF16\n"))
    assert plan.feasible and plan.pipeline_parallel == 2 and plan.tensor_parallel == 8
    fp8 = plan_of(spec_text(model="meta-llama/Llama-3.1-405B-Instruct", hardware=hw,
                            extra="overrides:\n  quantization: FP8\n"))
    assert fp8.feasible and fp8.pipeline_parallel == 1


def test_forced_values_are_honoured_and_reported() -> None:
    plan = plan_of(spec_text(extra="overrides:\n  backend: ollama\n  quantization: Q8_0\n  num_parallel: 2\n"))
    assert (plan.backend, plan.quantization) == ("ollama", "Q8_0")
    assert plan.engine_args["num_parallel"] == 2
    assert set(plan.forced) == {"backend", "quantization", "num_parallel"}
    assert plan.model.ollama_tag == "llama3.1:8b-instruct-q8_0"


def test_forced_plan_that_cannot_work_is_infeasible() -> None:
    plan = plan_of(spec_text(hardware="  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n", extra="overrides:\n  backend: vllm\n"))
    assert not plan.feasible
    assert any("vLLM needs a GPU" in p for p in plan.problems)


def test_forced_vllm_that_does_not_fit_is_infeasible() -> None:
    plan = plan_of(spec_text(model="meta-llama/Llama-3.1-70B-Instruct", hardware="  - gpu: RTX 4090\n    gpus: 1\n",
                             extra="overrides:\n  backend: vllm\n"))
    assert not plan.feasible and plan.problems


# Qwen1.5-1.8B-Chat: no GGUF repository is recorded for it (profiles/model_sources.yaml), so llama-server
# has nothing to download in any quantization
NO_GGUF = dict(model="Qwen/Qwen1.5-1.8B-Chat", hardware="  - gpu: RTX3090-24GB\n    gpus: 4\n")


def test_a_quantization_with_no_gguf_file_is_one_unsized_llamacpp_rejection() -> None:
    trace = Trace()
    plan = make_plan(load_spec_text(spec_text(**NO_GGUF)), trace=trace)
    assert plan.feasible and plan.backend != "llama.cpp"
    no_file = [c for c in trace.ranked if c.backend == "llama.cpp" and "no GGUF file of qwen1.5-1.8b" in (c.reject or "")]
    assert len(no_file) >= 5  # F16 … Q4_K_M: every quantization above the quality floor
    assert len({c.quant.id for c in no_file}) == len(no_file)  # one per quantization, not one per layout and KV dtype
    assert all(c.mem is None for c in no_file)
    assert all(c.reject for c in trace.ranked if c.backend == "llama.cpp")


def test_when_nothing_works_the_plan_shows_the_closest_estimate_of_an_unsized_rejection() -> None:
    plan = plan_of(spec_text(**NO_GGUF, extra="overrides:\n  backend: llama.cpp\n"))
    assert not plan.feasible
    assert any("no GGUF file of qwen1.5-1.8b in F16" in p for p in plan.problems)
    assert plan.memory.per_gpu_gib.weights > 0 and plan.memory.gpu_layers  # llama-server's estimate, were a file given


def test_bad_tensor_parallel_is_an_input_error() -> None:
    with pytest.raises(InputError) as exc:
        plan_of(spec_text(hardware="  - gpu: H100\n    gpus: 8\n", extra="overrides:\n  tensor_parallel: 3\n"))
    assert "overrides.tensor_parallel" in str(exc.value)


def test_context_beyond_the_model_is_an_input_error() -> None:
    text = spec_text(model="phi3:mini").replace("context_length: 4096", "context_length: 65536")
    with pytest.raises(InputError) as exc:
        plan_of(text)
    assert "workload.context_length" in str(exc.value) and "4096" in str(exc.value)


def test_local_folder_with_only_config_json_gets_a_full_plan(tmp_path: Path) -> None:
    folder = tmp_path / "my-finetune"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
        "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}))
    plan = plan_of(spec_text(model="./my-finetune", hardware="  - gpu: L4\n    gpus: 1\n"), base_dir=tmp_path)
    assert plan.feasible and plan.backend == "vllm"
    assert plan.model.path == str(folder.resolve())
    assert plan.memory.per_gpu_gib.weights > 5 and plan.performance.itl_p95_ms is not None
    assert any("counted from the architecture" in w for w in plan.warnings)


def test_gguf_file_plans_llamacpp_with_exact_bytes(tmp_path: Path) -> None:
    import gguf

    from support.ggufs import write_gguf

    total = write_gguf(tmp_path / "tiny.gguf", file_type=gguf.LlamaFileType.ALL_F32)
    plan = plan_of(spec_text(model="./tiny.gguf", hardware="  - cpu: cpu-ddr4-2ch\n    memory_gb: 8\n",
                             env="staging", concurrency=2).replace("context_length: 4096", "context_length: 1024"),
                   base_dir=tmp_path)
    assert plan.backend == "llama.cpp" and plan.quantization == "F32"
    assert plan.memory.per_gpu_gib.weights == pytest.approx(total / 2**30, abs=0.01)
    assert plan.engine_args["parallel"] == 2 and plan.engine_args["ctx_size"] == 2048


def test_json_contract_keys() -> None:
    plan = plan_of(spec_text())
    data = plan.to_public()
    assert data["schema"] == SCHEMA
    for key in ("backend", "quantization", "tensor_parallel", "pipeline_parallel", "replicas", "gpu", "engine_args",
                "memory", "performance", "sla", "cost", "rationale", "alternatives"):
        assert key in data, key
    assert set(data["gpu"]) >= {"type", "count_per_replica"}
    assert set(data["memory"]["per_gpu_gib"]) == {"weights", "kv_cache", "activation", "overhead", "total", "capacity"}
    assert set(data["memory"]) >= {"total_gib", "offloaded_to_cpu_gib", "kv_cache_tokens", "max_concurrency"}
    assert set(data["performance"]) >= {"ttft_p95_ms", "itl_p95_ms", "decode_tokens_per_s_single", "throughput_tokens_per_s"}
    assert set(data["cost"]) == {"usd_per_hour", "usd_per_month", "usd_per_million_tokens"}
    assert {"met", "checks"} <= set(data["sla"])
    assert all({"rule", "detail"} <= set(r) for r in data["rationale"])
    assert all({"backend", "quantization", "tensor_parallel", "rejected_because"} <= set(a) for a in data["alternatives"])
    assert "explain" not in data


def test_cli_plan_json_and_explain(tmp_path: Path) -> None:
    r = run_llmctl("plan", str(ROOT / "examples/chatbot.yaml"), "--output", "json", "--explain")
    assert r.code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == SCHEMA and data["explain"]
    assert any(e["quantity"] == "KV cache" and "budget" in e["formula"] for e in data["explain"])
    r = run_llmctl("plan", str(ROOT / "examples/chatbot.yaml"), "--explain")
    assert r.code == 0 and "arithmetic:" in r.stdout and "gpu_memory_utilization" in r.stdout


def test_cli_yaml_output_parses() -> None:
    from ruamel.yaml import YAML

    r = run_llmctl("plan", str(ROOT / "examples/laptop-cpu.yaml"), "-o", "yaml")
    assert r.code == 0
    assert YAML(typ="safe").load(r.stdout)["schema"] == SCHEMA


def test_cli_infeasible_plan_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(hardware="  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n", extra="overrides:\n  backend: vllm\n"))
    r = run_llmctl("plan", str(spec))
    assert r.code == 1 and "cannot work" in r.stderr and "Traceback" not in r.output


def test_cli_unknown_gpu_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text(hardware="  - gpu: A100\n    gpus: 1\n"))
    r = run_llmctl("plan", str(spec))
    assert r.code == 2 and "hardware[0].gpu" in r.stderr and "ambiguous" in r.stderr


def test_init_writes_a_valid_spec_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "llmctl.yaml"
    r = run_llmctl("init", str(target), "--model", "qwen2.5:7b")
    assert r.code == 0 and target.exists()
    assert load_spec(target).model == "qwen2.5:7b"
    target.write_text("# mine\n")
    r = run_llmctl("init", str(target))
    assert r.code == 2 and "already exists" in r.stderr
    assert target.read_text() == "# mine\n"
    r = run_llmctl("init", str(target), "--force")
    assert r.code == 0 and "workload:" in target.read_text()


def test_python_dash_m_and_help() -> None:
    r = run_llmctl("--help")
    assert r.code == 0 and "plan" in r.stdout and "render" in r.stdout


def test_nodes_with_the_same_gpu_and_different_ram_are_planned_apart() -> None:
    """Two nodes with one RTX 4060 each, 16 GB and 128 GB of RAM: a 70B model only fits the second,
    with most layers in its RAM. Grouped into one pool, both used to take the first node's RAM and the
    plan could not work."""
    hardware = ("  - name: small\n    gpu: RTX 4060\n    gpus: 1\n    memory_gb: 16\n"
                "  - name: big\n    gpu: RTX 4060\n    gpus: 1\n    memory_gb: 128\n")
    plan = plan_of(spec_text(model="llama3.1:70b", hardware=hardware, env="development", concurrency=1,
                             extra="overrides:\n  backend: llama.cpp\n"))
    assert plan.feasible, plan.problems
    assert plan.memory.offloaded_to_cpu_gib > 16  # more than the small node could hold
    hw = next(r.detail for r in plan.rationale if r.rule == "hardware")
    assert "16 GB RAM) [small]" in hw and "128 GB RAM) [big]" in hw

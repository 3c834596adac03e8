"""Hand-made Plans for render tests: fixed numbers, so the files they produce are stable."""

from __future__ import annotations

from typing import Any

from llmctl.plan import Cost, GpuChoice, Memory, ModelInfo, Performance, PerGpuMemory, Plan, Sla
from llmctl.spec import Spec
from llmctl.typed import convert


def make_plan(
    *,
    backend: str = "vllm",
    name: str = "chat",
    reference: str = "meta-llama/Llama-3.1-8B-Instruct",
    hf_id: str | None = "meta-llama/Llama-3.1-8B-Instruct",
    ollama_tag: str | None = None,
    path: str | None = None,
    gated: bool = True,
    quantization: str = "bf16",
    kv_cache_dtype: str = "auto",
    tp: int = 1,
    pp: int = 1,
    replicas: int = 1,
    gpu_type: str = "A100-80GB-SXM",
    gpu_kind: str = "gpu",
    gpus: int | None = None,
    nodes: int = 1,
    max_model_len: int = 8192,
    environment: str = "production",
    needs: list[str] | None = None,
    gpu_layers: int | None = None,
    batch: int | None = 16,
    engine_args: dict[str, Any] | None = None,
    source: str | None = None,
) -> Plan:
    count = gpus if gpus is not None else (tp * pp if gpu_kind == "gpu" else 0)
    if source is None and not path:  # what the planner records: the tag, `repo:QUANT`, or the repository
        source = ollama_tag if backend == "ollama" else (
            f"{hf_id}:{quantization.upper()}" if backend == "llama.cpp" else hf_id)
    return Plan(
        name=name,
        environment=environment,
        target="compose",
        model=ModelInfo(
            reference=reference, id=reference, hf_id=hf_id, ollama_tag=ollama_tag, path=path, gated=gated, source=source,
            params_b=8.0, active_params_b=8.0, architecture="LlamaForCausalLM",
        ),
        backend=backend,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        replicas=replicas,
        max_model_len=max_model_len,
        gpu=GpuChoice(type=gpu_type, kind=gpu_kind, count_per_replica=count, memory_gib=80.0, nodes_per_replica=nodes),
        engine_args=engine_args or {},
        memory=Memory(
            per_gpu_gib=PerGpuMemory(weights=15.0 / (tp * pp), kv_cache=40.0, activation=2.0, overhead=3.0,
                                     total=60.0, capacity=80.0),
            total_gib=60.0,
            kv_cache_tokens=300_000,
            max_concurrency=36.0,
            gpu_layers=gpu_layers,
            total_layers=32,
        ),
        performance=Performance(batch_size=batch),
        sla=Sla(met=True),
        cost=Cost(usd_per_hour=2.0, usd_per_month=1460.0),
        needs=needs or [],
    )


def make_spec(**fields: Any) -> Spec:
    data: dict[str, Any] = {"name": "chat", "model": "meta-llama/Llama-3.1-8B-Instruct", "environment": "production"}
    data.update(fields)
    return convert(data, Spec)


# name -> (plan kwargs, spec kwargs): one of each shape a target must handle
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "vllm-1gpu": ({}, {}),
    "vllm-tp4-fp8-lora": (
        dict(tp=4, quantization="fp8", kv_cache_dtype="fp8", needs=["prefix_caching", "lora"], replicas=3,
             engine_args={"quantization": "fp8"}),
        dict(adapters=[{"name": "sql", "path": "/srv/adapters/sql"}, {"name": "chat-ft", "path": "org/chat-lora"}],
             needs=["prefix_caching"], endpoint={"bind": "0.0.0.0", "port": 9000}),
    ),
    "vllm-pp-2nodes": (dict(tp=8, pp=2, nodes=2, gpu_type="H100-80GB-SXM", replicas=2), {}),
    "vllm-dev-cpu": (dict(gpu_kind="cpu", gpu_type="cpu-ddr5-2ch", quantization="bf16", environment="development"),
                     dict(environment="development")),
    "ollama-gpu": (
        dict(backend="ollama", reference="llama3.1:8b", hf_id=None, ollama_tag="llama3.1:8b", gated=False,
             quantization="q4_K_M", kv_cache_dtype="q8_0", gpu_type="RTX-4090", replicas=2),
        dict(model="llama3.1:8b"),
    ),
    "ollama-cpu-dev": (
        dict(backend="ollama", reference="qwen2.5:0.5b", hf_id=None, ollama_tag="qwen2.5:0.5b", gated=False,
             quantization="q4_K_M", gpu_kind="cpu", gpu_type="cpu-ddr5-2ch", environment="development"),
        dict(model="qwen2.5:0.5b", environment="development"),
    ),
    "llamacpp-local": (
        dict(backend="llama.cpp", reference="/srv/models/qwen2.5-0.5b-instruct-q4_k_m.gguf", hf_id=None,
             path="/srv/models/qwen2.5-0.5b-instruct-q4_k_m.gguf", gated=False, quantization="q4_K_M",
             gpu_layers=24, gpu_type="L4", kv_cache_dtype="q8_0"),
        dict(model="/srv/models/qwen2.5-0.5b-instruct-q4_k_m.gguf", needs=["tool_calling"]),
    ),
    "llamacpp-hf-cpu": (
        dict(backend="llama.cpp", reference="Qwen/Qwen2.5-0.5B-Instruct-GGUF", hf_id="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
             gated=False, quantization="q4_k_m", gpu_kind="cpu", gpu_type="cpu-ddr5-2ch", replicas=2),
        dict(model="Qwen/Qwen2.5-0.5B-Instruct-GGUF"),
    ),
}


def case(name: str) -> tuple[Plan, Spec]:
    plan_kw, spec_kw = CASES[name]
    env = plan_kw.get("environment", "production")
    return make_plan(**plan_kw), make_spec(**{"environment": env, **spec_kw})

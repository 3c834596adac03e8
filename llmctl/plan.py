"""The Plan: the planner's decision as data — the contract every later stage (render, up, smoke) reads.

`llmctl plan --output json` prints `Plan.to_public()`; its keys are documented in the README and
versioned by `SCHEMA`. Sizes are GiB (2^30 bytes); `per_gpu_gib` is one GPU of one replica;
`total_gib` is everything one replica holds, GPU and CPU together.
"""

from __future__ import annotations

from typing import Any

from llmctl.typed import Record as _Data
from llmctl.typed import dump, field

SCHEMA = "llmctl.plan/v1"


class PerGpuMemory(_Data):
    weights: float
    kv_cache: float
    activation: float
    overhead: float
    total: float
    capacity: float


class Memory(_Data):
    per_gpu_gib: PerGpuMemory
    total_gib: float
    offloaded_to_cpu_gib: float = 0.0
    kv_cache_tokens: int
    max_concurrency: float
    gpu_layers: int | None = None  # llama.cpp/Ollama: layers on the GPU (-ngl); None for vLLM
    total_layers: int | None = None


class Performance(_Data):
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p95_ms: float | None = None
    decode_tokens_per_s_single: float | None = None
    output_tokens_per_s_per_user: float | None = None
    throughput_tokens_per_s: float | None = None  # output tokens/s of one replica at the planned load
    max_concurrency_within_sla: int | None = None  # per replica
    batch_size: int | None = None  # sequences decoded together per replica at the planned load


class SlaCheck(_Data):
    metric: str
    target: float
    predicted: float | None
    met: bool


class Sla(_Data):
    met: bool
    checks: list[SlaCheck] = []


class Cost(_Data):
    usd_per_hour: float
    usd_per_month: float
    usd_per_million_tokens: float | None = None


class Rationale(_Data):
    rule: str
    detail: str


class Alternative(_Data):
    backend: str
    quantization: str
    tensor_parallel: int
    pipeline_parallel: int = 1
    gpu: str | None = None
    replicas: int | None = None
    feasible: bool = False
    rejected_because: str
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    throughput_tokens_per_s: float | None = None
    usd_per_hour: float | None = None
    sla_met: bool | None = None
    per_gpu_total_gib: float | None = None


class GpuChoice(_Data):
    type: str  # catalog id, e.g. A100-80GB-SXM, or cpu-ddr5-2ch
    kind: str  # gpu | apple | cpu
    count_per_replica: int
    memory_gib: float
    nodes_per_replica: int = 1


class ModelInfo(_Data):
    reference: str  # as the user wrote it
    id: str  # catalog id or a derived id for local files
    hf_id: str | None = None
    ollama_tag: str | None = None
    path: str | None = None  # local file or folder
    # what the chosen engine loads: a Hugging Face repository (vLLM; a pre-quantized one where the plan
    # uses it), `repo:QUANT` of a GGUF repository (llama.cpp), or a library tag (Ollama); None for `path`
    source: str | None = None
    gated: bool = False
    params_b: float
    active_params_b: float
    architecture: str
    max_position_embeddings: int | None = None


class Explanation(_Data):
    """One line of `--explain`: a quantity, its value, and the arithmetic that produced it."""

    quantity: str
    value: str
    formula: str


class Plan(_Data):
    schema_: str = field(default=SCHEMA, name="schema")
    name: str
    environment: str
    target: str
    model: ModelInfo
    backend: str
    engine_version: str | None = None  # the engine release the estimates follow (the pinned image's)
    quantization: str
    kv_cache_dtype: str
    tensor_parallel: int
    pipeline_parallel: int
    replicas: int
    max_model_len: int
    gpu: GpuChoice
    engine_args: dict[str, Any] = {}
    memory: Memory
    performance: Performance
    sla: Sla
    cost: Cost
    needs: list[str] = []
    forced: list[str] = []  # override keys the user forced
    feasible: bool = True
    problems: list[str] = []  # why a forced plan cannot work (exit 1)
    warnings: list[str] = []
    rationale: list[Rationale] = []
    alternatives: list[Alternative] = []
    explain: list[Explanation] = []
    spec_sha256: str | None = None  # llmctl.spec.spec_digest of the spec it was made from (`render --plan` checks it)

    def to_public(self, *, explain: bool = False) -> dict[str, Any]:
        data = dump(self)
        if not explain:
            data.pop("explain", None)
        return data

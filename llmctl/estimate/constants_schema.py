"""The typed shape of profiles/estimation.yaml (memory) and profiles/performance.yaml (time); constants.py
loads them through it.

Each file is checked once, when first read: a missing key, a misspelt key, a value of the wrong type
or out of its physical range stops llmctl with the file and the key path
("profiles/performance.yaml: engines.vllm.memory_efficiency: ..."), not with a KeyError deep in a
prediction. The estimators keep reading plain dicts (`llmctl.typed.dump`), so callers and benchmarks that
override constants with dicts work unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from llmctl.errors import InputError
from llmctl.typed import Invalid, Meta, Record, convert, dump

# a constant per GPU family / device kind ({ampere: .., gpu: .., apple: .., cpu: ..}) or one number
PerDevice = Union[float, dict[str, float]]
Fraction = Annotated[float, Meta(gt=0, le=1)]  # a share: (0, 1]
NonNegative = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]
PositiveInt = Annotated[int, Meta(gt=0)]


# --------------------------------------------------------------------------- performance.yaml


class Legacy(Record):
    before: str
    gpu_busy_fraction: Fraction


class EngineTime(Record):
    inherit: Optional[str] = None
    memory_efficiency: Optional[PerDevice] = None
    kv_efficiency: Optional[PerDevice] = None
    layer_overhead_ms: Optional[PerDevice] = None
    compute_efficiency: Optional[PerDevice] = None
    prefill_token_layer_us: Optional[PerDevice] = None
    prefill_peak: Optional[Literal["fp16_accumulate"]] = None
    kv_unified: Optional[bool] = None
    kv_unified_architectures: Optional[list[str]] = None  # config.json `architectures` names
    step_overhead_ms: Optional[NonNegative] = None
    seq_overhead_us: Optional[NonNegative] = None
    sample_ns_per_vocab: Optional[NonNegative] = None
    request_overhead_ms: Optional[NonNegative] = None
    legacy: Optional[Legacy] = None
    async_scheduling_from: Optional[str] = None  # first release that overlaps the CPU's step work with the GPU's
    fused_moe_block_m: Optional[dict[str, float]] = None  # tokens in a step -> the fused-experts kernel's row block
    fused_moe_efficiency: Optional[dict[str, float]] = None  # per GPU family; others: compute_efficiency

    def __post_init__(self) -> None:
        if self.inherit is None:
            missing = [k for k in ("memory_efficiency", "layer_overhead_ms", "compute_efficiency")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError(f"missing {', '.join(missing)} (or `inherit` from another engine)")
        for key in ("memory_efficiency", "kv_efficiency", "compute_efficiency", "fused_moe_efficiency"):
            value = getattr(self, key)
            for v in (value.values() if isinstance(value, dict) else [value] if value is not None else []):
                if not 0 < v <= 1:
                    raise ValueError(f"{key} must lie in (0, 1], not {v}")


class Link(Record):
    latency_us: NonNegative
    bus_efficiency: Fraction
    bandwidth_gbs: Optional[Positive] = None
    latency_per_extra_rank: Optional[NonNegative] = None
    small_message_bus_efficiency: Optional[Fraction] = None
    protocol_switch_kib: Optional[NonNegative] = None


class Interconnect(Record):
    links: dict[str, Link]
    no_peer_to_peer_names: list[str] = []

    def __post_init__(self) -> None:
        if "none" not in self.links:
            raise ValueError("links needs a `none` entry (GPUs whose profile names no interconnect)")


class PerformanceConstants(Record):
    engines: dict[str, EngineTime]
    interconnect: Interconnect
    default_sla: dict[str, float]

    def __post_init__(self) -> None:
        for name, e in self.engines.items():
            if e.inherit is not None and e.inherit not in self.engines:
                raise ValueError(f"engines.{name}.inherit names unknown engine {e.inherit!r}")


# --------------------------------------------------------------------------- estimation.yaml


class BySize(Record):
    large: PositiveInt
    small: PositiveInt


class Activation(Record):
    workspace_gib: NonNegative


class NonTorch(Record):
    base_gib: NonNegative
    nccl_gib: NonNegative


class CudaGraphs(Record):
    base_gib: NonNegative
    per_extra_rank_gib: NonNegative
    max_gib: NonNegative


class VllmVersion(Record):
    """What differs in vLLM releases from `since` on (until the next entry)."""

    since: Annotated[str, Meta(pattern=r"^\d+(\.\d+)*$")]
    engine: Literal["v0", "v1"]
    gpu_memory_utilization: Optional[Fraction] = None
    max_num_batched_tokens: Optional[BySize] = None
    max_num_seqs: Optional[BySize] = None
    activation: Optional[Activation] = None
    non_torch: Optional[NonTorch] = None


class VllmMemory(Record):
    engine: Literal["v0", "v1"]
    v0_chunked_prefill_above: PositiveInt
    versions: list[VllmVersion] = []
    gpu_memory_utilization: Fraction
    block_size: PositiveInt
    large_gpu_gib: Positive
    max_num_batched_tokens: BySize
    max_num_seqs: BySize
    activation: Activation
    non_torch: NonTorch
    cuda_graphs: CudaGraphs
    cuda_context_gib: NonNegative


class LlamaCppMemory(Record):
    num_batch: PositiveInt
    ollama_flash_attention_architectures: list[str]
    llama_server_flash_attention_default: bool
    runtime_gib: NonNegative
    gpu_memory_fraction: Fraction
    cpu_memory_fraction: Fraction


class EstimationConstants(Record):
    vllm: VllmMemory
    llama_cpp: LlamaCppMemory


# --------------------------------------------------------------------------- checking


def check(name: str, data: Any, model: type) -> dict:
    """`data` (profiles/<name>, parsed) checked against `model`, as a plain dict; InputError naming
    the file and the key path otherwise."""
    try:
        return dump(convert(data, model), exclude_none=True)
    except Invalid as exc:
        path = ".".join(str(p) for p in exc.loc)
        raise InputError(exc.message, where=f"profiles/{name}: {path}" if path else f"profiles/{name}") from None


MODELS = {"performance.yaml": PerformanceConstants, "estimation.yaml": EstimationConstants}

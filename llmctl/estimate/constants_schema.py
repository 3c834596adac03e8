"""The typed shape of profiles/estimation.yaml (memory) and profiles/performance.yaml (time); constants.py
loads them through it.

Each file is checked once, when first read: a missing key, a misspelt key, a value of the wrong type
or out of its physical range stops llmctl with the file and the key path
("profiles/performance.yaml: engines.vllm.memory_efficiency: ..."), not with a KeyError deep in a
prediction. The estimators keep reading plain dicts (`model_dump`), so callers and benchmarks that
override constants with dicts work unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmctl.errors import InputError

# a constant per GPU family / device kind ({ampere: .., gpu: .., apple: .., cpu: ..}) or one number
PerDevice = Union[float, dict[str, float]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- performance.yaml


class Legacy(_Strict):
    before: str
    gpu_busy_fraction: float = Field(gt=0, le=1)


class EngineTime(_Strict):
    inherit: Optional[str] = None
    memory_efficiency: Optional[PerDevice] = None
    kv_efficiency: Optional[PerDevice] = None
    layer_overhead_ms: Optional[PerDevice] = None
    compute_efficiency: Optional[PerDevice] = None
    prefill_token_layer_us: Optional[PerDevice] = None
    prefill_peak: Optional[Literal["fp16_accumulate"]] = None
    kv_unified: Optional[bool] = None
    kv_unified_architectures: Optional[list[str]] = None  # config.json `architectures` names
    step_overhead_ms: Optional[float] = Field(default=None, ge=0)
    seq_overhead_us: Optional[float] = Field(default=None, ge=0)
    sample_ns_per_vocab: Optional[float] = Field(default=None, ge=0)
    request_overhead_ms: Optional[float] = Field(default=None, ge=0)
    legacy: Optional[Legacy] = None
    async_scheduling_from: Optional[str] = None  # first release that overlaps the CPU's step work with the GPU's
    fused_moe_block_m: Optional[dict[str, float]] = None  # tokens in a step -> the fused-experts kernel's row block
    fused_moe_efficiency: Optional[dict[str, float]] = None  # per GPU family; others: compute_efficiency

    @model_validator(mode="after")
    def _complete(self) -> "EngineTime":
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
        return self


class Link(_Strict):
    latency_us: float = Field(ge=0)
    bus_efficiency: float = Field(gt=0, le=1)
    bandwidth_gbs: Optional[float] = Field(default=None, gt=0)
    latency_per_extra_rank: Optional[float] = Field(default=None, ge=0)
    small_message_bus_efficiency: Optional[float] = Field(default=None, gt=0, le=1)
    protocol_switch_kib: Optional[float] = Field(default=None, ge=0)


class Interconnect(_Strict):
    links: dict[str, Link]
    no_peer_to_peer_names: list[str] = []

    @model_validator(mode="after")
    def _has_fallback(self) -> "Interconnect":
        if "none" not in self.links:
            raise ValueError("links needs a `none` entry (GPUs whose profile names no interconnect)")
        return self


class PerformanceConstants(_Strict):
    engines: dict[str, EngineTime]
    interconnect: Interconnect
    default_sla: dict[str, float]

    @model_validator(mode="after")
    def _inherits_known(self) -> "PerformanceConstants":
        for name, e in self.engines.items():
            if e.inherit is not None and e.inherit not in self.engines:
                raise ValueError(f"engines.{name}.inherit names unknown engine {e.inherit!r}")
        return self


# --------------------------------------------------------------------------- estimation.yaml


class BySize(_Strict):
    large: int = Field(gt=0)
    small: int = Field(gt=0)


class Activation(_Strict):
    workspace_gib: float = Field(ge=0)


class NonTorch(_Strict):
    base_gib: float = Field(ge=0)
    nccl_gib: float = Field(ge=0)


class CudaGraphs(_Strict):
    base_gib: float = Field(ge=0)
    per_extra_rank_gib: float = Field(ge=0)
    max_gib: float = Field(ge=0)


class VllmVersion(_Strict):
    """What differs in vLLM releases from `since` on (until the next entry)."""

    since: str = Field(pattern=r"^\d+(\.\d+)*$")
    engine: Literal["v0", "v1"]
    gpu_memory_utilization: Optional[float] = Field(default=None, gt=0, le=1)
    max_num_batched_tokens: Optional[BySize] = None
    max_num_seqs: Optional[BySize] = None
    activation: Optional[Activation] = None
    non_torch: Optional[NonTorch] = None


class VllmMemory(_Strict):
    engine: Literal["v0", "v1"]
    v0_chunked_prefill_above: int = Field(gt=0)
    versions: list[VllmVersion] = []
    gpu_memory_utilization: float = Field(gt=0, le=1)
    block_size: int = Field(gt=0)
    large_gpu_gib: float = Field(gt=0)
    max_num_batched_tokens: BySize
    max_num_seqs: BySize
    activation: Activation
    non_torch: NonTorch
    cuda_graphs: CudaGraphs
    cuda_context_gib: float = Field(ge=0)


class LlamaCppMemory(_Strict):
    num_batch: int = Field(gt=0)
    ollama_flash_attention_architectures: list[str]
    llama_server_flash_attention_default: bool
    runtime_gib: float = Field(ge=0)
    gpu_memory_fraction: float = Field(gt=0, le=1)
    cpu_memory_fraction: float = Field(gt=0, le=1)


class EstimationConstants(_Strict):
    vllm: VllmMemory
    llama_cpp: LlamaCppMemory


# --------------------------------------------------------------------------- checking


def check(name: str, data: Any, model: type[BaseModel]) -> dict:
    """`data` (profiles/<name>, parsed) checked against `model`, as a plain dict; InputError naming
    the file and the key path otherwise."""
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("float", "dict[", "function-")))
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{msg}{more}", where=f"profiles/{name}: {path}" if path else f"profiles/{name}") from None


MODELS = {"performance.yaml": PerformanceConstants, "estimation.yaml": EstimationConstants}

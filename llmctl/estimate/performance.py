"""Latency and throughput of one replica under load.

Decode is memory-bound at small batch: a step reads the weights one GPU holds plus the KV cache of
every sequence in the batch; at large batch it becomes compute-bound. Prefill is compute-bound.
Tensor parallelism adds two all-reduces per layer; pipeline parallelism passes each token through
every stage in turn. vLLM batches continuously up to `max_num_seqs` and its KV capacity;
llama.cpp / Ollama decode `num_parallel` slots together and queue everyone else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from llmctl.catalog import GpuProfile, ModelArch
from llmctl.estimate.weights import count_params


@lru_cache(maxsize=1)
def constants() -> dict:
    from llmctl.profiles_io import profile

    return profile("performance.yaml")


def engine_constants(backend: str) -> dict:
    engines = constants()["engines"]
    c = engines[backend]
    return engines[c["inherit"]] if "inherit" in c else c


@dataclass(frozen=True)
class Deployment:
    """One replica as the performance model sees it."""

    arch: ModelArch
    backend: str  # vllm | ollama | llama.cpp
    device: GpuProfile  # the GPU, Apple chip or CPU profile doing the work
    tp: int
    pp: int
    weight_bytes_per_gpu: float  # bytes resident on one device
    kv_bytes_per_token: float  # per device
    max_batch: int  # sequences decoded together at most
    max_num_batched_tokens: int = 2048
    fp8_compute: bool = False
    cpu: GpuProfile | None = None  # where offloaded layers run (llama.cpp partial offload)
    offloaded_bytes: float = 0.0  # weights + KV held in system RAM


@dataclass
class PerfEstimate:
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    decode_tokens_per_s_single: float
    output_tokens_per_s_per_user: float
    throughput_tokens_per_s: float
    batch: int
    queued: int  # requests waiting for a slot at the planned concurrency
    explain: list[tuple[str, str, str]]


def _kind(dev: GpuProfile) -> str:
    return dev.kind if dev.kind in ("gpu", "apple", "cpu") else "gpu"


def _eff(table: dict, dev: GpuProfile) -> float:
    return float(table.get(_kind(dev), next(iter(table.values()))))


def _peak_flops(dep: Deployment) -> float:
    dev = dep.device
    tflops = dev.fp8_tflops if (dep.fp8_compute and dev.fp8_tflops) else dev.bf16_tflops
    return max(tflops, 0.05) * 1e12


def weights_read_per_step(dep: Deployment, batch: int) -> float:
    """Bytes of weights one device reads per decode step. MoE: only the experts the batch routes to."""
    a = dep.arch
    if not a.is_moe:
        return dep.weight_bytes_per_gpu
    p = count_params(a)
    expert_share = p.experts / max(p.total, 1)
    k, e = (a.experts_per_token or 2), a.num_experts
    touched = 1 - (1 - k / e) ** max(batch, 1)
    return dep.weight_bytes_per_gpu * ((1 - expert_share) + expert_share * touched)


def _flops_per_token(dep: Deployment, context: int) -> float:
    a = dep.arch
    p = count_params(a)
    linear = 2 * p.per_token_flop_params
    attn = 4 * a.num_hidden_layers * context * a.num_attention_heads * a.head_dim
    return (linear + attn) / (dep.tp * dep.pp)


def _allreduce_ms(dep: Deployment, tokens: int) -> float:
    if dep.tp <= 1:
        return 0.0
    ic = constants()["interconnect"]
    dev = dep.device
    latency = ic["allreduce_latency_us"].get(dev.interconnect_type, ic["allreduce_latency_us"]["none"]) / 1000
    bw = max(dev.interconnect_gbs, 1.0) * 1e9 / 2 * ic["efficiency"]  # one direction
    volume = 2 * (dep.tp - 1) / dep.tp * tokens * dep.arch.hidden_size * 2  # ring all-reduce, bf16
    per_layer = 2 * (latency + volume / bw * 1000)
    return per_layer * math.ceil(dep.arch.num_hidden_layers / dep.pp)


def decode_step_ms(dep: Deployment, batch: int, context: int) -> float:
    """Time of one decode step for `batch` sequences of average length `context` (all PP stages)."""
    c = engine_constants(dep.backend)
    dev = dep.device
    bw = dev.bandwidth_gbs * 1e9 * _eff(c["memory_efficiency"], dev)
    mem_bytes = weights_read_per_step(dep, batch) + batch * context * dep.kv_bytes_per_token
    t_mem = mem_bytes / bw * 1000
    t_compute = batch * _flops_per_token(dep, context) / (_peak_flops(dep) * _eff(c["compute_efficiency"], dev)) * 1000
    layers = math.ceil(dep.arch.num_hidden_layers / dep.pp)
    overhead = layers * _eff(c["layer_overhead_ms"], dev) + float(c.get("step_overhead_ms", 0.0))
    stage = max(t_mem, t_compute) + overhead + _allreduce_ms(dep, batch)
    t = stage * dep.pp
    if dep.offloaded_bytes and dep.cpu is not None:
        cpu_c = engine_constants("llama.cpp")
        cpu_bw = dep.cpu.bandwidth_gbs * 1e9 * _eff(cpu_c["memory_efficiency"], dep.cpu)
        t += dep.offloaded_bytes / cpu_bw * 1000
    return t


def prefill_ms(dep: Deployment, tokens: int) -> float:
    c = engine_constants(dep.backend)
    dev = dep.device
    flops = tokens * _flops_per_token(dep, tokens // 2)
    t = flops / (_peak_flops(dep) * _eff(c["compute_efficiency"], dev)) * 1000 * dep.pp
    # reading the weights once per chunk is a floor on small prompts
    chunks = max(1, math.ceil(tokens / max(dep.max_num_batched_tokens, 1)))
    t = max(t, chunks * decode_step_ms(dep, 1, tokens))
    return t  # llama.cpp copies offloaded layers to the GPU for large batches, so prefill stays on the GPU


def predict(dep: Deployment, *, concurrency: int, prompt_tokens: int, output_tokens: int,
            requests_per_minute: float | None = None) -> PerfEstimate:
    """Steady state of `concurrency` users of one replica, each sending a prompt and reading the answer."""
    ex: list[tuple[str, str, str]] = []
    batch = max(1, min(concurrency, dep.max_batch))
    queued = max(0, concurrency - batch)
    context = prompt_tokens + output_tokens // 2  # average length while decoding
    single = decode_step_ms(dep, 1, context)
    step = decode_step_ms(dep, batch, context)
    ex.append(("decode step (1 seq)", f"{single:.1f} ms", "weights read / (bandwidth × efficiency) + layer overhead"))
    ex.append((f"decode step ({batch} seqs)", f"{step:.1f} ms",
               f"max(memory, compute) for {batch} sequences of ~{context} tokens" + (f", TP {dep.tp} all-reduce" if dep.tp > 1 else "")))
    pre = prefill_ms(dep, prompt_tokens)
    ex.append(("prefill", f"{pre:.0f} ms", f"{prompt_tokens} tokens × 2 × active params / (peak FLOPs × efficiency)"))

    # A request occupies a slot for its prefill plus output_tokens decode steps.
    request_ms = pre + output_tokens * step
    # How often another request's prefill lands in a decode step (continuous batching mixes them in;
    # llama.cpp also processes a new prompt between decode steps).
    arrivals_per_ms = batch / request_ms
    if requests_per_minute:
        arrivals_per_ms = min(arrivals_per_ms, requests_per_minute / 60_000)
    chunk_tokens = min(prompt_tokens, dep.max_num_batched_tokens)
    chunk_ms = prefill_ms(dep, chunk_tokens) if batch > 1 else 0.0
    n_chunks = math.ceil(prompt_tokens / max(chunk_tokens, 1))
    p_prefill_step = min(1.0, arrivals_per_ms * n_chunks * step) if batch > 1 else 0.0
    itl_p50 = step + chunk_ms * p_prefill_step
    itl_p95 = step + (chunk_ms if p_prefill_step >= 0.05 else chunk_ms * p_prefill_step / 0.05)

    # TTFT: own prefill, plus other prefills arriving at the same moment, plus waiting for a slot.
    colliding = min(batch - 1, arrivals_per_ms * pre * 2) if batch > 1 else 0.0
    ttft_p50 = pre + step
    ttft_p95 = pre * (1 + min(batch - 1, math.ceil(colliding * 2))) + step if batch > 1 else pre + step
    if queued:
        # requests beyond the slots wait for a slot to free: every `request_ms / batch` one frees
        wait_p50 = (queued / 2) * request_ms / batch
        wait_p95 = queued * request_ms / batch
        ttft_p50 += wait_p50
        ttft_p95 += wait_p95
        ex.append(("queueing", f"{wait_p95:.0f} ms p95",
                   f"{queued} requests beyond {batch} slots wait for one to free ({request_ms:.0f} ms per request)"))
    throughput = batch * output_tokens / (request_ms / 1000)
    if requests_per_minute:
        throughput = min(throughput, requests_per_minute / 60 * output_tokens)
    return PerfEstimate(
        ttft_p50_ms=ttft_p50, ttft_p95_ms=ttft_p95, itl_p50_ms=itl_p50, itl_p95_ms=itl_p95,
        decode_tokens_per_s_single=1000 / single, output_tokens_per_s_per_user=1000 / itl_p50,
        throughput_tokens_per_s=throughput, batch=batch, queued=queued, explain=ex,
    )

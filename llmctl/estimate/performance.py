"""Latency and throughput of one replica under load.

One decode step reads the weights one device holds (MoE: the experts the batch routes to) plus the
KV cache of every sequence in the batch, and multiplies every sequence's token through the active
parameters: it takes max(memory time, compute time) plus a fixed cost per layer (kernel launches,
synchronisation) that does not shrink with bandwidth. Prefill is compute-bound, with a fixed cost per
token and layer on top (the non-matmul work of llama.cpp's graph). Tensor parallelism adds two
all-reduces per layer whose cost depends on the interconnect (NVLink vs PCIe); pipeline parallelism
passes each token through every stage in turn and idles stages when there are fewer micro-batches
than stages (the bubble). vLLM's fused-experts kernel pads each expert's routed rows to its row block
and reads and writes every routed copy of a token in elementwise kernels (_moe_padding); from v0.14
vLLM prepares the next step on the CPU while the GPU runs this one (async scheduling), so a step takes
the longer of the two rather than their sum.

Serving: vLLM batches continuously up to `max_num_seqs` and its KV capacity, and mixes prompt chunks
(`max_num_batched_tokens`) into decode steps; llama.cpp / Ollama decode `num_parallel` slots together
and mix prompt batches into the same steps. Requests beyond the slots queue.

Queueing: without `requests_per_minute` the `concurrency` users form a closed loop (each sends its
next request when the last is answered): Little's law gives the wait of users beyond the slots, and
the p95 is the 95th-percentile position in a burst of `concurrency` simultaneous requests. With
`requests_per_minute` arrivals are Poisson and every request has the spec's one length, so the model
is M/D/c with the slots as servers; its waiting time is taken from Erlang C (M/M/c) halved — the
Allen–Cunneen approximation for deterministic service, (1 + Cs²)/2 with Cs = 0 — and never more than
the closed loop at `concurrency` allows, since no more than that many requests are in flight.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from llmctl.catalog import GpuProfile, ModelArch
from llmctl.estimate.memo import ObjectMemo
from llmctl.estimate.weights import ParamCount, count_params

_OVERRIDE: dict | None = None  # set by `override_constants` (benchmarks fit the constants with it)
_CALIBRATED: dict | None = None  # performance.yaml with a calibration overlay laid over it (set_calibrated)


@lru_cache(maxsize=1)
def _profile_constants() -> dict:
    from llmctl.estimate.constants import checked
    from llmctl.profiles_io import profile

    return checked("performance.yaml", profile("performance.yaml"))


def constants() -> dict:
    if _OVERRIDE is not None:
        return _OVERRIDE
    return _CALIBRATED if _CALIBRATED is not None else _profile_constants()


def set_calibrated(values: dict | None) -> None:
    """The constants of the plan being made, with its calibration overlay applied (None: the profile's).
    Set by llmctl.calibrate.apply.activate at the start of every plan."""
    global _CALIBRATED
    _CALIBRATED = values


@contextmanager
def override_constants(values: dict) -> Iterator[None]:
    """Use `values` instead of profiles/performance.yaml inside the block (for fitting and tests)."""
    global _OVERRIDE
    old = _OVERRIDE
    _OVERRIDE = values
    try:
        yield
    finally:
        _OVERRIDE = old


_MERGED = ObjectMemo(limit=64)  # by constants object and engine (fitting tries many override dicts)


def engine_constants(backend: str) -> dict:
    """An engine's constants, with those it inherits (Ollama runs llama.cpp's kernels) merged in once
    per constants object: predict() asks for them on every call."""
    consts = constants()
    hit = _MERGED.get(consts, None, (backend,))
    if hit is not None:
        return hit
    engines = consts["engines"]
    c = engines[backend]
    merged = c if "inherit" not in c else {k: v for k, v in {**engines[c["inherit"]], **c}.items() if k != "inherit"}
    return _MERGED.put(consts, None, (backend,), merged)


@dataclass(eq=False)  # compared by identity; not frozen: a frozen __init__ costs 2× and thousands are made
class Deployment:
    """One replica as the performance model sees it. Treat it as read-only: predictions are cached
    on it (see _coef)."""

    arch: ModelArch
    backend: str  # vllm | ollama | llama.cpp
    device: GpuProfile  # the GPU, Apple chip or CPU profile doing the work
    tp: int
    pp: int
    weight_bytes_per_gpu: float  # bytes resident on one device
    kv_bytes_per_token: float  # per device
    max_batch: int  # sequences decoded together at most
    max_num_batched_tokens: int = 2048
    # the token budget of a step covers the running sequences' decode tokens too (vLLM's chunked
    # prefill); otherwise a prompt chunk gets the whole batch (llama.cpp's -b)
    budget_includes_decode: bool = False
    # the KV cache is paged: requests are admitted by the KV in use now and preempted later (vLLM),
    # not given a fixed slot of the full context (llama.cpp)
    paged_kv: bool = False
    fp8_compute: bool = False
    cpu: GpuProfile | None = None  # where offloaded layers run (llama.cpp partial offload)
    offloaded_bytes: float = 0.0  # weights + KV held in system RAM
    engine_version: str | None = None  # e.g. "0.5.1" for a measured vLLM; None: the version llmctl deploys
    # Optional, for admission by current KV use (vLLM admits while blocks are free and preempts later):
    # without them `max_batch` is the only bound, as the planner computes it.
    max_num_seqs: int | None = None  # the engine's sequence limit (vLLM --max-num-seqs)
    kv_cache_tokens: int | None = None  # the KV cache the engine reports at start-up, in tokens
    # hybrid models: the linear-attention state each running request holds beside its KV, in KV tokens' worth
    # of cache (vLLM takes both from one pool)
    state_tokens: float = 0.0
    # of weight_bytes_per_gpu, what a decode step does not read whole (weights.lookup_bytes_per_gpu):
    # embedding tables it looks rows up in, a vision tower that runs in prefill only
    lookup_bytes_per_gpu: float = 0.0
    link: str | None = None  # the link between TP ranks when it differs from the GPU profile's (e.g. "pcie")
    params: ParamCount = field(init=False, repr=False, compare=False)
    # the step coefficients under the constants in force (_coef); None until a prediction asks
    _coef_cache: "_Coef | None" = field(default=None, init=False, repr=False, compare=False)
    # predict()'s terms for the last load it was asked about (_load_terms)
    _load_cache: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.params = count_params(self.arch)

    @property
    def weight_bytes_read(self) -> float:
        """What a decode step reads of the device's weights before MoE routing: all but the lookups."""
        return max(self.weight_bytes_per_gpu - self.lookup_bytes_per_gpu, 0.0)


@dataclass
class PerfEstimate:
    # predict() passes these in this order, positionally
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    decode_tokens_per_s_single: float
    output_tokens_per_s_per_user: float
    throughput_tokens_per_s: float
    batch: int
    queued: int  # requests waiting for a slot at the planned concurrency
    inputs: tuple = field(default=(), repr=False, compare=False)  # predict()'s arguments, for `explain`
    ttft_mean_ms: float = 0.0
    itl_mean_ms: float = 0.0
    queue_wait_p50_ms: float = 0.0
    queue_wait_p95_ms: float = 0.0
    request_ms: float = 0.0  # one request from its first scheduled step to its last token
    prefill_ms: float = 0.0  # the prompt alone, nothing else running
    step_ms: float = 0.0  # one decode step at the planned batch
    queue_model: str = "closed loop"  # or "M/D/c (Allen–Cunneen)"
    overloaded: bool = False  # requests_per_minute above what the replica can serve

    @property
    def explain(self) -> list[tuple[str, str, str]]:
        """The arithmetic behind these figures, for `--explain`: predict() runs again with the same
        inputs and formats its working (the planner predicts thousands of candidates, explains one)."""
        if not self.inputs:
            return []
        dep, concurrency, prompt_tokens, output_tokens, rpm, arrival, hit, warm = self.inputs
        if arrival == "burst":
            return [("burst", f"{self.throughput_tokens_per_s:.0f} tokens/s",
                     f"{concurrency} requests at once, followed step by step through the scheduler "
                     f"(peak batch {self.batch}, {self.queued} preempted)")]
        return predict(dep, concurrency=concurrency, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                       requests_per_minute=rpm, arrival=arrival, prefix_cache_hit=hit, warm_prompts=warm, _rows=True)


# --------------------------------------------------------------------------- device arithmetic


def _kind(dev: GpuProfile) -> str:
    return dev.kind if dev.kind in ("gpu", "apple", "cpu") else "gpu"


def _eff(value: object, dev: GpuProfile) -> float:
    """A constant given per GPU family ({hopper: .., cdna3: ..}), per device kind ({gpu: .., apple: ..,
    cpu: ..}) or as one number: the family wins over the kind, the kind over the first entry."""
    if isinstance(value, dict):
        hit = value.get(dev.arch) if dev.arch else None
        if hit is None:
            hit = value.get(_kind(dev), next(iter(value.values())))
        return float(hit)
    return float(value or 0.0)


def allreduce_coefficients(dev: GpuProfile, tp: int, layers: int, hidden: int,
                           link: str | None = None) -> tuple[float, float, float, float]:
    """The tensor-parallel all-reduces of one step: two per layer (after attention and after the MLP),
    each a fixed latency of the link plus the ring's traffic, 2·(TP − 1)/TP × message, at the bus
    bandwidth NCCL reaches on that link. The message is one bf16 hidden vector per token, so a step
    that carries a 2048-token prompt chunk moves 2048× the bytes of one decode token. Small messages
    travel with a low-latency protocol that reaches less bandwidth (`small_message_bus_efficiency`, up
    to `protocol_switch_kib`); larger ones with the bulk protocol.

    Returns (ms per step, ms per token for small messages, ms per token beyond the switch, tokens at
    the switch); `allreduce_ms` turns them into the cost of a step."""
    if tp <= 1:
        return 0.0, 0.0, 0.0, 0.0
    ic = constants()["interconnect"]
    links = ic["links"]
    kind = link or dev.interconnect_type
    if link is None and kind == "pcie" and any(n in dev.name for n in ic.get("no_peer_to_peer_names", ())):
        kind = "pcie_host"  # cards without GPU peer-to-peer stage every all-reduce through host memory
    spec = links.get(kind) or links["none"]
    gbs = max(float(spec.get("bandwidth_gbs") or dev.interconnect_gbs or 1.0), 1.0) * 1e9 / 2  # one direction
    bulk = float(spec["bus_efficiency"])
    small = float(spec.get("small_message_bus_efficiency") or bulk)
    per_call_ms = float(spec["latency_us"]) / 1000 * (1 + float(spec.get("latency_per_extra_rank", 0.0)) * (tp - 2))
    traffic = 2 * (tp - 1) / tp * hidden * 2  # bytes per token on the busiest link
    switch = float(spec.get("protocol_switch_kib", 0.0)) * 1024 / (hidden * 2)  # tokens per message at the switch
    calls = 2 * layers
    return calls * per_call_ms, calls * traffic / (gbs * small) * 1000, calls * traffic / (gbs * bulk) * 1000, switch


def allreduce_ms(coef: tuple[float, float, float, float], tokens: float) -> float:
    """Cost of a step's all-reduces for `tokens` tokens: small-message rate up to the protocol switch,
    bulk rate beyond it (continuous, so more tokens never cost less)."""
    latency, small, bulk, switch = coef
    if not latency and not bulk:
        return 0.0
    if tokens <= switch:
        return latency + tokens * small
    return latency + switch * small + (tokens - switch) * bulk


def _version_at_least(version: str | None, first: object) -> bool:
    """Whether an engine release has a behaviour that began in release `first` (None: never). No
    version stated means the release llmctl deploys, which is newer than any `first` in the profiles."""
    if first is None:
        return False
    if not version:
        return True
    try:
        have = tuple(int(p) for p in version.split(".")[:2])
        since = tuple(int(p) for p in str(first).split(".")[:2])
    except ValueError:
        return False
    return have >= since


def _legacy_busy_fraction(dep: Deployment, c: dict) -> float:
    """Share of a step the GPU works in engine versions with a blocking CPU loop (vLLM < 0.6)."""
    legacy = c.get("legacy")
    if not legacy or not dep.engine_version:
        return 1.0
    try:
        have = tuple(int(p) for p in dep.engine_version.split(".")[:2])
        before = tuple(int(p) for p in str(legacy["before"]).split(".")[:2])
    except ValueError:
        return 1.0
    return float(legacy["gpu_busy_fraction"]) if have < before else 1.0


def _peak_flops(dep: Deployment, *, prefill: bool = False) -> float:
    """Dense matrix FLOP/s the engine's kernels can use on this device."""
    dev = dep.device
    if dep.fp8_compute and dev.fp8_tflops:
        return dev.fp8_tflops * 1e12
    tflops = dev.bf16_tflops
    c = engine_constants(dep.backend)
    if prefill and c.get("prefill_peak") == "fp16_accumulate" and dev.kind == "gpu":
        # llama.cpp multiplies dequantized fp16 weights with cuBLAS in fp16 compute mode: the
        # fp16-accumulate tensor rate, which is int8 TOPS / 2 on every NVIDIA generation in the
        # profiles (GeForce: 2× the fp32-accumulate rate `bf16_tflops`; datacenter: equal to it).
        int8 = dev.raw.get("int8_tops") if dev.raw else None
        if int8:
            tflops = max(tflops, float(int8) / 2)
    return max(tflops, 0.05) * 1e12


@dataclass(slots=True)
class _Coef:
    """Everything a step needs, per pipeline stage, in milliseconds — computed once per deployment
    and constants (the planner asks for thousands of predictions). The first four fields depend on
    the bytes one deployment holds; the rest are shared by every deployment of the same engine,
    device, architecture and layout (_shared_coef), in this order."""

    consts: int  # id() of the constants dict these were computed with
    weights_ms: float  # reading all resident weights once
    kv_ms: float  # per sequence per context token
    offload_ms: float  # reading weights held in system RAM, per step
    moe_share: float  # share of the weights in routed experts (0 for dense models)
    moe_keep: float  # 1 − experts_per_token / experts: chance one token skips a given expert
    lin_ms: float  # decode compute per token (active parameters)
    attn_ms: float  # decode compute per token per context token
    pre_lin_ms: float  # prefill compute per prompt token
    pre_attn_ms: float  # prefill compute per prompt token per context token
    pre_fixed_ms: float  # fixed cost per prompt token (all layers of a stage)
    layers_ms: float  # fixed cost per step (all layers of a stage)
    ar: tuple  # all-reduce coefficients (TP), see allreduce_coefficients
    busy: float  # share of a step the GPU works (legacy engines), else 1
    step_ms: float  # per-step CPU overhead, outside the stages
    seq_ms: float  # per-step CPU work per running sequence (scheduling, sampling, output processing)
    kv_unified: bool  # every sequence attends over the whole shared KV buffer (masked)
    request_overhead_ms: float  # fixed cost per request outside the GPU (HTTP, tokenising, scheduling)
    cpu_overlaps: bool  # the engine schedules step n+1 while step n runs (vLLM's async scheduling)
    # MoE through a fused-experts kernel that pads each expert's tokens to its row block (_moe_padding);
    # moe_exp_ms = 0: no such kernel, or a dense model
    moe_exp_ms: float  # expert matmuls per token, as the FLOPs of the routed experts alone count them
    moe_scale: float  # the step's compute efficiency over the fused-experts kernel's (≥ 1 when it is slower)
    moe_experts: int
    moe_topk: int
    moe_block_m: tuple  # ((tokens, BLOCK_SIZE_M), ...) by tokens in the step, ascending
    moe_act_ms: float  # per token: the elementwise kernels around the expert matmuls (memory traffic)


_SHARED = ObjectMemo()  # by constants, architecture and the deployment's plain values
_ON_DEVICE = ObjectMemo()  # by constants, device and the deployment's plain values


def _device_terms(dep: Deployment, consts: dict) -> tuple:
    """The terms of the shared coefficients that depend on the engine and device alone (not on the
    architecture or layout), computed once for every model and layout planned on that device:
    (engine constants, compute efficiency, peak FLOP/s, peak FLOP/s in prefill, legacy busy fraction,
    bytes/s, memory efficiency, KV efficiency, prefill µs per token and layer, ms per layer and step,
    async scheduling from this release on)."""
    dev = dep.device
    rest = (dep.backend, dep.fp8_compute, dep.engine_version)
    hit = _ON_DEVICE.get(consts, dev, rest)
    if hit is not None:
        return hit
    c = engine_constants(dep.backend)
    comp = _eff(c["compute_efficiency"], dev)
    return _ON_DEVICE.put(consts, dev, rest, (
        c, comp, _peak_flops(dep) * comp, _peak_flops(dep, prefill=True) * comp, _legacy_busy_fraction(dep, c),
        dev.bandwidth_gbs * 1e9, _eff(c["memory_efficiency"], dev),
        _eff(c.get("kv_efficiency", c["memory_efficiency"]), dev), _eff(c.get("prefill_token_layer_us", 0.0), dev),
        _eff(c["layer_overhead_ms"], dev), _version_at_least(dep.engine_version, c.get("async_scheduling_from"))))


def _shared_coef(dep: Deployment, consts: dict) -> tuple[float, float, tuple]:
    """The coefficients that depend on the engine, device, architecture and layout but not on the
    bytes one candidate holds, computed once for the many candidates that share them: (ms per weight
    byte, ms per KV byte, the shared _Coef fields in order)."""
    rest = (dep.backend, dep.device.id, dep.tp, dep.pp, dep.fp8_compute, dep.engine_version, dep.link)
    hit = _SHARED.get(consts, dep.arch, rest)
    if hit is not None:
        return hit
    c, comp, peak, peak_pre, busy, bw, mem_eff, kv_eff, pre_token_layer_us, layer_ms, async_from = \
        _device_terms(dep, consts)
    dev, a = dep.device, dep.arch
    layers = math.ceil(a.num_hidden_layers / dep.pp)
    p = dep.params
    split = dep.tp * dep.pp
    lin = 2 * p.per_token_flop_params / split
    attn = 4 * a.attention_layers * a.num_attention_heads * a.head_dim / split  # linear-attention layers: none
    ar = allreduce_coefficients(dev, dep.tp, layers, a.hidden_size, dep.link)
    moe = _fused_moe_terms(dep, c, layers, peak, bw * mem_eff, comp)
    fields = (
        (p.experts / max(p.total, 1)) if a.is_moe else 0.0,  # moe_share
        (1 - (a.experts_per_token or 2) / a.num_experts) if a.is_moe else 1.0,  # moe_keep
        lin / peak * 1000, attn / peak * 1000,  # lin_ms, attn_ms
        lin / peak_pre * 1000, attn / peak_pre * 1000,  # pre_lin_ms, pre_attn_ms
        layers * pre_token_layer_us / 1000,  # pre_fixed_ms
        layers * layer_ms,  # layers_ms
        ar, busy,
        float(c.get("step_overhead_ms", 0.0)) if busy == 1.0 else 0.0,  # step_ms
        (float(c.get("seq_overhead_us", 0.0)) / 1000 + a.vocab_size * float(c.get("sample_ns_per_vocab", 0.0)) / 1e6)
        if busy == 1.0 else 0.0,  # seq_ms
        bool(c.get("kv_unified")) or a.architecture in c.get("kv_unified_architectures", ()),  # kv_unified
        float(c.get("request_overhead_ms", 0.0)),  # request_overhead_ms
        # cpu_overlaps: one pipeline stage (vLLM turns it off with PP on the V1 runner, config/vllm.py), and a
        # device other than the CPU, whose cores the scheduler would share with the forward pass
        dep.pp == 1 and dev.kind != "cpu" and async_from,
        *moe,  # moe_exp_ms, moe_scale, moe_experts, moe_topk, moe_block_m, moe_act_ms
    )
    return _SHARED.put(consts, dep.arch, rest, (1000 / (bw * mem_eff), 1000 / (bw * kv_eff), fields))


def _fused_moe_terms(dep: Deployment, c: dict, layers: int, peak: float, bw: float, comp: float) -> tuple:
    """The MoE terms of a step for an engine that runs routed experts through a fused-experts kernel
    (vLLM's fused_experts: moe_align_block_size, two grouped matmuls, silu_and_mul, moe_sum): the
    expert matmuls' FLOPs per token, the row-block table of the kernel's tuned configs, and the memory
    time per token of the two elementwise kernels, which read and write every routed copy of a token
    (silu_and_mul: topk × 2·I/TP in, topk × I/TP out; moe_sum: topk × hidden in, hidden out; bf16)."""
    a, table = dep.arch, c.get("fused_moe_block_m")
    if not (a.is_moe and table):
        return 0.0, 1.0, 0, 0, (), 0.0
    own = c.get("fused_moe_efficiency") or {}
    moe_eff = float(own[dep.device.arch]) if dep.device.arch in own else comp  # a family without a figure: as dense
    split = dep.tp * dep.pp
    topk = a.experts_per_token or 2
    moe_layers = max(0, layers - math.ceil((a.first_k_dense_replace or 0) / dep.pp))
    inter = (a.moe_intermediate_size or a.intermediate_size) / dep.tp
    act_bytes = 2 * moe_layers * (topk * 3 * inter + (topk + 1) * a.hidden_size)
    blocks = tuple(sorted((int(t), int(m)) for t, m in table.items()))
    return (2 * dep.params.active_experts / split / peak * 1000, comp / moe_eff, a.num_experts, topk, blocks,
            act_bytes / bw * 1000)


def _moe_padding(k: "_Coef", tokens: float) -> float:
    """Rows the expert matmuls compute per routed row: the kernel sorts a step's `tokens` × topk routed
    rows by expert and pads each expert's rows to a multiple of BLOCK_SIZE_M, the tuned config's row
    block for the step's token count (the nearest entry, as vLLM picks it). With x rows routed to an
    expert (Poisson, mean λ = tokens × topk / experts) it computes ceil(x / block) blocks: about
    1 − e^−λ blocks while λ is small next to the block and λ / block + ½ once it is large."""
    t = max(tokens, 1.0)
    lam = t * k.moe_topk / k.moe_experts
    block = min(k.moe_block_m, key=lambda e: abs(e[0] - t))[1]
    hit = 1 - math.exp(-lam)
    per_expert = max(hit, lam / block + 0.5 * hit)
    return k.moe_experts * per_expert * block / (t * k.moe_topk)


def _coef(dep: Deployment) -> _Coef:
    consts = constants()
    cached = dep._coef_cache
    if cached is not None and cached.consts == id(consts):
        return cached
    weights_ms_per_byte, kv_ms_per_byte, fields = _shared_coef(dep, consts)
    offload = 0.0
    if dep.offloaded_bytes and dep.cpu is not None:
        cpu_c = engine_constants("llama.cpp")
        offload = dep.offloaded_bytes / (dep.cpu.bandwidth_gbs * 1e9 * _eff(cpu_c["memory_efficiency"], dep.cpu)) * 1000
    coef = _Coef(id(consts), dep.weight_bytes_read * weights_ms_per_byte, dep.kv_bytes_per_token * kv_ms_per_byte,
                 offload, *fields)
    dep._coef_cache = coef
    return coef


def weights_read_per_step(dep: Deployment, batch: float) -> float:
    """Bytes of weights one device reads per decode step. MoE: only the experts the batch routes to."""
    return dep.weight_bytes_read * _routed_share(_coef(dep), batch)


def _routed_share(k: _Coef, tokens: float) -> float:
    """Share of the weights a step of `tokens` tokens reads: all of a dense model; of a MoE, the
    shared part and the experts at least one token routes to."""
    if not k.moe_share:
        return 1.0
    return (1 - k.moe_share) + k.moe_share * (1 - k.moe_keep ** max(tokens, 1))


def _stage_ms(k: _Coef, batch: float, context: float, extra: float = 0.0, extra_ctx: float | None = None) -> float:
    """One pipeline stage's share of a step: `batch` decoding sequences of `context` tokens plus
    `extra` prompt tokens mixed in (chunked prefill / llama.cpp's shared batch). `extra_ctx`: the
    mean number of tokens each of those prompt tokens attends to — its position in its own prompt,
    a cached prefix included. A chunk late in a long prompt attends to every chunk before it, so a
    whole prompt costs prompt²/2 in attention however it is chunked. Default: the step holds whole
    prompts of `extra` tokens from position 0 (extra / 2)."""
    tokens = batch + extra
    weights = k.weights_ms * _routed_share(k, tokens) if k.moe_share else k.weights_ms
    # Attention reads each sequence's KV once per step. A unified KV range (Ollama's own engine) makes
    # every sequence's query attend over all sequences' cells, masked: the bytes read stay the same
    # (the batch's queries share each K/V tile), the attention arithmetic grows with the batch.
    t_mem = weights + k.kv_ms * batch * context
    t_compute = batch * (k.lin_ms + k.attn_ms * context * (max(batch, 1) if k.kv_unified else 1))
    if extra:
        attended = extra / 2 if extra_ctx is None else extra_ctx
        t_compute += extra * (k.pre_lin_ms + k.pre_attn_ms * attended + k.pre_fixed_ms)
    if k.moe_exp_ms:  # the padded rows of the expert matmuls, and the elementwise kernels around them
        t_compute += k.moe_exp_ms * tokens * (_moe_padding(k, tokens) * k.moe_scale - 1)
    gpu = (t_mem if t_mem > t_compute else t_compute) + k.layers_ms + k.moe_act_ms * tokens
    if k.ar[0]:
        gpu += allreduce_ms(k.ar, tokens)
    return gpu / k.busy


def _step_ms(dep: Deployment, batch: float, context: float, extra_tokens: float = 0.0,
             extra_ctx: float | None = None) -> float:
    return _step_k(dep.pp, _coef(dep), batch, context, extra_tokens, extra_ctx)


def _step_k(pp: int, k: _Coef, batch: float, context: float, extra_tokens: float = 0.0,
            extra_ctx: float | None = None) -> float:
    cpu = k.step_ms + k.seq_ms * batch
    if pp <= 1:
        gpu = _stage_ms(k, batch, context, extra_tokens, extra_ctx)
        # async scheduling: the CPU prepares the next step while the GPU runs this one
        return (gpu if gpu > cpu else cpu) + k.offload_ms if k.cpu_overlaps else gpu + cpu + k.offload_ms
    # vLLM splits the running batch into `pp` micro-batches; fewer sequences than stages leave
    # stages idle (the pipeline bubble), so one token still waits for every stage in turn.
    micro = max(1.0, min(float(pp), batch))
    return _stage_ms(k, batch / micro, context, extra_tokens / micro, extra_ctx) * pp + cpu + k.offload_ms


def decode_step_ms(dep: Deployment, batch: float, context: float) -> float:
    """Time of one decode step for `batch` sequences of average length `context` (all PP stages)."""
    return _step_ms(dep, max(batch, 1), context)


def prefill_ms(dep: Deployment, tokens: int, cached: int = 0) -> float:
    """The whole prompt on an idle replica, in chunks of `max_num_batched_tokens` (llama.cpp: -b);
    `cached`: tokens before it already in the KV cache (a prefix-cache hit), which it attends to.
    Each chunk attends to the chunks before it."""
    chunk = max(1, min(tokens, dep.max_num_batched_tokens))
    t, done = 0.0, 0
    while done < tokens:
        size = min(chunk, tokens - done)
        t += _step_ms(dep, 0, 0, size, cached + done + size / 2)
        done += size
    return t


# --------------------------------------------------------------------------- queueing


def _poisson_quantile(mean: float, q: float) -> int:
    """Smallest k with P(X ≤ k) ≥ q for X ~ Poisson(mean)."""
    return _poisson_quantiles(mean, q, q)[0]


def _poisson_quantiles(mean: float, low: float, high: float) -> tuple[int, int]:
    """(_poisson_quantile(mean, low), _poisson_quantile(mean, high)) for low ≤ high, summing the terms
    once: the second search goes on from where the first stopped."""
    if mean <= 0:
        return 0, 0
    if mean > 200:  # normal approximation
        lo, hi = (max(0, math.ceil(mean + _z(q) * math.sqrt(mean) - 0.5)) for q in (low, high))
        return lo, hi
    term = math.exp(-mean)
    total, k = term, 0
    found = []
    for q in (low, high):
        while total < q and k < 10_000:
            k += 1
            term *= mean / k
            total += term
        found.append(k)
    return found[0], found[1]


def _z(q: float) -> float:
    return {0.5: 0.0, 0.95: 1.6449}.get(q, 1.6449)


def erlang_c(servers: int, offered: float) -> float:
    """Probability an arrival waits in M/M/c with `servers` and offered load a = λ/μ (< servers)."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    # iterative Erlang B, then C = B / (1 − ρ(1 − B)); stable for large c
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1 - rho * (1 - b))


def mdc_wait_ms(servers: int, arrivals_per_ms: float, service_ms: float, q: float) -> float:
    """Waiting time quantile of M/D/c ≈ Allen–Cunneen: M/M/c's (Erlang C) waiting time × (1 + Cs²)/2
    with Cs = 0 for deterministic service. inf when the load reaches the servers."""
    a = arrivals_per_ms * service_ms
    if a >= servers:
        return math.inf
    pw = erlang_c(servers, a)
    if pw <= 1 - q:
        return 0.0
    rate = servers / service_ms - arrivals_per_ms  # decay of P(W > t) = C·exp(−(cμ − λ)t)
    return math.log(pw / (1 - q)) / rate * 0.5


def closed_loop_wait_ms(users: int, slots: int, service_ms: float) -> tuple[float, float]:
    """(p50, p95) wait for a slot when `users` each keep one request in flight and `slots` serve them.

    p50: Little's law — throughput slots/service, so each request spends users·service/slots in the
    system, of which (users − slots)·service/slots waiting. p95: a burst of `users` requests at once,
    served `slots` at a time: the request at the 95th-percentile position waits its turn."""
    if users <= slots:
        return 0.0, 0.0
    p50 = (users - slots) * service_ms / slots
    position = math.ceil(0.95 * users)  # 1-based place in line
    p95 = ((position - 1) // slots) * service_ms
    return p50, max(p50, p95)


# --------------------------------------------------------------------------- the workload


def _ttft(ahead: int, tail: float, prompt_tokens: int, chunk: float, step: float, n_chunks: int, mixed: float) -> float:
    """Time to first token with `ahead` prompts before ours sharing the token budget: the rest of the
    running step, then enough budget-sized steps for all those prompts (at least our own chunks)."""
    steps = math.ceil((ahead + 1) * prompt_tokens / chunk)
    return tail * step + max(steps, n_chunks) * mixed


def _predict_rows(*, single, c, batch, step, context, dep, pre_alone, prompt_tokens, itl_p95, chunk, mixed, p_stall,
                  ttft_p95, own_prefill, ahead95, others_mean, budget, wait95, users, slots, model, request_ms,
                  throughput, output_tokens, overhead=0.0, **_: object) -> list[tuple[str, str, str]]:
    """The arithmetic behind predict()'s figures (called with its locals), formatted only for `--explain`."""
    ex: list[tuple[str, str, str]] = []
    ex.append(("decode step (1 seq)", f"{single:.2f} ms",
               "weights / (bandwidth × memory efficiency) + KV / (bandwidth × attention efficiency) "
               "+ layers × per-layer overhead" + (" + step overhead" if c.get("step_overhead_ms") else "")))
    ex.append((f"decode step ({batch:g} seqs)", f"{step:.2f} ms",
               f"max(memory, compute) for {batch:g} sequences of ~{context:g} tokens"
               + (f", TP {dep.tp} all-reduce over {dep.device.interconnect_type}" if dep.tp > 1 else "")
               + (f", {dep.pp} pipeline stages" if dep.pp > 1 else "")))
    ex.append(("prefill", f"{pre_alone:.0f} ms",
               f"{prompt_tokens} tokens × 2 × active params / (peak FLOPs × efficiency) + per-token overhead"))
    ex.append(("ITL p95", f"{itl_p95:.2f} ms",
               f"prompt chunks ({chunk} tokens, step {mixed:.1f} ms) land in {p_stall:.1%} of decode steps; "
               + ("above 5 % they set the p95" if p_stall > 0.05 else "below 5 % they do not move the p95")))
    ex.append(("TTFT p95", f"{ttft_p95:.0f} ms",
               (f"{overhead:.0f} ms per request (HTTP, tokenising, scheduling) + " if overhead else "")
               + f"half a step + own prompt {own_prefill:.0f} ms + {ahead95} colliding prompt(s) (95th percentile of Poisson("
               f"{others_mean:.2f})) sharing the {budget}-token batch" + (f" + {wait95:.0f} ms waiting for a slot" if wait95 else "")))
    if wait95 > 0:
        ex.append(("queueing", f"{wait95:.0f} ms p95",
                   f"{max(users - slots, 0)} request(s) beyond {slots} slots; {model}: "
                   + ("Little's law for the median, the 95th-percentile place in a burst for the p95"
                      if model == "closed loop" else "Erlang C waiting time × ½ for deterministic service, "
                      "bounded by the closed loop at the stated concurrency")
                   + f" ({request_ms:.0f} ms per request)"))
    ex.append(("throughput", f"{throughput:.0f} tokens/s",
               f"{batch:g} sequences × {output_tokens} tokens / {request_ms / 1000:.2f} s per request"))
    return ex


ARRIVALS = ("closed", "open", "burst")


def decoding_context(prompt_tokens: float, output_tokens: float) -> float:
    """The mean length of a request while it decodes: its prompt and half its answer."""
    return prompt_tokens + output_tokens / 2


def admission_slots(dep: Deployment, prompt_tokens: int, output_tokens: int) -> int:
    """Sequences the engine runs together. vLLM admits by the KV blocks in use now, not by the full
    length a request may reach: with the start-up KV size known, the bound is the cache over the mean
    context held while decoding (prompt + half the answer); otherwise the caller's `max_batch`."""
    slots = max(1, dep.max_batch)
    if dep.paged_kv and dep.kv_cache_tokens:
        seqs = dep.max_num_seqs or slots
        held = max(1.0, decoding_context(prompt_tokens, output_tokens) + dep.state_tokens)
        slots = max(1, min(seqs, int(dep.kv_cache_tokens / held)))
    return slots


def _load_terms(dep: Deployment, k: _Coef, prompt_tokens: int, prefix_cache_hit: float, load_prompt: int,
                held: int) -> tuple[int, float, int, float, int, float, float]:
    """What predict() needs of a deployment and a load whatever the users: (slots, mean context while
    decoding, token budget, one sequence's step, prompt tokens computed, the context they attend to,
    the prompt alone). The planner asks for the same deployment and load at several user counts, so the
    last answer is kept on the deployment with what it was computed from (the coefficients object
    stands for the constants)."""
    last = dep._load_cache
    if (last is not None and last[0] is k and last[1] == prompt_tokens and last[2] == prefix_cache_hit
            and last[3] == load_prompt and last[4] == held):
        return last[5:]  # type: ignore[return-value]
    slots = admission_slots(dep, load_prompt, held)
    hit = min(max(prefix_cache_hit, 0.0), 0.99)
    context = decoding_context(load_prompt, held)
    budget = max(1, dep.max_num_batched_tokens)
    pp = dep.pp
    single = _step_k(pp, k, 1, context)
    computed = max(1, round(prompt_tokens * (1 - hit)))  # prompt tokens not found in the prefix cache
    cached = max(0, prompt_tokens - computed)
    attended = cached + computed / 2  # what a computed prompt token attends to, on average over the prompt
    pre_alone = prefill_ms(dep, computed, cached) if computed > budget else _step_k(pp, k, 0, 0, computed, attended)
    dep._load_cache = (k, prompt_tokens, prefix_cache_hit, load_prompt, held,
                       slots, context, budget, single, computed, attended, pre_alone)
    return slots, context, budget, single, computed, attended, pre_alone


def predict(dep: Deployment, *, concurrency: int, prompt_tokens: int, output_tokens: int,
            requests_per_minute: float | None = None, arrival: str | None = None, prefix_cache_hit: float = 0.0,
            warm_prompts: int = 0, lengths: str = "fixed", _load: tuple[int, int] | None = None,
            _rows: bool = False) -> PerfEstimate:
    """`concurrency` users of one replica, each sending a prompt and reading the answer.

    `arrival`: "closed" (default without `requests_per_minute`): each user sends the next request when
    the last is answered — the steady state; "open" (default with it): Poisson arrivals at that rate;
    "burst": `concurrency` requests at once, followed through the scheduler (burst.py) — what
    `vllm bench serve --request-rate inf` measures. `prefix_cache_hit`: share of each prompt served from
    the prefix cache (a shared system prompt); `warm_prompts`: burst requests whose whole prompt is
    already cached. `lengths`: "fixed" (every request has the stated lengths) or "sharegpt" (chat-like
    spread around those means, lengths.py; closed and open arrival)."""
    arrival = arrival or ("open" if requests_per_minute else "closed")
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, not {arrival!r}")
    if lengths != "fixed":
        if arrival == "burst":
            raise ValueError("a burst is followed with one request length; use lengths='fixed'")
        return _predict_mixed(dep, concurrency=concurrency, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                              requests_per_minute=requests_per_minute, arrival=arrival,
                              prefix_cache_hit=prefix_cache_hit, lengths=lengths)
    if arrival == "burst":
        return _predict_burst(dep, concurrency=concurrency, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                              prefix_cache_hit=prefix_cache_hit, warm_prompts=warm_prompts)
    if arrival == "closed":
        requests_per_minute = None
    # the lengths the other requests hold in the KV cache (lengths.py: a mix's time-weighted lengths);
    # this request's own prompt is `prompt_tokens`
    load_prompt, held = _load or (prompt_tokens, output_tokens)
    users = max(1, int(concurrency))
    k, pp = _coef(dep), dep.pp
    overhead = k.request_overhead_ms
    slots, context, budget, single, computed, attended, pre_alone = _load_terms(
        dep, k, prompt_tokens, prefix_cache_hit, load_prompt, held)
    open_rate = requests_per_minute / 60_000 if requests_per_minute else None  # requests per ms

    # Fixed point: the batch sets the step time, the step time sets how long a request holds its
    # slot, which (with an arrival rate) sets how many requests are in service.
    batch = float(min(users, slots))
    for _ in range(60):  # converges in a few rounds; the bound only guards against oscillation
        step = single if batch == 1 else _step_k(pp, k, batch, context)
        chunk = max(1, min(computed, budget - (batch if dep.budget_includes_decode else 0)))
        n_chunks = math.ceil(computed / chunk)
        # a step that carries a prompt chunk besides the other sequences' decode tokens
        mixed = pre_alone if (batch <= 1 and chunk == computed) else _step_k(pp, k, max(batch - 1, 0), context, chunk,
                                                                                attended)
        mixed = max(mixed, step)  # carrying a prompt chunk never makes a step shorter than plain decode
        own_prefill = n_chunks * mixed
        request_ms = own_prefill + max(output_tokens - 1, 0) * step
        rate = batch / request_ms  # closed loop: a slot frees (and refills) every request_ms / batch
        if open_rate is not None:
            rate = min(rate, open_rate)
        # Share of decode steps that also carry someone's prompt chunk.
        p_stall = min(1.0, rate * n_chunks * step) if batch > 1 else 0.0
        itl_mean = step + p_stall * (mixed - step)
        request_ms = own_prefill + max(output_tokens - 1, 0) * itl_mean
        if open_rate is None:
            break
        in_service = min(float(users), float(slots), max(1.0, open_rate * request_ms))
        if abs(in_service - batch) < 1e-9:  # tight: different starting loads must land on the same point
            break
        batch = in_service

    # ITL: a step either decodes only, or also carries a prompt chunk (probability p_stall). The 95th
    # percentile of that two-point distribution is the stalled step only if stalls exceed 5 % of steps.
    itl_p50 = mixed if p_stall > 0.5 else step
    itl_p95 = mixed if p_stall > 0.05 else step

    # TTFT: wait for the running step to end, then the own prompt; other prompts that arrived just
    # before share the token budget (FIFO). Each of the other batch − 1 users is prefilling for a share
    # of its request's life; that share is taken on an unloaded replica (prompt / (prompt + decode))
    # so that adding users can only add colliding prompts, as it does in reality — the share measured
    # under load shrinks when decode slows, which would make TTFT fall as users rise.
    share = pre_alone / (pre_alone + max(output_tokens - 1, 0) * single)
    closed_others = (batch - 1) * share if batch > 1 else 0.0
    if open_rate is not None:
        # As arrivals approach what the slots serve, every user keeps a request in flight, as in the
        # closed loop: the closed-loop collisions scaled by that load (continuous, and rising with users)
        load = min(1.0, open_rate * request_ms / max(batch, 1.0))
        others_mean = max(rate * own_prefill if batch > 1 else 0.0, closed_others * load)
    else:
        others_mean = closed_others
    cap = max(0, math.ceil(batch) - 1)
    k50, k95 = _poisson_quantiles(others_mean, 0.5, 0.95)
    ahead50, ahead95 = min(cap, k50), min(cap, k95)

    # every request also pays a fixed cost outside the GPU: HTTP, tokenising, scheduling, detokenising
    ttft_p50 = overhead + _ttft(ahead50, 0.5, computed, chunk, step, n_chunks, mixed)
    ttft_p95 = overhead + _ttft(ahead95, 0.95, computed, chunk, step, n_chunks, mixed)
    ttft_mean = overhead + (0.5 * step + (1 + others_mean / 2) * own_prefill if batch > 1 else 0.5 * step + own_prefill)
    ttft_mean = min(max(ttft_mean, ttft_p50), ttft_p95)

    # Waiting for a slot.
    queued = max(0, users - slots)
    wait50 = wait95 = 0.0
    overloaded = False
    model = "closed loop"
    if queued:
        wait50, wait95 = closed_loop_wait_ms(users, slots, request_ms)
    if open_rate is not None:
        model = "M/D/c (Allen–Cunneen)"
        w50 = mdc_wait_ms(slots, open_rate, request_ms, 0.5)
        w95 = mdc_wait_ms(slots, open_rate, request_ms, 0.95)
        overloaded = math.isinf(w95)
        cl50, cl95 = closed_loop_wait_ms(users, slots, request_ms)
        # no more than `concurrency` requests are ever in flight: the closed loop bounds the wait
        wait50, wait95 = min(w50, cl50), min(w95, cl95)
        queued = min(queued, math.ceil(open_rate * wait50))
    ttft_p50 += wait50
    ttft_p95 += wait95
    ttft_mean += wait50

    throughput = batch * output_tokens / (request_ms / 1000)
    if open_rate is not None:
        throughput = min(throughput, open_rate * 1000 * output_tokens)
    if _rows:  # PerfEstimate.explain asks for the working, not the figures
        c = engine_constants(dep.backend)
        return _predict_rows(**locals())  # type: ignore[return-value]
    # positional, in PerfEstimate's field order (the planner makes hundreds of thousands): ttft_p50_ms,
    # ttft_p95_ms, itl_p50_ms, itl_p95_ms, decode_tokens_per_s_single, output_tokens_per_s_per_user,
    # throughput_tokens_per_s, batch, queued, inputs, ttft_mean_ms, itl_mean_ms, queue_wait_p50_ms,
    # queue_wait_p95_ms, request_ms, prefill_ms, step_ms, queue_model, overloaded
    return PerfEstimate(
        ttft_p50, max(ttft_p95, ttft_p50), itl_p50, max(itl_p95, itl_p50), 1000 / single, 1000 / itl_mean,
        throughput, max(1, round(batch)), queued,
        (dep, concurrency, prompt_tokens, output_tokens, requests_per_minute, arrival, prefix_cache_hit, warm_prompts),
        ttft_mean, itl_mean, wait50, wait95, request_ms, pre_alone, step, model, overloaded,
    )


def _predict_burst(dep: Deployment, *, concurrency: int, prompt_tokens: int, output_tokens: int,
                   prefix_cache_hit: float, warm_prompts: int) -> PerfEstimate:
    """`concurrency` requests arriving together (burst.py follows them through the scheduler)."""
    from llmctl.estimate.burst import simulate_burst

    c = engine_constants(dep.backend)
    k, pp = _coef(dep), dep.pp
    overhead = float(c.get("request_overhead_ms", 0.0))
    n = max(1, int(concurrency))
    seqs = (dep.max_num_seqs or dep.max_batch) if dep.paged_kv else dep.max_batch
    kv = dep.kv_cache_tokens if dep.paged_kv else None

    def step(batch: float, context: float, extra: float, extra_ctx: float) -> float:
        return _step_k(pp, k, batch, context, extra, extra_ctx)

    r = simulate_burst(step, requests=n, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                       budget=dep.max_num_batched_tokens, max_seqs=max(1, seqs), kv_tokens=kv,
                       prefix_hit=prefix_cache_hit, warm=warm_prompts, state_tokens=dep.state_tokens if kv else 0.0)
    single = _step_k(pp, k, 1, decoding_context(prompt_tokens, output_tokens))
    duration = r.duration_ms + overhead
    throughput = n * output_tokens / (duration / 1000) if math.isfinite(duration) else 0.0
    return PerfEstimate(
        ttft_p50_ms=overhead + r.ttft_p50_ms, ttft_p95_ms=overhead + r.ttft_p95_ms,
        itl_p50_ms=r.tpot_p50_ms, itl_p95_ms=max(r.tpot_p50_ms, r.tpot_p95_ms),
        decode_tokens_per_s_single=1000 / single, output_tokens_per_s_per_user=1000 / r.tpot_mean_ms if r.tpot_mean_ms else 0.0,
        throughput_tokens_per_s=throughput, batch=max(1, round(r.peak_batch)), queued=round(r.preempted),
        inputs=(dep, concurrency, prompt_tokens, output_tokens, None, "burst", prefix_cache_hit, warm_prompts),
        ttft_mean_ms=overhead + r.ttft_mean_ms, itl_mean_ms=r.tpot_mean_ms, request_ms=duration, step_ms=single,
        queue_model="burst",
    )


def _predict_mixed(dep: Deployment, *, concurrency: int, prompt_tokens: int, output_tokens: int,
                   requests_per_minute: float | None, arrival: str, prefix_cache_hit: float, lengths: str) -> PerfEstimate:
    """Steady state with spread lengths (lengths.py): the load at the time-weighted answer length, TTFT
    per prompt bucket, throughput over the mean answer."""
    from dataclasses import replace

    from llmctl.estimate.lengths import mix, second_moment_ratio, weighted_quantile

    held = max(1, round(second_moment_ratio(lengths, output_tokens)))  # answer length weighted by time held
    kw = dict(concurrency=concurrency, requests_per_minute=requests_per_minute, arrival=arrival,
              prefix_cache_hit=prefix_cache_hit)
    kw.update(output_tokens=output_tokens, _load=(prompt_tokens, held))
    base = predict(dep, prompt_tokens=prompt_tokens, **kw)
    per_prompt = [(predict(dep, prompt_tokens=p, **kw), w) for p, w in mix(lengths, prompt_tokens)]
    ttft50 = weighted_quantile([(e.ttft_p50_ms, w) for e, w in per_prompt], 0.5)
    ttft95 = weighted_quantile([(e.ttft_p95_ms, w) for e, w in per_prompt], 0.95)
    mean_ttft = sum(e.ttft_mean_ms * w for e, w in per_prompt)
    return replace(base, ttft_p50_ms=ttft50, ttft_p95_ms=max(ttft95, ttft50), ttft_mean_ms=mean_ttft, inputs=(),
                   queue_model=base.queue_model + f", {lengths} lengths")

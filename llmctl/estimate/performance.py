"""Latency and throughput of one replica under load.

One decode step reads the weights one device holds (MoE: the experts the batch routes to) plus the
KV cache of every sequence in the batch, and multiplies every sequence's token through the active
parameters: it takes max(memory time, compute time) plus a fixed cost per layer (kernel launches,
synchronisation) that does not shrink with bandwidth. Prefill is compute-bound, with a fixed cost per
token and layer on top (the non-matmul work of llama.cpp's graph). Tensor parallelism adds two
all-reduces per layer whose cost depends on the interconnect (NVLink vs PCIe); pipeline parallelism
passes each token through every stage in turn and idles stages when there are fewer micro-batches
than stages (the bubble).

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
from llmctl.estimate.weights import ParamCount, count_params

_OVERRIDE: dict | None = None  # set by `override_constants` (benchmarks fit the constants with it)


@lru_cache(maxsize=1)
def _profile_constants() -> dict:
    from llmctl.profiles_io import profile

    return profile("performance.yaml")


def constants() -> dict:
    return _OVERRIDE if _OVERRIDE is not None else _profile_constants()


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
    engine_version: str | None = None  # e.g. "0.5.1" for a measured vLLM; None: the version llmctl deploys
    params: ParamCount = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", count_params(self.arch))


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
    ttft_mean_ms: float = 0.0
    itl_mean_ms: float = 0.0
    queue_wait_p50_ms: float = 0.0
    queue_wait_p95_ms: float = 0.0
    request_ms: float = 0.0  # one request from its first scheduled step to its last token
    prefill_ms: float = 0.0  # the prompt alone, nothing else running
    step_ms: float = 0.0  # one decode step at the planned batch
    queue_model: str = "closed loop"  # or "M/D/c (Allen–Cunneen)"
    overloaded: bool = False  # requests_per_minute above what the replica can serve


# --------------------------------------------------------------------------- device arithmetic


def _kind(dev: GpuProfile) -> str:
    return dev.kind if dev.kind in ("gpu", "apple", "cpu") else "gpu"


def _eff(value: object, dev: GpuProfile) -> float:
    """A constant given per device kind ({gpu: .., apple: .., cpu: ..}) or as one number."""
    if isinstance(value, dict):
        return float(value.get(_kind(dev), next(iter(value.values()))))
    return float(value or 0.0)


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


def weights_read_per_step(dep: Deployment, batch: float) -> float:
    """Bytes of weights one device reads per decode step. MoE: only the experts the batch routes to."""
    a = dep.arch
    if not a.is_moe:
        return dep.weight_bytes_per_gpu
    p = dep.params
    expert_share = p.experts / max(p.total, 1)
    k, e = (a.experts_per_token or 2), a.num_experts
    touched = 1 - (1 - k / e) ** max(batch, 1)
    return dep.weight_bytes_per_gpu * ((1 - expert_share) + expert_share * touched)


def _flops_per_token(dep: Deployment, context: float) -> float:
    """FLOPs of one token on one device: active parameters (MoE: routed experts only) + attention."""
    a = dep.arch
    linear = 2 * dep.params.per_token_flop_params
    attn = 4 * a.num_hidden_layers * context * a.num_attention_heads * a.head_dim
    return (linear + attn) / (dep.tp * dep.pp)


def _allreduce_ms(dep: Deployment, tokens: float) -> float:
    """Two ring all-reduces of the hidden state per layer under TP (latency + volume / link)."""
    if dep.tp <= 1:
        return 0.0
    ic = constants()["interconnect"]
    dev = dep.device
    lat_table = ic["allreduce_latency_us"]
    latency = lat_table.get(dev.interconnect_type, lat_table["none"]) / 1000
    bw = max(dev.interconnect_gbs, 1.0) * 1e9 / 2 * ic["efficiency"]  # one direction
    volume = 2 * (dep.tp - 1) / dep.tp * tokens * dep.arch.hidden_size * 2  # ring all-reduce, bf16
    per_layer = 2 * (latency + volume / bw * 1000)
    return per_layer * math.ceil(dep.arch.num_hidden_layers / dep.pp)


def _stage_ms(dep: Deployment, batch: float, context: float, extra_tokens: float = 0.0) -> float:
    """One pipeline stage's share of a step: `batch` decoding sequences of `context` tokens plus
    `extra_tokens` prompt tokens mixed in (chunked prefill / llama.cpp's shared batch)."""
    c = engine_constants(dep.backend)
    dev = dep.device
    bw = dev.bandwidth_gbs * 1e9
    layers = math.ceil(dep.arch.num_hidden_layers / dep.pp)
    t_weights = weights_read_per_step(dep, batch + extra_tokens) / (bw * _eff(c["memory_efficiency"], dev))
    kv_share = dep.kv_bytes_per_token * batch * context
    t_kv = kv_share / (bw * _eff(c.get("kv_efficiency", c["memory_efficiency"]), dev))
    t_mem = (t_weights + t_kv) * 1000
    flops = batch * _flops_per_token(dep, context)
    t_compute = flops / (_peak_flops(dep) * _eff(c["compute_efficiency"], dev)) * 1000
    if extra_tokens:
        pre_flops = extra_tokens * _flops_per_token(dep, extra_tokens / 2)
        t_compute += pre_flops / (_peak_flops(dep, prefill=True) * _eff(c["compute_efficiency"], dev)) * 1000
        t_compute += extra_tokens * layers * _eff(c.get("prefill_token_layer_us", 0.0), dev) / 1000
    gpu = max(t_mem, t_compute) + layers * _eff(c["layer_overhead_ms"], dev) + _allreduce_ms(dep, batch + extra_tokens)
    return gpu / _legacy_busy_fraction(dep, c)


def _step_ms(dep: Deployment, batch: float, context: float, extra_tokens: float = 0.0) -> float:
    c = engine_constants(dep.backend)
    pp = max(dep.pp, 1)
    # vLLM splits the running batch into `pp` micro-batches; fewer sequences than stages leave
    # stages idle (the pipeline bubble), so one token still waits for every stage in turn.
    micro = max(1.0, min(float(pp), batch)) if batch >= 1 else 1.0
    per_micro = batch / micro if batch > 0 else 0.0
    t = _stage_ms(dep, per_micro, context, extra_tokens / micro) * pp
    t += float(c.get("step_overhead_ms", 0.0)) if _legacy_busy_fraction(dep, c) == 1.0 else 0.0
    if dep.offloaded_bytes and dep.cpu is not None:
        cpu_c = engine_constants("llama.cpp")
        cpu_bw = dep.cpu.bandwidth_gbs * 1e9 * _eff(cpu_c["memory_efficiency"], dep.cpu)
        t += dep.offloaded_bytes / cpu_bw * 1000
    return t


def decode_step_ms(dep: Deployment, batch: float, context: float) -> float:
    """Time of one decode step for `batch` sequences of average length `context` (all PP stages)."""
    return _step_ms(dep, max(batch, 1), context)


def prefill_ms(dep: Deployment, tokens: int) -> float:
    """The whole prompt on an idle replica, in chunks of `max_num_batched_tokens` (llama.cpp: -b)."""
    chunk = max(1, min(tokens, dep.max_num_batched_tokens))
    full, rest = divmod(tokens, chunk)
    t = full * _step_ms(dep, 0, 0, chunk)
    if rest:
        t += _step_ms(dep, 0, 0, rest)
    return t


# --------------------------------------------------------------------------- queueing


def _poisson_quantile(mean: float, q: float) -> int:
    """Smallest k with P(X ≤ k) ≥ q for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    if mean > 200:  # normal approximation
        return max(0, math.ceil(mean + _z(q) * math.sqrt(mean) - 0.5))
    term = math.exp(-mean)
    total, k = term, 0
    while total < q and k < 10_000:
        k += 1
        term *= mean / k
        total += term
    return k


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


def predict(dep: Deployment, *, concurrency: int, prompt_tokens: int, output_tokens: int,
            requests_per_minute: float | None = None) -> PerfEstimate:
    """Steady state of `concurrency` users of one replica, each sending a prompt and reading the answer."""
    ex: list[tuple[str, str, str]] = []
    c = engine_constants(dep.backend)
    slots = max(1, dep.max_batch)
    users = max(1, int(concurrency))
    context = prompt_tokens + output_tokens / 2  # average length while decoding
    budget = max(1, dep.max_num_batched_tokens)
    single = decode_step_ms(dep, 1, context)
    pre_alone = prefill_ms(dep, prompt_tokens)
    open_rate = requests_per_minute / 60_000 if requests_per_minute else None  # requests per ms

    # Fixed point: the batch sets the step time, the step time sets how long a request holds its
    # slot, which (with an arrival rate) sets how many requests are in service.
    batch = float(min(users, slots))
    for _ in range(4):
        step = decode_step_ms(dep, batch, context)
        chunk = max(1, min(prompt_tokens, budget - (batch if dep.backend == "vllm" else 0)))
        n_chunks = math.ceil(prompt_tokens / chunk)
        mixed = _step_ms(dep, max(batch - 1, 0), context, chunk)  # a step that carries a prompt chunk
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
        if abs(in_service - batch) < 0.01:
            break
        batch = in_service

    # ITL: a step either decodes only, or also carries a prompt chunk (probability p_stall). The 95th
    # percentile of that two-point distribution is the stalled step only if stalls exceed 5 % of steps.
    itl_p50 = mixed if p_stall > 0.5 else step
    itl_p95 = mixed if p_stall > 0.05 else step
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

    # TTFT: wait for the running step to end, then the own prompt; other prompts that arrived just
    # before share the token budget (FIFO) — their count is Poisson with mean rate × prefill time.
    others_mean = rate * own_prefill if batch > 1 else 0.0
    cap = max(0, math.ceil(batch) - 1)
    ahead50 = min(cap, _poisson_quantile(others_mean, 0.5))
    ahead95 = min(cap, _poisson_quantile(others_mean, 0.95))

    def ttft_for(ahead: int, tail: float) -> float:
        tokens = (ahead + 1) * prompt_tokens
        steps = math.ceil(tokens / chunk)
        return tail * step + max(steps, n_chunks) * mixed

    ttft_p50 = ttft_for(ahead50, 0.5)
    ttft_p95 = ttft_for(ahead95, 0.95)
    ttft_mean = 0.5 * step + (1 + others_mean / 2) * own_prefill if batch > 1 else 0.5 * step + own_prefill
    ttft_mean = min(max(ttft_mean, ttft_p50), ttft_p95)
    ex.append(("TTFT p95", f"{ttft_p95:.0f} ms",
               f"own prompt {own_prefill:.0f} ms + {ahead95} colliding prompt(s) (95th percentile of Poisson("
               f"{others_mean:.2f})) sharing the {budget}-token batch"))

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
    if wait95 > 0:
        ex.append(("queueing", f"{wait95:.0f} ms p95",
                   f"{max(users - slots, 0)} request(s) beyond {slots} slots; {model}: "
                   + ("Little's law for the median, the 95th-percentile place in a burst for the p95"
                      if model == "closed loop" else "Erlang C waiting time × ½ for deterministic service, "
                      "bounded by the closed loop at the stated concurrency")
                   + f" ({request_ms:.0f} ms per request)"))
    ttft_p50 += wait50
    ttft_p95 += wait95
    ttft_mean += wait50

    throughput = batch * output_tokens / (request_ms / 1000)
    if open_rate is not None:
        throughput = min(throughput, open_rate * 1000 * output_tokens)
    ex.append(("throughput", f"{throughput:.0f} tokens/s",
               f"{batch:g} sequences × {output_tokens} tokens / {request_ms / 1000:.2f} s per request"))
    return PerfEstimate(
        ttft_p50_ms=ttft_p50, ttft_p95_ms=max(ttft_p95, ttft_p50), itl_p50_ms=itl_p50, itl_p95_ms=max(itl_p95, itl_p50),
        decode_tokens_per_s_single=1000 / single, output_tokens_per_s_per_user=1000 / itl_mean,
        throughput_tokens_per_s=throughput, batch=max(1, round(batch)), queued=queued, explain=ex,
        ttft_mean_ms=ttft_mean, itl_mean_ms=itl_mean, queue_wait_p50_ms=wait50, queue_wait_p95_ms=wait95,
        request_ms=request_ms, prefill_ms=pre_alone, step_ms=step, queue_model=model, overloaded=overloaded,
    )

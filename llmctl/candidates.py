"""Candidates: every engine × quantization × KV dtype × layout the hardware allows, each with its
memory estimate, or the reason it cannot work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmctl.catalog import Catalog, KvDtype, Quantization, ResolvedModel
from llmctl.errors import InputError
from llmctl.estimate.memory import MemoryEstimate, llamacpp_memory, vllm_memory
from llmctl.estimate.performance import Deployment, PerfEstimate
from llmctl.estimate.weights import weight_bytes
from llmctl.plan import SlaCheck
from llmctl.pools import Pool
from llmctl.rules import Lean, engine_allowed
from llmctl.search import largest_within
from llmctl.spec import Spec

# GGUF quantizations worth proposing when the user did not name one (the common Ollama library tags)
GGUF_CHOICES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


@dataclass
class Candidate:
    backend: str
    quant: Quantization
    kv: KvDtype
    pool: Pool
    tp: int = 1
    pp: int = 1
    devices: int = 1  # devices per replica
    num_parallel: int = 1  # llama.cpp/Ollama slots
    mem: MemoryEstimate | None = None
    perf: PerfEstimate | None = None
    replicas: int = 1
    max_conc_sla: int = 0  # users one replica serves within the SLA; set for the candidates a plan shows
    sla_met: bool = False
    violation: float = 0.0  # worst SLA ratio at the planned load: predicted / target, ≤ 1 is met
    reject: str | None = None
    usd_per_hour: float = 0.0
    preference: float = 0.0
    weight_bytes_total: float = 0.0
    dep: Deployment | None = None

    @property
    def feasible(self) -> bool:
        return self.reject is None

    def label(self) -> str:
        par = f"TP{self.tp}" + (f"×PP{self.pp}" if self.pp > 1 else "") if self.backend == "vllm" else f"{self.devices} dev"
        return f"{self.backend} {self.quant.id} {par} on {self.pool.device.id}"

    def key(self) -> tuple:
        """Sort key, best first when reversed: feasible, meets the SLA, cheaper, preferred, better quality."""
        if not self.feasible:
            return (0, 0, 0, 0, 0, 0)
        kv_penalty = 0.5 if self.kv.bytes_per_value < 2 else 0.0
        itl = -round(self.perf.itl_p95_ms, 1) if self.perf else 0.0
        if self.sla_met:
            # same cost: the smallest TP (more, independent replicas), then the lower latency
            return (1, 1, -round(self.usd_per_hour, 4), self.preference, self.quant.quality_rank - kv_penalty,
                    -self.tp * self.pp, itl, -self.devices)
        # missing the SLA: closest first (the smallest overshoot at the planned load)
        return (1, 0, -round(self.violation, 2), self.preference, self.quant.quality_rank - kv_penalty, itl)


@dataclass
class Context:
    """What every candidate is judged against: the spec, the resolved model, the hardware, the SLA."""

    spec: Spec
    catalog: Catalog
    model: ResolvedModel
    pools: list[Pool]
    max_model_len: int
    sla: dict[str, float]
    sla_defaulted: bool
    leans: list[Lean]
    # llama.cpp memory estimates by (device, devices, quantization, KV dtype, slots): Ollama and
    # llama-server run the same runtime, so their candidates share them
    memo: dict[tuple, MemoryEstimate] = field(default_factory=dict, repr=False)
    # performance predictions by (deployment, users per replica), see planner.predict_at
    predictions: dict[tuple, Any] = field(default_factory=dict, repr=False)

    @property
    def load(self) -> tuple[int, int, float | None]:
        """(prompt_tokens, output_tokens, requests_per_minute) as plain numbers for the hot paths."""
        w = self.spec.workload
        return w.prompt_tokens, w.output_tokens, w.requests_per_minute

    def with_workload(self, workload: Any) -> "Context":
        """The same context for another workload (a sweep point)."""
        from dataclasses import replace

        return replace(self, spec=self.spec.model_copy(update={"workload": workload}), predictions={})


def _quant_options(ctx: Context, backend: str, pool: Pool) -> list[Quantization]:
    cat, model, ov = ctx.catalog, ctx.model, ctx.spec.overrides
    native = (model.arch.ollama or {}).get("default_quantization")
    if ov.quantization:
        q = cat.quantization(ov.quantization, where="overrides.quantization")
        return [q] if backend in q.engines else []
    if native == "MXFP4":  # gpt-oss ships its experts in MXFP4 for every engine
        return [cat.quantization("MXFP4")]
    if backend == "vllm":
        if model.kind == "gguf-file":
            return []
        if model.hf_quantization:
            q = cat.find_quantization(model.hf_quantization)
            return [q] if q else []
        dev = pool.device
        nvidia = dev.vendor == "nvidia"
        # bf16 needs Ampere (8.0) on NVIDIA; AMD Instinct GPUs have it
        opts = [cat.quantization("BF16" if (not nvidia or dev.cc_at_least("8.0")) else "FP16")]
        fp8 = cat.quantization("FP8")
        if nvidia:  # FP8 from 8.0 (weight-only on Ampere), but FP8 MoE only natively from 8.9
            fp8_ok = dev.cc_at_least(fp8.needs_compute_capability) and not (model.arch.is_moe and not dev.cc_at_least("8.9"))
        else:
            fp8_ok = bool(dev.fp8_tflops)  # e.g. MI300X: native FP8 in the profile
        if fp8_ok:
            opts.append(fp8)
        return opts
    # llama.cpp / Ollama
    if model.gguf_quantization and (model.kind == "gguf-file" or _tag_names_quant(model)):
        q = cat.find_quantization(model.gguf_quantization)
        if q is None and model.weight_bytes:
            q = _file_quantization(model)
        return [q] if q else []
    if model.kind in ("hf-folder", "hf-cache") and not model.arch.ollama:
        return []
    if backend == "ollama" and not model.arch.ollama:
        return []
    return [cat.quantization(n) for n in GGUF_CHOICES if cat.find_quantization(n)]


def _file_quantization(model: ResolvedModel) -> Quantization:
    """A GGUF file in a type the catalog does not list (F32, IQ2_XS, …): its bits come from the file."""
    from llmctl.estimate.weights import count_params

    bits = 8 * (model.weight_bytes or 0) / max(count_params(model.arch).total, 1)
    return Quantization(id=model.gguf_quantization or "GGUF", format="gguf", bits_per_weight=round(bits, 3),
                        engines=("ollama", "llama.cpp"), quality_rank=10)


def _tag_names_quant(model: ResolvedModel) -> bool:
    """True when the Ollama tag spelled a quantization (llama3.1:8b-instruct-q8_0), not a bare size."""
    if model.kind != "ollama" or not model.ollama_tag:
        return False
    tag = model.ollama_tag.split(":", 1)[1].lower()
    q = (model.gguf_quantization or "").lower().replace("f16", "fp16")
    return tag.endswith(q) or tag.endswith((model.gguf_quantization or "").lower())


def _kv_options(ctx: Context, backend: str) -> list[KvDtype]:
    cat, ov = ctx.catalog, ctx.spec.overrides
    if ov.kv_cache_dtype:
        k = cat.kv_dtype(ov.kv_cache_dtype, where="overrides.kv_cache_dtype")
        engine = "llama.cpp" if backend == "ollama" else backend
        return [k] if (engine in k.engines or backend in k.engines) else []
    if backend == "vllm":
        return [cat.kv_dtype("auto"), cat.kv_dtype("fp8")]
    return [cat.kv_dtype("f16"), cat.kv_dtype("q8_0")]


def _backends(ctx: Context) -> list[str]:
    forced = ctx.spec.overrides.backend
    return [forced] if forced else ["vllm", "ollama", "llama.cpp"]


def enumerate_candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for pool in ctx.pools:
        for backend in _backends(ctx):
            why = engine_allowed(backend, pool.device)
            quants = _quant_options(ctx, backend, pool) if why is None else []
            if why is not None:
                out.append(Candidate(backend, ctx.catalog.quantization("BF16"), ctx.catalog.kv_dtype("auto"), pool, reject=why))
                continue
            if not quants:
                out.append(Candidate(backend, ctx.catalog.quantization("BF16"), ctx.catalog.kv_dtype("auto"), pool,
                                     reject=_no_quant_reason(ctx, backend)))
                continue
            for q in quants:
                kvs = _kv_options(ctx, backend)
                if not kvs:
                    out.append(Candidate(backend, q, ctx.catalog.kv_dtype("auto"), pool,
                                         reject=f"{backend} cannot use kv_cache_dtype {ctx.spec.overrides.kv_cache_dtype}"))
                    continue
                if backend == "vllm":
                    out.extend(_vllm_candidates(ctx, pool, q, kvs))
                else:
                    out.extend(_llamacpp_candidates(ctx, pool, backend, q, kvs))
    return out


def _no_quant_reason(ctx: Context, backend: str) -> str:
    m, ov = ctx.model, ctx.spec.overrides
    if ov.quantization:
        return f"{backend} cannot load {ov.quantization}"
    if backend == "vllm" and m.kind == "gguf-file":
        return "vLLM serves Hugging Face checkpoints; a GGUF file is for llama.cpp/Ollama"
    if m.kind in ("hf-folder", "hf-cache"):
        return f"{backend} needs a GGUF file; convert the folder with llama.cpp's convert_hf_to_gguf.py first"
    if backend == "ollama":
        return f"{m.arch.id} is not in Ollama's library"
    return f"no quantization of {m.arch.id} loads in {backend}"


def _weights(ctx: Context, q: Quantization) -> float:
    m = ctx.model
    if m.weight_bytes and (m.gguf_quantization == q.id or m.hf_quantization == q.id or
                           (m.kind in ("hf-folder", "hf-cache") and q.id in ("BF16", "FP16") and not m.hf_quantization)):
        return float(m.weight_bytes)
    return weight_bytes(m.arch, q)


def _tp_options(ctx: Context, pool: Pool) -> list[int]:
    a = ctx.model.arch
    forced = ctx.spec.overrides.tensor_parallel
    if forced:
        if a.num_attention_heads % forced or not (a.is_mla or a.num_key_value_heads % forced == 0
                                                  or forced % a.num_key_value_heads == 0):
            raise InputError(f"tensor_parallel {forced} must divide {a.id}'s {a.num_attention_heads} attention "
                             f"heads and {a.num_key_value_heads} KV heads", where="overrides.tensor_parallel")
        return [forced]
    tps = []
    tp = 1
    while tp <= pool.per_node:
        kv_ok = a.is_mla or a.num_key_value_heads % tp == 0 or tp % a.num_key_value_heads == 0
        if a.num_attention_heads % tp == 0 and kv_ok:
            tps.append(tp)
        tp *= 2
    return tps


def _vllm_candidates(ctx: Context, pool: Pool, q: Quantization, kvs: list[KvDtype]) -> list[Candidate]:
    ov = ctx.spec.overrides
    out: list[Candidate] = []
    total = _weights(ctx, q)
    layouts = [(tp, 1) for tp in _tp_options(ctx, pool)]
    if ov.pipeline_parallel:
        tp = ov.tensor_parallel or pool.per_node
        layouts = [(tp, ov.pipeline_parallel)]
    for kv in kvs:
        fitted = False
        tried = list(layouts)
        i = 0
        while i < len(tried):
            tp, pp = tried[i]
            i += 1
            c = Candidate("vllm", q, kv, pool, tp=tp, pp=pp, devices=tp * pp, weight_bytes_total=total)
            if tp > pool.per_node:
                c.reject = f"TP {tp} needs {tp} GPUs in one node; {pool.names[0]} has {pool.per_node}"
            elif pp > pool.nodes:
                c.reject = f"PP {pp} needs {pp} nodes of {pool.device.id}; the inventory has {pool.nodes}"
            else:
                _vllm_memory(ctx, c)
            out.append(c)
            fitted = fitted or c.feasible
            # PP across nodes only when one node is not enough
            if i == len(tried) and not fitted and not ov.pipeline_parallel and tried[-1][1] == 1 and pool.nodes > 1:
                tried.extend((pool.per_node, pp) for pp in range(2, pool.nodes + 1)
                             if ctx.model.arch.num_hidden_layers >= pp)
        if fitted and kv.bytes_per_value < 2 and not ov.kv_cache_dtype:
            # a quantized KV cache is only worth it when the full-precision one was short of room
            best_full = [c for c in out if c.kv.id != kv.id and c.feasible]
            if best_full and all(_kv_enough(ctx, c) for c in best_full):
                out = [c for c in out if c.kv.id != kv.id]
    return out


def _kv_enough(ctx: Context, c: Candidate) -> bool:
    per_request = ctx.spec.workload.prompt_tokens + ctx.spec.workload.output_tokens
    return c.mem is not None and c.mem.kv_cache_tokens >= min(ctx.spec.workload.concurrency, 256) * per_request


def _vllm_memory(ctx: Context, c: Candidate) -> None:
    ov = ctx.spec.overrides
    a = ctx.model.arch
    c.mem = vllm_memory(
        a, weight_bytes_total=c.weight_bytes_total, gpu=c.pool.device, tp=c.tp, pp=c.pp,
        max_model_len=ctx.max_model_len, kv_dtype_bytes=c.kv.bytes_per_value,
        gpu_memory_utilization=ov.gpu_memory_utilization, max_num_seqs=ov.max_num_seqs,
        max_num_batched_tokens=ov.max_num_batched_tokens, capacity_gib=c.pool.capacity_gib,
    )
    if not c.mem.fits:
        c.reject = c.mem.problems[0]


def _llamacpp_candidates(ctx: Context, pool: Pool, backend: str, q: Quantization, kvs: list[KvDtype]) -> list[Candidate]:
    ov = ctx.spec.overrides
    out: list[Candidate] = []
    total = _weights(ctx, q)
    counts = [1] if pool.per_node == 1 else [1, pool.per_node]
    if ov.tensor_parallel:
        counts = [ov.tensor_parallel]
    for kv in kvs:
        for n in counts:
            c = Candidate(backend, q, kv, pool, devices=n, weight_bytes_total=total)
            if n > pool.per_node:
                c.reject = f"{n} GPUs per replica, {pool.names[0]} has {pool.per_node}"
                out.append(c)
                continue
            _llamacpp_fit(ctx, c)
            out.append(c)
            if c.feasible and (c.mem.gpu_layers or 0) >= (c.mem.total_layers or 0):
                break  # fits fully on fewer GPUs: more would only cost more
        if any(c.feasible and c.kv.id == kv.id and c.num_parallel >= min(ctx.spec.workload.concurrency, 4) for c in out) \
                and kv.bytes_per_value >= 2 and not ov.kv_cache_dtype:
            break  # f16 KV holds the slots we want: a quantized KV cache adds nothing
    return out


def _llamacpp_fit(ctx: Context, c: Candidate) -> None:
    """Choose the slots (num_parallel): as many as the concurrency asks for, fewer if they do not fit."""
    ov = ctx.spec.overrides
    want = ov.num_parallel or ctx.spec.workload.concurrency
    num_ctx = ctx.max_model_len
    dev = c.pool.device
    gpu = None if dev.kind == "cpu" else dev

    def estimate(n: int) -> MemoryEstimate:
        key = (dev.id, c.pool.capacity_gib, c.devices, c.quant.id, c.kv.id, n)
        if key not in ctx.memo:
            ctx.memo[key] = llamacpp_memory(
                ctx.model.arch, weight_bytes_total=c.weight_bytes_total, gpu=gpu, gpu_count=c.devices,
                num_ctx=num_ctx, num_parallel=n, kv_dtype_bytes=c.kv.bytes_per_value,
                capacity_gib=c.pool.capacity_gib, system_ram_gib=c.pool.system_ram_gib,
            )
        return ctx.memo[key]

    def fully_in(m: MemoryEstimate) -> bool:
        return m.fits and (m.gpu_layers or 0) >= (m.total_layers or 0) if gpu else m.fits

    def ratio(n: int) -> float:  # what n slots need over what the device offers (≤ 1: all on the device)
        m = estimate(n)
        return m.need_gib / m.usable_gib if (m.fits and m.usable_gib > 0) else float("inf")

    n = want
    mem = estimate(n)
    if not fully_in(mem) and not ov.num_parallel:
        n = max(1, largest_within(ratio, want, linear=True))  # the most slots that fit entirely; 1 offloads
        mem = estimate(n)
    c.num_parallel, c.mem = n, mem
    if not mem.fits:
        c.reject = mem.problems[0]


# --------------------------------------------------------------------------- the SLA


def sla_ratio(ctx: Context, p: PerfEstimate) -> float:
    """How the worst SLA check stands: predicted / target (≤ 1 is met). Cheap: the search below asks
    it for thousands of candidates, so it builds no SlaCheck records."""
    worst = 0.0
    for metric, target in ctx.sla.items():
        if metric == "output_tokens_per_second":
            ratio = target / max(p.output_tokens_per_s_per_user, 1e-9)
        else:
            ratio = getattr(p, metric) / target
        worst = max(worst, ratio)
    return worst


def sla_checks(ctx: Context, p: PerfEstimate) -> list[SlaCheck]:
    checks: list[SlaCheck] = []
    for metric, target in ctx.sla.items():
        if metric == "output_tokens_per_second":
            predicted = p.output_tokens_per_s_per_user
            met = predicted >= target
        else:
            predicted = getattr(p, metric)
            met = predicted <= target
        # our own numbers: construct without re-validating (thousands of candidates are checked)
        checks.append(SlaCheck.model_construct(metric=metric, target=target, predicted=round(predicted, 2), met=met))
    return checks

"""The planner: enumerate candidates, drop the infeasible ones with a reason, score the rest against
the SLA and cost, pick one and keep the runners-up.

A candidate is engine × quantization × KV dtype × TP/PP (or GPU count and slots for llama.cpp) ×
device pool. For each: a memory estimate (does it fit? how much KV?), a performance estimate (what
latency at what concurrency?), the replicas the SLA needs, and the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from llmctl.catalog import Catalog, GpuProfile, KvDtype, Quantization, ResolvedModel
from llmctl.errors import InputError
from llmctl.estimate.memory import MemoryEstimate, llamacpp_memory, vllm_defaults, vllm_memory
from llmctl.estimate.performance import Deployment, PerfEstimate, predict
from llmctl.estimate.performance import constants as perf_constants
from llmctl.estimate.weights import weight_bytes, weight_bytes_per_gpu
from llmctl.plan import (
    Alternative, Cost, Explanation, GpuChoice, Memory, ModelInfo, PerGpuMemory, Performance, Plan,
    Rationale, Sla, SlaCheck,
)
from llmctl.rules import Lean, engine_allowed, leanings
from llmctl.spec import Node, Spec

GiB = 1024**3
HOURS_PER_MONTH = 730  # 8760 h / 12
# GGUF quantizations worth proposing when the user did not name one (the common Ollama library tags)
GGUF_CHOICES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


# --------------------------------------------------------------------------- hardware pools


@dataclass
class Pool:
    """Identical devices a replica can be placed on."""

    device: GpuProfile
    per_node: int  # devices per node (1 for a CPU-only node)
    nodes: int
    capacity_gib: float  # usable memory of one device
    system_ram_gib: float | None
    cpu: GpuProfile  # the node's CPU memory profile (for llama.cpp layers offloaded to RAM)
    names: list[str]

    @property
    def devices(self) -> int:
        return self.per_node * self.nodes


def build_pools(nodes: list[Node], catalog: Catalog) -> list[Pool]:
    pools: dict[tuple[str, int], Pool] = {}
    for i, node in enumerate(nodes):
        where = f"hardware[{i}]"
        cpu = catalog.gpu(node.cpu, where=f"{where}.cpu") if node.cpu else catalog.gpu("cpu-ddr5-2ch")
        ram = node.memory_gb
        if node.gpu and node.gpu_count > 0:
            dev = catalog.gpu(node.gpu, where=f"{where}.gpu")
            if dev.kind == "cpu":
                per, capacity = 1, _cpu_capacity(ram, where)
            elif dev.kind == "apple":
                mem = ram or dev.memory_gb
                if not mem:
                    raise InputError("give the Mac's unified memory as memory_gb", where=f"{where}.memory_gb")
                frac = catalog.apple_gpu_memory_fraction["le_36gb" if mem <= 36 else "gt_36gb"]
                per, capacity = 1, mem * frac
            else:
                per, capacity = node.gpu_count, float(dev.memory_gib or dev.memory_gb or 0)
        else:
            dev = cpu
            per, capacity = 1, _cpu_capacity(ram, where)
        key = (dev.id, per)
        if key in pools:
            pools[key].nodes += node.count
            pools[key].names.append(node.name)
        else:
            pools[key] = Pool(dev, per, node.count, capacity, ram, cpu, [node.name])
    return list(pools.values())


def _cpu_capacity(ram: float | None, where: str) -> float:
    if not ram:
        raise InputError("a CPU-only node needs memory_gb (system RAM) so llmctl knows what fits",
                         where=f"{where}.memory_gb")
    from llmctl.estimate.memory import constants

    return ram * constants()["llama_cpp"]["cpu_memory_fraction"]


# --------------------------------------------------------------------------- candidates


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
    max_conc_sla: int = 0
    sla_met: bool = False
    checks: list[SlaCheck] = field(default_factory=list)
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
        # missing the SLA: closest first (most users within it, then the smallest overshoot)
        return (1, 0, self.max_conc_sla, -round(self.violation, 2), self.preference, self.quant.quality_rank - kv_penalty, itl)

    @property
    def violation(self) -> float:
        """How far the worst SLA check is off: predicted/target (1.0 = just met)."""
        worst = 0.0
        for ch in self.checks:
            if ch.predicted is None:
                continue
            ratio = ch.target / max(ch.predicted, 1e-9) if ch.metric == "output_tokens_per_second" else ch.predicted / ch.target
            worst = max(worst, ratio)
        return worst


@dataclass
class Context:
    spec: Spec
    catalog: Catalog
    model: ResolvedModel
    pools: list[Pool]
    max_model_len: int
    sla: dict[str, float]
    sla_defaulted: bool
    leans: list[Lean]


def make_plan(spec: Spec, *, catalog: Catalog | None = None, base_dir: Path | None = None,
              nodes: list[Node] | None = None) -> Plan:
    catalog = catalog or Catalog.load()
    model = catalog.resolve_model(spec.model, base_dir=base_dir, where="model")
    detect_warnings: list[str] = []
    if nodes is None:
        if spec.hardware == "detect":
            catalog = catalog.copy()  # detected GPUs may add profiles; keep the cached catalog clean
        nodes, detect_warnings = _nodes(spec, catalog)
    pools = build_pools(nodes, catalog)
    if spec.overrides.gpu_type:
        want = catalog.gpu(spec.overrides.gpu_type, where="overrides.gpu_type").id
        pools = [p for p in pools if p.device.id == want]
        if not pools:
            raise InputError(f"no node in `hardware` has GPU type {want}", where="overrides.gpu_type")
    ctx = Context(spec, catalog, model, pools, _max_model_len(spec, model), *_sla(spec), leans=[])
    candidates = enumerate_candidates(ctx)
    needs_multi = bool(candidates) and not any(
        c.feasible and c.devices == 1 for c in candidates if c.backend in ("vllm", "ollama", "llama.cpp"))
    ctx.leans = leanings(spec, needs_multi)
    for c in candidates:
        if c.feasible:
            c.preference = sum(l.weights.get(c.backend, 0.0) for l in ctx.leans)
    plan = choose(ctx, candidates)
    plan.warnings[:0] = detect_warnings
    return plan


def _nodes(spec: Spec, catalog: Catalog) -> tuple[list[Node], list[str]]:
    """The spec's nodes, or this machine's (`hardware: detect`) with a profile made up for any GPU the
    catalog does not know, and the warnings detection raised."""
    if spec.hardware != "detect":
        return list(spec.hardware), []
    from llmctl.inventory import detect

    det = detect(catalog=catalog)
    for hint in det.unknown_gpu_hints():
        catalog.synthesize_gpu(hint)
    return list(det.nodes), list(det.warnings)


def _max_model_len(spec: Spec, model: ResolvedModel) -> int:
    want = spec.overrides.max_model_len or spec.workload.max_context
    limit = model.arch.max_position_embeddings
    if limit and want > limit:
        field_ = "overrides.max_model_len" if spec.overrides.max_model_len else "workload.context_length"
        raise InputError(f"{want} tokens exceed {model.arch.id}'s maximum context of {limit}", where=field_)
    return want


def _sla(spec: Spec) -> tuple[dict[str, float], bool]:
    s = spec.workload.sla
    sla = {k: v for k, v in (("ttft_p95_ms", s.ttft_p95_ms), ("itl_p95_ms", s.itl_p95_ms),
                             ("output_tokens_per_second", s.output_tokens_per_second)) if v}
    if sla:
        return sla, False
    return dict(perf_constants()["default_sla"]), True


# --------------------------------------------------------------------------- enumeration


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
        dtype = "FP16" if not pool.device.cc_at_least("8.0") else "BF16"
        opts = [cat.quantization(dtype)]
        fp8 = cat.quantization("FP8")
        if pool.device.cc_at_least(fp8.needs_compute_capability) and not (model.arch.is_moe and not pool.device.cc_at_least("8.9")):
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
        return llamacpp_memory(
            ctx.model.arch, weight_bytes_total=c.weight_bytes_total, gpu=gpu, gpu_count=c.devices,
            num_ctx=num_ctx, num_parallel=n, kv_dtype_bytes=c.kv.bytes_per_value,
            capacity_gib=c.pool.capacity_gib, system_ram_gib=c.pool.system_ram_gib,
        )

    def fully_in(m: MemoryEstimate) -> bool:
        return m.fits and (m.gpu_layers or 0) >= (m.total_layers or 0) if gpu else m.fits

    n = want
    mem = estimate(n)
    if not fully_in(mem) and not ov.num_parallel:
        lo, hi = 1, want  # largest n that fits entirely
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fully_in(estimate(mid)):
                lo = mid
            else:
                hi = mid - 1
        n = lo
        mem = estimate(n)
    c.num_parallel, c.mem = n, mem
    if not mem.fits:
        c.reject = mem.problems[0]


# --------------------------------------------------------------------------- evaluation


def _deployment(ctx: Context, c: Candidate) -> Deployment:
    a = ctx.model.arch
    m = c.mem
    assert m is not None
    per_request = ctx.spec.workload.prompt_tokens + ctx.spec.workload.output_tokens
    if c.backend == "vllm":
        batched, seqs = vllm_defaults(c.pool.device)
        seqs = ctx.spec.overrides.max_num_seqs or seqs
        batched = ctx.spec.overrides.max_num_batched_tokens or batched
        kv_limited = max(1, m.kv_cache_tokens // max(per_request, 1))
        return Deployment(
            arch=a, backend="vllm", device=c.pool.device, tp=c.tp, pp=c.pp,
            weight_bytes_per_gpu=weight_bytes_per_gpu(a, c.weight_bytes_total, c.tp, c.pp),
            kv_bytes_per_token=m.kv_bytes_per_token, max_batch=min(seqs, kv_limited),
            max_num_batched_tokens=batched, fp8_compute=c.quant.id == "FP8" and c.pool.device.cc_at_least("8.9"),
        )
    on_device = m.weights_gib * GiB if c.pool.device.kind != "cpu" else c.weight_bytes_total
    dev = c.pool.device
    return Deployment(
        arch=a, backend=c.backend, device=dev, tp=1, pp=1,
        weight_bytes_per_gpu=on_device if c.devices == 1 else on_device,  # layer split: one device works at a time
        kv_bytes_per_token=m.kv_bytes_per_token / max(c.devices, 1),
        max_batch=c.num_parallel, max_num_batched_tokens=2048,  # llama-server -b default
        cpu=c.pool.cpu, offloaded_bytes=m.offloaded_to_cpu_gib * GiB,
    )


def _sla_checks(ctx: Context, p: PerfEstimate) -> list[SlaCheck]:
    checks = []
    for metric, target in ctx.sla.items():
        if metric == "output_tokens_per_second":
            predicted = p.output_tokens_per_s_per_user
            met = predicted >= target
        else:
            predicted = getattr(p, metric)
            met = predicted <= target
        checks.append(SlaCheck(metric=metric, target=target, predicted=round(predicted, 2), met=met))
    return checks


def _predict(ctx: Context, dep: Deployment, concurrency: int) -> PerfEstimate:
    w = ctx.spec.workload
    rpm = w.requests_per_minute
    return predict(dep, concurrency=concurrency, prompt_tokens=w.prompt_tokens, output_tokens=w.output_tokens,
                   requests_per_minute=rpm)


def max_concurrency_within_sla(ctx: Context, dep: Deployment, upper: int) -> int:
    """Largest concurrency (≤ upper) one replica serves within the SLA; 0 if not even one user."""
    def ok(n: int) -> bool:
        return all(ch.met for ch in _sla_checks(ctx, _predict(ctx, dep, n)))

    if not ok(1):
        return 0
    lo, hi = 1, max(1, upper)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def evaluate(ctx: Context, c: Candidate) -> None:
    if not c.feasible or c.mem is None:
        return
    ov = ctx.spec.overrides
    w = ctx.spec.workload
    dep = _deployment(ctx, c)
    c.dep = dep
    c.max_conc_sla = max_concurrency_within_sla(ctx, dep, w.concurrency)
    per_replica_devices = c.devices
    available = (c.pool.per_node // per_replica_devices) * (c.pool.nodes // c.pp) if c.pp <= c.pool.nodes else 0
    if ov.replicas:
        c.replicas = ov.replicas
    elif c.max_conc_sla >= 1:
        c.replicas = max(1, min(math.ceil(w.concurrency / c.max_conc_sla), max(available, 1)))
    else:
        c.replicas = max(1, min(available, w.concurrency)) if available else 1
    if ov.replicas and ov.replicas > available:
        c.reject = f"{ov.replicas} replicas need {ov.replicas * per_replica_devices} × {c.pool.device.id}; the inventory has {c.pool.devices}"
    per_replica = math.ceil(w.concurrency / c.replicas)
    c.perf = _predict(ctx, dep, per_replica)
    c.checks = _sla_checks(ctx, c.perf)
    c.sla_met = all(ch.met for ch in c.checks)
    c.usd_per_hour = c.pool.device.price_usd_per_hour * per_replica_devices * c.replicas


# --------------------------------------------------------------------------- choice


def choose(ctx: Context, candidates: list[Candidate]) -> Plan:
    for c in candidates:
        evaluate(ctx, c)
    ranked = sorted(candidates, key=lambda c: c.key(), reverse=True)
    if not ranked:
        raise InputError("no hardware to plan for", where="hardware")
    best = ranked[0]
    forced = [k for k, v in ctx.spec.overrides.model_dump().items() if v is not None]
    if not best.feasible:
        return _infeasible_plan(ctx, ranked, forced)
    return build_plan(ctx, best, ranked, forced)


def _infeasible_plan(ctx: Context, ranked: list[Candidate], forced: list[str]) -> Plan:
    """Nothing fits: report the closest candidate and every reason, so the user can act."""
    best = ranked[0]
    if best.mem is None:  # rejected before any estimate: estimate it anyway for the report
        for c in ranked:
            if c.mem is not None:
                best = c
                break
    plan = build_plan(ctx, best, ranked, forced, feasible=False)
    return plan


def build_plan(ctx: Context, best: Candidate, ranked: list[Candidate], forced: list[str], feasible: bool = True) -> Plan:
    spec, model, w = ctx.spec, ctx.model, ctx.spec.workload
    mem = best.mem
    perf = best.perf
    a = model.arch
    from llmctl.estimate.weights import count_params

    pc = count_params(a)
    rationale = _rationale(ctx, best, ranked)
    problems: list[str] = []
    if not feasible:
        problems = _problems(ranked)
    warnings = list(mem.warnings) if mem else []
    warnings += list(model.notes[1:]) if model.kind != "ollama" else []
    if ctx.sla_defaulted:
        warnings.append(f"no SLA in the spec: checked against the default ITL p95 ≤ {ctx.sla['itl_p95_ms']:.0f} ms (reading speed)")
    if feasible and not best.sla_met:
        warnings.append("no candidate meets the SLA with the hardware listed: " +
                        "; ".join(f"{ch.metric} {ch.predicted:g} vs {ch.target:g}" for ch in best.checks if not ch.met))
    if model.gated and best.backend == "vllm":
        warnings.append(f"{model.arch.hf_id or model.reference} is gated on Hugging Face: provide HF_TOKEN")
    if "vision" in spec.needs:
        warnings.append("needs: vision — check that the model is multimodal; llmctl sizes the text model only")

    dev = best.pool.device
    per_gpu = PerGpuMemory(
        weights=_r(mem.weights_gib if mem else 0), kv_cache=_r(mem.kv_cache_gib if mem else 0),
        activation=_r(mem.activation_gib if mem else 0), overhead=_r(mem.overhead_gib if mem else 0),
        total=_r(mem.total_gib if mem else 0), capacity=_r(best.pool.capacity_gib),
    )
    memory = Memory(
        per_gpu_gib=per_gpu, total_gib=_r(mem.replica_gib if mem else 0),
        offloaded_to_cpu_gib=_r(mem.offloaded_to_cpu_gib if mem else 0),
        kv_cache_tokens=mem.kv_cache_tokens if mem else 0, max_concurrency=_r(mem.max_concurrency if mem else 0),
        gpu_layers=mem.gpu_layers if mem and best.backend != "vllm" else None,
        total_layers=mem.total_layers if mem and best.backend != "vllm" else None,
    )
    performance = Performance()
    if perf:
        performance = Performance(
            ttft_p50_ms=_r(perf.ttft_p50_ms, 1), ttft_p95_ms=_r(perf.ttft_p95_ms, 1),
            itl_p50_ms=_r(perf.itl_p50_ms, 2), itl_p95_ms=_r(perf.itl_p95_ms, 2),
            decode_tokens_per_s_single=_r(perf.decode_tokens_per_s_single, 1),
            output_tokens_per_s_per_user=_r(perf.output_tokens_per_s_per_user, 1),
            throughput_tokens_per_s=_r(perf.throughput_tokens_per_s, 1),
            max_concurrency_within_sla=best.max_conc_sla, batch_size=perf.batch,
        )
    total_tps = (perf.throughput_tokens_per_s * best.replicas) if perf else 0.0
    cost = Cost(
        usd_per_hour=_r(best.usd_per_hour, 3), usd_per_month=_r(best.usd_per_hour * HOURS_PER_MONTH, 2),
        usd_per_million_tokens=_r(best.usd_per_hour / (total_tps * 3600) * 1e6, 3) if total_tps > 0 else None,
    )
    plan = Plan(
        name=spec.name, environment=spec.environment, target=spec.target,
        model=ModelInfo(
            reference=model.reference, id=a.id, hf_id=model.hf_id or a.hf_id, ollama_tag=_ollama_tag(ctx, best),
            path=model.path, gated=model.gated, params_b=_r(pc.total / 1e9, 3), active_params_b=_r(pc.active / 1e9, 3),
            architecture=a.architecture, max_position_embeddings=a.max_position_embeddings,
        ),
        backend=best.backend, quantization=best.quant.id, kv_cache_dtype=best.kv.id,
        tensor_parallel=best.tp, pipeline_parallel=best.pp, replicas=best.replicas, max_model_len=ctx.max_model_len,
        gpu=GpuChoice(type=dev.id, kind=dev.kind, count_per_replica=best.devices if dev.kind != "cpu" else 0,
                      memory_gib=_r(best.pool.capacity_gib), nodes_per_replica=best.pp),
        engine_args=engine_args(ctx, best), memory=memory, performance=performance,
        sla=Sla(met=bool(feasible and best.sla_met), checks=best.checks), cost=cost,
        needs=list(spec.needs), forced=forced, feasible=feasible, problems=problems, warnings=warnings,
        rationale=rationale, alternatives=_alternatives(ctx, best, ranked),
        explain=_explain(ctx, best),
    )
    return plan


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def _ollama_tag(ctx: Context, c: Candidate) -> str | None:
    m = ctx.model
    o = m.arch.ollama or {}
    if c.backend != "ollama":
        return m.ollama_tag
    if m.kind == "ollama" and (m.gguf_quantization == c.quant.id):
        return m.ollama_tag
    if not o.get("names"):
        return None
    name, size = o["names"][0], (o.get("size_tags") or ["latest"])[0]
    if c.quant.id == o.get("default_quantization"):
        return f"{name}:{size}"
    q = "fp16" if c.quant.id == "F16" else c.quant.id.lower().replace("_k_", "_K_").replace("_k", "_K")
    return f"{name}:{size}-instruct-{q}"


def engine_args(ctx: Context, c: Candidate) -> dict:
    ov = ctx.spec.overrides
    if c.backend == "vllm":
        batched, seqs = vllm_defaults(c.pool.device)
        args = {
            "tensor_parallel_size": c.tp,
            "pipeline_parallel_size": c.pp,
            "max_model_len": ctx.max_model_len,
            "gpu_memory_utilization": ov.gpu_memory_utilization or _vllm_util(),
            "max_num_seqs": ov.max_num_seqs or seqs,
            "max_num_batched_tokens": ov.max_num_batched_tokens or batched,
            "dtype": "float16" if c.quant.id == "FP16" else "auto",
            "quantization": c.quant.vllm_quantization,
            "kv_cache_dtype": c.kv.id,
            "enable_prefix_caching": "prefix_caching" in ctx.spec.needs or None,
            "enable_lora": "lora" in ctx.spec.needs or None,
        }
        return {k: v for k, v in args.items() if v is not None}
    flash = c.kv.bytes_per_value < 2  # a quantized V cache needs flash attention in llama.cpp
    if c.backend == "ollama":
        args = {
            "num_ctx": ctx.max_model_len,
            "num_parallel": c.num_parallel,
            "kv_cache_type": c.kv.id,
            "flash_attention": flash,
            "keep_alive": "24h" if ctx.spec.environment == "production" else "5m",
            "max_loaded_models": 1,
            "num_gpu": c.mem.gpu_layers if c.mem and c.mem.gpu_layers is not None and c.mem.gpu_layers < (c.mem.total_layers or 0) else None,
        }
        return {k: v for k, v in args.items() if v is not None}
    return {
        "ctx_size": ctx.max_model_len * c.num_parallel,
        "parallel": c.num_parallel,
        "n_gpu_layers": (c.mem.gpu_layers if c.mem else 0) if c.pool.device.kind != "cpu" else 0,
        "cache_type_k": c.kv.id,
        "cache_type_v": c.kv.id,
        "flash_attn": flash,
        "batch_size": 2048,
    }


def _vllm_util() -> float:
    from llmctl.estimate.memory import constants

    return constants()["vllm"]["gpu_memory_utilization"]


def _problems(ranked: list[Candidate]) -> list[str]:
    seen: list[str] = []
    for c in ranked:
        if c.reject:
            line = f"{c.label()}: {c.reject}"
            if line not in seen:
                seen.append(line)
    return seen[:12]


def _rationale(ctx: Context, best: Candidate, ranked: list[Candidate]) -> list[Rationale]:
    spec, w = ctx.spec, ctx.spec.workload
    out: list[Rationale] = []
    dev = best.pool.device
    out.append(Rationale(rule="hardware", detail=_hardware_sentence(ctx)))
    for backend in ("vllm", "ollama", "llama.cpp"):
        why = engine_allowed(backend, dev)
        if why and backend != best.backend:
            out.append(Rationale(rule=f"{backend} ruled out", detail=why))
    for lean in ctx.leans:
        out.append(Rationale(rule=lean.rule, detail=lean.detail))
    cross = _crossover(ctx, best, ranked)
    if cross:
        out.append(Rationale(rule="SLA crossover", detail=cross))
    if best.mem is None:
        pass  # rejected before any estimate (e.g. the engine cannot run here): the problems say why
    elif best.backend == "vllm":
        out.append(Rationale(rule="parallelism", detail=(
            f"TP {best.tp}" + (f" × PP {best.pp} across {best.pp} nodes" if best.pp > 1 else "") +
            f": the smallest layout that fits {best.quant.id} weights with room for the KV cache "
            f"({best.mem.kv_cache_tokens} tokens ≈ {best.mem.max_concurrency:.1f} requests of {ctx.max_model_len})")))
    else:
        layers = best.mem.gpu_layers if best.mem else None
        where = "CPU" if dev.kind == "cpu" else dev.id
        out.append(Rationale(rule="slots", detail=(
            f"num_parallel {best.num_parallel}: {best.num_parallel} request(s) decode together, each with a "
            f"{ctx.max_model_len}-token context; " + (f"{layers}/{best.mem.total_layers} layers on {where}" if dev.kind != "cpu" else "all layers in RAM"))))
    others = [c for c in ranked if c.feasible and c.backend == best.backend and c.pool is best.pool and c.quant.id != best.quant.id]
    better = [c for c in ranked if c.quant.quality_rank > best.quant.quality_rank and c.backend == best.backend and c.pool is best.pool]
    detail = f"{best.quant.id} ({best.quant.bits_per_weight:g} bits/weight, {best.weight_bytes_total / GiB:.1f} GiB)"
    if better:
        b = max(better, key=lambda c: c.quant.quality_rank)
        detail += f": the highest quality that " + ("fits" if not b.feasible else "meets the SLA at this cost") + \
                  f"; {b.quant.id} " + (f"does not: {b.reject}" if not b.feasible else _lost_because(ctx, b, best))
    elif others:
        detail += ": the highest quality this engine offers"
    out.append(Rationale(rule="quantization", detail=detail))
    if best.kv.bytes_per_value < 2:
        out.append(Rationale(rule="KV cache dtype", detail=f"{best.kv.id} KV cache: full precision left too little room"))
    out.append(Rationale(rule="replicas", detail=_replica_sentence(ctx, best)))
    return out


def _hardware_sentence(ctx: Context) -> str:
    parts = []
    for p in ctx.pools:
        if p.device.kind == "cpu":
            parts.append(f"{p.nodes}× CPU node ({p.system_ram_gib:g} GB RAM, {p.device.id})")
        elif p.device.kind == "apple":
            parts.append(f"{p.nodes}× {p.device.name} ({p.capacity_gib:.0f} GiB of unified memory usable by the GPU)")
        else:
            parts.append(f"{p.nodes} node(s) × {p.per_node}× {p.device.id} ({p.capacity_gib:.1f} GiB each)")
    return "; ".join(parts)


def _crossover(ctx: Context, best: Candidate, ranked: list[Candidate]) -> str | None:
    """Where the engine that lost would stop meeting the SLA, in users per replica."""
    w = ctx.spec.workload
    sla = ", ".join(f"{k.replace('_p95_ms', ' p95 ≤ ').replace('output_tokens_per_second', 'tokens/s ≥ ')}{v:g}"
                    + (" ms" if k.endswith("_ms") else "") for k, v in ctx.sla.items())
    lines = []
    for backend in ("ollama", "llama.cpp", "vllm"):
        if backend == best.backend:
            continue
        alts = [c for c in ranked if c.backend == backend and c.feasible and c.pool is best.pool]
        if not alts:
            continue
        alt = max(alts, key=lambda c: (c.max_conc_sla, c.quant.quality_rank))
        lines.append(f"{backend} on {alt.devices}× {alt.pool.device.id} ({alt.quant.id}) meets {sla} up to "
                     f"{alt.max_conc_sla} concurrent user(s) per replica")
    if not lines:
        return None
    return "; ".join(lines) + (f"; {best.backend} ({best.quant.id}) up to {best.max_conc_sla}. You asked for "
                               f"{w.concurrency} → {best.backend}, {best.replicas} replica(s)")


def _replica_sentence(ctx: Context, c: Candidate) -> str:
    w = ctx.spec.workload
    if ctx.spec.overrides.replicas:
        return f"{c.replicas} replica(s), forced by overrides.replicas"
    if c.max_conc_sla == 0:
        return (f"{c.replicas} replica(s): even one user misses the SLA on this hardware "
                "(see warnings); more replicas only add capacity")
    return (f"one replica serves {c.max_conc_sla} concurrent user(s) within the SLA; {w.concurrency} users → "
            f"ceil({w.concurrency}/{c.max_conc_sla}) = {math.ceil(w.concurrency / c.max_conc_sla)}"
            + (f", capped at the {c.replicas} the inventory holds" if c.replicas < math.ceil(w.concurrency / c.max_conc_sla) else "")
            + f" → {c.replicas}")


def _lost_because(ctx: Context, c: Candidate, best: Candidate) -> str:
    if not c.feasible:
        return c.reject or "infeasible"
    if not c.sla_met and (best.sla_met or c.violation > best.violation):
        return "misses the SLA: " + "; ".join(
            f"{ch.metric} {ch.predicted:g} vs {ch.target:g}" for ch in c.checks if not ch.met)
    if c.usd_per_hour > best.usd_per_hour + 1e-9:
        return f"costs {c.usd_per_hour:.2f} USD/h vs {best.usd_per_hour:.2f} ({c.replicas} replica(s) × {c.devices} device(s))"
    if c.preference < best.preference:
        return f"the rules prefer {best.backend} here ({c.preference:g} vs {best.preference:g} points)"
    if c.quant.quality_rank < best.quant.quality_rank:
        return f"lower quality than {best.quant.id}"
    if c.kv.bytes_per_value < best.kv.bytes_per_value:
        return f"quantized KV cache ({c.kv.id}) not needed"
    if c.tp * c.pp > best.tp * best.pp:
        return f"same cost with fewer, larger replicas (TP {c.tp}): less redundancy"
    if c.perf and best.perf and c.perf.itl_p95_ms > best.perf.itl_p95_ms:
        return f"same cost, slower: ITL p95 {c.perf.itl_p95_ms:.1f} ms vs {best.perf.itl_p95_ms:.1f}"
    return "ranked lower: no better on any measure"


def _alternatives(ctx: Context, best: Candidate, ranked: list[Candidate]) -> list[Alternative]:
    out: list[Alternative] = []
    seen = set()
    for c in ranked:
        if c is best:
            continue
        key = (c.backend, c.quant.id, c.tp, c.pp, c.pool.device.id, c.devices)
        if key in seen:
            continue
        seen.add(key)
        out.append(Alternative(
            backend=c.backend, quantization=c.quant.id, tensor_parallel=c.tp, pipeline_parallel=c.pp,
            gpu=c.pool.device.id, replicas=c.replicas if c.feasible else None, feasible=c.feasible,
            rejected_because=_lost_because(ctx, c, best),
            ttft_p95_ms=_r(c.perf.ttft_p95_ms, 1) if c.perf else None,
            itl_p95_ms=_r(c.perf.itl_p95_ms, 2) if c.perf else None,
            throughput_tokens_per_s=_r(c.perf.throughput_tokens_per_s, 1) if c.perf else None,
            usd_per_hour=_r(c.usd_per_hour, 3) if c.feasible else None,
            sla_met=c.sla_met if c.feasible else None,
            per_gpu_total_gib=_r(c.mem.total_gib) if c.mem else None,
        ))
        if len(out) >= 15:
            break
    return out


def _explain(ctx: Context, c: Candidate) -> list[Explanation]:
    rows: list[Explanation] = []
    if c.mem:
        rows += [Explanation(quantity=q, value=v, formula=f) for q, v, f in c.mem.explain]
    if c.perf:
        rows += [Explanation(quantity=q, value=v, formula=f) for q, v, f in c.perf.explain]
        rows.append(Explanation(quantity="replicas", value=str(c.replicas), formula=_replica_sentence(ctx, c)))
        rows.append(Explanation(quantity="cost", value=f"{c.usd_per_hour:.2f} USD/h",
                                formula=f"{c.pool.device.price_usd_per_hour} USD/h × {c.devices} device(s) × {c.replicas} replica(s)"))
    return rows

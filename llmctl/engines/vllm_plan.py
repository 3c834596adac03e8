"""vLLM's planning hooks: Hugging Face formats, tensor/pipeline-parallel layouts, the memory budget
of `--gpu-memory-utilization`, and continuous batching in the performance model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmctl.calibrate.active import memory as measured_memory
from llmctl.candidates import Candidate, Context, weights_of
from llmctl.catalog import KvDtype, Quantization
from llmctl.errors import InputError
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.memory import hybrid_pages, vllm_defaults, vllm_memory
from llmctl.estimate.performance import Deployment
from llmctl.engines.sources import sources_for
from llmctl.estimate.weights import lookup_bytes_per_gpu, weight_bytes, weight_bytes_per_gpu
from llmctl.pools import Pool

GiB = 1024**3


def _checkpoint_known(ctx: Context) -> bool:
    """vLLM loads a Hugging Face checkpoint: a local folder, or a repository the plan can name."""
    m = ctx.model
    return m.kind != "gguf-file" and bool(m.path or m.hf_id or m.arch.hf_id)


def quant_options(ctx: Context, pool: Pool) -> list[Quantization]:
    cat, model = ctx.catalog, ctx.model
    if not _checkpoint_known(ctx):
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
    # int4 formats load only from a checkpoint quantized ahead of time: offered where one is listed
    if not model.path:
        for qid, repo in sources_for(model.arch.id).quantized.items():
            q = cat.find_quantization(qid)
            if repo and q and q not in opts and "vllm" in q.engines and (not nvidia or dev.cc_at_least(q.needs_compute_capability)):
                opts.append(q)
    return opts


def no_quant_reason(ctx: Context) -> str | None:
    if ctx.model.kind == "gguf-file":
        return "vLLM serves Hugging Face checkpoints; a GGUF file is for llama.cpp/Ollama"
    if not _checkpoint_known(ctx):
        return (f"vLLM serves Hugging Face checkpoints, and none is known for {ctx.model.reference}; "
                "name the repository as the model")
    return None


def tp_options(ctx: Context, pool: Pool) -> list[int]:
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


def candidates(ctx: Context, engine: str, pool: Pool, q: Quantization, kvs: list[KvDtype]) -> list[Candidate]:
    tools = tool_flags(ctx.model.arch.id, ctx.spec.needs)
    if isinstance(tools, str):
        return [Candidate(engine, q, kv, pool, reject=tools) for kv in kvs[:1]]
    ov = ctx.spec.overrides
    out: list[Candidate] = []
    total = weights_of(ctx, q)
    layouts = [(tp, 1) for tp in tp_options(ctx, pool)]
    if ov.pipeline_parallel:
        tp = ov.tensor_parallel or pool.per_node
        layouts = [(tp, ov.pipeline_parallel)]
    for kv in kvs:
        fitted = False
        # a quantized KV cache is only worth it when the full-precision one was short of room: when it
        # was not, this KV dtype's candidates are dropped below as soon as one fits, so the search stops there
        redundant = _kv_redundant(ctx, kv, out)
        tried = list(layouts)
        i = 0
        while i < len(tried) and not (redundant and fitted):
            tp, pp = tried[i]
            i += 1
            c = Candidate(engine, q, kv, pool, tp=tp, pp=pp, devices=tp * pp, weight_bytes_total=total)
            if tp > pool.per_node:
                c.reject = f"TP {tp} needs {tp} GPUs in one node; {pool.names[0]} has {pool.per_node}"
            elif pp > pool.nodes:
                c.reject = f"PP {pp} needs {pp} nodes of {pool.device.id}; the inventory has {pool.nodes}"
            else:
                memory(ctx, c)
                c.reject = c.reject or _source_problem(ctx, c)
            out.append(c)
            fitted = fitted or c.feasible
            # PP across nodes only when one node is not enough
            if i == len(tried) and not fitted and not ov.pipeline_parallel and tried[-1][1] == 1 and pool.nodes > 1:
                tried.extend((pool.per_node, pp) for pp in range(2, pool.nodes + 1)
                             if ctx.model.arch.num_hidden_layers >= pp)
        if fitted and redundant:
            out = [c for c in out if c.kv.id != kv.id]
    return out


def _kv_redundant(ctx: Context, kv: KvDtype, earlier: list[Candidate]) -> bool:
    """A quantized KV dtype the spec did not ask for, where every feasible candidate with another KV
    dtype (there is one) already holds the load's KV cache."""
    if kv.bytes_per_value >= 2 or ctx.spec.overrides.kv_cache_dtype:
        return False
    best_full = [c for c in earlier if c.kv.id != kv.id and c.feasible]
    return bool(best_full) and all(_kv_enough(ctx, c) for c in best_full)


def prequantized_repo(ctx: Context, quant: Quantization) -> str | None:
    """The listed checkpoint already in `quant` (vLLM detects its method from config.json)."""
    return None if ctx.model.path else sources_for(ctx.model.arch.id).checkpoint(quant.id)


def _source_problem(ctx: Context, c: Candidate) -> str | None:
    """Why vLLM could not load this candidate's weights from any known checkpoint, or None. The same
    for every candidate of a quantization, layout and GPU memory: worked out once per plan for each."""
    return ctx.once(("vllm source problem", c.quant.id, c.tp, c.pp, c.pool.capacity_gib),
                    lambda: _source_problem_of(ctx, c))


def _source_problem_of(ctx: Context, c: Candidate) -> str | None:
    m, q = ctx.model, c.quant
    if q.format != "hf" or q.id in ("BF16", "FP16") or m.hf_quantization == q.id or prequantized_repo(ctx, q):
        return None
    if q.vllm_quantization is None:
        return (f"no {q.id} checkpoint of {m.arch.id} is known, and vLLM cannot make one while loading; "
                "give a pre-quantized repository as the model")
    # quantized while loading: each GPU first holds its share of the 16-bit checkpoint
    full = weight_bytes_per_gpu(m.arch, weight_bytes(m.arch, _sixteen_bit(ctx)), c.tp, c.pp) / GiB
    util = ctx.spec.overrides.gpu_memory_utilization or _default_util()
    room = c.pool.capacity_gib * util
    if full > room:
        return (f"{q.id} is made while loading from the 16-bit checkpoint ({full:.1f} GiB per GPU), more than "
                f"the {room:.1f} GiB vLLM may use; no pre-quantized {q.id} repository of {m.arch.id} is known")
    return None


def _sixteen_bit(ctx: Context) -> Quantization:
    return ctx.catalog.quantization("BF16")


def _default_util() -> float:
    from llmctl.engines.vllm import default_gpu_memory_utilization

    return default_gpu_memory_utilization()


def tool_flags(model_id: str, needs: list[str] | tuple[str, ...]) -> dict[str, Any] | str:
    """vLLM's tool-calling settings for the model family, or why tools cannot be served."""
    if "tool_calling" not in needs:
        return {}
    src = sources_for(model_id)
    if not src.tool_call_parser:
        return f"no vLLM tool-call parser is known for {model_id} (--enable-auto-tool-choice needs one)"
    flags: dict[str, Any] = {"enable_auto_tool_choice": True, "tool_call_parser": src.tool_call_parser}
    if src.reasoning_parser:
        flags["reasoning_parser"] = src.reasoning_parser
    return flags


def _kv_enough(ctx: Context, c: Candidate) -> bool:
    per_request = ctx.spec.workload.prompt_tokens + ctx.spec.workload.output_tokens
    return c.mem is not None and c.mem.kv_cache_tokens >= min(ctx.spec.workload.concurrency, 256) * per_request


def _chunk_budget(ctx: Context, c: Candidate) -> int | None:
    """max_num_batched_tokens: the spec's override, else the planner's tuning, else None (the default)."""
    return ctx.spec.overrides.max_num_batched_tokens or c.tuning.get("max_num_batched_tokens")


def memory(ctx: Context, c: Candidate) -> None:
    ov = ctx.spec.overrides
    c.mem = vllm_memory(
        ctx.model.arch, weight_bytes_total=c.weight_bytes_total, gpu=c.pool.device, tp=c.tp, pp=c.pp,
        max_model_len=ctx.max_model_len, kv_dtype_bytes=c.kv.bytes_per_value,
        gpu_memory_utilization=ov.gpu_memory_utilization, max_num_seqs=ov.max_num_seqs,
        max_num_batched_tokens=_chunk_budget(ctx, c), capacity_gib=c.pool.capacity_gib,
    )
    _measured_kv(c)
    if not c.mem.fits:
        c.reject = c.mem.problems[0]


def tunings(ctx: Context, c: Candidate, budgets: tuple[int, ...]) -> list[dict[str, Any]]:
    """Smaller chunk budgets of the profile, when the inter-token latency is what binds at the default
    (a smaller budget lowers ITL and raises TTFT); none when the spec sets the budget itself."""
    itl = ctx.sla.get("itl_p95_ms")
    if ctx.spec.overrides.max_num_batched_tokens or c.perf is None or not itl:
        return []
    ttft = ctx.sla.get("ttft_p95_ms")
    if ttft and c.perf.ttft_p95_ms / ttft >= c.perf.itl_p95_ms / itl:
        return []
    default, _ = vllm_defaults(c.pool.device)
    return [{"max_num_batched_tokens": b} for b in sorted(budgets) if b < default]  # the lowest ITL first


def _measured_kv(c: Candidate) -> None:
    """The KV cache this engine reported at start-up on this device (a calibration overlay) replaces the
    estimate: its size in tokens and GiB, and the requests of max_model_len it holds."""
    m = measured_memory(c.backend, c.pool.device.id)
    if not m or c.mem is None or not c.mem.fits or not (m.get("kv_cache_tokens") or m.get("kv_cache_gib")):
        return
    est = c.mem
    tokens = int(m.get("kv_cache_tokens") or m["kv_cache_gib"] * GiB / max(est.kv_bytes_per_token, 1))
    gib = float(m.get("kv_cache_gib") or tokens * est.kv_bytes_per_token / GiB)
    per_request = est.kv_cache_tokens / est.max_concurrency if est.max_concurrency else 0
    c.mem = replace(est, kv_cache_tokens=tokens, kv_cache_gib=gib,
                    max_concurrency=tokens / per_request if per_request else est.max_concurrency,
                    warnings=[*est.warnings, f"KV cache: {tokens:,} tokens ({gib:g} GiB) as the engine reported at "
                              "start-up (calibration overlay), not the estimate"])


def deployment(ctx: Context, c: Candidate) -> Deployment:
    a, m = ctx.model.arch, c.mem
    assert m is not None
    per_request = ctx.spec.workload.prompt_tokens + ctx.spec.workload.output_tokens
    batched, seqs = vllm_defaults(c.pool.device)
    seqs = ctx.spec.overrides.max_num_seqs or seqs
    batched = _chunk_budget(ctx, c) or batched
    kv_tokens = m.kv_cache_tokens  # measured at start-up when a calibration says (_measured_kv)
    kv_limited = max(1, kv_tokens // max(per_request, 1))
    shape = kv_shape(a, dtype_bytes=c.kv.bytes_per_value, tp=c.tp, pp=c.pp)
    state_tokens = 0.0
    if shape.state_bytes_per_seq:  # hybrid: every running request also holds its linear-attention state
        block, _ = hybrid_pages(shape, ctx.max_model_len)
        state_tokens = shape.linear_layers * block * shape.bytes_per_layer_token / max(m.kv_bytes_per_token, 1)
        kv_limited = max(1, int(kv_tokens // (per_request + state_tokens)))
    return Deployment(
        arch=a, backend=c.backend, device=c.pool.device, tp=c.tp, pp=c.pp,
        weight_bytes_per_gpu=weight_bytes_per_gpu(a, c.weight_bytes_total, c.tp, c.pp),
        lookup_bytes_per_gpu=lookup_bytes_per_gpu(a, c.quant, c.tp, c.pp),
        kv_bytes_per_token=m.kv_bytes_per_token, max_batch=min(seqs, kv_limited),
        max_num_batched_tokens=batched, budget_includes_decode=True, paged_kv=True,
        max_num_seqs=seqs, kv_cache_tokens=kv_tokens, state_tokens=state_tokens, fp8_compute=c.quant.id == "FP8" and c.pool.device.cc_at_least("8.9"),
    )


def engine_args(ctx: Context, c: Candidate, default_utilization: float) -> dict[str, Any]:
    ov = ctx.spec.overrides
    batched, seqs = vllm_defaults(c.pool.device)
    tools = tool_flags(ctx.model.arch.id, ctx.spec.needs)
    args = {
        "tensor_parallel_size": c.tp,
        "pipeline_parallel_size": c.pp,
        "max_model_len": ctx.max_model_len,
        "gpu_memory_utilization": ov.gpu_memory_utilization or default_utilization,
        "max_num_seqs": ov.max_num_seqs or seqs,
        "max_num_batched_tokens": _chunk_budget(ctx, c) or batched,
        "dtype": "float16" if c.quant.id == "FP16" else "auto",
        # a pre-quantized checkpoint's method is read from its config.json; only on-the-fly needs the flag
        "quantization": None if prequantized_repo(ctx, c.quant) else c.quant.vllm_quantization,
        "kv_cache_dtype": c.kv.id,
        "enable_prefix_caching": "prefix_caching" in ctx.spec.needs or None,
        "enable_lora": "lora" in ctx.spec.needs or None,
        **(tools if isinstance(tools, dict) else {}),  # a str: the candidate was rejected with it
    }
    return {k: v for k, v in args.items() if v is not None}


def plan_source(ctx: Context, c: Candidate) -> str | None:
    m = ctx.model
    if m.path:
        return None
    return prequantized_repo(ctx, c.quant) or m.hf_id or m.arch.hf_id or m.reference


def layout_rationale(ctx: Context, c: Candidate) -> tuple[str, str]:
    assert c.mem is not None
    return "parallelism", (
        f"TP {c.tp}" + (f" × PP {c.pp} across {c.pp} nodes" if c.pp > 1 else "") +
        f": the smallest layout that fits {c.quant.id} weights with room for the KV cache "
        f"({c.mem.kv_cache_tokens} tokens ≈ {c.mem.max_concurrency:.1f} requests of {ctx.max_model_len})")

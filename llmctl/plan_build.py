"""Writing the Plan: the chosen candidate's numbers, the engine's settings, and the reasons — every
rule that fired, the SLA crossover, why each runner-up lost, and the arithmetic for `--explain`."""

from __future__ import annotations

import math
from collections import Counter

from llmctl.candidates import Candidate, Context, sla_checks
from llmctl.estimate.weights import count_params
from llmctl.plan import (
    Alternative,
    Cost,
    Explanation,
    GpuChoice,
    Memory,
    ModelInfo,
    Performance,
    PerGpuMemory,
    Plan,
    Rationale,
    Sla,
)
from llmctl.engines import all_engines, engine_names
from llmctl.term import count, num

GiB = 1024**3
HOURS_PER_MONTH = 730  # 8760 h / 12
ALTERNATIVES = 15  # runners-up a plan lists, one per alternative_group


def build_plan(ctx: Context, best: Candidate, ranked: list[Candidate], forced: list[str], feasible: bool = True) -> Plan:
    spec, model, _w = ctx.spec, ctx.model, ctx.spec.workload
    mem = best.mem
    perf = best.perf
    a = model.arch

    pc = count_params(a)
    rationale = _rationale(ctx, best, ranked)
    problems: list[str] = []
    if not feasible:
        problems = _problems(ranked)
    warnings = list(mem.warnings) if mem else []
    warnings += list(model.notes[1:])
    if ctx.sla_defaulted:
        warnings.append(f"no SLA in the spec: checked against the default ITL p95 ≤ {ctx.sla['itl_p95_ms']:.0f} ms (reading speed)")
    if feasible and not best.sla_met:
        warnings.append(_sla_miss(ctx, best))
    from llmctl.targets.registry import entry

    if best.pool.device.kind == "apple" and entry(spec.target).container:
        warnings.append(f"target {spec.target} on Apple Silicon: containers on macOS get no Metal GPU, so the "
                        "engine runs on the CPU, far slower than predicted here; use `target: local`")
    warnings += best.engine.plan_warnings(ctx, best)
    warnings += best.engine.serving_warnings(spec)
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
        gpu_layers=mem.gpu_layers if mem and best.engine.splits_layers else None,
        total_layers=mem.total_layers if mem and best.engine.splits_layers else None,
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
            reference=model.reference, id=a.id, hf_id=model.hf_id or a.hf_id, ollama_tag=best.engine.plan_model_tag(ctx, best),
            source=best.engine.plan_source(ctx, best),
            path=model.path, gated=model.gated, params_b=_r(pc.total / 1e9, 3), active_params_b=_r(pc.active / 1e9, 3),
            architecture=a.architecture, max_position_embeddings=a.max_position_embeddings,
        ),
        backend=best.backend, engine_version=(mem.engine_version if mem else None) or best.engine.profile.version,
        quantization=best.quant.id, kv_cache_dtype=best.kv.id,
        tensor_parallel=best.tp, pipeline_parallel=best.pp, replicas=best.replicas, max_model_len=ctx.max_model_len,
        gpu=GpuChoice(type=dev.id, kind=dev.kind, count_per_replica=best.devices if dev.kind != "cpu" else 0,
                      memory_gib=_r(best.pool.capacity_gib), nodes_per_replica=best.pp),
        engine_args=best.engine.engine_args(ctx, best), memory=memory, performance=performance,
        sla=Sla(met=bool(feasible and best.sla_met), checks=sla_checks(ctx, perf) if perf else []), cost=cost,
        needs=list(spec.needs), forced=forced, feasible=feasible, problems=problems, warnings=warnings,
        rationale=rationale, alternatives=_alternatives(ctx, best, ranked),
        explain=_explain(ctx, best),
    )
    return plan


def _sla_miss(ctx: Context, c: Candidate) -> str:
    """The SLA is not met: by how much, and the cheapest change that would meet it."""
    misses = [ch for ch in sla_checks(ctx, c.perf) if not ch.met]
    by = "; ".join(f"{ch.metric} {_num(ch.predicted)} vs {_num(ch.target)} ({_over(ch)})" for ch in misses)
    users = ctx.spec.workload.concurrency
    if c.max_conc_sla > 0:
        need = math.ceil(users / c.max_conc_sla)
        more = need * c.devices - c.pool.devices
        fix = (f"one replica meets it up to {count(c.max_conc_sla, 'concurrent user')}: plan for at most "
               f"{count(c.max_conc_sla * c.replicas, 'concurrent user')} on this hardware, or add {more} × {c.pool.device.id} "
               f"for {need} replicas")
    else:
        fix = "even one user misses it on this hardware: a smaller model, a faster GPU, or a looser SLA"
    return f"the SLA is NOT met (the best plan is shown): {by}. Cheapest change: {fix}"


def _num(x: float) -> str:
    """A measure for a sentence: 58.97, 2,000, 5,704,470 (never 5.70447e+06)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _over(ch) -> str:
    if ch.metric == "output_tokens_per_second":
        return f"{ch.target / max(ch.predicted, 1e-9):.1f}× too slow"
    return f"{ch.predicted / ch.target:.1f}× the target"


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def _problems(ranked: list[Candidate]) -> list[str]:
    seen: list[str] = []
    for c in ranked:
        if c.reject:
            line = f"{c.label()}: {c.reject}"
            if line not in seen:
                seen.append(line)
    return seen[:12]


def _rationale(ctx: Context, best: Candidate, ranked: list[Candidate]) -> list[Rationale]:
    _spec, _w = ctx.spec, ctx.spec.workload
    out: list[Rationale] = []
    dev = best.pool.device
    out.append(Rationale(rule="hardware", detail=_hardware_sentence(ctx)))
    for engine in all_engines():
        why = engine.unavailable_on(dev)
        if why and engine.name != best.backend:
            out.append(Rationale(rule=f"{engine.name} ruled out", detail=why))
    for lean in ctx.leans:
        out.append(Rationale(rule=lean.rule, detail=lean.detail))
    cross = _crossover(ctx, best, ranked)
    if cross:
        out.append(Rationale(rule="SLA crossover", detail=cross))
    if best.mem is not None:  # None: rejected before any estimate (the problems say why)
        rule, detail = best.engine.layout_rationale(ctx, best)
        out.append(Rationale(rule=rule, detail=detail))
    same = [c for c in ranked if c.pool is best.pool and c.backend == best.backend]  # the choice's engine and hardware
    others = [c for c in same if c.feasible and c.quant.id != best.quant.id]
    better = [c for c in same if c.quant.quality_rank > best.quant.quality_rank]
    detail = f"{best.quant.id} ({best.quant.bits_per_weight:g} bits/weight, {best.weight_bytes_total / GiB:.1f} GiB)"
    if better:
        b = max(better, key=lambda c: c.quant.quality_rank)
        won = "meets the SLA at this cost" if best.sla_met else "comes closest to the SLA"
        detail += ": the highest quality that " + ("fits" if not b.feasible else won) + \
                  f"; {b.quant.id} " + (f"does not: {b.reject}" if not b.feasible else _lost_because(ctx, b, best))
    elif others:
        detail += ": the highest quality this engine offers"
    out.append(Rationale(rule="quantization", detail=detail))
    if best.kv.bytes_per_value < 2:
        out.append(Rationale(rule="KV cache dtype", detail=f"{best.kv.id} KV cache: full precision left too little room"))
    if best.tuning_note:
        out.append(Rationale(rule="engine tuning", detail=best.tuning_note))
    out.append(Rationale(rule="replicas", detail=_replica_sentence(ctx, best)))
    return out


def _hardware_sentence(ctx: Context) -> str:
    parts = []
    pools_of = Counter(p.device.id for p in ctx.pools)
    shared = {d for d, n in pools_of.items() if n > 1}
    for p in ctx.pools:
        if p.device.kind == "cpu":
            part = f"{p.nodes}× CPU node ({p.system_ram_gib:g} GB RAM, {p.device.id})"
        elif p.device.kind == "apple":
            part = f"{p.nodes}× {p.device.name} ({p.capacity_gib:.0f} GiB of unified memory usable by the GPU)"
        else:
            ram = f", {p.system_ram_gib:g} GB RAM" if p.device.id in shared and p.system_ram_gib else ""
            part = f"{count(p.nodes, 'node')} × {p.per_node}× {p.device.id} ({p.capacity_gib:.1f} GiB each{ram})"
        # nodes of one device type that differ in memory are separate pools: say which is which
        parts.append(part + (f" [{', '.join(p.names)}]" if p.device.id in shared else ""))
    return "; ".join(parts)


def _crossover(ctx: Context, best: Candidate, ranked: list[Candidate]) -> str | None:
    """Where the engine that lost would stop meeting the SLA, in users per replica."""
    w = ctx.spec.workload
    sla = ", ".join(f"{k.replace('_p95_ms', ' p95 ≤ ').replace('output_tokens_per_second', 'tokens/s ≥ ')}{num(v)}"
                    + (" ms" if k.endswith("_ms") else "") for k, v in ctx.sla.items())
    lines = []
    for backend in engine_names():
        if backend == best.backend:
            continue
        alts = [c for c in ranked if c.pool is best.pool and c.backend == backend and c.feasible]
        if not alts:
            continue
        alt = max(alts, key=lambda c: (c.max_conc_sla, c.quant.quality_rank))
        lines.append(f"{backend} on {alt.devices}× {alt.pool.device.id} ({alt.quant.id}) meets {sla} up to "
                     f"{count(alt.max_conc_sla, 'concurrent user')} per replica")
    if not lines:
        return None
    return "; ".join(lines) + (f"; {best.backend} ({best.quant.id}) up to {best.max_conc_sla}. You asked for "
                               f"{w.concurrency} → {best.backend}, {count(best.replicas, 'replica')}")


def _replica_sentence(ctx: Context, c: Candidate) -> str:
    w = ctx.spec.workload
    if ctx.spec.overrides.replicas:
        return f"{count(c.replicas, 'replica')}, forced by overrides.replicas"
    if c.max_conc_sla == 0:
        return (f"{count(c.replicas, 'replica')}: even one user misses the SLA on this hardware "
                "(see warnings); more replicas only add capacity")
    return (f"one replica serves {count(c.max_conc_sla, 'concurrent user')} within the SLA; {count(w.concurrency, 'user')} → "
            f"ceil({w.concurrency}/{c.max_conc_sla}) = {math.ceil(w.concurrency / c.max_conc_sla)}"
            + (f", capped at the {c.replicas} the inventory holds" if c.replicas < math.ceil(w.concurrency / c.max_conc_sla) else "")
            + f" → {c.replicas}")


def _lost_because(ctx: Context, c: Candidate, best: Candidate) -> str:
    if not c.feasible:
        return c.reject or "infeasible"
    if not c.sla_met and (best.sla_met or c.violation > best.violation):
        return "misses the SLA: " + "; ".join(
            f"{ch.metric} {_num(ch.predicted)} vs {_num(ch.target)}" for ch in sla_checks(ctx, c.perf) if not ch.met)
    if c.usd_per_hour > best.usd_per_hour + 1e-9:
        return f"costs {c.usd_per_hour:.2f} USD/h vs {best.usd_per_hour:.2f} ({count(c.replicas, 'replica')} × {count(c.devices, 'device')})"
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


def alternative_group(c: Candidate) -> tuple:
    """Runners-up that differ only in this much are listed once (the best-ranked of them)."""
    return (c.backend, c.quant.id, c.tp, c.pp, c.pool.device.id, c.devices)


def _alternatives(ctx: Context, best: Candidate, ranked: list[Candidate]) -> list[Alternative]:
    out: list[Alternative] = []
    seen = set()
    for c in ranked:
        if c is best:
            continue
        key = alternative_group(c)
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
        if len(out) >= ALTERNATIVES:
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
                                formula=f"{c.pool.device.price_usd_per_hour} USD/h × {count(c.devices, 'device')} × {count(c.replicas, 'replica')}"))
    return rows

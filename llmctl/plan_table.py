"""A Plan as text for a terminal: the decision, where every GiB goes, latency, cost, and why."""

from __future__ import annotations

from tabulate import tabulate

from llmctl.engines import get_engine
from llmctl.plan import Plan


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms")


def format_plan(plan: Plan, *, explain: bool = False) -> str:
    out: list[str] = []
    m, g, mem, perf = plan.model, plan.gpu, plan.memory, plan.performance
    status = "" if plan.feasible else "  [CANNOT WORK — see problems]"
    out.append(f"plan for {plan.name!r} ({plan.environment}, target {plan.target}){status}")
    engine = get_engine(plan.backend)
    shown_tag = m.ollama_tag if engine.serves_by_tag else None
    ref = m.reference + (f" → {shown_tag}" if shown_tag and shown_tag != m.reference else "")
    out.append(f"  model     {ref}  [{m.id}, {m.params_b:g} B params"
               + (f", {m.active_params_b:g} B active" if m.active_params_b < m.params_b else "") + "]")
    where = "CPU" if g.kind == "cpu" else f"{g.count_per_replica}× {g.type}"
    par = engine.layout_summary(plan)
    out.append(f"  decision  {plan.backend} · {plan.quantization} · KV {plan.kv_cache_dtype} · {par} · "
               f"{plan.replicas} replica(s) of {where} · max_model_len {plan.max_model_len}")
    out.append("")
    p = mem.per_gpu_gib
    head = "per GPU (GiB)" if g.kind != "cpu" else "in RAM (GiB)"
    rows = [[head, p.weights, p.kv_cache, p.activation, p.overhead, p.total, p.capacity]]
    out.append(tabulate(rows, headers=["memory", "weights", "kv_cache", "activation", "overhead", "total", "capacity"],
                        floatfmt=".2f"))
    extra = f"  KV cache holds {mem.kv_cache_tokens:,} tokens ≈ {mem.max_concurrency:g} full-length requests"
    if mem.offloaded_to_cpu_gib:
        extra += f"; {mem.offloaded_to_cpu_gib:.2f} GiB offloaded to CPU ({mem.gpu_layers}/{mem.total_layers} layers on GPU)"
    extra += f"; replica total {mem.total_gib:.2f} GiB"
    out.append(extra)
    out.append("")
    if perf.ttft_p95_ms is not None:
        out.append(tabulate(
            [[_ms(perf.ttft_p50_ms), _ms(perf.ttft_p95_ms), _ms(perf.itl_p50_ms), _ms(perf.itl_p95_ms),
              f"{perf.output_tokens_per_s_per_user:.1f}", f"{perf.throughput_tokens_per_s:,.0f}",
              perf.max_concurrency_within_sla]],
            headers=["TTFT p50", "TTFT p95", "ITL p50", "ITL p95", "tok/s per user", "tok/s per replica",
                     "users/replica in SLA"]))
        out.append("")
    checks = [[c.metric, c.target, c.predicted, "PASS" if c.met else "FAIL"] for c in plan.sla.checks]
    if checks:
        out.append(tabulate(checks, headers=["SLA", "target", "predicted", ""]))
    c = plan.cost
    per_m = f", {c.usd_per_million_tokens:.3f} USD per million output tokens" if c.usd_per_million_tokens is not None else ""
    out.append(f"  cost      {c.usd_per_hour:.2f} USD/h, {c.usd_per_month:,.0f} USD/month{per_m}")
    out.append("")
    out.append("why:")
    for r in plan.rationale:
        out.append(f"  - {r.rule}: {r.detail}")
    if plan.problems:
        out.append("")
        out.append("problems:")
        out.extend(f"  ! {pr}" for pr in plan.problems)
    if plan.warnings:
        out.append("")
        out.append("warnings:")
        out.extend(f"  ! {w}" for w in plan.warnings)
    if plan.alternatives:
        out.append("")
        out.append("alternatives:")
        rows = [[a.backend, a.quantization, a.tensor_parallel if get_engine(a.backend).tensor_parallel else "-", a.gpu,
                 a.replicas or "-", _ms(a.itl_p95_ms) if a.itl_p95_ms else "-",
                 f"{a.usd_per_hour:.2f}" if a.usd_per_hour is not None else "-", _short(a.rejected_because)]
                for a in plan.alternatives[:8]]
        out.append(tabulate(rows, headers=["engine", "quant", "TP", "GPU", "replicas", "ITL p95", "USD/h", "why not"]))
    if explain:
        out.append("")
        out.append("arithmetic:")
        out.append(tabulate([[e.quantity, e.value, e.formula] for e in plan.explain],
                            headers=["quantity", "value", "how"], maxcolwidths=[None, None, 90]))
    return "\n".join(out)


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"

"""A Plan as text for a terminal: the decision, where every GiB goes, latency, cost, and why."""

from __future__ import annotations

from llmctl.engines import get_engine
from llmctl.plan import Plan
from llmctl.term import count, num, paint, table, terminal_width, verdict_word


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms")


def format_plan(plan: Plan, *, explain: bool = False, wide: bool = False) -> str:
    out: list[str] = []
    m, g, mem, perf = plan.model, plan.gpu, plan.memory, plan.performance
    status = "" if plan.feasible else "  " + paint("[CANNOT WORK — see problems]", "fail")
    out.append(f"plan for {plan.name!r} ({plan.environment}, target {plan.target}){status}")
    engine = get_engine(plan.backend)
    shown_tag = m.ollama_tag if engine.serves_by_tag else None
    ref = m.reference + (f" → {shown_tag}" if shown_tag and shown_tag != m.reference else "")
    out.append(f"  model     {ref}  [{m.id}, {m.params_b:g} B params"
               + (f", {m.active_params_b:g} B active" if m.active_params_b < m.params_b else "") + "]")
    where = "CPU" if g.kind == "cpu" else f"{g.count_per_replica}× {g.type}"
    par = engine.layout_summary(plan)
    width = None if wide else terminal_width()
    parts = [f"{plan.backend} {plan.engine_version}" if plan.engine_version else plan.backend, plan.quantization, f"KV {plan.kv_cache_dtype}", par, f"{count(plan.replicas, 'replica')} of {where}",
             f"max_model_len {plan.max_model_len}"]
    out.append(_joined("  decision  ", parts, " · ", width))
    out.append("")
    p = mem.per_gpu_gib
    head = "per GPU" if g.kind != "cpu" else "in RAM"
    rows = [[head, *(f"{x:.2f}" for x in (p.weights, p.kv_cache, p.activation, p.overhead, p.total, p.capacity))]]
    out.append(table(rows, ["GiB", "weights", "KV cache", "activation", "overhead", "total", "capacity"], wide=wide,
                     colalign=("left", *["right"] * 6)))
    extra = [f"KV cache holds {count(mem.kv_cache_tokens, 'token')} ≈ {count(mem.max_concurrency, 'full-length request')}"]
    if mem.offloaded_to_cpu_gib:
        extra.append(f"{mem.offloaded_to_cpu_gib:.2f} GiB offloaded to CPU ({mem.gpu_layers}/{mem.total_layers} layers on GPU)")
    extra.append(f"replica total {mem.total_gib:.2f} GiB")
    out.append(_joined("  ", extra, "; ", width))
    out.append("")
    if perf.ttft_p95_ms is not None:
        out.append(table(
            [[_ms(perf.ttft_p50_ms), _ms(perf.ttft_p95_ms), _ms(perf.itl_p50_ms), _ms(perf.itl_p95_ms),
              f"{perf.output_tokens_per_s_per_user:.1f}", f"{perf.throughput_tokens_per_s:,.0f}",
              num(perf.max_concurrency_within_sla)]],
            ["TTFT p50", "TTFT p95", "ITL p50", "ITL p95", "tok/s per user", "tok/s per replica",
             "users/replica in SLA"], wide=wide, colalign=["right"] * 7))
        out.append("")
    checks = [[c.metric, num(c.target), num(c.predicted), verdict_word("PASS" if c.met else "FAIL")]
              for c in plan.sla.checks]
    if checks:
        out.append(table(checks, ["SLA", "target", "predicted", ""], wide=wide,
                         colalign=("left", "right", "right", "left")))
    c = plan.cost
    costs = [f"{c.usd_per_hour:.2f} USD/h", f"{c.usd_per_month:,.0f} USD/month"]
    if c.usd_per_million_tokens is not None:
        costs.append(f"{c.usd_per_million_tokens:.3f} USD per million output tokens")
    out.append(_joined("  cost      ", costs, ", ", width))
    out.append("")
    out.append("why:")
    for r in plan.rationale:
        out.append(_bullet("-", f"{r.rule}: {r.detail}", width))
    if plan.problems:
        out.append("")
        out.append("problems:")
        out.extend(_bullet(paint("!", "fail"), pr, width) for pr in plan.problems)
    if plan.warnings:
        out.append("")
        out.append("warnings:")
        out.extend(_bullet(paint("!", "warn"), w, width) for w in plan.warnings)
    if plan.alternatives:
        out.append("")
        out.append("alternatives:")
        rows = [[a.backend, a.quantization, a.tensor_parallel if get_engine(a.backend).tensor_parallel else "-", a.gpu,
                 a.replicas or "-", _ms(a.itl_p95_ms) if a.itl_p95_ms else "-",
                 f"{a.usd_per_hour:.2f}" if a.usd_per_hour is not None else "-",
                 a.rejected_because if wide else _short(a.rejected_because)]
                for a in plan.alternatives[:8]]
        out.append(table(rows, ["engine", "quant", "TP", "GPU", "replicas", "ITL p95", "USD/h", "why not"],
                         wrap=["why not"], optional=["USD/h", "replicas", "TP"], wide=wide,
                         colalign=("left", "left", "right", "left", "right", "right", "right", "left")))
    if explain:
        out.append("")
        out.append("arithmetic:")
        out.append(table([[e.quantity, e.value, e.formula] for e in plan.explain], ["quantity", "value", "how"],
                         wrap=["how", "value"], wide=wide))
    return "\n".join(out)


def _joined(lead: str, parts: list[str], sep: str, width: int | None) -> str:
    """`lead` + parts joined by `sep`, continued on indented lines when wider than `width`."""
    lines, line = [], lead
    for i, part in enumerate(parts):
        piece = part if i == 0 else sep + part
        tail = len(sep.rstrip()) if i < len(parts) - 1 else 0  # a wrapped line ends in the separator
        if width is not None and i > 0 and len(line) + len(piece) + tail > width:
            lines.append(line + sep.rstrip())
            line = " " * len(lead) + part
        else:
            line += piece
    return "\n".join([*lines, line])


def _bullet(mark: str, text: str, width: int | None) -> str:
    """`  - text`, wrapped to `width` with the continuation lines indented under the text."""
    if width is None or len(text) + 4 <= width:
        return f"  {mark} {text}"
    import textwrap

    return textwrap.fill(text, width=max(40, width), initial_indent=f"  {mark} ", subsequent_indent="    ",
                         break_on_hyphens=False, break_long_words=False)


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"

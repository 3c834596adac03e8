"""`llmctl plan --sweep VAR=V1,V2,…` and `llmctl plan --compare`.

The sweep RE-PREDICTS THE CHOSEN CANDIDATE at each value: the engine, quantization, layout and
slots the plan picked stay fixed, and the performance model is asked how one replica of it behaves
as the load changes. That is the curve people want when they ask "what happens at 4× the users?";
the column `replicas for SLA` says how many such replicas would keep every user within the SLA.
(Re-planning at each value would change the deployment under the curve.)

`--chart out.svg|out.html` writes the curves as a self-contained SVG (hand-written, no scripts, no
network); the HTML version wraps the same SVG with the table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from llmctl.errors import InputError
from llmctl.svg_chart import check_chart_path, panel_frame, scale, svg_head, write_chart_file
from llmctl.typed import dump, updated

# what --sweep may vary, and the type of its values
SWEEP_VARS = {
    "concurrency": int,
    "prompt_tokens": int,
    "output_tokens": int,
    "requests_per_minute": float,
}
MAX_POINTS = 64
SWEEP_SCHEMA = "llmctl.sweep/v1"
COMPARE_SCHEMA = "llmctl.compare/v1"


@dataclass
class SweepPoint:
    value: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    tokens_per_s_per_user: float
    tokens_per_s_per_replica: float
    batch: int
    queued: int
    sla_met: bool
    replicas_for_sla: int | None  # None: even one user misses the SLA
    usd_per_million_tokens: float | None
    note: str = ""


# --------------------------------------------------------------------------- parsing


def parse_sweep(arg: str) -> tuple[str, list[float]]:
    where = "--sweep"
    if "=" not in arg:
        raise InputError(f"expected VAR=V1,V2,… (e.g. concurrency=1,4,16,64), got {arg!r}", where=where)
    var, _, values = arg.partition("=")
    var = var.strip().replace("-", "_")
    if var not in SWEEP_VARS:
        import difflib

        close = difflib.get_close_matches(var, list(SWEEP_VARS), n=1)
        raise InputError(f"cannot sweep {var!r}" + (f" — did you mean {close[0]!r}?" if close else ""),
                         where=where, hint="sweepable: " + ", ".join(SWEEP_VARS))
    kind = SWEEP_VARS[var]
    out: list[float] = []
    for raw in values.split(","):
        raw = raw.strip()
        if not raw:
            continue
        try:
            v = kind(raw)
        except ValueError:
            raise InputError(f"{var} values must be {'whole numbers' if kind is int else 'numbers'}; got {raw!r}",
                             where=where) from None
        if not v > 0 or (isinstance(v, float) and not math.isfinite(v)):
            raise InputError(f"{var} values must be positive; got {raw!r}", where=where)
        if kind is int and v > 10_000_000:
            raise InputError(f"{var} value {raw} is too large", where=where)
        out.append(v)
    if not out:
        raise InputError(f"give at least one value for {var}", where=where)
    if len(out) > MAX_POINTS:
        raise InputError(f"at most {MAX_POINTS} values, got {len(out)}", where=where)
    return var, sorted(set(out))


# --------------------------------------------------------------------------- the chosen candidate


def plan_with_candidates(spec, spec_path: str):
    """make_plan's Plan plus its context and ranked candidates (the chosen one first)."""
    from llmctl.planner import Trace, make_plan

    trace = Trace()
    plan = make_plan(spec, base_dir=Path(spec_path).resolve().parent, trace=trace)
    return plan, trace.context, trace.ranked


def _matches(c, plan) -> bool:
    return (c.feasible and c.backend == plan.backend and c.quant.id == plan.quantization and c.kv.id == plan.kv_cache_dtype
            and c.tp == plan.tensor_parallel and c.pp == plan.pipeline_parallel and c.pool.device.id == plan.gpu.type)


def run_sweep(spec, spec_path: str, sweep_arg: str, *, fmt: str = "table", chart: str | None = None,
              wide: bool = False):
    from llmctl import planner as P
    from llmctl.candidates import sla_checks

    var, values = parse_sweep(sweep_arg)
    if chart:
        check_chart_path(chart)
    plan, ctx, ranked = plan_with_candidates(spec, spec_path)
    if not plan.feasible or ctx is None:
        raise InputError("the plan cannot work, so there is nothing to sweep; run `llmctl plan` to see why",
                         where="--sweep")
    chosen = next((c for c in ranked if _matches(c, plan)), None) or next(c for c in ranked if c.feasible)
    w = spec.workload
    per_replica = math.ceil(w.concurrency / max(plan.replicas, 1))
    points: list[SweepPoint] = []
    for v in values:
        wl = updated(w, **{var: v})
        note = ""
        if wl.prompt_tokens + wl.output_tokens > ctx.max_model_len:
            points.append(SweepPoint(v, *([math.nan] * 6), 0, 0, False, None, None,
                                     note=f"exceeds max_model_len {ctx.max_model_len}"))
            continue
        vctx = ctx.with_workload(wl)
        dep = P.deployment(vctx, chosen)
        users = int(v) if var == "concurrency" else per_replica
        est = P.predict_at(vctx, dep, users)
        checks = sla_checks(vctx, est)
        met = all(ch.met for ch in checks)
        total_users = int(v) if var == "concurrency" else w.concurrency
        max_ok = P.max_concurrency_within_sla(vctx, dep, max(total_users, 1))
        replicas = math.ceil(total_users / max_ok) if max_ok else None
        usd_h = chosen.pool.device.price_usd_per_hour * chosen.devices
        tps = est.throughput_tokens_per_s
        per_m = usd_h / (tps * 3600) * 1e6 if tps > 0 else None
        if est.overloaded:
            note = "arrivals exceed what one replica serves"
        elif est.queued:
            note = f"{est.queued} waiting for a slot"
        points.append(SweepPoint(
            value=v, ttft_p50_ms=est.ttft_p50_ms, ttft_p95_ms=est.ttft_p95_ms, itl_p50_ms=est.itl_p50_ms,
            itl_p95_ms=est.itl_p95_ms, tokens_per_s_per_user=est.output_tokens_per_s_per_user,
            tokens_per_s_per_replica=tps, batch=est.batch, queued=est.queued, sla_met=met,
            replicas_for_sla=replicas, usd_per_million_tokens=per_m, note=note,
        ))
    label = chosen.label()
    fixed = "" if var == "concurrency" else f" at {per_replica} concurrent user(s) per replica"
    title = f"{label}: one replica as {var} varies{fixed} (the chosen candidate re-predicted at each value)"
    if chart:
        _write_chart(chart, title, var, points, ctx.sla)
    if fmt in ("json", "yaml", "data"):
        doc = {
            "schema": SWEEP_SCHEMA, "sweep": var, "method": "re-predict the chosen candidate (one replica) at each value",
            "candidate": {"backend": chosen.backend, "quantization": chosen.quant.id, "kv_cache_dtype": chosen.kv.id,
                          "tensor_parallel": chosen.tp, "pipeline_parallel": chosen.pp, "gpu": chosen.pool.device.id,
                          "devices_per_replica": chosen.devices, "num_parallel": chosen.num_parallel},
            "sla": ctx.sla, "chart": chart,
            "points": [_point_json(p) for p in points],
        }
        return _serialize(doc, fmt)
    return _sweep_table(title, var, points, ctx.sla, wide=wide) + (f"\nchart written to {chart}" if chart else "")


def _point_json(p: SweepPoint) -> dict:
    d = {k: (None if isinstance(v, float) and math.isnan(v) else (round(v, 2) if isinstance(v, float) else v))
         for k, v in p.__dict__.items()}
    return d


def _fmt_ms(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _sweep_table(title: str, var: str, points: list[SweepPoint], sla: dict, *, wide: bool = True) -> str:
    from llmctl.term import table

    rows = []
    for p in points:
        rows.append([f"{p.value:g}", _fmt_ms(p.ttft_p50_ms), _fmt_ms(p.ttft_p95_ms), _fmt_ms(p.itl_p50_ms),
                     _fmt_ms(p.itl_p95_ms), "-" if math.isnan(p.tokens_per_s_per_user) else f"{p.tokens_per_s_per_user:.1f}",
                     "-" if math.isnan(p.tokens_per_s_per_replica) else f"{p.tokens_per_s_per_replica:,.0f}",
                     p.batch, "yes" if p.sla_met else "NO",
                     "-" if p.replicas_for_sla is None else p.replicas_for_sla,
                     "-" if p.usd_per_million_tokens is None else f"{p.usd_per_million_tokens:.3f}", p.note])
    sla_text = ", ".join(f"{k} {'≥' if k == 'output_tokens_per_second' else '≤'} {v:g}" for k, v in sla.items())
    head = [var, "TTFT p50 ms", "TTFT p95 ms", "ITL p50 ms", "ITL p95 ms", "tok/s/user", "tok/s/replica",
            "batch", "SLA", "replicas for SLA", "USD/M tok", "note"]
    body = table(rows, head, wrap=["note"], optional=["USD/M tok", "TTFT p50 ms", "ITL p50 ms", "batch", "tok/s/user",
                                                      "note"], wide=wide)
    from llmctl.term import terminal_width

    width = None if wide else terminal_width()
    if width:
        import textwrap

        title = textwrap.fill(title, width=max(40, width), break_on_hyphens=False)
    return f"{title}\nSLA: {sla_text}\n\n" + body


# --------------------------------------------------------------------------- chart


def _write_chart(chart: str, title: str, var: str, points: list[SweepPoint], sla: dict) -> None:
    write_chart_file(chart, title, chart_svg(title, var, points, sla), _sweep_table(title, var, points, sla, wide=True))


def chart_svg(title: str, var: str, points: list[SweepPoint], sla: dict) -> str:
    """Two panels: latency (TTFT p95, ITL p95, SLA targets dashed) and throughput, against `var`."""
    from html import escape

    pts = [p for p in points if not math.isnan(p.itl_p95_ms)]
    width, height, margin = 860, 380, 60
    panel_w = (width - 3 * margin) / 2
    xs = [p.value for p in pts] or [1.0]
    log_x = len(xs) > 1 and max(xs) / max(min(xs), 1e-9) >= 10
    out = svg_head(width, height, title[:140])

    def panel(x0: float, series: list[tuple[str, str, list[float]]], ylabel: str, hlines: list[tuple[str, float, str]]):
        top, bottom = 40, height - 50
        fx, xlo, xhi = scale(xs, x0, x0 + panel_w, log_x)
        yvals = [v for _, _, s in series for v in s if math.isfinite(v)] + [v for _, v, _ in hlines]
        pos = [v for v in yvals if v > 0] or [1.0]
        log_y = max(pos) / min(pos) >= 30
        fy, ylo, yhi = scale(pos if log_y else [0.0, *pos], bottom, top, log_y)
        panel_frame(out, x0=x0, width=panel_w, top=top, bottom=bottom, label_y=height - 12,
                    x_axis=(fx, xlo, xhi, log_x), y_axis=(fy, ylo, yhi, log_y), xlabel=var, ylabel=ylabel, x_marks=True)
        for name, value, color in hlines:
            Y = fy(value)
            out.append(f'<line x1="{x0}" y1="{Y:.1f}" x2="{x0 + panel_w}" y2="{Y:.1f}" stroke="{color}" '
                       f'stroke-dasharray="5,4"/><text x="{x0 + panel_w - 4}" y="{Y - 4:.1f}" text-anchor="end" '
                       f'fill="{color}">{escape(name)}</text>')
        for i, (name, color, s) in enumerate(series):
            coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in zip(xs, s) if y > 0 or not log_y)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, y in zip(xs, s):
                if y > 0 or not log_y:
                    out.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3" fill="{color}">'
                               f'<title>{escape(name)} at {x:g}: {y:.3g}</title></circle>')
            out.append(f'<rect x="{x0 + 8}" y="{top + 8 + 14 * i}" width="10" height="3" fill="{color}"/>'
                       f'<text x="{x0 + 22}" y="{top + 12 + 14 * i}">{escape(name)}</text>')

    lat = [("TTFT p95 ms", "#d62728", [p.ttft_p95_ms for p in pts]), ("ITL p95 ms", "#1f77b4", [p.itl_p95_ms for p in pts])]
    h = []
    if "ttft_p95_ms" in sla:
        h.append((f"TTFT SLA {sla['ttft_p95_ms']:g}", float(sla["ttft_p95_ms"]), "#d62728"))
    if "itl_p95_ms" in sla:
        h.append((f"ITL SLA {sla['itl_p95_ms']:g}", float(sla["itl_p95_ms"]), "#1f77b4"))
    panel(margin, lat, "latency, ms", h)
    thr = [("tokens/s per replica", "#2ca02c", [p.tokens_per_s_per_replica for p in pts]),
           ("tokens/s per user", "#9467bd", [p.tokens_per_s_per_user for p in pts])]
    panel(2 * margin + panel_w, thr, "output tokens/s", [])
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- compare


def _serialize(doc: dict, fmt: str):
    if fmt == "data":
        return doc
    if fmt == "json":
        return json.dumps(doc, indent=2)
    from llmctl.fileio import to_yaml

    return to_yaml(doc).rstrip("\n")


def compare_table(plan, *, fmt: str = "table", limit: int = 8, explain: bool = False, wide: bool = False):
    """The chosen plan and the best runners-up side by side (with `explain`, the chosen plan's arithmetic)."""
    rows = [{
        "rank": 1, "chosen": True, "backend": plan.backend, "quantization": plan.quantization,
        "tensor_parallel": plan.tensor_parallel, "pipeline_parallel": plan.pipeline_parallel, "gpu": plan.gpu.type,
        "replicas": plan.replicas, "memory_per_gpu_gib": plan.memory.per_gpu_gib.total,
        "ttft_p95_ms": plan.performance.ttft_p95_ms, "itl_p95_ms": plan.performance.itl_p95_ms,
        "throughput_tokens_per_s": plan.performance.throughput_tokens_per_s,
        "usd_per_hour": plan.cost.usd_per_hour, "usd_per_month": plan.cost.usd_per_month,
        "usd_per_million_tokens": plan.cost.usd_per_million_tokens, "sla_met": plan.sla.met, "why_not": "",
    }]
    feasible = [a for a in plan.alternatives if a.feasible]
    others = [a for a in plan.alternatives if not a.feasible]
    for a in (feasible + others)[: max(0, limit - 1)]:
        rows.append({
            "rank": len(rows) + 1, "chosen": False, "backend": a.backend, "quantization": a.quantization,
            "tensor_parallel": a.tensor_parallel, "pipeline_parallel": a.pipeline_parallel, "gpu": a.gpu,
            "replicas": a.replicas, "memory_per_gpu_gib": a.per_gpu_total_gib, "ttft_p95_ms": a.ttft_p95_ms,
            "itl_p95_ms": a.itl_p95_ms, "throughput_tokens_per_s": a.throughput_tokens_per_s,
            "usd_per_hour": a.usd_per_hour,
            "usd_per_month": round(a.usd_per_hour * 730, 2) if a.usd_per_hour is not None else None,  # 8760 h / 12
            "usd_per_million_tokens": (round(a.usd_per_hour / (a.throughput_tokens_per_s * a.replicas * 3600) * 1e6, 3)
                                       if a.usd_per_hour and a.throughput_tokens_per_s and a.replicas else None),
            "sla_met": a.sla_met, "why_not": a.rejected_because,
        })
    if fmt in ("json", "yaml", "data"):
        doc = {"schema": COMPARE_SCHEMA, "name": plan.name, "candidates": rows}
        if explain:
            doc["explain"] = [dump(e) for e in plan.explain]
        return _serialize(doc, fmt)
    def v(x, f="{:g}"):
        return "-" if x is None else f.format(x)

    table = [[("→ " if r["chosen"] else "  ") + r["backend"], r["quantization"],
              f"TP{r['tensor_parallel']}" + (f"×PP{r['pipeline_parallel']}" if r["pipeline_parallel"] > 1 else ""),
              r["gpu"], v(r["replicas"]), v(r["memory_per_gpu_gib"], "{:.1f}"), v(r["ttft_p95_ms"], "{:,.0f}"),
              v(r["itl_p95_ms"], "{:.1f}"), v(r["throughput_tokens_per_s"], "{:,.0f}"), v(r["usd_per_hour"], "{:.2f}"),
              v(r["usd_per_month"], "{:,.0f}"), v(r["usd_per_million_tokens"], "{:.3f}"),
              "-" if r["sla_met"] is None else ("yes" if r["sla_met"] else "NO"), r["why_not"]] for r in rows]
    head = ["engine", "quant", "layout", "GPU", "replicas", "GiB/GPU", "TTFT p95 ms", "ITL p95 ms", "tok/s/replica",
            "USD/h", "USD/month", "USD/M tok", "SLA", "why not chosen"]
    from llmctl.term import table as fit

    text = f"top candidates for {plan.name!r} (→ chosen)\n" + fit(
        table, head, wrap=["why not chosen"], wide=wide,
        optional=["USD/month", "USD/M tok", "GiB/GPU", "tok/s/replica", "TTFT p95 ms", "layout", "why not chosen"])
    if explain:
        text += "\n\narithmetic of the chosen plan:\n" + fit(
            [[e.quantity, e.value, e.formula] for e in plan.explain], ["quantity", "value", "how"],
            wrap=["how", "value"], wide=wide)
    return text

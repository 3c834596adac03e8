"""Fit an engine's time constants to measured load steps.

The performance model (llmctl/estimate/performance.py) predicts, for a replica at a concurrency, the
time per output token (ITL) and the time to first token. Two of its constants are what a measurement
on one setup pins down best:

* ``step_overhead_ms`` and ``seq_overhead_us`` — the fixed cost of a decode step and its cost per
  running sequence (the CPU side of the engine loop: scheduling, sampling, output processing). With
  two or more concurrency levels both are fitted (least squares of the relative error, both kept
  ≥ 0); with one level only the step cost.
* ``request_overhead_ms`` — the fixed per-request part of TTFT (HTTP, tokenising, admission, the first
  detokenise): the median over steps of measured TTFT minus the model's TTFT without it.

Measured ITL is the engine's own time per output token over the step where `llmctl bench` read it
from the server's /metrics (llmctl/bench/server_time.py), else the time per output token after the
first as the client saw it, the median over requests of (E2E − TTFT) / (tokens − 1): chunk arrival
gaps mislead when a server flushes several tokens in one network write, and when its front falls far
enough behind, so does the client's whole figure. Only closed-loop steps (a concurrency) are used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass
class Point:
    concurrency: int
    prompt_tokens: int
    output_tokens: int
    itl_ms: float | None
    ttft_ms: float | None


@dataclass
class FitResult:
    values: dict[str, float]
    defaults: dict[str, float]
    rows: list[dict]  # per step: measured, predicted before and after


def _predict(dep, consts: dict, p: Point):
    from llmctl.estimate.performance import override_constants, predict

    with override_constants(consts):
        dep._coef_cache = None
        est = predict(dep, concurrency=p.concurrency, prompt_tokens=p.prompt_tokens, output_tokens=p.output_tokens)
    dep._coef_cache = None
    return est


def _with(base: dict, engine: str, values: dict[str, float]) -> dict:
    consts = copy.deepcopy(base)
    own = consts["engines"][engine]
    if "inherit" in own:
        parent = consts["engines"][own.pop("inherit")]
        for k, v in parent.items():
            own.setdefault(k, copy.deepcopy(v))
    own.update(values)
    return consts


def fit(dep, engine: str, base: dict, points: list[Point]) -> FitResult:
    from llmctl.estimate.performance import engine_constants, override_constants

    with override_constants(base):
        own = engine_constants(engine)
    defaults = {k: float(own.get(k, 0.0)) for k in ("step_overhead_ms", "seq_overhead_us", "request_overhead_ms")}
    itl_pts = [p for p in points if p.itl_ms and p.itl_ms > 0]
    names = ["step_overhead_ms"] + (["seq_overhead_us"] if len({p.concurrency for p in itl_pts}) >= 2 else [])
    theta = {"step_overhead_ms": max(defaults["step_overhead_ms"], 0.01), "seq_overhead_us": defaults["seq_overhead_us"]}

    if itl_pts:
        # Decode-only ITL is linear in both constants: predicted_i = a_i + step·b_i + seq·c_i. Linearise
        # by finite differences, solve the least squares of the relative errors with both constants
        # ≥ 0 (a constant that would go negative is held at 0 and the other refitted), re-linearise.
        for _ in range(3):
            base_pred = [_predict(dep, _with(base, engine, theta), p).itl_p50_ms for p in itl_pts]
            cols = []
            for n in names:
                h = max(abs(theta[n]) * 0.05, 0.05)
                bumped = _with(base, engine, dict(theta, **{n: theta[n] + h}))
                cols.append([(_predict(dep, bumped, p).itl_p50_ms - y0) / h for p, y0 in zip(itl_pts, base_pred)])
            # relative residual r_i = (y_i(θ + δ) − m_i) / m_i ≈ (y0_i + Σ δ_n·col_n,i − m_i) / m_i
            target = [(p.itl_ms - y0) / p.itl_ms for p, y0 in zip(itl_pts, base_pred)]
            scaled = [[v / p.itl_ms for v, p in zip(col, itl_pts)] for col in cols]
            free = list(range(len(names)))
            delta = [0.0] * len(names)
            while free:
                sol = _solve([scaled[i] for i in free], target)
                if sol is None:
                    break
                cand = dict(zip(free, sol))
                bad = [i for i in free if theta[names[i]] + cand[i] < 0]
                if not bad:
                    for i in free:
                        delta[i] = cand[i]
                    break
                for i in bad:  # held at its bound: its delta brings it to 0, the rest refits
                    delta[i] = -theta[names[i]]
                    target = [t - delta[i] * sc for t, sc in zip(target, scaled[i])]
                    free.remove(i)
            theta = dict(theta, **{n: max(0.0, theta[n] + d) for n, d in zip(names, delta)})
    values = {n: round(theta[n], 4) for n in names} if itl_pts else {}

    ttft_pts = [p for p in points if p.ttft_ms and p.ttft_ms > 0]
    if ttft_pts:
        zero = _with(base, engine, {**values, "request_overhead_ms": 0.0})
        gaps = sorted(p.ttft_ms - _predict(dep, zero, p).ttft_p50_ms for p in ttft_pts)
        mid = gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2
        values["request_overhead_ms"] = round(max(0.0, mid), 3)

    before, after = base, _with(base, engine, values)
    rows = []
    for p in points:
        b, a = _predict(dep, before, p), _predict(dep, after, p)
        rows.append({"concurrency": p.concurrency, "prompt_tokens": p.prompt_tokens, "output_tokens": p.output_tokens,
                     "itl_measured_ms": _r(p.itl_ms), "itl_before_ms": _r(b.itl_p50_ms), "itl_after_ms": _r(a.itl_p50_ms),
                     "ttft_measured_ms": _r(p.ttft_ms), "ttft_before_ms": _r(b.ttft_p50_ms),
                     "ttft_after_ms": _r(a.ttft_p50_ms)})
    return FitResult(values=values, defaults={k: defaults[k] for k in values}, rows=rows)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _solve(jac: list[list[float]], r: list[float]) -> list[float] | None:
    """Least-squares step: (JᵀJ) s = Jᵀr for one or two parameters (J given column by column)."""
    k = len(jac)
    a = [[sum(x * y for x, y in zip(jac[i], jac[j])) for j in range(k)] for i in range(k)]
    b = [sum(x * y for x, y in zip(jac[i], r)) for i in range(k)]
    if k == 1:
        return [b[0] / a[0][0]] if a[0][0] > 1e-18 else None
    det = a[0][0] * a[1][1] - a[0][1] * a[1][0]
    if abs(det) < 1e-18:
        return None
    return [(b[0] * a[1][1] - b[1] * a[0][1]) / det, (a[0][0] * b[1] - a[1][0] * b[0]) / det]


def error_pct(pred: float | None, meas: float | None) -> float | None:
    if pred is None or not meas:
        return None
    return round((pred - meas) / meas * 100, 1)

"""Statistics of one load step: percentiles of TTFT, ITL, TPOT and end-to-end latency, throughput.

Definitions (as `vllm bench serve` uses them, vllm/benchmarks/serve.py calculate_metrics):
* TTFT — request sent → first chunk with text.
* ITL — the gaps between chunks with text, pooled over all requests of the step.
* TPOT — per request, (E2E − TTFT) / (output tokens − 1).
* E2E — request sent → stream closed.
* output tokens/s — all output tokens of the step / its wall time (first send → last reply).
* tokens/s per user — per request, (output tokens − 1) / (E2E − TTFT): the speed one user reads at.
"""

from __future__ import annotations

from llmctl.smoke import percentile

QUANTILES = (50, 95, 99)


def summary(values: list[float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {"mean": _r(sum(values) / len(values)) if values else None}
    for q in QUANTILES:
        out[f"p{q}"] = _r(percentile(values, q))
    return out


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def step_stats(records: list, *, wall_s: float) -> dict:
    ok = [r for r in records if r.ok]
    errors = [r for r in records if not r.ok]
    out_tokens = sum(r.tokens for r in ok)
    ttft = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    itl = [x for r in ok for x in r.itl_ms]
    tpot = [t for r in ok if (t := r.tpot_ms) is not None]
    e2e = [r.e2e_ms for r in ok if r.e2e_ms is not None]
    per_user = [1000.0 / t for t in tpot if t > 0]
    chunks = sum(len(r.chunk_times) for r in ok)
    prompt_counts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    return {
        "requests": len(records),
        "completed": len(ok),
        "errors": len(errors),
        "error_samples": sorted({r.error or "failed" for r in errors})[:5],
        "duration_s": _r(wall_s),
        "request_rate": _r(len(ok) / wall_s if wall_s > 0 else None),
        "output_tokens": out_tokens,
        "output_tokens_per_s": _r(out_tokens / wall_s if wall_s > 0 else None, 2),
        "output_tokens_per_s_per_user": summary(per_user),
        "prompt_tokens_mean": _r(sum(prompt_counts) / len(prompt_counts)) if prompt_counts else None,
        "output_tokens_mean": _r(out_tokens / len(ok)) if ok else None,
        "usage_reported": len(prompt_counts) == len(ok) and bool(ok),
        "tokens_per_chunk": _r(out_tokens / chunks) if chunks else None,
        "ttft_ms": summary(ttft),
        "itl_ms": summary(itl),
        "tpot_ms": summary(tpot),
        "e2e_ms": summary(e2e),
    }


def crossovers(xs: list[float], a: list[float | None], b: list[float | None]) -> list[dict]:
    """Where series `b` overtakes series `a` or the reverse, between two measured steps: every load at
    which their difference changes sign, interpolated linearly; [] when one leads everywhere."""
    pts = [(x, u, v) for x, u, v in zip(xs, a, b) if u is not None and v is not None]
    out = []
    for (x0, a0, b0), (x1, a1, b1) in zip(pts, pts[1:]):
        d0, d1 = a0 - b0, a1 - b1
        if d0 * d1 < 0:
            at = x0 + (x1 - x0) * d0 / (d0 - d1)
            out.append({"at": round(at, 2), "between": [x0, x1], "before": "a" if d0 > 0 else "b",
                        "after": "a" if d1 > 0 else "b"})
    return out

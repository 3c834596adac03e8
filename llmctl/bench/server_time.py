"""The engine's own time per output token over a bench step, from its Prometheus /metrics.

The client measures time per output token as (E2E − TTFT) / (tokens − 1). That is the engine's
decode time only while the server streams each token as it is made. When the server's front falls
behind (a CPU shared with the engine, a slow API process), it sends many tokens in one chunk and the
client's figure shrinks towards zero however long the engine took. The engine's own counters do not:
`llmctl bench` reads them just before and just after each step, and the step records
Δseconds / Δcount of the two series the engine's profile names (`tpot_metric` in profiles/engines.yaml).
"""

from __future__ import annotations


def metric_for(engine: str | None):
    """(metrics path, (seconds series, count series)) of the engine the server says it is, or None."""
    from llmctl.engines import engine_names, get_engine

    if not engine or engine not in engine_names():
        return None
    prof = get_engine(engine).profile
    if not prof.metrics_path or prof.tpot_metric is None:
        return None
    return prof.metrics_path, prof.tpot_metric


async def read(client, base: str, path: str, metric) -> tuple[float, float] | None:
    """(sum, count) now, or None when the server does not export them (no /metrics, or not enabled)."""
    from llmctl.prometheus import series

    try:
        r = await client.get(base + path, timeout=5.0)
    except Exception:  # noqa: BLE001 - best effort: the step's client-side figures stand alone
        return None
    if r.status_code != 200:
        return None
    sums, _ = series(r.text)
    seconds, count = metric
    if seconds not in sums or count not in sums:
        return None
    return sums[seconds], sums[count]


def over_step(before: tuple[float, float] | None, after: tuple[float, float] | None, path: str, metric) -> dict | None:
    """The step's block: mean ms per output token and how many observations it is over."""
    if before is None or after is None:
        return None
    d_sum, d_count = after[0] - before[0], after[1] - before[1]
    if d_count <= 0 or d_sum < 0:
        return None
    return {"tpot_ms_mean": round(d_sum / d_count * 1000, 3), "observations": int(d_count),
            "series": f"{path} {metric[0]} / {metric[1]}"}

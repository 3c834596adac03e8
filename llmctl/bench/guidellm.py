"""GuideLLM benchmark reports as `Measured` steps: the JSON or YAML that `guidellm run … --output
kind=json,path=report.json` (GuideLLM 0.7: `kind=yaml` for YAML; by default it writes benchmarks.json
and a CSV) or `guidellm benchmark … --output-path report.json` (GuideLLM 0.4 – 0.6) writes.

The shape, from GuideLLM's source at tag v0.7.3 (commit 39383552962841086d05e25c37b58a83ef06c758,
github.com/vllm-project/guidellm; read 2026-11-30):

* src/guidellm/benchmark/schemas/report.py — `GenerativeBenchmarksReport`: `metadata`
  (`version` 2, `guidellm_version`), `config`, `benchmarks` (a list of `GenerativeBenchmark`),
  written as `json.dumps` / `yaml.dump` of `model_dump(mode="json")` (YAML keys therefore sorted).
* src/guidellm/benchmark/schemas/benchmark.py — `GenerativeBenchmark`: `config` (`BenchmarkConfig`,
  schemas/base.py: `strategy`, `backend` — the backend's arguments, with `model`), `metrics`
  (`GenerativeMetrics`) and the computed `start_time` (seconds since the epoch).
* src/guidellm/scheduler/strategies.py — `strategy.type_`: "synchronous" (one request at a time),
  "concurrent" (`streams` users), "throughput" (everything at once, `max_concurrency` optional),
  "constant" / "poisson" (`rate` requests/s), "trace" (a replayed timeline). A sweep profile
  (benchmark/profiles/sweep.py) is a run of these — synchronous, throughput, then constant rates —
  one benchmark each.
* src/guidellm/benchmark/schemas/metrics.py — `GenerativeMetrics`: `request_totals` (counts:
  successful, incomplete, errored, total) and, each a `StatusDistributionSummary`,
  `request_concurrency`, `prompt_token_count`, `output_token_count`, `time_to_first_token_ms`,
  `inter_token_latency_ms`, `time_per_output_token_ms`, `output_tokens_per_second`.
* src/guidellm/schemas/statistics.py — `StatusDistributionSummary`: `successful` / `incomplete` /
  `errored` / `total`, each a `DistributionSummary` (`mean`, `median`, `max`, `count`,
  `percentiles.p50` …).
* src/guidellm/schemas/request_stats.py — per request, `inter_token_latency_ms` = (last token − first
  token) / (output tokens − 1): what `vllm bench serve` calls TPOT and llmctl's ITL;
  `time_per_output_token_ms` = (last token − request start) / output tokens, which includes the
  TTFT, so it is not used. GuideLLM weights a request's ITL by its output tokens − 1 in the
  distribution (metrics.py), so the median is over tokens — over requests when outputs are alike.

GuideLLM 0.4.0 – 0.6.1 (the run's arguments under `args`, `metadata.version` 1 from 0.5, no metadata
in 0.4) have the same `benchmarks[].config.strategy` / `.backend` and the same metrics used here
(src/guidellm/benchmark/schemas/base.py and schemas/generative/metrics.py, checked at v0.4.0, v0.5.4
and v0.6.1); 0.3 reports (the strategy under `benchmarks[].args`) are refused by name.

Each benchmark becomes one step: users for synchronous (1), concurrent (`streams`) and throughput
(the most requests in flight GuideLLM observed, `request_concurrency.total.max`); a request rate for
constant and poisson. Latencies are the medians over successful requests. A benchmark that cannot
be a step (a trace replay, no successful request, no observed concurrency) is skipped with a warning
naming its index.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from llmctl.errors import InputError

KNOWN_VERSIONS = (1, 2)  # GenerativeBenchmarkMetadata.version: 1 in 0.4.0–0.6.1, 2 since 0.7.0


def looks_like_report(doc: Any) -> bool:
    return isinstance(doc, dict) and "schema" not in doc and isinstance(doc.get("benchmarks"), list)


class _Doc:
    """The parsed report, and where each field is: `file: benchmarks[0].metrics.x` (JSON) or
    `file:LINE: benchmarks[0].metrics.x` (YAML, whose loader keeps the line of every key)."""

    def __init__(self, path: str, lines: dict | None):
        self.path = path
        self.lines = lines or {}

    def where(self, at: tuple) -> str:
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
        line = next((self.lines[at[:n]] for n in range(len(at), 0, -1) if at[:n] in self.lines), None)
        return f"{self.path}{'' if line is None else f':{line}'}: {name}" if name else self.path

    def get(self, d: dict, at: tuple, key: str, kind: type | tuple, what: str) -> Any:
        if key not in d or d[key] is None:
            raise InputError(f"missing {key!r} ({what})", where=self.where(at + (key,)),
                             hint="is this the JSON or YAML report GuideLLM wrote?")
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, kind):
            want = {dict: "an object", list: "a list", str: "a string", int: "a whole number"}.get(
                kind, "a number")  # type: ignore[call-overload]
            raise InputError(f"{key} must be {want}, got {v!r}"[:200], where=self.where(at + (key,)))
        return v

    def stat(self, metrics: dict, at: tuple, name: str, *, stat: str = "median", status: str = "successful",
               required: bool = True) -> float | None:
        if not required and not isinstance(metrics.get(name), dict):
            return None
        block = self.get(metrics, at, name, dict, "a distribution: successful / incomplete / errored / total")
        if not required and not isinstance(block.get(status), dict):
            return None
        summary = self.get(block, at + (name,), status, dict, f"the distribution over {status} requests")
        return float(self.get(summary, at + (name, status), stat, (int, float), f"the {stat}"))


def read_report(doc: dict, path: str, lines: dict | None = None) -> tuple[list, dict]:
    """The report's benchmarks as `Measured` steps, and {model, measured_at, warnings}."""
    from llmctl.bench.results import Measured

    r = _Doc(path, lines)
    meta = doc.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise InputError(f"metadata must be an object, got {meta!r}"[:200], where=r.where(("metadata",)))
        version = meta.get("version")
        if version is not None and (isinstance(version, bool) or version not in KNOWN_VERSIONS):
            raise InputError(f"GuideLLM report schema version {version!r}; this reader knows versions "
                             f"{', '.join(map(str, KNOWN_VERSIONS))} (GuideLLM 0.4.0 – 0.7.3)",
                             where=r.where(("metadata", "version")))
    benches = doc["benchmarks"]
    if not benches:
        raise InputError("the report has no benchmarks", where=r.where(("benchmarks",)))
    steps, warnings, model, started = [], [], None, None
    for i, b in enumerate(benches):
        at: tuple = ("benchmarks", i)
        if not isinstance(b, dict):
            raise InputError("a benchmark must be an object", where=r.where(at))
        if "config" not in b and isinstance(b.get("args"), dict):
            raise InputError("a GuideLLM report from before 0.4 (the strategy under `args`): not read",
                             where=r.where(at + ("args",)), hint="run the benchmark again with GuideLLM 0.4 or later")
        config = r.get(b, at, "config", dict, "the benchmark's configuration")
        strategy = r.get(config, at + ("config",), "strategy", dict, "the scheduling strategy")
        sat = at + ("config", "strategy")
        kind = r.get(strategy, sat, "type_", str, "synchronous, concurrent, throughput, constant, poisson")
        metrics = r.get(b, at, "metrics", dict, "the benchmark's measurements")
        mat = at + ("metrics",)
        backend = config.get("backend")
        if model is None and isinstance(backend, dict) and isinstance(backend.get("model"), str) and backend["model"]:
            model = backend["model"]
        if started is None and isinstance(b.get("start_time"), (int, float)) and not isinstance(b["start_time"], bool):
            started = b["start_time"]

        conc = rate = None
        if kind == "synchronous":
            conc = 1.0
        elif kind == "concurrent":
            conc = float(r.get(strategy, sat, "streams", int, "the number of concurrent users"))
        elif kind in ("constant", "poisson"):
            rate = float(r.get(strategy, sat, "rate", (int, float), "requests per second"))
        elif kind == "throughput":
            observed = r.stat(metrics, mat, "request_concurrency", stat="max", status="total", required=False)
            if observed is None or observed < 1:
                warnings.append(f"{r.where(at)}: skipped — a \"throughput\" benchmark (all requests at once) and "
                                "the report has no observed concurrency (metrics.request_concurrency.total.max)")
                continue
            conc = float(round(observed))
        elif kind == "trace":
            warnings.append(f"{r.where(at)}: skipped — a \"trace\" benchmark replays a timeline: "
                            "no single load level")
            continue
        else:
            raise InputError(f"unknown strategy {kind!r} (GuideLLM 0.7.3 has synchronous, concurrent, throughput, "
                             "constant, poisson, trace)", where=r.where(sat + ("type_",)))
        if (conc is not None and conc <= 0) or (rate is not None and rate <= 0):
            raise InputError(f"must be above 0, got {conc if rate is None else rate:g}",
                             where=r.where(sat + ("streams" if rate is None else "rate",)))

        totals = r.get(metrics, mat, "request_totals", dict, "request counts by status")
        completed = r.get(totals, mat + ("request_totals",), "successful", int, "the successful requests")
        if completed <= 0:
            warnings.append(f"{r.where(at)}: skipped — no successful request in this {kind} benchmark")
            continue
        steps.append(Measured(
            concurrency=conc, rate=rate, completed=completed,
            prompt_tokens=r.stat(metrics, mat, "prompt_token_count", stat="mean"),  # type: ignore[arg-type]
            output_tokens=r.stat(metrics, mat, "output_token_count", stat="mean"),  # type: ignore[arg-type]
            ttft_p50_ms=r.stat(metrics, mat, "time_to_first_token_ms"),
            itl_p50_ms=None,  # GuideLLM keeps no distribution of the gaps between chunks
            tpot_p50_ms=r.stat(metrics, mat, "inter_token_latency_ms"),
            output_tokens_per_s=r.stat(metrics, mat, "output_tokens_per_second", stat="mean", status="total",
                                         required=False)))  # the figure GuideLLM's console prints
    if not steps:
        raise InputError("no benchmark in the report can be a calibration step: " + "; ".join(warnings),
                         where=path)
    measured_at = (dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                   if started else None)
    version = meta.get("guidellm_version") if isinstance(meta, dict) else None
    return steps, {"model": model, "measured_at": measured_at, "warnings": warnings,
                   "tool_version": version if isinstance(version, str) else None}

"""`llmctl calibrate` end to end: read the measurements, plan the measured setup with the profiles'
constants, fit, and store the overlay entry with its provenance."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from llmctl.errors import InputError
from llmctl.typed import updated

SCHEMA = "llmctl.calibrate/v1"


BENCH_SUFFIXES = (".json", ".yaml", ".yml", ".csv")  # .csv: refused by name in bench.results


def _kind_of(path: str) -> str:
    """bench (JSON, or a GuideLLM YAML report) or log: from the name's suffix, else the first non-blank character."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}", where="--from") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", where="--from") from None
    if Path(path).is_dir():
        raise InputError(f"{path} is a folder", where="--from")
    return "bench" if Path(path).suffix.lower() in BENCH_SUFFIXES or head[:1] in (b"{", b"[") else "log"


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def calibrate(spec_path: str, sources: list[str], *, metrics_url: str | None = None, concurrency: int | None = None,
              scope: str = "spec", engine_version: str | None = None, store: bool = True) -> dict:
    from llmctl import __version__
    from llmctl.bench import results
    from llmctl.calibrate import active, overlay, sources as src
    from llmctl.calibrate.fit import Point, error_pct, fit
    from llmctl.spec import load_spec

    spec = load_spec(spec_path)
    benches, logs, provenance, warnings = [], [], [], []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for path in sources:
        if _kind_of(path) == "bench":
            b = results.read(path)
            benches.append(b)
            warnings += b.warnings
            provenance.append({"kind": b.kind, "source": str(Path(path).resolve()), "source_sha256": _sha(path),
                               "measured_at": b.measured_at})
        else:
            log = src.read_startup_log(path)
            logs.append(log)
            provenance.append({"kind": "vllm-startup-log", "source": str(Path(path).resolve()),
                               "source_sha256": _sha(path)})
    scrape = src.scrape_metrics(metrics_url) if metrics_url else None
    if scrape:
        provenance.append({"kind": "metrics", "source": scrape.url, "measured_at": now,
                           "note": f"means over {scrape.requests} requests since the server started"})

    # the engine and its version: flags, then what the measurements say
    engine = spec.overrides.backend or ("vllm" if logs or scrape or any(b.kind == "vllm-bench-serve" for b in benches)
                                        else None)
    for b in benches:
        ver = _bench_version(b)
        if ver and not engine_version:
            engine_version = ver[1]
            engine = engine or ver[0]
    for log in logs:
        engine_version = engine_version or log.engine_version
    if engine is None:
        raise InputError("cannot tell which engine was measured: set overrides.backend in the spec",
                         where=f"{spec_path}: overrides.backend")
    if not engine_version:
        raise InputError("the measurements do not say the engine's version", where="--engine-version",
                         hint="pass --engine-version X.Y.Z (the version of the server measured)")

    # plan the measured setup with the profiles' constants (no overlay), this engine forced
    from llmctl.planner import Trace, make_plan
    from llmctl.spec import with_source_of

    forced = with_source_of(spec, updated(spec, overrides=updated(spec.overrides, backend=engine)))
    trace = Trace()
    active.calibrating(engine)
    try:
        plan = make_plan(forced, base_dir=Path(spec_path).resolve().parent, trace=trace)
    finally:
        active.calibrating(None)
    if not plan.feasible or trace.context is None:
        raise InputError(f"the spec's setup cannot be planned with {engine}: " + "; ".join(plan.problems[:2]),
                         where=spec_path)
    from llmctl.planner import deployment
    from llmctl.sweep import _matches

    chosen = next((c for c in trace.ranked if _matches(c, plan)), None) or next(c for c in trace.ranked if c.feasible)
    dep = deployment(trace.context, chosen)
    device = chosen.pool.device.id
    key = {"engine": engine, "engine_version": str(engine_version).lstrip("v"), "device": device, "model": plan.model.id}

    points = []
    for b in benches:
        for s in b.steps:
            if s.concurrency is None:
                continue  # open-loop steps: the model's closed loop is what is fitted
            points.append(Point(int(s.concurrency), max(1, round(s.prompt_tokens)), max(1, round(s.output_tokens)),
                                s.server_tpot_ms or s.tpot_p50_ms or s.itl_p50_ms, s.ttft_p50_ms))
    if scrape:
        users = concurrency or max(1, round(scrape.running or 1))
        w = spec.workload
        points.append(Point(users, w.prompt_tokens, w.output_tokens, scrape.itl_mean_ms, scrape.ttft_mean_ms))
    from llmctl.estimate.performance import _profile_constants

    result = fit(dep, engine, _profile_constants(), points) if points else None

    memory: dict = {}
    for log in logs:
        for name in ("kv_cache_gib", "kv_cache_tokens", "weights_gib", "non_kv_cache_gib"):
            if getattr(log, name) is not None:
                memory[name] = getattr(log, name)
    if scrape and scrape.kv_cache_tokens:
        memory.setdefault("kv_cache_tokens", scrape.kv_cache_tokens)
    if result is None and not memory:
        raise InputError("nothing to fit: the measurements have no closed-loop step (a concurrency) and no "
                         "start-up memory figures", where="--from",
                         hint="bench with --concurrency (GuideLLM: a synchronous, concurrent or throughput profile), "
                              "or add the server's start-up log")
    planned_kv = {"kv_cache_tokens": plan.memory.kv_cache_tokens, "kv_cache_gib": plan.memory.per_gpu_gib.kv_cache}

    from llmctl.engines import get_engine

    refused = get_engine(engine).unavailable_on(chosen.pool.device)
    entry = {
        "key": key,
        "runs_here": refused is not None,
        "performance": dict(result.values) if result else {},
        "defaults": dict(result.defaults) if result else {},
        "provenance": [{**p, "calibrated_at": now, "engine_version": key["engine_version"], "gpu": device,
                        "model": plan.model.reference, "llmctl_version": __version__} for p in provenance],
    }
    entry["provenance"] = [{k: v for k, v in p.items() if v is not None} for p in entry["provenance"]]
    if memory:
        entry["memory"] = memory
    if result:
        errs = [(error_pct(r["itl_before_ms"], r["itl_measured_ms"]), error_pct(r["itl_after_ms"], r["itl_measured_ms"]))
                for r in result.rows if r["itl_measured_ms"]]
        entry["fit"] = {"steps": len(result.rows),
                        "itl_error_pct_before": [e[0] for e in errs], "itl_error_pct_after": [e[1] for e in errs]}
    path = overlay.spec_overlay_path(spec_path) if scope == "spec" else overlay.user_overlay_path()
    action = overlay.save_entry(path, entry) if store else "not stored (--dry-run)"
    return {"schema": SCHEMA, "overlay": str(path), "action": action, "key": key,
            "runs_here": entry["runs_here"], "refused_by_profile": refused,
            "constants": [{"name": n, "default": (result.defaults.get(n) if result else None), "fitted": v}
                          for n, v in entry["performance"].items()],
            "memory": memory, "planned_memory": planned_kv,
            "steps": result.rows if result else [], "sources": [p["source"] for p in provenance],
            "warnings": warnings}


def _bench_version(b) -> tuple[str, str] | None:
    return (b.engine, b.engine_version) if b.engine and b.engine_version else None


def table(result: dict) -> str:
    from llmctl.term import table as grid

    k = result["key"]
    out = [f"calibration of {k['engine']} {k['engine_version']} on {k['device']}, model {k['model']}"
           f" from {', '.join(result['sources'])}"]
    if result["refused_by_profile"]:
        out.append(f"  {k['engine']}'s profile refuses {k['device']} (\"{result['refused_by_profile']}\"); the overlay "
                   "records that it was measured serving there, so plans of this setup model it with these constants")
    if result["constants"]:
        out.append(grid([[c["name"], "-" if c["default"] is None else f"{c['default']:g}", f"{c['fitted']:g}"]
                         for c in result["constants"]], ["constant", "default", "fitted"]))
    if result["steps"]:
        def e(p, m):
            return "-" if p is None or not m else f"{(p - m) / m * 100:+.0f}%"
        rows = [[r["concurrency"], f"{r['itl_measured_ms']:.3g}" if r["itl_measured_ms"] else "-",
                 f"{r['itl_before_ms']:.3g} ({e(r['itl_before_ms'], r['itl_measured_ms'])})",
                 f"{r['itl_after_ms']:.3g} ({e(r['itl_after_ms'], r['itl_measured_ms'])})",
                 f"{r['ttft_measured_ms']:.3g}" if r["ttft_measured_ms"] else "-",
                 f"{r['ttft_before_ms']:.3g} ({e(r['ttft_before_ms'], r['ttft_measured_ms'])})",
                 f"{r['ttft_after_ms']:.3g} ({e(r['ttft_after_ms'], r['ttft_measured_ms'])})"] for r in result["steps"]]
        out.append(grid(rows, ["users", "ITL meas.", "ITL before", "ITL after", "TTFT meas.", "TTFT before",
                               "TTFT after"]))
    if result["memory"]:
        pm = result["planned_memory"]
        out.append("measured memory: " + ", ".join(f"{n} {_num(v)}" for n, v in result["memory"].items())
                   + f" (the profiles' estimate: KV cache {pm['kv_cache_gib']:g} GiB, {pm['kv_cache_tokens']:,} tokens)")
    out += [f"warning: {w}" for w in result.get("warnings", [])]
    out.append(f"{result['action']}: {result['overlay']}")
    return "\n\n".join(out)


def _num(v: float | int) -> str:
    return f"{v:,}" if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"

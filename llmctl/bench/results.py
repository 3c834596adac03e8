"""Bench result files: the table people read, and reading results back for `llmctl calibrate`.

Three formats are read:
* ``llmctl.bench/v1`` — what `llmctl bench --out` writes (checked strictly: an unknown key is an error);
* ``vllm bench serve`` result JSON (`--save-result`; several runs appended with `--append-result` are
  one JSON object per line). Fields as vLLM writes them (vllm/benchmarks/serve.py: `result_json` in
  main and the `result` dict of benchmark(): "max_concurrency", "request_rate", "completed",
  "total_input_tokens", "total_output_tokens", "output_throughput", "median_ttft_ms", "median_tpot_ms",
  "mean_tpot_ms", "median_itl_ms", "p99_itl_ms", "model_id", "date"). vLLM adds keys between releases,
  so unknown keys there are ignored; the ones used must have the right type.
* a GuideLLM benchmark report (JSON or YAML: `guidellm run … --output kind=json,path=report.json` in
  GuideLLM 0.7, `guidellm benchmark … --output-path report.json` before), told apart by its top-level
  "benchmarks" list; its fields and their sources are in llmctl/bench/guidellm.py.

All become `Measured` steps: one load level with its median TTFT, ITL and TPOT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import InputError

TOP_KEYS = {"schema", "base_url", "api", "model", "server_version", "started_at", "duration_s", "workload",
            "prompts", "steps", "compare", "crossover", "predicted"}
# A GuideLLM YAML report keeps every sampled request (its `requests` lists): far more values than a spec.
YAML_MAX_NODES = 5_000_000
STEP_KEYS = {"load", "value", "requests", "completed", "errors", "error_samples", "duration_s", "request_rate",
             "output_tokens", "output_tokens_per_s", "output_tokens_per_s_per_user", "prompt_tokens_mean",
             "output_tokens_mean", "usage_reported", "tokens_per_chunk", "ttft_ms", "itl_ms", "tpot_ms", "e2e_ms",
             "not_sent", "server_tpot"}


@dataclass
class Measured:
    concurrency: float | None  # users in a closed loop (None: open loop)
    rate: float | None  # requests/s (open loop)
    completed: int
    prompt_tokens: float
    output_tokens: float
    ttft_p50_ms: float | None
    itl_p50_ms: float | None
    tpot_p50_ms: float | None
    output_tokens_per_s: float | None
    server_tpot_ms: float | None = None  # the engine's own mean time per output token over the step


@dataclass
class BenchFile:
    kind: str  # llmctl-bench | vllm-bench-serve | guidellm-report
    path: str
    model: str | None
    engine_version: str | None
    measured_at: str | None
    steps: list[Measured]
    engine: str | None = None  # as the server named itself (llmctl bench asks /version, /api/version, /props)
    warnings: list[str] = field(default_factory=list)  # steps of the file left out, and why


def read(path: str) -> BenchFile:
    from llmctl.bench import guidellm
    from llmctl.fileio import read_text_input

    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        raise InputError("a CSV bench result is not read", where=path,
                         hint="write the report as JSON or YAML: guidellm run … --output kind=json,path=report.json")
    text = read_text_input(path, what="bench result", max_bytes=256 * 1024 * 1024)
    if suffix in (".yaml", ".yml"):
        return _guidellm_yaml(text, path)
    docs = _json_docs(text, path)
    if len(docs) == 1 and isinstance(docs[0], dict) and docs[0].get("schema") == "llmctl.bench/v1":
        return _llmctl(docs[0], path)
    if len(docs) == 1 and guidellm.looks_like_report(docs[0]):
        return _guidellm(docs[0], path, None)
    if all(isinstance(d, dict) and "schema" not in d and ("median_ttft_ms" in d or "completed" in d) for d in docs):
        return _vllm(docs, path)
    first = docs[0]
    if isinstance(first, dict) and "schema" in first:
        raise InputError(f"schema {first['schema']!r} is not a bench result this version reads "
                         "(llmctl.bench/v1, `vllm bench serve` JSON, or a GuideLLM report)", where=f"{path}: schema")
    raise InputError("not a bench result: neither llmctl.bench/v1, `vllm bench serve` JSON nor a GuideLLM report "
                     "(no \"schema\", no \"median_ttft_ms\", no \"benchmarks\")", where=path)


def _json_docs(text: str, path: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        whole = exc
    docs = []
    for i, line in enumerate(text.splitlines(), 1):  # `vllm bench serve --append-result`: one object a line
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"not valid JSON: {whole.msg} (column {whole.colno})",
                             where=f"{path}:{whole.lineno}") from None
    if not docs:
        raise InputError("empty file: no JSON in it", where=path)
    return docs


def _num(d: dict, key: str, where: str, *, required: bool = True) -> float | None:
    v = d.get(key)
    if v is None:
        if required:
            raise InputError(f"missing {key!r}", where=where)
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{key} must be a number, got {v!r}", where=f"{where}.{key}")
    return float(v)


def _llmctl(doc: dict, path: str) -> BenchFile:
    extra = sorted(set(doc) - TOP_KEYS)
    if extra:
        raise InputError(f"unknown field {extra[0]!r} (llmctl.bench/v1 has: {', '.join(sorted(TOP_KEYS))})",
                         where=f"{path}: {extra[0]}")
    steps_in = doc.get("steps")
    if not isinstance(steps_in, list) or not steps_in:
        raise InputError("\"steps\" must be a non-empty list", where=f"{path}: steps")
    steps = []
    workload = doc.get("workload") or {}
    for i, s in enumerate(steps_in):
        where = f"{path}: steps[{i}]"
        if not isinstance(s, dict):
            raise InputError("a step must be an object", where=where)
        extra = sorted(set(s) - STEP_KEYS)
        if extra:
            raise InputError(f"unknown field {extra[0]!r}", where=f"{where}.{extra[0]}")
        if s.get("load") not in ("concurrency", "rate"):
            raise InputError(f"load must be \"concurrency\" or \"rate\", got {s.get('load')!r}", where=f"{where}.load")
        value = _num(s, "value", where)
        completed = int(_num(s, "completed", where) or 0)

        def p50(key: str) -> float | None:
            block = s.get(key)
            if block is None:
                return None
            if not isinstance(block, dict):
                raise InputError(f"{key} must be an object with mean/p50/p95/p99", where=f"{where}.{key}")
            return _num(block, "p50", f"{where}.{key}", required=False)

        steps.append(Measured(
            concurrency=value if s["load"] == "concurrency" else None, rate=value if s["load"] == "rate" else None,
            completed=completed,
            prompt_tokens=float(s.get("prompt_tokens_mean") or workload.get("prompt_tokens") or 0),
            output_tokens=float(s.get("output_tokens_mean") or workload.get("output_tokens") or 0),
            ttft_p50_ms=p50("ttft_ms"), itl_p50_ms=p50("itl_ms"), tpot_p50_ms=p50("tpot_ms"),
            output_tokens_per_s=_num(s, "output_tokens_per_s", where, required=False),
            server_tpot_ms=_server_tpot(s, where)))
    sv = doc.get("server_version") if isinstance(doc.get("server_version"), dict) else {}
    return BenchFile("llmctl-bench", path, doc.get("model"), sv.get("version"), doc.get("started_at"), steps,
                     engine=sv.get("engine"))


def _server_tpot(s: dict, where: str) -> float | None:
    block = s.get("server_tpot")
    if block is None:
        return None
    if not isinstance(block, dict):
        raise InputError("server_tpot must be an object with tpot_ms_mean", where=f"{where}.server_tpot")
    return _num(block, "tpot_ms_mean", f"{where}.server_tpot")


def _vllm(docs: list[dict], path: str) -> BenchFile:
    steps = []
    for i, d in enumerate(docs):
        where = f"{path}:{i + 1}" if len(docs) > 1 else path
        completed = int(_num(d, "completed", where) or 0)
        if completed <= 0:
            raise InputError("no completed requests in this run", where=f"{where}: completed")
        conc = _num(d, "max_concurrency", where, required=False)
        rate = d.get("request_rate")
        rate_v = None if rate in (None, "inf") else _num(d, "request_rate", where)
        if conc is None and rate_v is None:  # every prompt sent at once: a burst of num_prompts
            conc = _num(d, "num_prompts", where, required=False) or float(completed)
        steps.append(Measured(
            concurrency=conc, rate=rate_v if conc is None else None, completed=completed,
            prompt_tokens=(_num(d, "total_input_tokens", where) or 0) / completed,
            output_tokens=(_num(d, "total_output_tokens", where) or 0) / completed,
            ttft_p50_ms=_num(d, "median_ttft_ms", where),
            itl_p50_ms=_num(d, "median_itl_ms", where, required=False),
            tpot_p50_ms=_num(d, "median_tpot_ms", where, required=False),
            output_tokens_per_s=_num(d, "output_throughput", where, required=False)))
    first = docs[0]
    return BenchFile("vllm-bench-serve", path, first.get("model_id"), None, first.get("date"), steps)


def _guidellm_yaml(text: str, path: str) -> BenchFile:
    """A GuideLLM YAML report. GuideLLM writes it with PyYAML (yaml.dump), and PyYAML's libyaml loader
    reads it back ~7× faster than the line-keeping loader of specs (0.5 s against 3.5–4.5 s for a
    480 KB three-benchmark sweep on this machine; a report keeping every request is tens of MB). So
    that one reads it; the line-keeping loader runs only to name the line of a problem found."""
    from llmctl.bench import guidellm
    from llmctl.yaml_lines import load_yaml

    try:
        import yaml  # PyYAML: installed with huggingface_hub

        fast = getattr(yaml, "CSafeLoader", None)
    except ImportError:
        fast = None
    doc, lines = None, None
    if fast is not None:
        try:
            doc = yaml.load(text, Loader=fast)  # noqa: S506 - the safe loader
        except yaml.YAMLError:
            fast = None  # the line-keeping loader below says where
    if fast is None:
        doc, lines = load_yaml(text, path, max_nodes=YAML_MAX_NODES)
    if not guidellm.looks_like_report(doc):
        raise InputError("a YAML bench result must be a GuideLLM report (a top-level \"benchmarks\" list)",
                         where=path)
    try:
        return _guidellm(doc, path, lines)
    except InputError:
        if lines is not None:
            raise
    doc, lines = load_yaml(text, path, max_nodes=YAML_MAX_NODES)
    return _guidellm(doc, path, lines)  # the same problem again, now with its line


def _guidellm(doc: dict, path: str, lines: dict | None) -> BenchFile:
    from llmctl.bench import guidellm

    steps, about = guidellm.read_report(doc, path, lines)
    return BenchFile("guidellm-report", path, about["model"], None, about["measured_at"], steps,
                     warnings=about["warnings"])


# --------------------------------------------------------------------------- the table


def _ms(block: dict | None, q: str) -> str:
    v = (block or {}).get(q)
    return "-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.3g}")


def _engine_tpot_lines(steps: list[dict], load: str) -> str:
    """The engine's own time per output token beside the client's, and a warning where they part."""
    own = [(s, s["server_tpot"]) for s in steps if s.get("server_tpot")]
    if not own:
        return ""
    series = own[0][1]["series"]
    out = [f"  the engine's own TPOT ({series}): "
           + ", ".join(f"{s['value']:g} {load}: {b['tpot_ms_mean']:.3g} ms" for s, b in own)]
    for s, b in own:
        client = (s.get("tpot_ms") or {}).get("p50")
        if client is not None and client < b["tpot_ms_mean"] / 2:
            out.append(f"  warning at {s['value']:g}: the stream carried {s.get('tokens_per_chunk') or 0:g} tokens per "
                       f"chunk and the client saw {client:.3g} ms per token against the engine's "
                       f"{b['tpot_ms_mean']:.3g}: the server's front fell behind and sent tokens in batches")
    return "\n".join(out)


def table(doc: dict, *, wide: bool = False) -> str:
    from llmctl.term import table as grid

    parts = []
    for run in [doc] + ([doc["compare"]] if doc.get("compare") else []):
        rows = []
        for s in run["steps"]:
            per_user = (s.get("output_tokens_per_s_per_user") or {}).get("p50")
            rows.append([
                f"{s['value']:g}" + ("" if s["load"] == "concurrency" else "/s"),
                f"{s['completed']}/{s['requests']}",
                " / ".join(_ms(s["ttft_ms"], q) for q in ("p50", "p95", "p99")),
                " / ".join(_ms(s["itl_ms"], q) for q in ("p50", "p95", "p99")),
                _ms(s["tpot_ms"], "p50"),
                " / ".join(_ms(s["e2e_ms"], q) for q in ("p50", "p95", "p99")),
                "-" if s["output_tokens_per_s"] is None else f"{s['output_tokens_per_s']:.1f}",
                "-" if per_user is None else f"{per_user:.1f}",
                "-" if s["request_rate"] is None else f"{s['request_rate']:.2f}",
                str(s["errors"]) + (f" ({s['not_sent']} not sent: deadline)" if s.get("not_sent") else ""),
            ])
        load = "users" if run["steps"] and run["steps"][0]["load"] == "concurrency" else "rate"
        ver = run.get("server_version") or {}
        head = (f"bench of {run['base_url']} (model {run['model']}, api {run['api']}"
                + (f", {ver.get('engine')} {ver.get('version')}" if ver else "") + f", {run['duration_s']:.1f}s)")
        p = run.get("prompts") or {}
        w = run.get("workload") or {}
        if p.get("method") == "file":
            head += f"\n  prompts: {p.get('note')}, answers {w.get('output_tokens')} tokens"
        else:
            head += (f"\n  prompts: {w.get('prompt_tokens')} tokens ({p.get('method')}"
                     + (f": first prompt {p['first_prompt_tokens']} tokens" if p.get("first_prompt_tokens") else "")
                     + (f"; {p['note']}" if p.get("note") else "") + f"), answers {w.get('output_tokens')} tokens")
        body = grid(rows, [load, "ok", "TTFT ms p50/p95/p99", "ITL ms p50/p95/p99", "TPOT ms p50", "E2E ms p50/p95/p99",
                           "out tok/s", "tok/s per user", "req/s", "errors"], wide=wide)
        parts.append(f"{head}\n{body}")
        own = _engine_tpot_lines(run["steps"], load)
        if own:
            parts.append(own)
        for s in run["steps"]:
            if s["error_samples"]:
                parts.append(f"  errors at {s['value']:g}: " + "; ".join(s["error_samples"]))
    if doc.get("compare"):
        name = {"a": doc["base_url"], "b": doc["compare"]["base_url"]}
        cross = doc.get("crossover") or []
        if not cross:
            parts.append("crossover: none in the measured range (one endpoint leads in output tokens/s at every step)")
        for c in cross:
            parts.append(f"crossover: output tokens/s — {name[c['before']]} leads below ~{c['at']:g}, "
                         f"{name[c['after']]} above (between steps {c['between'][0]:g} and {c['between'][1]:g})")
    if doc.get("predicted"):
        pr = doc["predicted"]
        rows = []
        for s, p in zip(doc["steps"], pr["points"]):
            m = (s.get("tpot_ms") or {}).get("p50")
            rows.append([f"{s['value']:g}", _ms(s["ttft_ms"], "p50"), f"{p['ttft_p50_ms']:.3g}",
                         "-" if m is None else f"{m:.3g}", f"{p['itl_p50_ms']:.3g}",
                         "-" if m is None or not m else f"{(p['itl_p50_ms'] - m) / m * 100:+.0f}%"])
        parts.append(f"predicted by the plan ({pr['candidate']}{', calibrated' if pr.get('calibrated') else ''}; "
                     "measured ITL = time per output token, the median over requests of (E2E − TTFT) / (tokens − 1)):\n"
                     + grid(rows, ["users", "TTFT p50 meas.", "TTFT p50 pred.", "ITL meas.", "ITL p50 pred.",
                                   "ITL error"], wide=wide))
    return "\n\n".join(parts)

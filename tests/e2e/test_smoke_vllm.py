"""`llmctl smoke` against a real vLLM server on the CPU (started once per session, ~45 s, ~3 GB)."""

from __future__ import annotations

import json

from support.cli import run_llmctl


def test_smoke_passes_against_vllm_including_metrics(vllm_server):
    r = run_llmctl("smoke", "--url", vllm_server.base_url, "--model", "tiny", "--concurrency", "4",
                   "--ttft-p95-ms", "60000", "--itl-p95-ms", "60000", "--output", "json", "--timeout", "120")
    assert r.code == 0, r.output + "\n" + vllm_server.log_tail()
    report = json.loads(r.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("ready", "model listed", "chat completion", "streaming", "burst x4",
                 "SLA TTFT p95", "SLA ITL p95", "metrics"):
        assert checks[name]["status"] == "pass", checks[name]
    assert "/health" in checks["ready"]["detail"]  # vLLM has a real readiness endpoint
    assert "vllm:" in checks["metrics"]["detail"]  # the engine's own Prometheus series
    burst = report["measurements"]["burst"]
    assert burst["errors"] == 0 and burst["requests"] == 4


def test_vllm_metrics_count_the_smoke_requests(vllm_server):
    """The burst really reached the engine: vLLM's request counter grows by at least the burst size."""
    import httpx

    def finished() -> float:
        text = httpx.get(vllm_server.base_url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("vllm:request_success_total"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = finished()
    r = run_llmctl("smoke", "--url", vllm_server.base_url, "--model", "tiny", "--concurrency", "3",
                   "--output", "json", "--timeout", "120")
    assert r.code == 0, r.output
    # 1 chat + 1 stream + 3 burst requests
    assert finished() - before >= 5

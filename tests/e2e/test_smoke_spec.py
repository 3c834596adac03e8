"""`llmctl smoke SPEC`: the URL comes from the deployment `llmctl up` recorded; concurrency, SLA and
metrics expectations from the spec's plan. (No record: "not deployed", tests/cli/test_smoke_hangs.py.)"""

from __future__ import annotations

import json

from support.cli import run_llmctl


def _spec(tmp_path, model: str, port: int, backend: str, ttft: float) -> str:
    path = tmp_path / "llmctl.yaml"
    path.write_text(
        f"""name: tiny smoke
model: {model}
workload:
  concurrency: 3
  prompt_tokens: 32
  output_tokens: 32
  sla:
    ttft_p95_ms: {ttft}
hardware:
  - name: box
    cpu: cpu-ddr5-2ch
    cpu_cores: 2
    memory_gb: 24
endpoint:
  port: {port}
overrides:
  backend: {backend}
""",
        encoding="utf-8",
    )
    return str(path)


def _record(spec_path: str, url: str) -> None:
    """What `llmctl up` leaves beside the spec (the test server stands in for the deployment)."""
    from llmctl.deploy.state import State, deployment_dir
    from llmctl.slug import slugify
    from llmctl.spec import load_spec

    spec = load_spec(spec_path)
    slug = slugify(spec.name)
    State(name=spec.name, slug=slug, target="local", spec=spec_path, hash="x", active={}, url=url, model="tiny",
          engine="vllm").save(deployment_dir(spec_path, slug))


def test_smoke_spec_reads_url_concurrency_sla_and_metrics_from_the_plan(vllm_server, tiny_hf_model, tmp_path):
    spec = _spec(tmp_path, str(tiny_hf_model), vllm_server.port, "vllm", 60000)
    _record(spec, vllm_server.base_url)
    # the test server was started as `tiny`; the plan would serve the folder's path: --model overrides
    r = run_llmctl("smoke", spec, "--model", "tiny", "--output", "json", "--timeout", "120")
    assert r.code == 0, r.output
    report = json.loads(r.stdout)
    assert report["base_url"] == f"http://127.0.0.1:{vllm_server.port}"  # the recorded deployment's URL
    assert report["concurrency"] == 3  # workload.concurrency
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["burst x3"]["status"] == "pass"
    assert checks["SLA TTFT p95"]["target"] == 60000  # workload.sla
    assert checks["metrics"]["status"] == "pass"  # vLLM exports metrics: required, not optional


def test_smoke_spec_sla_miss_fails(vllm_server, tiny_hf_model, tmp_path):
    spec = _spec(tmp_path, str(tiny_hf_model), vllm_server.port, "vllm", 0.001)
    _record(spec, vllm_server.base_url)
    r = run_llmctl("smoke", spec, "--model", "tiny", "--timeout", "120")
    assert r.code == 1
    assert "SLA TTFT p95" in r.stderr


def test_smoke_spec_uses_the_url_up_recorded(vllm_server, tiny_hf_model, tmp_path, free_port):
    """After `llmctl up`, the deployment's URL lives in .llmctl/<slug>/state.json (a blue/green port,
    a Kubernetes port-forward): `llmctl smoke SPEC` must test that, not the spec's nominal port."""
    from llmctl.deploy.state import State, deployment_dir
    from llmctl.engines import get_engine
    from llmctl.planner import make_plan
    from llmctl.spec import load_spec

    spec_path = _spec(tmp_path, str(tiny_hf_model), free_port, "vllm", 60000)  # nothing listens on free_port
    spec = load_spec(spec_path)
    plan = make_plan(spec, base_dir=tmp_path)
    svc = get_engine(plan.backend).build(plan, spec)
    State(name=spec.name, slug=svc.slug, target="local", spec=spec_path, hash="x", active={},
          url=vllm_server.base_url, model="tiny", engine="vllm").save(deployment_dir(spec_path, svc.slug))
    r = run_llmctl("smoke", spec_path, "--model", "tiny", "--output", "json", "--timeout", "120")
    assert r.code == 0, r.output
    assert json.loads(r.stdout)["base_url"].rstrip("/") == vllm_server.base_url.rstrip("/")

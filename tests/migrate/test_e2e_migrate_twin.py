"""The failing twin of test_e2e_migrate.py: the new side loads *other* weights (the tiny model built
from another seed: same shapes and tokenizer, tests/support/tiny_models.py weight_seed).

Old side: the real llama.cpp server on the tiny GGUF, standing in for Ollama (which cannot run here).
New side: vLLM CPU, started by `--apply` from vllm.yaml + plan.json. A bounded load runs throughout.

Asserted: parity fails (parity.json and parity.md say so and why), the exit code is 1, nothing
shifts (no shift step, vLLM's weight stays 0), and the old side keeps serving every request.
"""

from __future__ import annotations

import json

import pytest

from support.requires import require, require_tool
from llmctl.migrate.apply import run
from llmctl.migrate.state import Migration
from llmctl.traffic.proxy import Proxy
from support import servers
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port
from support.tiny_models import ensure_tiny_models

from .e2e_support import ENGINE_ARGS, clean_up, vllm_env, write_new_side
from .outdir import model_entry, write_inventory

pytestmark = pytest.mark.e2e


def test_other_weights_fail_parity_and_nothing_shifts(tmp_path, tiny_models):
    require(servers.vllm_available() is None, servers.vllm_available() or "")
    require(servers.llama_cpp_available() is None, servers.llama_cpp_available() or "")
    require_tool("haproxy", "the traffic layer")
    _, gguf = tiny_models
    other_hf, _ = ensure_tiny_models(weight_seed=4321)
    out = tmp_path / "migration-tiny"
    old = servers.start_llama_server(gguf, tmp_path / "logs")
    write_inventory(out, old.base_url, [model_entry("tiny")])
    write_new_side(out, other_hf)
    port = free_port()
    said: list[str] = []
    load = StreamLoad(f"http://127.0.0.1:{port}", "tiny", workers=2, max_tokens=8, max_requests=20000)
    try:
        with vllm_env():
            # the proxy comes up before parity runs: start the load as soon as it answers
            import threading

            result: dict = {}
            worker = threading.Thread(target=lambda: result.update(rc=run(
                out, parity_api="openai", python=servers.vllm_python(), engine_args=ENGINE_ARGS, port=port,
                observe_s=1, say=said.append)))
            worker.start()
            from support.net import http_ok, wait_until

            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/v1/models") or not worker.is_alive(), timeout=600,
                       what="the migration proxy", interval=0.5)
            load.start()
            worker.join(timeout=900)
            assert not worker.is_alive(), "apply did not finish"
        assert result["rc"] == 1, "\n".join(said)
        assert any("parity FAILED" in s for s in said)
        load.wait_for(load.report.total + 4, timeout_s=120)
        report = load.stop()
        parity = json.loads((out / "parity.json").read_text())
        assert parity["passed"] is False
        assert parity["models"][0]["checks"]["greedy"]["ok"] is False
        assert "**FAILED**" in (out / "parity.md").read_text()
        m = Migration.load(out)
        assert m.phase == "parity-failed" and m.shares == {"ollama": 100.0, "vllm": 0.0}
        assert not [s for s in m.data["steps"] if s["name"].startswith("shift-")]
        assert Proxy(out / "proxy").admin.stats("be_v1")["vllm-1"]["weight"] == "0"
        assert report.failed == [], report.failed[:5]
        assert report.ok > 0 and set(report.served_by) == {"ollama-1"}  # the old side served everything
        r = run_llmctl("migrate", "shift", "--to", "10%", "--out", str(out))
        assert r.code == 1 and "parity has not passed" in r.stderr
        assert old.alive() is None
    finally:
        if load._threads:
            load.stop()
        clean_up(out)
        old.stop()

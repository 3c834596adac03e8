"""Shared set-up of the end-to-end migration tests: the old side (the real llama-server on the tiny
GGUF, standing in for Ollama, which cannot run here), an out folder for the new side (vllm.yaml and
the plan `llmctl plan` makes of it, for vLLM CPU on the tiny Hugging Face folder), and clean-up that
stops only what the migration started."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from llmctl.migrate import processes
from llmctl.migrate.state import Migration
from llmctl.traffic.proxy import Proxy

# vLLM on this CPU: float32 like the GGUF (so the same weights compute the same tokens: see
# tests/e2e/test_engine_parity.py), a short context, the served name the old side uses.
ENGINE_ARGS = ["--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "8", "--served-model-name", "tiny"]
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def write_new_side(out: Path, hf_dir: Path) -> None:
    """vllm.yaml (an ordinary llmctl spec, engine vLLM, target local) and plan.json from `llmctl plan`.
    The planner says vLLM on a CPU is not for serving (exit 1) but prints the plan all the same."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "vllm.yaml"
    spec.write_text(
        f"name: tiny\nmodel: {hf_dir}\nenvironment: development\ntarget: local\n"
        "workload:\n  concurrency: 2\n  prompt_tokens: 64\n  output_tokens: 32\n"
        "hardware:\n  - name: box\n    cpu: cpu-ddr5-2ch\n    cpu_cores: 2\n    memory_gb: 24\n"
        "endpoint:\n  port: 8000\noverrides:\n  backend: vllm\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "llmctl", "plan", str(spec), "-o", "json"], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    plan = json.loads(proc.stdout)
    assert plan["backend"] == "vllm", proc.stderr
    (out / "plan.json").write_text(json.dumps(plan, indent=2))


@contextlib.contextmanager
def vllm_env():
    saved = {k: os.environ.get(k) for k in VLLM_ENV}
    os.environ.update(VLLM_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def clean_up(out: Path) -> None:
    """Stop what the migration started (vLLM, the front) and its proxy; nothing else."""
    m = Migration.load(out)
    if m is not None:
        for record in m.data["started"]:
            processes.stop(record)
    Proxy(out / "proxy").stop(timeout_s=10)

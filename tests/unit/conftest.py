"""Fixtures of the unit tests that read measurements (bench results, start-up logs, reports)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cpu_spec(tmp_path, tiny_hf_model) -> Path:
    """The setup measured: vLLM 0.32.0 (the CPU image) serving the tiny model on this machine's CPU node."""
    p = tmp_path / "cpu.yaml"
    p.write_text(f"""name: tiny-cpu
model: {tiny_hf_model}
workload: {{concurrency: 4, prompt_tokens: 64, output_tokens: 128, context_length: 256}}
hardware:
  - {{name: node-1, cpu_cores: 2, memory_gb: 24}}
target: local
overrides:
  backend: vllm
  image: vllm/vllm-openai-cpu:v0.32.0
""")
    return p

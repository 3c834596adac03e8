"""Fixtures for the engine-oracle tests: the real llama-server binary and a vLLM server started with
the tool-calling flags (separate from the session's shared `vllm_server`, which runs without them)."""

from __future__ import annotations

import pytest

from support.requires import require


@pytest.fixture(scope="session")
def llama_server_binary():
    """The path of the real llama-server (tests/support/llama_server.py finds it)."""
    from support import llama_server

    require(llama_server.missing_reason() is None, llama_server.missing_reason() or "")
    return llama_server.binary()


@pytest.fixture(scope="module")
def vllm_tools_server(tiny_hf_model, e2e_log_dir):
    """vLLM on the CPU with `--enable-auto-tool-choice --tool-call-parser hermes` (~45 s, ~3 GB), for
    the module that uses it only."""
    from support import servers

    require(servers.vllm_available() is None, servers.vllm_available() or "")
    server = servers.start_vllm_server(tiny_hf_model, e2e_log_dir, timeout=600,
                                       extra=["--enable-auto-tool-choice", "--tool-call-parser", "hermes"])
    try:
        yield server
    finally:
        server.stop()

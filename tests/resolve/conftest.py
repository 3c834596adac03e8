"""Every resolution test runs with its own caches, an empty Ollama store, no token and a short time-out."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from llmctl.resolve.policy import set_offline

    for name in ("LLMCTL_OFFLINE", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT", "LLMCTL_OLLAMA_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMCTL_CACHE_DIR", str(tmp_path / "llmctl-cache"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("LLMCTL_NET_TIMEOUT", "3")
    set_offline(False)
    yield tmp_path
    set_offline(False)

"""Serving engines: each turns a Plan into a ServiceSpec (llmctl/service.py)."""

from __future__ import annotations

from llmctl.engines.base import Engine
from llmctl.errors import InputError


def get_engine(name: str) -> Engine:
    from llmctl.engines.llamacpp import LlamaCppEngine
    from llmctl.engines.ollama import OllamaEngine
    from llmctl.engines.vllm import VllmEngine

    engines: dict[str, type[Engine]] = {"vllm": VllmEngine, "ollama": OllamaEngine, "llama.cpp": LlamaCppEngine}
    key = name.lower().replace("_", ".").replace("-", ".")
    key = "llama.cpp" if key in ("llamacpp", "llama.cpp") else key
    if key not in engines:
        raise InputError(f"backend: unknown engine {name!r}", hint="one of: " + ", ".join(engines))
    return engines[key]()


__all__ = ["Engine", "get_engine"]

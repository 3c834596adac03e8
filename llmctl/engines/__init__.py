"""Serving engines, one plug-in each: the only code that knows an engine by name.

An engine decides which quantizations and KV dtypes it loads, which layouts it can run (TP/PP, or
GPUs and slots), the memory and performance model inputs, its settings for a plan, and how a plan
becomes a ServiceSpec (llmctl/service.py). Everything else asks the registry below.

Adding an engine: one module here with an `Engine` subclass, one line in `_CLASSES`, and its block
in profiles/engines.yaml (typed by llmctl/engines/profile.py). See the README's developer section.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.engines.base import Engine

# name -> "module:class", imported on first use (a plan loads every engine; --help loads none)
_CLASSES = {
    "vllm": "llmctl.engines.vllm:VllmEngine",
    "ollama": "llmctl.engines.ollama:OllamaEngine",
    "llama.cpp": "llmctl.engines.llamacpp:LlamaCppEngine",
}


def engine_names() -> tuple[str, ...]:
    """Every registered engine, in the order plans consider and list them."""
    return tuple(_CLASSES)


def canonical_name(name: str) -> str | None:
    """The registered name for a spelling people use (`llamacpp`, `LLaMA.cpp`, `vLLM`), or None."""
    key = name.strip().lower()
    for engine in all_engines():
        if key == engine.name or key in engine.profile.aliases:
            return engine.name
    return None


@lru_cache(maxsize=None)
def _instance(name: str) -> "Engine":
    import importlib

    module, cls = _CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def get_engine(name: str) -> "Engine":
    key = canonical_name(name) if name not in _CLASSES else name
    if key is None:
        raise InputError(f"backend: unknown engine {name!r}", hint="one of: " + ", ".join(_CLASSES))
    return _instance(key)


def all_engines() -> list["Engine"]:
    return [_instance(n) for n in _CLASSES]


__all__ = ["all_engines", "canonical_name", "engine_names", "get_engine"]

"""The calibration in force for the plan being made: which engine runs on which device because it was
measured there, and the measured memory figures. Set by `llmctl.calibrate.apply.activate` at the start
of every `make_plan`, read by the engines' planning hooks. Tiny on purpose: imported on every plan."""

from __future__ import annotations

from typing import Any

# (engine, device id) -> the overlay entry's provenance sentence
_RUNS_HERE: dict[tuple[str, str], str] = {}
# (engine, device id) -> measured memory figures (kv_cache_tokens, kv_cache_gib, …)
_MEMORY: dict[tuple[str, str], dict[str, Any]] = {}


def reset() -> None:
    _RUNS_HERE.clear()
    _MEMORY.clear()


def allow(engine: str, device: str, why: str) -> None:
    _RUNS_HERE[(engine, device)] = why


def set_memory(engine: str, device: str, figures: dict[str, Any]) -> None:
    _MEMORY[(engine, device)] = dict(figures)


def runs_here(engine: str, device: str) -> str | None:
    """Why `engine` is planned on `device` although its profile refuses it (measured there), or None."""
    return _RUNS_HERE.get((engine, device))


def memory(engine: str, device: str) -> dict[str, Any]:
    return _MEMORY.get((engine, device), {})

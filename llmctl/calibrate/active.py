"""The calibration in force for the plan being made: which engine runs on which device because it was
measured there, and the measured memory figures. Set by `llmctl.calibrate.apply.activate` at the start
of every `make_plan`, read by the engines' planning hooks. Tiny on purpose: imported on every plan."""

from __future__ import annotations

from typing import Any

# (engine, device id) -> the overlay entry's provenance sentence
_RUNS_HERE: dict[tuple[str, str], str] = {}
# (engine, device id) -> measured memory figures (kv_cache_tokens, kv_cache_gib, …)
_MEMORY: dict[tuple[str, str], dict[str, Any]] = {}


# While `llmctl calibrate` plans the measured setup: overlays are not read (the fit starts from the
# profiles' constants) and the measured engine is planned on any device (it was seen serving there).
_CALIBRATING: dict[str, Any] = {}


def calibrating(engine: str | None) -> None:
    _CALIBRATING.clear()
    if engine is not None:
        _CALIBRATING["engine"] = engine


def ignore_overlays() -> bool:
    return bool(_CALIBRATING)


def reset() -> None:
    _RUNS_HERE.clear()
    _MEMORY.clear()


def allow(engine: str, device: str, why: str) -> None:
    _RUNS_HERE[(engine, device)] = why


def set_memory(engine: str, device: str, figures: dict[str, Any]) -> None:
    _MEMORY[(engine, device)] = dict(figures)


def runs_here(engine: str, device: str) -> str | None:
    """Why `engine` is planned on `device` although its profile refuses it (measured there), or None."""
    if _CALIBRATING.get("engine") == engine:
        return "being calibrated from measurements on this device"
    return _RUNS_HERE.get((engine, device))


def memory(engine: str, device: str) -> dict[str, Any]:
    return _MEMORY.get((engine, device), {})

"""The calibration overlay: constants fitted to measurements of one setup, kept as YAML with provenance.

Where: beside the spec (`<spec>.calibration.yaml`, scope `spec`) or in the user's config folder
(`$XDG_CONFIG_HOME/llmctl/calibration.yaml`, default ~/.config/llmctl, scope `user`). A plan reads
the spec's file first, then the user's; the first entry whose key matches wins.

Each entry is keyed by engine, engine version, device profile and model: constants measured for vLLM
0.32.0 on one CPU serving one model are never applied to another version, device or model (the plan
says so when it skips one). The file is checked when read — a misspelt key, a value of the wrong type
or out of range is exit 2 naming the file, line and field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

from llmctl.errors import InputError

SCHEMA = "llmctl.calibration/v1"
SUFFIX = ".calibration.yaml"
MAX_BYTES = 1024 * 1024

# performance.yaml `engines.<engine>` constants a calibration may set, with their physical bounds
PERFORMANCE_KEYS: dict[str, tuple[float, float]] = {
    "step_overhead_ms": (0.0, 10_000.0),
    "seq_overhead_us": (0.0, 1_000_000.0),
    "request_overhead_ms": (0.0, 100_000.0),
    "layer_overhead_ms": (0.0, 1_000.0),
    "memory_efficiency": (1e-6, 1.0),
    "kv_efficiency": (1e-6, 1.0),
    "compute_efficiency": (1e-6, 1.0),
}
# constants given per device family in performance.yaml (the overlay sets the matched device's entry)
PER_DEVICE = ("memory_efficiency", "kv_efficiency", "compute_efficiency", "layer_overhead_ms")


def spec_overlay_path(spec_path: str | Path) -> Path:
    p = Path(spec_path)
    return p.with_name(p.name + SUFFIX) if p.suffix not in (".yaml", ".yml") else p.with_name(p.stem + SUFFIX)


def user_overlay_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "llmctl" / "calibration.yaml"


def _models():
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Key(_Strict):
        engine: Literal["vllm", "ollama", "llama.cpp"]
        engine_version: str = Field(pattern=r"^v?\d+(\.\d+)*$")
        device: str = Field(min_length=1)  # a profile id from profiles/gpus.yaml (e.g. A100-80GB-SXM, cpu-ddr5-2ch)
        model: str = Field(min_length=1)  # the model's id as the plan names it

    class Memory(_Strict):
        kv_cache_gib: Optional[float] = Field(default=None, ge=0)
        kv_cache_tokens: Optional[int] = Field(default=None, ge=0)
        non_kv_cache_gib: Optional[float] = Field(default=None, ge=0)
        weights_gib: Optional[float] = Field(default=None, ge=0)

    class Provenance(_Strict):
        kind: Literal["llmctl-bench", "vllm-bench-serve", "guidellm-report", "vllm-startup-log", "metrics"]
        source: str = Field(min_length=1)
        source_sha256: Optional[str] = None
        measured_at: Optional[str] = None
        calibrated_at: str
        engine_version: str
        gpu: str
        model: str
        llmctl_version: Optional[str] = None
        note: Optional[str] = None

    class Entry(_Strict):
        key: Key
        runs_here: bool = False  # the engine was measured serving on this device
        performance: dict[str, float] = {}
        defaults: dict[str, float] = {}  # what the constants were before (shown by --explain)
        memory: Optional[Memory] = None
        fit: dict[str, Any] = {}  # how well the fitted constants reproduce the measurements
        provenance: list[Provenance] = Field(min_length=1)

        @field_validator("performance")
        @classmethod
        def _known(cls, v: dict[str, float]) -> dict[str, float]:
            for name, value in v.items():
                if name not in PERFORMANCE_KEYS:
                    raise ValueError(f"unknown constant {name!r} (known: {', '.join(PERFORMANCE_KEYS)})")
                lo, hi = PERFORMANCE_KEYS[name]
                if not lo <= value <= hi:
                    raise ValueError(f"{name} = {value} is outside [{lo:g}, {hi:g}]")
            return v

    class Overlay(_Strict):
        schema_: Literal["llmctl.calibration/v1"] = Field(alias="schema")
        entries: list[Entry] = []

    return Overlay, Entry


def load(path: Path) -> dict | None:
    """The overlay at `path` as checked plain data (None when there is no file); InputError naming the
    file, line and field when it is malformed."""
    if not path.is_file():
        return None
    from pydantic import ValidationError

    from llmctl.fileio import read_text_input
    from llmctl.yaml_lines import line_of, load_yaml

    text = read_text_input(path, what="calibration overlay", max_bytes=MAX_BYTES)
    data, lines = load_yaml(text, str(path))
    Overlay, _ = _models()
    try:
        return Overlay.model_validate(data if data is not None else {}).model_dump(by_alias=True, exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = line_of(lines, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {loc[-1]!r}"
        raise InputError(f"{field}: {msg}", where=f"{path}:{line}" if line else str(path),
                         hint="fix or delete the file; `llmctl calibrate` writes it") from None


def entry_matches(entry: dict, engine: str, version: str | None, device: str, model: str) -> str | None:
    """None when `entry` applies to this setup, else why not (in words)."""
    from llmctl.estimate.memory import version_tuple

    k = entry["key"]
    if k["engine"] != engine:
        return "another engine"
    why = []
    if k["device"] != device:
        why.append(f"measured on {k['device']}, planned on {device}")
    if k["model"] != model:
        why.append(f"measured with model {k['model']}, planned {model}")
    if version_tuple(k["engine_version"]) != version_tuple(version):
        why.append(f"measured on {engine} {k['engine_version']}, this plan models {engine} {version or '?'}")
    return "; ".join(why) or None


def save_entry(path: Path, entry: dict) -> str:
    """Add `entry` to the overlay at `path`, replacing one with the same key; 'added' or 'replaced'."""
    from llmctl.fileio import to_yaml, write_atomic

    current = load(path) or {"schema": SCHEMA, "entries": []}
    entries = [e for e in current.get("entries", []) if e["key"] != entry["key"]]
    action = "replaced" if len(entries) < len(current.get("entries", [])) else "added"
    entries.append(entry)
    _, Entry = _models()
    Entry.model_validate(entry)  # never write what could not be read back
    doc = {"schema": SCHEMA, "entries": entries}
    head = ("# Calibration overlay written by `llmctl calibrate`: constants fitted to measurements of one\n"
            "# engine, version, device and model (the key). `llmctl plan` applies an entry only to a plan of\n"
            "# that exact setup and says \"calibrated from …\"; --explain shows each value beside its default.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, head + to_yaml(doc))
    return action

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
from typing import Annotated, Any, Literal, Optional

from llmctl.errors import InputError
from llmctl.typed import Invalid, Meta, Record, convert, dump, field

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


NonNegative = Annotated[float, Meta(ge=0)]
Text = Annotated[str, Meta(min_length=1)]


class Key(Record):
    engine: Literal["vllm", "ollama", "llama.cpp"]
    engine_version: Annotated[str, Meta(pattern=r"^v?\d+(\.\d+)*$")]
    device: Text  # a profile id from profiles/gpus.yaml (e.g. A100-80GB-SXM, cpu-ddr5-2ch)
    model: Text  # the model's id as the plan names it


class Memory(Record):
    kv_cache_gib: Optional[NonNegative] = None
    kv_cache_tokens: Optional[Annotated[int, Meta(ge=0)]] = None
    non_kv_cache_gib: Optional[NonNegative] = None
    weights_gib: Optional[NonNegative] = None


class Provenance(Record):
    kind: Literal["llmctl-bench", "vllm-bench-serve", "guidellm-report", "vllm-startup-log", "metrics"]
    source: Text
    source_sha256: Optional[str] = None
    measured_at: Optional[str] = None
    calibrated_at: str
    engine_version: str
    gpu: str
    model: str
    llmctl_version: Optional[str] = None
    note: Optional[str] = None


# the constants an entry may set, each within its bounds (a key not listed is an error naming it)
Constants = type(Record)("Constants", (Record,), {
    "__annotations__": {name: Optional[Annotated[float, Meta(ge=lo, le=hi)]] for name, (lo, hi) in PERFORMANCE_KEYS.items()},
    **dict.fromkeys(PERFORMANCE_KEYS), "__module__": __name__})


class Entry(Record):
    key: Key
    runs_here: bool = False  # the engine was measured serving on this device
    performance: Constants = field(default_factory=Constants)
    defaults: dict[str, float] = {}  # what the constants were before (shown by --explain)
    memory: Optional[Memory] = None
    fit: dict[str, Any] = {}  # how well the fitted constants reproduce the measurements
    provenance: Annotated[list[Provenance], Meta(min_length=1)]


class Overlay(Record):
    schema_: Literal["llmctl.calibration/v1"] = field(name="schema")
    entries: list[Entry] = []


def load(path: Path) -> dict | None:
    """The overlay at `path` as checked plain data (None when there is no file); InputError naming the
    file, line and field when it is malformed."""
    if not path.is_file():
        return None
    from llmctl.fileio import read_text_input
    from llmctl.yaml_lines import line_of, load_yaml

    text = read_text_input(path, what="calibration overlay", max_bytes=MAX_BYTES)
    data, lines = load_yaml(text, str(path))
    try:
        return dump(convert(data if data is not None else {}, Overlay), exclude_none=True)
    except Invalid as exc:
        line = line_of(lines, exc.loc)
        raise InputError(str(exc), where=f"{path}:{line}" if line else str(path),
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
    convert(entry, Entry)  # never write what could not be read back
    doc = {"schema": SCHEMA, "entries": entries}
    head = ("# Calibration overlay written by `llmctl calibrate`: constants fitted to measurements of one\n"
            "# engine, version, device and model (the key). `llmctl plan` applies an entry only to a plan of\n"
            "# that exact setup and says \"calibrated from …\"; --explain shows each value beside its default.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, head + to_yaml(doc))
    return action

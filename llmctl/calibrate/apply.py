"""Apply the calibration overlays of a spec to the plan being made.

`activate()` runs at the start of every `make_plan`: it finds the overlays (beside the spec, then the
user's), keeps the entries whose key matches this plan's setup — engine, the engine version the plan
models, a device of the spec's hardware, the model — and lays their constants over
profiles/performance.yaml for this plan. What it applied and what it skipped (and why) comes back as
sentences for the plan's rationale, warnings and `--explain`.

Without an overlay file this costs two stat() calls.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmctl.calibrate import active


@dataclass
class Applied:
    rationale: list[str] = field(default_factory=list)  # "calibrated from …"
    warnings: list[str] = field(default_factory=list)  # entries skipped, and why
    explain: list[tuple[str, str, str]] = field(default_factory=list)  # (quantity, value, how)
    sources: list[str] = field(default_factory=list)


def modelled_version(spec, engine: str) -> str | None:
    """The engine version a plan models: the tag of `overrides.image` when it names one (a plan is for
    a pinned image), else the image llmctl deploys (profiles/engines.yaml)."""
    from llmctl.estimate.memory import pinned_version

    image = getattr(spec.overrides, "image", None)
    if image and (spec.overrides.backend in (None, engine)):
        m = re.match(r"v?(\d+\.\d+(?:\.\d+)*)", image.rpartition(":")[2]) if ":" in image.rpartition("/")[2] else None
        if m:
            return m.group(1)
    return pinned_version(engine)


def overlay_paths(spec) -> list[Path]:
    from llmctl.calibrate.overlay import spec_overlay_path, user_overlay_path

    paths = []
    from llmctl.spec import source_of

    source = source_of(spec)
    if source and source[0] and source[0] != "<stdin>":
        paths.append(spec_overlay_path(source[0]))
    paths.append(user_overlay_path())
    return paths


def activate(spec, model, pools) -> Applied:
    """Lay the matching overlay entries over the constants for this plan (and clear any earlier plan's)."""
    from llmctl.estimate import performance

    active.reset()
    performance.set_calibrated(None)
    out = Applied()
    if active.ignore_overlays():
        return out
    files = [(p, None) for p in overlay_paths(spec) if p.is_file()]
    if not files:
        return out
    from llmctl.calibrate.overlay import entry_matches, load

    devices = {p.device.id: p.device for p in pools}
    merged: dict | None = None
    taken: set[tuple[str, str]] = set()
    for path, _ in files:
        doc = load(path)
        for entry in (doc or {}).get("entries", []):
            k = entry["key"]
            engine = k["engine"]
            version = modelled_version(spec, engine)
            hits = [d for d in devices if entry_matches(entry, engine, version, d, model.id) is None]
            if not hits:
                device = k["device"] if k["device"] in devices else next(iter(devices), k["device"])
                why = entry_matches(entry, engine, version, device, model.id)
                out.warnings.append(f"calibration in {path} for {engine} {k['engine_version']} on {k['device']} "
                                    f"({k['model']}) not applied: {why}")
                continue
            device_id = hits[0]
            if (engine, device_id) in taken:
                continue
            taken.add((engine, device_id))
            if merged is None:
                merged = copy.deepcopy(performance.constants())
            _lay_over(merged, engine, devices[device_id], entry.get("performance", {}))
            provs = entry["provenance"]
            kinds = " + ".join(dict.fromkeys(p["kind"] for p in provs))
            when = next((p["measured_at"] for p in provs if p.get("measured_at")), provs[-1]["calibrated_at"])
            src = ", ".join(sorted({p["source"] for p in entry["provenance"]}))
            if entry.get("runs_here"):
                active.allow(engine, device_id, f"measured serving on {device_id} ({src})")
            if entry.get("memory"):
                active.set_memory(engine, device_id, entry["memory"])
            fitted = ", ".join(f"{n} {v:g}" for n, v in entry.get("performance", {}).items())
            mem = ", ".join(f"{n} {_num(v)}" for n, v in (entry.get("memory") or {}).items())
            out.sources.append(str(path))
            out.rationale.append(
                f"calibrated from {src} ({kinds}, measured {when}; "
                f"{engine} {k['engine_version']} on {device_id}, model {k['model']}), stored in {path}: "
                + "; ".join(x for x in (fitted, mem) if x))
            defaults = entry.get("defaults", {})
            timed = ", ".join(dict.fromkeys(p["source"] for p in provs if p["kind"] != "vllm-startup-log")) or src
            logged = ", ".join(dict.fromkeys(p["source"] for p in provs if p["kind"] in ("vllm-startup-log", "metrics"))) or src
            for name, value in entry.get("performance", {}).items():
                d = defaults.get(name)
                out.explain.append((f"calibrated {engine}.{name}", f"{value:g}",
                                    f"fitted from {timed}; default {d:g}" if d is not None else f"fitted from {timed}"))
            for name, value in (entry.get("memory") or {}).items():
                out.explain.append((f"measured {engine} {name}", _num(value), f"from {logged}"))
            if entry.get("runs_here"):
                out.explain.append((f"{engine} on {device_id}", "planned",
                                    f"its profile refuses this device; the calibration measured it serving there"))
    if merged is not None:
        performance.set_calibrated(merged)
    return out


def _lay_over(consts: dict, engine: str, device, values: dict[str, float]) -> None:
    from llmctl.calibrate.overlay import PER_DEVICE

    engines = consts["engines"]
    own = engines.setdefault(engine, {})
    if "inherit" in own:  # the fitted values belong to this engine: copy what it inherits first
        parent = engines[own.pop("inherit")]
        for k, v in parent.items():
            own.setdefault(k, copy.deepcopy(v))
    for name, value in values.items():
        if name in PER_DEVICE:
            old = own.get(name)
            table = dict(old) if isinstance(old, dict) else ({"gpu": old} if old is not None else {})
            table[device.arch or device.kind] = value  # the family wins over the kind (performance._eff)
            own[name] = table
        else:
            own[name] = value


def _num(v: float | int) -> str:
    return f"{v:,}" if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"

"""The estimators' constants: profiles/estimation.yaml (memory) and profiles/performance.yaml (time), typed.

Each file is checked against constants_schema.py when read: a missing key, a misspelt key, a value of
the wrong type or out of its physical range stops llmctl with the file and the key path
("profiles/performance.yaml: engines.vllm.memory_efficiency: ..."), not with a KeyError deep in a
prediction. The estimators keep reading plain dicts, so callers and benchmarks that override
constants with dicts work unchanged.

Building the pydantic models costs ~0.2 s, a tenth of a whole plan: a file whose bytes passed the
check once with the same schema is not checked again (a marker in llmctl's cache folder, keyed by
the hash of both), so the schema is only imported when a profile or the schema changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_SCHEMA = Path(__file__).with_name("constants_schema.py")


def _marker(name: str) -> Path | None:
    from llmctl.paths import profiles_dir
    from llmctl.profiles_io import cache_dir

    try:
        digest = hashlib.sha256(_SCHEMA.read_bytes() + (profiles_dir() / name).read_bytes()).hexdigest()[:24]
    except OSError:
        return None
    return cache_dir() / f"checked-{Path(name).stem}-{digest}"


def checked(name: str, data: Any) -> dict:
    """profiles/<name> as parsed, after the schema check (skipped when these bytes passed before)."""
    marker = _marker(name)
    if marker is not None and marker.exists():
        return data
    from llmctl.estimate.constants_schema import MODELS, check

    check(name, data, MODELS[name])
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # an unwritable cache only costs the check next time
    return data


def performance_constants(data: Any) -> dict:
    """A performance.yaml mapping checked against the schema (always: for dicts built in code)."""
    from llmctl.estimate.constants_schema import PerformanceConstants, check

    return check("performance.yaml", data, PerformanceConstants)


def estimation_constants(data: Any) -> dict:
    from llmctl.estimate.constants_schema import EstimationConstants, check

    return check("estimation.yaml", data, EstimationConstants)

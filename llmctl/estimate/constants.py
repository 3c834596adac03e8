"""The estimators' constants: profiles/estimation.yaml (memory) and profiles/performance.yaml (time), typed.

Each file is checked against constants_schema.py when read: a missing key, a misspelt key, a value of
the wrong type or out of its physical range stops llmctl with the file and the key path
("profiles/performance.yaml: engines.vllm.memory_efficiency: ..."), not with a KeyError deep in a
prediction. The estimators keep reading plain dicts, so callers and benchmarks that override
constants with dicts work unchanged.

Both files are checked on every run (msgspec: ~5 ms together).
"""

from __future__ import annotations

from typing import Any


def checked(name: str, data: Any) -> dict:
    """profiles/<name> as parsed, after the schema check."""
    from llmctl.estimate.constants_schema import MODELS, check

    check(name, data, MODELS[name])
    return data


def performance_constants(data: Any) -> dict:
    """A performance.yaml mapping checked against the schema (always: for dicts built in code)."""
    from llmctl.estimate.constants_schema import PerformanceConstants, check

    return check("performance.yaml", data, PerformanceConstants)


def estimation_constants(data: Any) -> dict:
    from llmctl.estimate.constants_schema import EstimationConstants, check

    return check("estimation.yaml", data, EstimationConstants)

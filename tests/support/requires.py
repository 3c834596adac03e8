"""Skip on a developer's machine, fail under `./scripts/test` (LLMCTL_REQUIRE_E2E=1), when a real part a
test needs is missing. Import from here (`from support.requires import require`): every test folder
has a conftest.py of its own, so `from conftest import …` finds whichever was imported first."""

from __future__ import annotations

import os

import pytest


def e2e_required() -> bool:
    return os.environ.get("LLMCTL_REQUIRE_E2E", "") not in ("", "0", "false", "no")


def require(condition: object, reason: str) -> None:
    """Skip (developer laptop) or fail (LLMCTL_REQUIRE_E2E=1) when `condition` is false."""
    if condition:
        return
    if e2e_required():
        pytest.fail(f"required for this run (LLMCTL_REQUIRE_E2E=1): {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, why: str = "") -> str:
    """The path of executable `name` on PATH (or skip/fail via `require`)."""
    import shutil

    path = shutil.which(name)
    require(path, f"{name} is not on PATH" + (f" ({why})" if why else ""))
    return path  # type: ignore[return-value]


def require_module(module: str, why: str = "") -> None:
    import importlib.util

    require(importlib.util.find_spec(module) is not None,
            f"Python module {module} is not installed" + (f" ({why})" if why else ""))

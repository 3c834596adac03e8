"""Doctor checks of the local target: HAProxy for the traffic layer (the engine's own binary is checked
when `up` starts it)."""

from __future__ import annotations

from typing import Sequence

from llmctl.doctor import CheckResult, Requirements
from llmctl.targets.proxy_check import check_haproxy


def checks(req: Requirements, env: dict[str, str], kubectl: str | Sequence[str]) -> tuple[list[CheckResult], None]:
    return [check_haproxy()], None

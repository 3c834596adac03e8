"""Doctor checks of the systemd target: systemd is the init system, and HAProxy (its proxy unit) is installed."""

from __future__ import annotations

import os
from typing import Sequence

from llmctl.doctor import FAIL, PASS, CheckResult, Requirements

# /run/systemd/system exists exactly when systemd is PID 1 — the test sd_booted(3) makes
# (https://www.freedesktop.org/software/systemd/man/latest/sd_booted.html)
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"


def checks(req: Requirements, env: dict[str, str], kubectl: str | Sequence[str]) -> tuple[list[CheckResult], None]:
    from llmctl.targets.proxy_check import check_haproxy

    return [check_systemd(), check_haproxy()], None


def check_systemd(runtime_dir: str = SYSTEMD_RUNTIME_DIR) -> CheckResult:
    if os.path.isdir(runtime_dir):
        return CheckResult("systemd", PASS, f"systemd is running ({runtime_dir} exists)")
    return CheckResult(
        "systemd", FAIL, f"systemd is not the init system here ({runtime_dir} is missing)",
        "use `target: compose` or `local`, or run on a host booted with systemd",
    )

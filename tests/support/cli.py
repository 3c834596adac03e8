"""Run the real `llmctl` command line in a subprocess (exit codes, stdout and stderr as a user sees them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_llmctl(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> CliResult:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "llmctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

"""Start-up and planning speed as a user feels it: `python -m benchmarks.speed`.

Runs the installed `llmctl` entry point in fresh processes (median of N) and compares with the
targets: `llmctl --help` ≤ 0.15 s, `llmctl plan examples/chatbot.yaml` ≤ 0.3 s (wall clock, 2-core machine).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


# As a user runs it: Python may cache bytecode (pip compiles it at install; an editable checkout
# writes __pycache__ on the first run). Test runners often set PYTHONDONTWRITEBYTECODE, which would
# make every run recompile llmctl from source and time the compiler instead of llmctl.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr}")
    return elapsed


def main() -> int:
    exe = shutil.which("llmctl")
    base = [exe] if exe else [sys.executable, "-m", "llmctl"]
    cases = [
        ("llmctl --help", base + ["--help"], 0.15),
        ("llmctl plan examples/chatbot.yaml", base + ["plan", "examples/chatbot.yaml"], 0.30),
        ("llmctl plan examples/llama-405b-2x8-h100.yaml", base + ["plan", "examples/llama-405b-2x8-h100.yaml"], 0.30),
    ]
    rows, ok = [], True
    for name, argv, target in cases:
        _time(argv)  # warm the OS file cache, the bytecode cache and llmctl's parsed-profile cache
        times = [_time(argv) for _ in range(RUNS)]
        med = statistics.median(times)
        passed = med <= target
        ok &= passed
        rows.append([name, f"{med:.3f}", f"{min(times):.3f}", f"≤ {target:.2f}", "PASS" if passed else "FAIL"])
    print(tabulate(rows, headers=["command", f"median s ({RUNS} runs)", "best s", "target", ""]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start-up and planning speed as a user feels it: `python -m benchmarks.speed`.

Runs each command in fresh processes and compares it with a bare interpreter start (`python -c
pass`) in the same environment: the ratio is what llmctl adds, and it stays meaningful on a busy or
slow machine where absolute seconds do not. Runs are interleaved (bare, case, bare, case, …) so
both see the same load. Reported: median wall time, median CPU time (user + sys, from wait4), and
the ratio of CPU times to the bare interpreter's.

Targets (ratio): `llmctl --help` ≤ 4×, `llmctl plan` ≤ 15×; `llmctl completion bash` is measured only.

A last row measures the floor `plan` stands on, with no llmctl code: the interpreter importing click
and msgspec and defining one record type. What a plan costs above that row is llmctl's own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("LLMCTL_BENCH_RUNS", "9"))

# As a user runs it: Python may cache bytecode (pip compiles it at install; an editable checkout
# writes __pycache__ on the first run). Test runners often set PYTHONDONTWRITEBYTECODE, which would
# make every run recompile llmctl from source and time the compiler instead of llmctl.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# The dependencies' share of a plan: click, then msgspec with one record type checked.
FLOOR = """
import click
import msgspec
class One(msgspec.Struct, forbid_unknown_fields=True):
    a: int = 1
msgspec.convert({"a": 2}, One)
"""


def measure(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; SystemExit when it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {err}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    from tabulate import tabulate

    exe = shutil.which("llmctl")
    base = [exe] if exe else [sys.executable, "-m", "llmctl"]
    bare = [sys.executable, "-c", "pass"]
    cases = [
        ("llmctl --help", base + ["--help"], 4.0),
        ("llmctl completion bash", base + ["completion", "bash"], None),  # measured, no target
        ("llmctl plan examples/chatbot.yaml", base + ["plan", "examples/chatbot.yaml"], 15.0),
        ("llmctl plan examples/llama-405b-2x8-h100.yaml", base + ["plan", "examples/llama-405b-2x8-h100.yaml"], 15.0),
        ("floor: click, msgspec, one record type", [sys.executable, "-c", FLOOR], None),
    ]
    measure(bare)
    rows, ok = [], True
    bare_wall: list[float] = []
    bare_cpu: list[float] = []
    for name, argv, target in cases:
        measure(argv)  # warm the OS file cache, the bytecode cache and llmctl's parsed-profile cache
        walls, cpus = [], []
        for _ in range(RUNS):
            w, c = measure(bare)
            bare_wall.append(w)
            bare_cpu.append(c)
            w, c = measure(argv)
            walls.append(w)
            cpus.append(c)
        ratio = statistics.median(cpus) / max(statistics.median(bare_cpu), 1e-3)
        wall_ratio = statistics.median(walls) / max(statistics.median(bare_wall), 1e-3)
        passed = target is None or ratio <= target
        ok &= passed
        rows.append([name, f"{statistics.median(walls):.3f}", f"{statistics.median(cpus):.3f}", f"{ratio:.1f}×",
                     f"{wall_ratio:.1f}×", "–" if target is None else f"≤ {target:g}×",
                     "" if target is None else ("PASS" if passed else "FAIL")])
    print(f"bare interpreter (`python -c pass`): {statistics.median(bare_wall):.3f} s wall, "
          f"{statistics.median(bare_cpu):.3f} s CPU (median of {len(bare_cpu)}); load average {os.getloadavg()[0]:.1f}")
    print(tabulate(rows, headers=["command", "wall s", "CPU s", "CPU ratio", "wall ratio", "target", ""],
                   disable_numparse=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

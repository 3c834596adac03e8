"""Hostile spec files: how fast, and in how much memory, `llmctl plan` refuses each one.
`python -m benchmarks.hostile` prints a table (wall time, peak RSS of the llmctl process, exit code).

Each case is a file a user could be handed or point llmctl at by mistake: a YAML alias bomb
("billion laughs", nine levels), a 5 MB spec that is one long comment, 900 KB of comment lines
(valid: it must plan, not crawl), 100 MB of random bytes, brackets nested 100 000 deep, a recursive
alias, a merge-key bomb, a NUL byte and invalid UTF-8. Targets: exit 2 (0 for the valid one) within
2 s and 200 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_TARGET_S = 2.0
RSS_TARGET_MB = 200.0


def _base() -> str:
    return (ROOT / "examples" / "chatbot.yaml").read_text(encoding="utf-8")


def alias_bomb() -> bytes:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return ("\n".join(lines) + "\nname: x\nmodel: llama3.1:8b\n").encode()


def merge_bomb() -> bytes:
    text = "a0: &a0 {x: 1}\n"
    for i in range(1, 10):
        text += f"a{i}: &a{i} {{<<: [" + ",".join([f"*a{i - 1}"] * 9) + "]}\n"
    return (text + "name: x\nmodel: llama3.1:8b\n").encode()


def long_comment(size: int = 5_000_000) -> bytes:
    return (_base() + "# " + "a" * size + "\n").encode()


def comment_lines(size: int = 900_000) -> bytes:
    """A valid spec under the size limit whose comments took ruamel's round-trip loader minutes."""
    return _base().replace("environment:", "#x\n" * (size // 3) + "environment:").encode()


def deep_nesting(depth: int = 100_000) -> bytes:
    return ("name: x\nmodel: llama3.1:8b\nworkload: " + "[" * depth + "]" * depth + "\n").encode()


def recursive_alias() -> bytes:
    return b"name: x\nmodel: llama3.1:8b\nworkload: &w [*w]\n"


def nul_byte() -> bytes:
    return _base().encode().replace(b"environment:", b"env\x00ironment:")


def invalid_utf8() -> bytes:
    return _base().encode().replace(b"environment:", b"environ\xff\xfement:")


def write_junk(path: Path, megabytes: int = 100) -> None:
    with open(path, "wb") as fh:
        for _ in range(megabytes):
            fh.write(os.urandom(1024 * 1024))


# name -> (maker, expected exit code); junk is written separately (100 MB)
CASES = {
    "alias bomb (9 levels)": (alias_bomb, 2),
    "merge-key bomb": (merge_bomb, 2),
    "5 MB comment": (long_comment, 2),
    "900 KB of comment lines (valid)": (comment_lines, 0),
    "100 MB of random bytes": (None, 2),
    "nesting 100 000 deep": (deep_nesting, 2),
    "recursive alias": (recursive_alias, 2),
    "NUL byte": (nul_byte, 2),
    "invalid UTF-8": (invalid_utf8, 2),
}


def make(name: str, folder: Path) -> Path:
    path = folder / (name.split(" (")[0].replace(" ", "-") + ".yaml")
    maker, _ = CASES[name]
    if maker is None:
        write_junk(path)
    else:
        path.write_bytes(maker())
    return path


def run(argv: list[str], timeout: float = 120.0) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS in MB, stderr) of one process, measured by wait4."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            cwd=ROOT, env=env)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)  # polling the child's exit; wait4 with a timeout does not exist
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    return proc.returncode, seconds, usage.ru_maxrss / 1024, err


def main() -> int:
    import tempfile

    from tabulate import tabulate

    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        baseline = run([sys.executable, "-m", "llmctl", "plan", str(ROOT / "examples" / "chatbot.yaml")])
        for name, (_, expected) in CASES.items():
            path = make(name, Path(tmp))
            code, seconds, rss, err = run([sys.executable, "-m", "llmctl", "plan", str(path)])
            good = code == expected and seconds <= TIME_TARGET_S and rss <= RSS_TARGET_MB
            informational = expected == 0  # a valid spec: shown for its parse time, not held to the refusal target
            ok &= good or (informational and code == 0)
            first = err.strip().splitlines()[0].replace(str(path), "FILE") if err.strip() else ""
            rows.append([name, code, f"{seconds:.2f}", f"{seconds - baseline[1]:+.2f}", f"{rss:.0f}", first[:60],
                         "(valid: plans)" if informational else ("PASS" if good else "FAIL")])
            path.unlink()
    print(f"baseline `llmctl plan examples/chatbot.yaml`: {baseline[1]:.2f} s, {baseline[2]:.0f} MB "
          f"(load average {os.getloadavg()[0]:.1f}); `vs plan`: seconds beyond that baseline")
    print(tabulate(rows, headers=["input", "exit", "seconds", "vs plan", "peak MB", "message",
                                  f"≤ {TIME_TARGET_S:g} s, ≤ {RSS_TARGET_MB:g} MB"], disable_numparse=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

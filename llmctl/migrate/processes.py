"""Processes a migration starts (the new engine, the Ollama-compatible front): each in its own session
with its log in DIR/logs/, recorded by pid and the kernel's start time of that pid (so a later command
finds it, and a reused pid is never taken for it). Only what is recorded here is ever stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from llmctl import procstat
from llmctl.errors import CheckFailed

STOP_GRACE_S = 30.0  # SIGTERM, then SIGKILL (as the local deploy target)


def start_ticks(pid: int) -> int | None:
    """The pid's start time while it runs (None once it is a zombie or gone)."""
    return procstat.start_ticks(pid) if procstat.state(pid) not in ("Z", "X", None) else None


def alive(record: dict[str, Any] | None) -> bool:
    return bool(record and record.get("pid") and start_ticks(record["pid"]) == record.get("start_ticks"))


def spawn(role: str, argv: list[str], log_dir: Path, *, env: dict[str, str] | None = None,
          port: int | None = None) -> dict[str, Any]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{role}.log"
    with open(log, "ab") as fh:
        fh.write(f"--- llmctl migrate {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        fh.flush()
        try:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        except OSError as exc:
            raise CheckFailed(f"cannot start the {role} ({argv[0]}): {exc.strerror or exc}") from None
    return {"role": role, "pid": proc.pid, "start_ticks": start_ticks(proc.pid), "argv": argv, "log": str(log),
            "port": port}


def stop(record: dict[str, Any]) -> bool:
    """Stop a process this migration started (its whole session); False when it was not running."""
    if not alive(record):
        return False
    pid = record["pid"]
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_GRACE_S
    while alive(record) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if alive(record):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child: collect it so it does not linger as a zombie
    except ChildProcessError:
        pass


def log_tail(record: dict[str, Any], n: int = 15) -> str:
    try:
        return "\n".join(Path(record["log"]).read_text(errors="replace").splitlines()[-n:])
    except (OSError, KeyError):
        return ""


def wait_http(url: str, *, timeout_s: float, what: str, record: dict[str, Any] | None = None,
              api_key: str | None = None, progress: Callable[[str], None] | None = None) -> float:
    """Poll GET url until it answers 200 (bounded); a started process that dies ends the wait at once.
    Returns the seconds waited."""
    from llmctl.deploy.progress import http_status

    started = time.monotonic()
    deadline = started + timeout_s
    last = None
    while time.monotonic() < deadline:
        if record is not None and not alive(record):
            raise CheckFailed(f"{what} (pid {record.get('pid')}) exited before it was ready; last log lines "
                              f"({record.get('log')}):\n{log_tail(record)}")
        last = http_status(url, api_key=api_key)
        if last == 200:
            return time.monotonic() - started
        if progress:
            progress(f"waiting for {what}: GET {url} → {last or 'no answer'}")
        time.sleep(0.5)
    tail = f"\nlast log lines ({record.get('log')}):\n{log_tail(record)}" if record else ""
    raise CheckFailed(f"{what} was not ready after {timeout_s:.0f}s (GET {url}: {last or 'no answer'}){tail}")

"""`llmctl logs`: show, and with --follow keep showing, a deployment's log through its target's own
tool (`docker compose logs`, `journalctl`, `kubectl logs`) or, for the local target, its log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from llmctl.deploy.base import QUERY_TIMEOUT_S, Context, Driver, run_bounded
from llmctl.errors import CheckFailed

FOLLOW_POLL_S = 0.25  # how often a followed log file is checked for new lines


def show_logs(driver: Driver, ctx: Context, record: dict[str, Any], *, lines: int, follow: bool,
              write: Callable[[str], None] | None = None) -> int:
    write = write or _stdout
    argv = driver.logs_argv(ctx, record, lines=lines, follow=follow)
    if argv is not None:
        if follow:  # until the user stops it (Ctrl-C) or the tool ends (the instance went away)
            try:
                return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode
            except OSError as exc:
                raise CheckFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        out = run_bounded(argv, capture_output=True, text=True, errors="replace", timeout=QUERY_TIMEOUT_S)
        write(_ended(out.stdout))
        if out.returncode != 0:
            raise CheckFailed(f"`{' '.join(argv)}` failed (exit {out.returncode}): {out.stderr.strip()[:300]}")
        return 0
    path = driver.log_file(ctx, record)
    if path is None:
        write(_ended(driver.logs(ctx, record, lines)))
        return 0
    return _tail_file(path, lines=lines, follow=follow, alive=lambda: driver.running(ctx, record), write=write)


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _ended(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def last_lines(path: Path, n: int, *, window: int = 256 * 1024) -> tuple[str, int]:
    """The last `n` lines of `path` (read from at most its last `window` bytes) and the end offset."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        fh.seek(max(0, end - window))
        data = fh.read(end - fh.tell())
    text = data.decode("utf-8", "replace")
    kept = text.splitlines(keepends=True)[-n:] if n > 0 else []
    return "".join(kept), end


def _tail_file(path: Path, *, lines: int, follow: bool, alive: Callable[[], bool],
               write: Callable[[str], None]) -> int:
    try:
        text, offset = last_lines(path, lines)
    except OSError as exc:
        raise CheckFailed(f"cannot read the log {path}: {exc.strerror or exc}") from None
    write(text if follow else _ended(text))
    if not follow:
        return 0
    # follow: print what is appended; stop once the process is gone and the file has no more
    while True:
        running = alive()
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except OSError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            write(chunk.decode("utf-8", "replace"))
        elif not running:
            return 0
        time.sleep(FOLLOW_POLL_S)

"""Waiting with a deadline and progress on stderr, and no sleeping-as-synchronisation: the probe is
polled; each poll either finishes the wait, fails it, or reports what it sees.

`Waiting` is the progress display every wait uses (readiness, smoke tests, pulls): what is awaited,
elapsed time and what is left of the budget. On a terminal it is one live line (rich, which honours
NO_COLOR); otherwise a line when the status changes and a heartbeat every HEARTBEAT_S, so CI logs
show progress without a wall of repeats.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import click

from llmctl.errors import CheckFailed

POLL_S = 0.5  # how often a probe runs (one container inspect + one HTTP GET)
HEARTBEAT_S = 15.0  # without a TTY, repeat an unchanged status this often so logs show progress


@dataclass
class Poll:
    done: bool = False
    status: str = ""  # what is happening, e.g. "container running, health: starting"
    failed: str | None = None  # why the wait is over without success


def say(message: str) -> None:
    click.echo(message, err=True)


def live_output() -> bool:
    """A live (redrawn) progress line: stderr is a terminal that can redraw."""
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb" and not os.environ.get("LLMCTL_NO_PROGRESS")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Waiting:
    """What is awaited, with elapsed and remaining time against `budget_s` (None: no budget).

    with Waiting("vllm (compose, blue)", budget_s=600) as w:
        w.update("container running; GET /health: 503")
    """

    def __init__(self, what: str, budget_s: float | None = None, *, live: bool | None = None):
        self.what = what
        self.budget_s = budget_s
        self.status = ""
        self.start = time.monotonic()
        self.live = live_output() if live is None else live
        self._printed: tuple[str, float] | None = None
        self._rich: Any = None

    # the text of the line, computed at each redraw so the clock moves on its own
    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        clock = _clock(elapsed)
        if self.budget_s is not None:
            clock += f" of {_clock(self.budget_s)}, {_clock(math.ceil(self.budget_s - elapsed))} left"
        return f"{self.what} [{clock}]: {self.status or 'waiting'}"

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text(self.line(), overflow="ellipsis", no_wrap=True)

    def __enter__(self) -> "Waiting":
        if self.live:
            try:
                from rich.console import Console
            except ImportError:  # rich missing from this environment: plain lines instead
                self.live = False
                return self
            self._rich = Console(stderr=True, highlight=False).status(self, spinner="dots")
            self._rich.start()
        return self

    def update(self, status: str) -> None:
        self.status = status
        if not self.live:
            self._emit()

    def _emit(self) -> None:
        now = time.monotonic()
        if self._printed is None or self._printed[0] != self.status or now - self._printed[1] >= HEARTBEAT_S:
            say("  " + self.line())
            self._printed = (self.status, now)

    def __exit__(self, *exc: Any) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def wait_for(probe: Callable[[], Poll], *, what: str, timeout_s: float,
             on_fail: Callable[[str], str] | None = None) -> None:
    """Poll until `probe` says done; CheckFailed on failure or after `timeout_s` (message + on_fail's text)."""
    with Waiting(what, timeout_s) as waiting:
        while True:
            poll = probe()
            if poll.failed:
                break
            if poll.done:
                break
            if waiting.elapsed >= timeout_s:
                break
            waiting.update(poll.status)
            time.sleep(POLL_S)
    if poll.failed:
        detail = on_fail(poll.failed) if on_fail else ""
        raise CheckFailed(f"{what}: {poll.failed}" + (f"\n{detail}" if detail else ""))
    if poll.done:
        say(f"  {what}: ready after {waiting.elapsed:.0f}s")
        return
    reason = f"not ready after {timeout_s:.0f}s (last seen: {poll.status or 'nothing'})"
    detail = on_fail(reason) if on_fail else ""
    raise CheckFailed(f"{what}: {reason}" + (f"\n{detail}" if detail else ""))


def run_with_progress(argv: list[str], *, what: str, budget_s: float, grace_s: float = 30.0) -> tuple[int, str]:
    """Run a command that waits by itself (`kubectl rollout status`), showing its latest output line
    as the status of a Waiting line; killed after budget_s + grace_s. Returns (exit code, output)."""
    import select
    import subprocess

    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace")
    except OSError as exc:
        raise CheckFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    lines: list[str] = []
    deadline = time.monotonic() + budget_s + grace_s
    assert proc.stdout is not None
    with Waiting(what, budget_s) as waiting:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                raise CheckFailed(f"`{' '.join(argv)}` did not finish within {budget_s + grace_s:.0f}s")
            ready, _, _ = select.select([proc.stdout], [], [], POLL_S)
            if ready:
                line = proc.stdout.readline()
                if line:
                    lines.append(line)
                    waiting.update(line.strip()[:160])
                    continue
            if proc.poll() is not None:
                lines.extend(proc.stdout.readlines())
                break
    return proc.wait(), "".join(lines)


def http_status(url: str, timeout: float = 2.0, api_key: str | None = None) -> int | None:
    """Status of GET url, None when nothing answers (stdlib: no client set-up cost per poll)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the service's own address
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:  # noqa: BLE001 - not listening yet
        return None


def tail(text: str, n: int = 20) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join("    | " + ln[:400] for ln in lines[-n:])

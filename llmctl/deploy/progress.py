"""Waiting for a deployment with a deadline, a progress line on stderr, and no sleeping-as-synchronisation:
the probe is polled; each poll either finishes the wait, fails it, or reports what it sees."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

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


def wait_for(probe: Callable[[], Poll], *, what: str, timeout_s: float,
             on_fail: Callable[[str], str] | None = None) -> None:
    """Poll until `probe` says done; CheckFailed on failure or after `timeout_s` (message + on_fail's text)."""
    tty = sys.stderr.isatty()
    start = time.monotonic()
    last_status, last_print = None, 0.0
    while True:
        poll = probe()
        elapsed = time.monotonic() - start
        if poll.failed or poll.done:
            if tty and last_status is not None:
                sys.stderr.write("\n")
        if poll.failed:
            detail = on_fail(poll.failed) if on_fail else ""
            raise CheckFailed(f"{what}: {poll.failed}" + (f"\n{detail}" if detail else ""))
        if poll.done:
            say(f"  {what}: ready after {elapsed:.0f}s")
            return
        if elapsed >= timeout_s:
            if tty and last_status is not None:
                sys.stderr.write("\n")
            reason = f"not ready after {timeout_s:.0f}s (last seen: {poll.status or 'nothing'})"
            detail = on_fail(reason) if on_fail else ""
            raise CheckFailed(f"{what}: {reason}" + (f"\n{detail}" if detail else ""))
        now = time.monotonic()
        if tty:
            line = f"  {what}: {poll.status} ({elapsed:.0f}s)"
            sys.stderr.write("\r" + line[:200].ljust(min(200, max(len(line), 80))))
            sys.stderr.flush()
            last_status = poll.status
        elif poll.status != last_status or now - last_print >= HEARTBEAT_S:
            say(f"  {what}: {poll.status} ({elapsed:.0f}s)")
            last_status, last_print = poll.status, now
        time.sleep(POLL_S)


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

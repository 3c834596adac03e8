"""Ports and polling: tests bind 127.0.0.1 only and wait by polling with a deadline, never by sleeping."""

from __future__ import annotations

import socket
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Timeout(AssertionError):
    pass


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], str | None] | None = None,
) -> T:
    """Call `probe` until it returns something truthy; raise Timeout after `timeout` seconds.

    Exceptions from `probe` count as "not yet". `alive`, when given, returns a message once the
    thing being waited on has died (e.g. a server process exited), which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - "not ready yet"
            last = exc
        if alive is not None:
            dead = alive()
            if dead:
                raise Timeout(f"{what}: gave up, {dead}")
        if time.monotonic() >= deadline:
            raise Timeout(f"{what}: not ready after {timeout:.0f}s" + (f" (last error: {last!r})" if last else ""))
        time.sleep(interval)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET url, or None when nothing answers (stdlib only, so it works in any venv)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:  # noqa: BLE001
        return None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers 2xx."""
    status = http_status(url, timeout)
    return status is not None and 200 <= status < 300

"""HAProxy's runtime API over its admin socket (HAProxy 2.6 management guide, "Unix Socket commands"):
one command per connection, the answer read to the end. Weight and state changes apply at once to new
requests; requests already being served finish on the server they are on."""

from __future__ import annotations

import csv
import io
import socket
import time
from pathlib import Path

from llmctl.errors import CheckFailed

STATES = ("ready", "drain", "maint")


class AdminSocket:
    def __init__(self, path: str | Path, timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        if "\n" in line or ";" in line:
            raise ValueError(f"one HAProxy command at a time: {line!r}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(self.path)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except OSError as exc:
            raise CheckFailed(f"HAProxy admin socket {self.path}: {exc}") from None
        return b"".join(chunks).decode("utf-8", "replace")

    def _checked(self, line: str) -> None:
        out = self.command(line).strip()
        if out:  # these commands answer nothing when they succeed
            raise CheckFailed(f"HAProxy refused `{line}`: {out}")

    # ------------------------------------------------------------------ changes
    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self._checked(f"set server {backend}/{server} weight {int(weight)}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        self._checked(f"set server {backend}/{server} state {state}")

    def drain(self, backend: str, server: str) -> None:
        self.set_state(backend, server, "drain")

    def enable(self, backend: str, server: str) -> None:
        self.set_state(backend, server, "ready")

    def disable(self, backend: str, server: str) -> None:
        self.set_state(backend, server, "maint")

    # ------------------------------------------------------------------ reading
    def info(self) -> dict[str, str]:
        out = {}
        for line in self.command("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def stats(self, backend: str) -> dict[str, dict[str, str]]:
        """`show stat` rows of the backend's servers, by server name (scur: requests being served,
        weight, status UP/DOWN/DRAIN/MAINT, stot: requests served in total)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r for r in rows if r.get("pxname") == backend and r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_idle(self, backend: str, server: str, timeout_s: float) -> None:
        """Until the server has no request in flight (a drained server's streams have finished)."""
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.stats(backend).get(server)
            if row is None or int(row.get("scur") or 0) == 0:
                return
            if time.monotonic() > deadline:
                raise CheckFailed(f"{server} still serves {row['scur']} request(s) after {timeout_s:.0f}s")
            time.sleep(0.2)

    def wait_status(self, backend: str, server: str, want: str, timeout_s: float) -> None:
        """Until HAProxy's health check reports the server `want` (e.g. UP)."""
        deadline = time.monotonic() + timeout_s
        status = "?"
        while time.monotonic() < deadline:
            row = self.stats(backend).get(server)
            status = (row or {}).get("status", "absent")
            if status.split()[0] == want:
                return
            time.sleep(0.2)
        raise CheckFailed(f"HAProxy reports {server} {status}, not {want}, after {timeout_s:.0f}s")

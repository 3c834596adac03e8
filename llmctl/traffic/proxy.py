"""One HAProxy in master-worker mode: its configuration file (checked with `haproxy -c` before it
replaces the running one), its admin socket, and the waits an update needs (a new worker after a
reload, the old workers gone). Who runs the master — llmctl itself or a systemd unit — is the
supervisor's business (llmctl/traffic/supervisor.py).

A reload (SIGUSR2 to the master, HAProxy management guide "Stopping and restarting HAProxy") starts a
new worker with the new configuration and lets the old worker finish its connections: nothing in
flight is cut.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from llmctl.errors import CheckFailed
from llmctl.traffic.runtime import AdminSocket
from llmctl.traffic.supervisor import START_TIMEOUT_S, LocalSupervisor, Supervisor, haproxy_binary
from llmctl.traffic.supervisor import alive as _alive
from llmctl.traffic.supervisor import children as _children

__all__ = ["MAX_SOCKET_PATH", "START_TIMEOUT_S", "Proxy", "haproxy_binary"]

RELOAD_RETRY_S = 5.0  # no new worker after this long: the reload signal is sent again (see Proxy.reload)


class Proxy:
    """`run_dir` keeps the proxy's records (servers.json, routes.json); the configuration and the admin
    socket sit there too unless the supervisor wants them elsewhere (a systemd unit: /etc, /run)."""

    def __init__(self, run_dir: str | Path, *, config: str | Path | None = None, socket: str | Path | None = None,
                 supervisor: Supervisor | None = None) -> None:
        self.dir = Path(run_dir)
        self.config = Path(config) if config else self.dir / "haproxy.cfg"
        self.socket_path = Path(socket) if socket else _socket_path(self.dir)
        self.supervisor = supervisor or LocalSupervisor(self.dir)

    @property
    def admin(self) -> AdminSocket:
        return AdminSocket(self.socket_path)

    @property
    def label(self) -> str:
        return self.supervisor.label

    # ------------------------------------------------------------------ config
    def write_config(self, text: str) -> None:
        from llmctl.fileio import write_atomic

        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        candidate = self.config.with_name(self.config.name + ".new")
        write_atomic(candidate, text, mode=0o600)
        check = subprocess.run([haproxy_binary(), "-c", "-f", str(candidate)], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
        if check.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise CheckFailed(f"HAProxy rejects the rendered configuration:\n{(check.stdout + check.stderr).strip()}")
        os.replace(candidate, self.config)

    # ------------------------------------------------------------------ process
    def master_pid(self) -> int | None:
        return self.supervisor.master_pid(self.config)

    def running(self) -> bool:
        return self.master_pid() is not None

    def start(self, config_text: str) -> None:
        self.write_config(config_text)
        if self.running():
            self.reload()
            return
        self.socket_path.unlink(missing_ok=True)
        self.supervisor.launch(self.config)
        self._wait(lambda: self._worker_pid() is not None, "HAProxy's admin socket to answer")

    def reload(self, config_text: str | None = None) -> None:
        """Apply the configuration with a new worker; the old one finishes what it serves."""
        if config_text is not None:
            self.write_config(config_text)
        pid = self.master_pid()
        if pid is None:
            raise CheckFailed(f"HAProxy is not running ({self.supervisor.label})")
        before = self._worker_pid()
        deadline = time.monotonic() + START_TIMEOUT_S
        # a SIGUSR2 that reaches the master while it is still settling after the previous reload can be
        # lost (seen with HAProxy 2.6: two reloads a moment apart, no new worker after the second): ask
        # again if no new worker has answered after a while; one reload too many only costs a worker
        while True:
            self.supervisor.reload(self.config, pid)
            wait = min(RELOAD_RETRY_S, max(0.0, deadline - time.monotonic()))
            if self._poll(lambda: (w := self._worker_pid()) is not None and w != before, wait):
                return
            if time.monotonic() >= deadline:
                raise CheckFailed(f"timed out after {START_TIMEOUT_S:.0f}s waiting for the reloaded HAProxy worker:\n"
                                  f"{self.log_tail()}")

    def stop(self, timeout_s: float = 60.0) -> None:
        self.supervisor.stop(self.config, timeout_s)

    def wait_old_workers(self, timeout_s: float) -> None:
        """Until the workers of earlier configurations have finished their connections and exited."""
        pid = self.master_pid()
        if pid is None:
            return
        deadline = time.monotonic() + timeout_s
        while len([c for c in _children(pid) if _alive(c)]) > 1:
            if time.monotonic() > deadline:
                raise CheckFailed(f"an earlier HAProxy worker still serves connections after {timeout_s:.0f}s")
            time.sleep(0.1)

    def rss_kib(self) -> int:
        """Resident memory of the master and its workers, KiB (/proc/PID/status VmRSS)."""
        pid = self.master_pid()
        if pid is None:
            return 0
        total = 0
        for p in [pid, *_children(pid)]:
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def log_tail(self, n: int = 20) -> str:
        return self.supervisor.log_tail(n)

    # ------------------------------------------------------------------ helpers
    def _worker_pid(self) -> str | None:
        try:
            return self.admin.info().get("Pid")
        except CheckFailed:
            return None

    def _wait(self, ready, what: str) -> None:
        if not self._poll(ready, START_TIMEOUT_S):
            raise CheckFailed(f"timed out after {START_TIMEOUT_S:.0f}s waiting for {what}:\n{self.log_tail()}")

    @staticmethod
    def _poll(ready, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if ready():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


MAX_SOCKET_PATH = 97  # HAProxy refuses a longer `stats socket` path (sun_path, less its own suffix)


def _socket_path(run_dir: Path) -> Path:
    """The admin socket beside the configuration, or — when that path is too long for a unix socket —
    in a private folder of the runtime directory, named by a hash of the run folder."""
    near = run_dir / "admin.sock"
    if len(str(near.absolute())) <= MAX_SOCKET_PATH:
        return near
    import hashlib
    import tempfile

    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"llmctl-{os.getuid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if base.stat().st_uid != os.getuid() or base.stat().st_mode & 0o077:
        raise CheckFailed(f"{base} must be a folder only you can use (it holds HAProxy's admin socket)")
    digest = hashlib.sha256(str(run_dir.absolute()).encode()).hexdigest()[:16]
    return base / f"{digest}.sock"

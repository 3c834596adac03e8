"""The HAProxy process: master-worker mode (-W), daemonized (-D), pid file, admin socket.

A reload (SIGUSR2 to the master, HAProxy management guide "Stopping and restarting HAProxy") starts a
new worker with the new configuration and lets the old worker finish its connections: nothing in
flight is cut. A soft stop (SIGUSR1) stops listening and waits for connections to finish.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from llmctl import procstat
from llmctl.errors import CheckFailed
from llmctl.traffic.runtime import AdminSocket

START_TIMEOUT_S = 30.0


def haproxy_binary() -> str:
    exe = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
                                            if os.access(p, os.X_OK)), None)
    if exe is None:
        raise CheckFailed("haproxy is not installed; the traffic layer needs it\n"
                          "  fix: `apt-get install haproxy` (Debian/Ubuntu) or `dnf install haproxy`")
    return exe


class Proxy:
    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.config = self.dir / "haproxy.cfg"
        self.pidfile = self.dir / "haproxy.pid"
        self.socket_path = _socket_path(self.dir)
        self.log = self.dir / "haproxy.log"

    @property
    def admin(self) -> AdminSocket:
        return AdminSocket(self.socket_path)

    # ------------------------------------------------------------------ config
    def write_config(self, text: str) -> None:
        from llmctl.fileio import write_atomic

        self.dir.mkdir(parents=True, exist_ok=True)
        candidate = self.dir / "haproxy.cfg.new"
        write_atomic(candidate, text, mode=0o600)
        check = subprocess.run([haproxy_binary(), "-c", "-f", str(candidate)], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
        if check.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise CheckFailed(f"HAProxy rejects the rendered configuration:\n{(check.stdout + check.stderr).strip()}")
        os.replace(candidate, self.config)

    # ------------------------------------------------------------------ process
    def master_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if cmdline and cmdline[0].endswith(b"haproxy") and str(self.config).encode() in cmdline else None

    def running(self) -> bool:
        return self.master_pid() is not None

    def start(self, config_text: str) -> None:
        self.write_config(config_text)
        if self.running():
            self.reload()
            return
        self.socket_path.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            proc = subprocess.run([haproxy_binary(), "-W", "-D", "-p", str(self.pidfile), "-f", str(self.config)],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise CheckFailed(f"HAProxy did not start (exit {proc.returncode}):\n{self.log_tail()}")
        self._wait(lambda: self._worker_pid() is not None, "HAProxy's admin socket to answer")

    def reload(self, config_text: str | None = None) -> None:
        """Apply the configuration with a new worker; the old one finishes what it serves."""
        if config_text is not None:
            self.write_config(config_text)
        pid = self.master_pid()
        if pid is None:
            raise CheckFailed(f"HAProxy is not running ({self.pidfile})")
        before = self._worker_pid()
        os.kill(pid, signal.SIGUSR2)
        self._wait(lambda: (w := self._worker_pid()) is not None and w != before, "the reloaded HAProxy worker")

    def stop(self, timeout_s: float = 60.0) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGUSR1)  # soft stop: finish the connections in flight
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)

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
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ helpers
    def _worker_pid(self) -> str | None:
        try:
            return self.admin.info().get("Pid")
        except CheckFailed:
            return None

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.05)
        raise CheckFailed(f"timed out after {START_TIMEOUT_S:.0f}s waiting for {what}:\n{self.log_tail()}")


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return procstat.state(pid) not in ("Z", None)  # a zombie is gone for our purposes


def _children(pid: int) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and procstat.parent(int(e.name)) == pid]

"""Who keeps the HAProxy master process running. The traffic layer (llmctl/traffic/proxy.py) writes
the configuration, talks to the admin socket and waits for workers; a supervisor only starts the
master, asks it to reload, stops it and says which pid it has:

- LocalSupervisor: llmctl itself (local, compose and migration proxies): `haproxy -W -D -p PIDFILE`,
  daemonized, its output in a log file.
- llmctl/targets/systemd/proxy_unit.py: a systemd unit (`haproxy -Ws`, Type=notify), started,
  reloaded and stopped with systemctl.

Signals (HAProxy management guide, "Stopping and restarting HAProxy"): SIGUSR2 to the master of
master-worker mode re-reads the configuration and forks new workers while the old ones finish their
connections; SIGUSR1 is the soft stop (stop listening, finish what is in flight).
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

START_TIMEOUT_S = 30.0


def haproxy_binary() -> str:
    exe = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
                                            if os.access(p, os.X_OK)), None)
    if exe is None:
        raise CheckFailed("haproxy is not installed; the traffic layer needs it\n"
                          "  fix: `apt-get install haproxy` (Debian/Ubuntu) or `dnf install haproxy`")
    return exe


class Supervisor:
    """The process side of one proxy; `config` is the file the master reads."""

    label = "haproxy"  # how `status` names it

    def master_pid(self, config: Path) -> int | None:
        raise NotImplementedError

    def launch(self, config: Path) -> None:
        """Start the master (it is not running); return once it has been started (workers may follow)."""
        raise NotImplementedError

    def reload(self, config: Path, pid: int) -> None:
        """Make the running master re-read `config` (new workers; the old ones finish what they serve)."""
        raise NotImplementedError

    def stop(self, config: Path, timeout_s: float) -> None:
        raise NotImplementedError

    def log_tail(self, n: int = 20) -> str:
        return ""


class LocalSupervisor(Supervisor):
    """HAProxy daemonized by llmctl: pid file and log file in the proxy's run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.pidfile = run_dir / "haproxy.pid"
        self.log = run_dir / "haproxy.log"

    def master_pid(self, config: Path) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if cmdline and cmdline[0].endswith(b"haproxy") and str(config).encode() in cmdline else None

    def launch(self, config: Path) -> None:
        with open(self.log, "ab") as log:
            proc = subprocess.run([haproxy_binary(), "-W", "-D", "-p", str(self.pidfile), "-f", str(config)],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise CheckFailed(f"HAProxy did not start (exit {proc.returncode}):\n{self.log_tail()}")

    def reload(self, config: Path, pid: int) -> None:
        os.kill(pid, signal.SIGUSR2)

    def stop(self, config: Path, timeout_s: float) -> None:
        pid = self.master_pid(config)
        if pid is None:
            return
        os.kill(pid, signal.SIGUSR1)  # soft stop: finish the connections in flight
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return procstat.state(pid) not in ("Z", None)  # a zombie is gone for our purposes


def children(pid: int) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and procstat.parent(int(e.name)) == pid]

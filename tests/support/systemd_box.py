"""Real systemd as PID 1 in a container of the private dockerd, for `llmctl up --target systemd`.

The root file system is Debian minbase with systemd (and HAProxy, for the traffic layer's unit), built once with mmdebstrap from the host's own
Debian sources and cached (~240 MiB) under $LLMCTL_CACHE_DIR/images/. The container runs
/lib/systemd/systemd with the capabilities and cgroup mount systemd needs (`--privileged` is not
required; SIGRTMIN+3 is systemd's orderly shutdown signal, systemd(1) "Signals").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "procps", "iproute2", "curl", "ca-certificates",
            "libpam-systemd", "dbus-user-session", "libgomp1", "libstdc++6", "haproxy")
IMAGE = "llmctl-test/systemd:2"  # the tag follows the root file system's version


def missing_reason() -> str | None:
    if shutil.which("mmdebstrap") is None and not rootfs_path().exists():
        return "mmdebstrap is not installed (apt-get install mmdebstrap) and no cached systemd root file system"
    if not SOURCES.exists() and not rootfs_path().exists():
        return f"{SOURCES} is missing: cannot build a Debian root file system"
    return None


def rootfs_path() -> Path:
    base = os.environ.get("LLMCTL_CACHE_DIR") or str(Path.home() / ".cache" / "llmctl")
    return Path(base) / "images" / "systemd-rootfs-v2.tar"


def ensure_rootfs(timeout: float = 900) -> Path:
    path = rootfs_path()
    if path.exists():
        return path
    suite = next(line.split()[1] for line in SOURCES.read_text().splitlines() if line.startswith("Suites:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tar")
    out = subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
         '--customize-hook=rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"', suite, str(tmp), str(SOURCES)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if out.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"mmdebstrap failed:\n{out.stderr[-3000:]}")
    os.replace(tmp, path)
    return path


@dataclass
class SystemdBox:
    name: str
    env: dict[str, str]  # DOCKER_HOST for the docker CLI

    def exec(self, *argv: str, timeout: float = 300, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        envs = [x for k, v in (extra_env or {}).items() for x in ("--env", f"{k}={v}")]
        return subprocess.run(["docker", "exec", *envs, self.name, *argv], capture_output=True, text=True,
                              timeout=timeout, env=self.env, stdin=subprocess.DEVNULL, check=False)

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "--force", self.name], capture_output=True, env=self.env, timeout=120,
                       check=False)


def start_box(engine, name: str, mounts: list[tuple[str, str, str]], timeout: float = 120) -> SystemdBox:
    """Import the image (once per engine) and boot systemd; returns when it reports running or degraded."""
    env = engine.env()
    have = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, env=env, check=False)
    if have.returncode != 0:
        out = subprocess.run(["docker", "import", "-c", 'CMD ["/lib/systemd/systemd"]', "-c", "ENV container=docker",
                              str(ensure_rootfs()), IMAGE], capture_output=True, text=True, env=env, timeout=600,
                             check=False)
        if out.returncode != 0:
            raise RuntimeError(f"docker import failed: {out.stderr}")
    vols = [x for src, dst, mode in mounts for x in ("-v", f"{src}:{dst}:{mode}")]
    run = subprocess.run(
        ["docker", "run", "-d", "--name", name, "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
         "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--network", "host",
         "--stop-signal", "SIGRTMIN+3", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
         "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", *vols, IMAGE, "/lib/systemd/systemd"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"docker run failed: {run.stderr}")
    box = SystemdBox(name, env)
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = box.exec("systemctl", "is-system-running", timeout=30).stdout.strip()
        if state in ("running", "degraded"):
            return box
        time.sleep(0.5)
    logs = subprocess.run(["docker", "logs", "--tail", "40", name], capture_output=True, text=True, env=env,
                          check=False)
    box.remove()
    raise RuntimeError(f"systemd in {name} did not come up (state {state!r}):\n{logs.stdout}{logs.stderr}")

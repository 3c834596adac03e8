"""Shared test helpers and fixtures.

`require(condition, reason)`: a test that needs a real piece (a validator, dockerd, llama.cpp,
vLLM) calls it. Under plain `pytest` a missing piece SKIPS the test with the reason; under
`./scripts/test` (which sets LLMCTL_REQUIRE_E2E=1 after installing everything) it FAILS it, so a
broken install can never pass as a green run.

Real-server fixtures: `docker_engine` (a private dockerd), `tiny_models` (a tiny Llama as a Hugging
Face folder and as GGUF, built here), `llama_server` / `start_llama_server` (llama.cpp),
`vllm_server` (vLLM on the CPU, started once per session).

Engine oracles (the real engines judge rendered command lines): `llama_server_oracle` (the real
llama-server starts the argv on the tiny GGUF, tests/support/llama_server.py) and `vllm_argv_oracle`
(vLLM's own parser and start-up checks, tests/support/vllm_args.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # make `support` importable everywhere

from support import net  # noqa: E402
from support.requires import e2e_required, require, require_module, require_tool  # noqa: E402,F401

# Model resolution never reaches the internet or this machine's own Ollama store from the tests: the
# tests of resolution itself (tests/resolve) turn the network on against their own local server.
os.environ.setdefault("LLMCTL_OFFLINE", "1")
os.environ.setdefault("OLLAMA_MODELS", str(Path(__file__).resolve().parent / ".no-ollama-store"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM (a CI time-out, `kill`) ends the run like Ctrl-C, so fixtures still stop the servers
    and the Docker engine they started instead of leaving them running."""
    import signal
    import threading

    def _interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"received signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)



# --------------------------------------------------------------------------- basic fixtures


@pytest.fixture
def free_port() -> int:
    return net.free_port()


@pytest.fixture(scope="session")
def e2e_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


# --------------------------------------------------------------------------- Docker


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory):
    """A private dockerd (host networking only; its own data root and socket) for the whole session.

    Yields a `support.dockerd.DockerEngine`: `.host` is `unix://…/docker.sock`, `.client()` a docker
    SDK client, `.env()` an environment for `docker` CLI subprocesses. No registry is reachable:
    build images with `support.dockerd.import_rootfs_image` (or the `busybox_image` fixture).
    """
    from support import dockerd

    require(dockerd.dockerd_missing_reason() is None, dockerd.dockerd_missing_reason() or "")
    require_module("docker", "the docker SDK")
    # a short path: unix socket paths are limited to 107 bytes
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="llmctl-dockerd-"))
    engine = dockerd.start_dockerd(root)
    try:
        yield engine
    finally:
        engine.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image(docker_engine) -> str:
    """A local image `llmctl-test/busybox:1` (static busybox + applets), made by `docker import`."""
    from support import dockerd

    require(dockerd.busybox_path() is not None, "no static busybox (Debian package busybox-static)")
    return dockerd.import_rootfs_image(docker_engine, "llmctl-test/busybox:1")


# --------------------------------------------------------------------------- tiny models


@pytest.fixture(scope="session")
def tiny_models() -> tuple[Path, Path]:
    """(hf_dir, gguf_path) of the tiny Llama, built once and cached under $LLMCTL_CACHE_DIR/tiny-models."""
    for mod in ("numpy", "sentencepiece", "safetensors", "gguf"):
        require_module(mod, "needed to build the tiny test model")
    from support.tiny_models import ensure_tiny_models

    return ensure_tiny_models()


@pytest.fixture(scope="session")
def tiny_hf_model(tiny_models) -> Path:
    return tiny_models[0]


@pytest.fixture(scope="session")
def tiny_gguf(tiny_models) -> Path:
    return tiny_models[1]


# --------------------------------------------------------------------------- real servers


@pytest.fixture
def start_llama_server(tiny_gguf, e2e_log_dir):
    """Factory: start a llama.cpp server on the tiny GGUF; every server it started is stopped after."""
    from support import servers

    require(servers.llama_cpp_available() is None, servers.llama_cpp_available() or "")
    started: list = []

    def start(**kwargs):
        server = servers.start_llama_server(tiny_gguf, e2e_log_dir, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def llama_server(start_llama_server):
    """A running llama-server (model alias `tiny`); yields its `support.servers.Server`.
    `.base_url` is http://127.0.0.1:PORT (OpenAI API under /v1, /health; /metrics only with --metrics)."""
    return start_llama_server()


@pytest.fixture(scope="session")
def vllm_server(tiny_hf_model, e2e_log_dir):
    """vLLM's OpenAI server on the CPU, started once per session (served name `tiny`)."""
    from support import servers

    require(servers.vllm_available() is None, servers.vllm_available() or "")
    server = servers.start_vllm_server(tiny_hf_model, e2e_log_dir)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- engine oracles


@pytest.fixture(scope="session")
def llama_server_oracle(tiny_gguf):
    """`check(argv, timeout=60, *, env=None, probe=(), api_key=None) -> ArgvCheck`: the real
    llama-server runs a rendered command line (argv[0] is the rendered program, e.g.
    /app/llama-server) on the tiny GGUF; see support.llama_server.check_argv."""
    import functools

    from support import llama_server

    require(llama_server.missing_reason() is None, llama_server.missing_reason() or "")
    return functools.partial(llama_server.check_argv, gguf=tiny_gguf)


@pytest.fixture(scope="session")
def vllm_argv_oracle():
    """`check(list_of_argv) -> list[VllmArgvCheck]`: vLLM's own parser and start-up checks judge
    `vllm serve` command lines, all in one subprocess; see support.vllm_args.check_vllm_argvs."""
    from support import vllm_args

    require(vllm_args.missing_reason() is None, vllm_args.missing_reason() or "")
    return vllm_args.check_vllm_argvs

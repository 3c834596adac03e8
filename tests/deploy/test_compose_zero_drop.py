"""Zero-drop updates on the compose target: llama.cpp containers in the private dockerd behind the
real HAProxy on the host. A bounded load generator streams chat completions through the spec's port
during `up` → spec change → `up` → an update to an image that crashes → `rollback`, and counts
failed or cut streams: none. The crashing version never receives a request."""

from __future__ import annotations

import pytest
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port

from deploy.conftest import llmctl_containers, write_spec

pytestmark = pytest.mark.e2e


def _cli(engine, *args: str):
    extra = ("--network", "host", "--timeout", "120", "--smoke-timeout", "120") if args[0] == "up" else ()
    return run_llmctl(*args, *extra, env={"DOCKER_HOST": engine.host}, timeout=400)


def test_compose_update_crash_and_rollback_drop_nothing(docker_engine, compose_cli, llamacpp_image, crashing_image,
                                                         tiny_gguf, tmp_path, deployments):
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = deployments.add(write_spec(path, model=str(tiny_gguf), port=port, image=llamacpp_image, name="cz"))
    r = _cli(docker_engine, "up", spec)
    assert r.code == 0, r.output
    load = StreamLoad(f"http://127.0.0.1:{port}", str(tiny_gguf), workers=2, max_tokens=16).start()
    try:
        load.wait_for(4, timeout_s=120)
        write_spec(path, model=str(tiny_gguf), port=port, image=llamacpp_image, name="cz", concurrency=3)
        r = _cli(docker_engine, "up", spec)
        assert r.code == 0, r.output
        (green,) = llmctl_containers(docker_engine)
        assert green.labels["dev.llmctl.color"] == "green"
        load.wait_for(load.report.total + 4, timeout_s=120)
        served = set(load.report.served_by)

        write_spec(path, model=str(tiny_gguf), port=port, image=crashing_image, name="cz", concurrency=4)
        r = _cli(docker_engine, "up", spec)
        assert r.code == 1, r.output
        assert "never received traffic" in r.stderr and "llmctl-test-crash-marker" in r.stderr
        load.wait_for(load.report.total + 4, timeout_s=120)
        assert set(load.report.served_by) == served  # nothing went to the crashing colour

        r = _cli(docker_engine, "rollback", spec)
        assert r.code == 0, r.output
        (blue,) = llmctl_containers(docker_engine)
        assert blue.labels["dev.llmctl.color"] == "blue"
        load.wait_for(load.report.total + 4, timeout_s=120)
    finally:
        report = load.stop()
    print(f"\ncompose zero-drop: {report.ok} streams finished, {len(report.failed)} failed")
    assert report.failed == [], report.failed[:5]
    assert report.ok >= 16

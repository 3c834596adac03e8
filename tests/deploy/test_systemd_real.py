"""`llmctl up --target systemd` against a real systemd: PID 1 of a container in the private dockerd
(tests/support/systemd_box.py, the `systemd_box` fixture in tests/deploy/conftest.py). llmctl runs
inside it and installs the rendered units: HAProxy's `sd-tiny-proxy.service` on the spec's port and the
native engine unit `sd-tiny-blue.service` (the llama.cpp server on the tiny GGUF, as a DynamicUser with
the unit's hardening) on a private port behind it. The host reaches the service on 127.0.0.1 (host
network)."""

from __future__ import annotations

import pytest
from support.net import free_port, http_ok

from deploy.conftest import write_spec

pytestmark = pytest.mark.e2e
ENV = {"PYTHONPATH": "/llmctl:/sp"}
LLMCTL = ("python3", "-m", "llmctl")


def _props(box, unit: str, *names: str) -> dict[str, str]:
    out = box.exec("systemctl", "show", unit, "--property", ",".join(names))
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_up_status_down_with_a_real_systemd(systemd_box):
    box, spec_dir, model = systemd_box
    port = free_port()
    write_spec(spec_dir / "llmctl.yaml", model=f"/models/{model}", port=port, target="systemd", name="sd-tiny")
    r = box.exec(*LLMCTL, "up", "/spec/llmctl.yaml", "--runtime", "native", "--timeout", "180", extra_env=ENV,
                 timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert http_ok(f"http://127.0.0.1:{port}/health")
    props = _props(box, "sd-tiny-blue.service", "ActiveState", "DynamicUser", "ProtectSystem", "User")
    assert props == {"ActiveState": "active", "DynamicUser": "yes", "ProtectSystem": "strict", "User": "sd-tiny"}
    proxy = _props(box, "sd-tiny-proxy.service", "ActiveState", "Type", "MainPID", "UnitFileState")
    assert proxy["ActiveState"] == "active" and proxy["Type"] == "notify" and proxy["UnitFileState"] == "enabled"
    # the proxy, not the engine, holds the spec's port; the engine listens on 127.0.0.1 only
    listening = box.exec("ss", "-Hltnp", f"sport = :{port}").stdout
    assert "haproxy" in listening and "llama" not in listening, listening
    assert box.exec("test", "-S", "/run/llmctl/sd-tiny-proxy/admin.sock").returncode == 0
    r = box.exec(*LLMCTL, "status", "/spec/llmctl.yaml", extra_env=ENV)
    assert r.returncode == 0 and "healthy" in r.stdout, r.stdout + r.stderr
    assert "sd-tiny-blue.service" in r.stdout and "sd-tiny-proxy.service" in r.stdout, r.stdout
    r = box.exec(*LLMCTL, "traffic", "/spec/llmctl.yaml", extra_env=ENV)
    assert r.returncode == 0 and "blue-1" in r.stdout and "UP" in r.stdout, r.stdout + r.stderr
    r = box.exec(*LLMCTL, "down", "/spec/llmctl.yaml", extra_env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    for unit in ("sd-tiny-blue.service", "sd-tiny-proxy.service"):
        assert box.exec("systemctl", "cat", unit).returncode != 0, unit  # the units are gone
    assert box.exec("ls", "/etc/llmctl").stdout.strip() == ""  # and the proxy's configuration
    assert not http_ok(f"http://127.0.0.1:{port}/health")

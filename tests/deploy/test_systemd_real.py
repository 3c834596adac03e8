"""`llmctl up --target systemd` against a real systemd: PID 1 of a container in the private dockerd
(tests/support/systemd_box.py, the `systemd_box` fixture in tests/deploy/conftest.py). llmctl runs
inside it and installs the rendered units: HAProxy's `sd-tiny-proxy.service` on the spec's port and the
native engine unit `sd-tiny-blue.service` (the llama.cpp server on the tiny GGUF, as a DynamicUser with
the unit's hardening) on a private port behind it. The host reaches the service on 127.0.0.1 (host
network)."""

from __future__ import annotations

import pytest
from support.net import free_port, http_ok, wait_until

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
    # a weight change goes over the unit's admin socket and into the configuration the unit reads
    r = box.exec(*LLMCTL, "traffic", "/spec/llmctl.yaml", "--to", "blue=100%", extra_env=ENV)
    assert r.returncode == 0 and "weight 200" in r.stdout, r.stdout + r.stderr
    assert "weight 200 check" in box.exec("cat", "/etc/llmctl/sd-tiny-proxy.cfg").stdout
    assert box.exec("systemctl", "reload", "sd-tiny-proxy.service").returncode == 0  # ExecReload: check + SIGUSR2
    # SIGUSR2 returns at once; the master re-executes and notifies READY=1 when its new workers run, so
    # the unit passes through `reloading` before it is `active` again
    wait_until(lambda: _props(box, "sd-tiny-proxy.service", "ActiveState")["ActiveState"] == "active", timeout=30,
               what="the proxy unit active again after its reload")
    assert http_ok(f"http://127.0.0.1:{port}/health")
    r = box.exec(*LLMCTL, "down", "/spec/llmctl.yaml", extra_env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    for unit in ("sd-tiny-blue.service", "sd-tiny-proxy.service"):
        assert box.exec("systemctl", "cat", unit).returncode != 0, unit  # the units are gone
    assert box.exec("ls", "/etc/llmctl").stdout.strip() == ""  # and the proxy's configuration
    assert not http_ok(f"http://127.0.0.1:{port}/health")


USER_PROXY_CHECK = r"""
import json, sys
from pathlib import Path
from llmctl.targets.systemd.proxy_unit import systemd_proxy

port = int(sys.argv[1])
proxy = systemd_proxy(Path.home() / "run", slug="ut", user=True, source="llmctl.yaml")
config = f'''global
    stats socket {proxy.socket_path} mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
'''
proxy.start(config)
out = {"socket": str(proxy.socket_path), "config": str(proxy.config), "running": proxy.running()}
first = proxy.admin.info()["Pid"]
proxy.reload(config)
out["reloaded"] = proxy.admin.info()["Pid"] != first
out["unit_file"] = (Path.home() / ".config/systemd/user/ut-proxy.service").exists()
proxy.stop()
out["after_stop"] = {"running": proxy.running(), "unit_file": (Path.home() / ".config/systemd/user/ut-proxy.service").exists(),
                     "config": proxy.config.exists()}
print(json.dumps(out))
"""


def test_the_proxy_unit_under_a_users_manager(systemd_box):
    """`--user`: the proxy unit runs in the user's own manager (user@UID.service, kept running by
    `loginctl enable-linger`), its admin socket in $XDG_RUNTIME_DIR, started, reloaded and stopped by
    the same code `up` uses."""
    import json

    box, spec_dir, _model = systemd_box
    assert box.exec("useradd", "--create-home", "tester").returncode == 0
    assert box.exec("loginctl", "enable-linger", "tester").returncode == 0
    uid = box.exec("id", "-u", "tester").stdout.strip()
    wait_until(lambda: box.exec("systemctl", "is-active", f"user@{uid}.service").stdout.strip() == "active",
               timeout=60, what=f"user@{uid}.service", interval=0.2)
    (spec_dir / "user_proxy.py").write_text(USER_PROXY_CHECK)
    port = free_port()
    env = ("env", f"XDG_RUNTIME_DIR=/run/user/{uid}", f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{uid}/bus",
           "PYTHONPATH=/llmctl:/sp", "HOME=/home/tester")
    r = box.exec("runuser", "-u", "tester", "--", *env, "python3", "/spec/user_proxy.py", str(port), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["socket"] == f"/run/user/{uid}/llmctl/ut-proxy/admin.sock"
    assert out["config"] == "/home/tester/.config/llmctl/ut-proxy.cfg"
    assert out["running"] and out["reloaded"] and out["unit_file"]
    assert out["after_stop"] == {"running": False, "unit_file": False, "config": False}

"""The systemd target. The build machines run without systemd as PID 1, so `up --target systemd` must
say so clearly and change nothing; the systemctl/journalctl command lines are checked as data, and the
rendered units (HAProxy's unit, its configuration, the engine colours behind it) as files. The same
units under a real systemd: test_systemd_real.py and test_systemd_zero_drop.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from deploy.conftest import write_spec
from llmctl.targets.systemd import apply as sd
from support.cli import run_llmctl


def test_systemctl_and_journalctl_argv():
    assert sd.systemctl_argv(False, "enable", "--now", "x.service") == ["systemctl", "enable", "--now", "x.service"]
    assert sd.systemctl_argv(True, "daemon-reload") == ["systemctl", "--user", "daemon-reload"]
    assert sd.journalctl_argv(True, "x.service", 20) == ["journalctl", "--user", "--unit", "x.service", "--lines", "20",
                                                         "--no-pager", "--output", "cat"]


def test_user_unit_dir_follows_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert sd.user_unit_dir() == tmp_path / "systemd" / "user"


def test_require_systemd_names_the_missing_runtime_dir(tmp_path):
    from llmctl.errors import CheckFailed

    with pytest.raises(CheckFailed, match="does not run systemd") as exc:
        sd.require_systemd(str(tmp_path / "absent"))
    assert "--target compose" in str(exc.value)


@pytest.mark.skipif(Path(sd.SYSTEMD_RUNTIME_DIR).is_dir(), reason="this host runs systemd")
@pytest.mark.parametrize("user", [False, True])
def test_up_on_a_host_without_systemd(tmp_path, tiny_gguf, monkeypatch, user):
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=18081, target="systemd")
    before = set(Path(sd.SYSTEM_UNIT_DIR).glob("*")) if Path(sd.SYSTEM_UNIT_DIR).is_dir() else set()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    r = run_llmctl("up", spec, *(["--user"] if user else []), env=env)
    assert r.code == 1, r.output
    assert "this host does not run systemd" in r.stderr and "Traceback" not in r.output
    after = set(Path(sd.SYSTEM_UNIT_DIR).glob("*")) if Path(sd.SYSTEM_UNIT_DIR).is_dir() else set()
    assert after == before and not (tmp_path / "config").exists()


# ----------------------------------------------------------------------------- the rendered units

SPEC = """name: chat
model: llama3.2:1b
workload: {concurrency: 1, prompt_tokens: 256, output_tokens: 64}
hardware: [{name: box, cpu: cpu-ddr5-2ch, cpu_cores: 8, memory_gb: 32}]
endpoint: {port: 8080}
target: systemd
"""


@pytest.fixture
def service(tmp_path):
    from llmctl.deploy.rollout import load

    path = tmp_path / "llmctl.yaml"
    path.write_text(SPEC)
    return load(str(path), quiet=True)[2]


def unit_keys(text: str) -> dict[str, list[str]]:
    """Key → values of a unit file (continuation lines joined, comments and sections left out)."""
    out: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(" ".join(value.split()))
    return out


def test_render_writes_the_proxy_unit_its_config_and_the_blue_unit_behind_it(service):
    from llmctl.render import render_service
    from llmctl.targets import RenderOptions

    files = render_service(service, "systemd", RenderOptions(runtime="native")).files
    assert set(files) == {"chat-blue.service", "chat-proxy.service", "chat-proxy.cfg"}
    proxy = unit_keys(files["chat-proxy.service"])
    # the shape of HAProxy's own unit (admin/systemd/haproxy.service.in): -Ws with Type=notify, the
    # configuration checked before SIGUSR2 on reload, SIGTERM's 143 a clean exit
    assert proxy["Type"] == ["notify"] and proxy["KillMode"] == ["mixed"] and proxy["SuccessExitStatus"] == ["143"]
    assert proxy["ExecStart"] == ['"/usr/sbin/haproxy" "-Ws" "-f" "/etc/llmctl/chat-proxy.cfg"']
    assert proxy["ExecReload"] == ['"/usr/sbin/haproxy" "-c" "-q" "-f" "/etc/llmctl/chat-proxy.cfg"',
                                   "/bin/kill -USR2 $MAINPID"]
    assert proxy["RuntimeDirectory"] == ["llmctl/chat-proxy"] and proxy["ProtectSystem"] == ["strict"]
    assert proxy["WantedBy"] == ["multi-user.target"]
    cfg = files["chat-proxy.cfg"]
    # the proxy holds the spec's address; blue listens on a private port behind it
    assert "bind 127.0.0.1:8080\n" in cfg and "server blue-1 127.0.0.1:8081 weight 100 check" in cfg
    assert "stats socket /run/llmctl/chat-proxy/admin.sock " in cfg
    blue = unit_keys(files["chat-blue.service"])
    assert blue["Environment"].count('"OLLAMA_HOST=127.0.0.1:8081"') == 1
    assert any("http://127.0.0.1:8081/" in v for v in blue["ExecStartPost"])
    assert "8080" not in files["chat-blue.service"].split("[Unit]", 1)[1]
    # the engine's hardening is the same as before the traffic layer
    for key, value in (("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("CapabilityBoundingSet", ""), ("PrivateDevices", "yes"), ("User", "chat")):
        assert blue[key] == [value], key


@pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="haproxy not installed")
def test_rendered_proxy_config_passes_haproxy_check(service, tmp_path):
    import subprocess

    from llmctl.render import render_service
    from llmctl.targets import RenderOptions

    cfg = tmp_path / "chat-proxy.cfg"
    cfg.write_text(render_service(service, "systemd", RenderOptions()).files["chat-proxy.cfg"])
    out = subprocess.run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-c", "-f", str(cfg)], capture_output=True,
                         text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("runtime", ["docker", "native"])
def test_the_two_colours_are_two_units_that_can_run_side_by_side(service, runtime):
    from llmctl.targets import RenderOptions
    from llmctl.targets.systemd.render import engine_files, private_service

    blue = engine_files(private_service(service, 41001), RenderOptions(runtime=runtime), "blue")
    green = engine_files(private_service(service, 41002), RenderOptions(runtime=runtime), "green")
    b, g = unit_keys(blue["chat-blue.service"]), unit_keys(green["chat-green.service"])
    if runtime == "docker":  # distinct container names, each publishing its private port on 127.0.0.1 only
        assert '"--name" "chat-blue"' in b["ExecStart"][0] and '"--name" "chat-green"' in g["ExecStart"][0]
        assert '"127.0.0.1:41001:11434"' in b["ExecStart"][0] and '"127.0.0.1:41002:11434"' in g["ExecStart"][0]
    else:  # one dynamic user for both, so the state directory they share keeps one owner
        assert b["User"] == g["User"] == ["chat"] and b["StateDirectory"] == g["StateDirectory"]
    from llmctl.errors import InputError

    with pytest.raises(InputError, match="--colour"):
        engine_files(service, RenderOptions(runtime=runtime), "red")


def test_user_units_use_the_user_manager_paths(service, tmp_path, monkeypatch):
    from llmctl.deploy.base import Context
    from llmctl.targets.systemd.apply import SystemdDriver
    from llmctl.targets.systemd.proxy_unit import render_proxy_unit

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    ctx = Context(spec_path=tmp_path / "llmctl.yaml", slug="chat", dir=tmp_path / ".llmctl" / "chat",
                  options={"user": True})
    proxy = SystemdDriver().proxy(ctx)
    assert proxy.config == tmp_path / "config" / "llmctl" / "chat-proxy.cfg"
    assert proxy.socket_path == tmp_path / "run" / "llmctl" / "chat-proxy" / "admin.sock"
    assert proxy.label == "chat-proxy.service" and proxy.dir == ctx.dir / "proxy"
    unit = unit_keys(render_proxy_unit(slug="chat", config=str(proxy.config), user=True, source="llmctl.yaml"))
    # a user manager starts default.target; mount-namespace sandboxing is for the system manager's unit
    assert unit["WantedBy"] == ["default.target"] and "ProtectSystem" not in unit
    assert unit["RuntimeDirectory"] == ["llmctl/chat-proxy"]
    system = SystemdDriver().proxy(Context(spec_path=ctx.spec_path, slug="chat", dir=ctx.dir, options={}))
    assert system.config == Path("/etc/llmctl/chat-proxy.cfg")
    assert system.socket_path == Path("/run/llmctl/chat-proxy/admin.sock")


def test_down_finds_colour_units_and_a_unit_from_before_the_proxy(tmp_path, monkeypatch):
    from llmctl.deploy.base import Context
    from llmctl.targets.systemd.apply import SystemdDriver

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    units = tmp_path / "config" / "systemd" / "user"
    units.mkdir(parents=True)
    for name in ("chat-green.service", "chat.service", "other-blue.service"):
        (units / name).write_text("[Service]\nExecStart=/bin/true\n")
    ctx = Context(spec_path=tmp_path / "llmctl.yaml", slug="chat", dir=tmp_path, options={"user": True})
    found = {r["unit"]: r for r in SystemdDriver().leftovers(ctx)}
    assert set(found) == {"chat-green.service", "chat.service"}
    assert found["chat-green.service"]["env_path"] == str(tmp_path / "config" / "llmctl" / "chat-green.env")
    assert found["chat.service"]["env_path"] == str(tmp_path / "config" / "llmctl" / "chat.env")


def test_start_wait_gives_up_when_the_engine_has_exited_and_passes_when_it_answers(tmp_path):
    """The ExecStartPost= script under the real /bin/sh and curl: a dead main process ends the wait at
    once (a version that cannot start must not hold its start job for the whole start-up timeout)."""
    import http.server
    import subprocess
    import threading

    from llmctl.targets.systemd.render import WAIT_SCRIPT
    from support.net import free_port

    if not Path("/usr/bin/curl").exists():
        pytest.skip("/usr/bin/curl is not installed")
    dead = subprocess.Popen(["true"])
    dead.wait()
    closed = f"http://127.0.0.1:{free_port()}/health"
    out = subprocess.run(["/bin/sh", "-c", WAIT_SCRIPT, "llmctl-wait", closed, "600"], capture_output=True, text=True,
                         timeout=60, env={"MAINPID": str(dead.pid), "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 1 and "the engine exited before" in out.stderr, out.stderr
    out = subprocess.run(["/bin/sh", "-c", WAIT_SCRIPT, "llmctl-wait", closed, "2"], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 1 and "did not answer within 2 s" in out.stderr, out.stderr

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    (tmp_path / "health").write_text("ok")
    server.RequestHandlerClass = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        out = subprocess.run(["/bin/sh", "-c", WAIT_SCRIPT, "llmctl-wait", url, "30"], capture_output=True, text=True,
                             timeout=60, env={"MAINPID": str(os.getpid()), "PATH": "/usr/bin:/bin"}, check=False)
        assert out.returncode == 0, out.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_a_user_managers_native_unit_has_no_dynamic_user_and_keeps_its_state_in_xdg_state_home(service, tmp_path,
                                                                                              monkeypatch):
    """The user's manager cannot allocate a dynamic user (under a real user manager the unit failed with
    status 217/USER, "Failed to update dynamic user credentials"); the rest of the hardening stays."""
    from llmctl.targets import RenderOptions
    from llmctl.targets.systemd.render import engine_files, private_service

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inner = private_service(service, 41001)
    user = unit_keys(engine_files(inner, RenderOptions(runtime="native", user=True), "blue")["chat-blue.service"])
    system = unit_keys(engine_files(inner, RenderOptions(runtime="native"), "blue")["chat-blue.service"])
    assert {"DynamicUser", "User"} <= set(system) and not {"DynamicUser", "User"} & set(user)
    assert user["WorkingDirectory"] == [str(tmp_path / "state" / "llmctl" / "chat")]
    assert system["WorkingDirectory"] == ["/var/lib/llmctl/chat"]
    assert set(system) - set(user) == {"DynamicUser", "User"}

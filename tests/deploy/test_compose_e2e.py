"""`llmctl up/down/status` with the compose target on a real Docker engine (the private dockerd of the
`docker_engine` fixture) and a real llama.cpp server in a locally built image.

The engine has no bridge network (dockerd --bridge=none: no iptables on the build machines), so the
tests deploy with `--network host`: the engine itself listens on 127.0.0.1 and the spec's port.

The image (tests/support/images.py) carries the real `llama-server` binary in /app, laid out like
llama.cpp's own server image, so what `up` applies is exactly the rendered compose file: entrypoint,
flags, bind-mounted GGUF folder, health check and all.
"""

from __future__ import annotations

import json
import socket
import stat

import pytest

from deploy.conftest import llmctl_containers, write_spec
from support.cli import run_llmctl
from support.net import free_port, http_ok

pytestmark = pytest.mark.e2e


def _up(spec: str, engine, *extra: str, env: dict[str, str] | None = None):
    return run_llmctl("up", spec, "--network", "host", "--timeout", "120", "--smoke-timeout", "120", *extra,
                      env={"DOCKER_HOST": engine.host, **(env or {})}, timeout=400)


def _cli(engine, *args: str, env: dict[str, str] | None = None):
    return run_llmctl(*args, env={"DOCKER_HOST": engine.host, **(env or {})}, timeout=300)


def _networks(engine) -> set[str]:
    return {n.name for n in engine.client().networks.list()}


def _volumes(engine) -> set[str]:
    return {v.name for v in engine.client().volumes.list()}


@pytest.fixture
def spec_dir(tmp_path):
    return tmp_path


def test_up_smoke_nothing_changed_status_down(docker_engine, compose_cli, llamacpp_image, tiny_gguf, spec_dir,
                                              deployments):
    port = free_port()
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=port, image=llamacpp_image))
    networks_before = _networks(docker_engine)

    r = _up(spec, docker_engine)
    assert r.code == 0, r.output
    assert "PASSED" in r.stdout and "metrics" in r.stdout  # the smoke table, /metrics included
    assert f"http://127.0.0.1:{port}/v1" in r.stdout
    assert http_ok(f"http://127.0.0.1:{port}/health")
    (c,) = llmctl_containers(docker_engine)
    assert c.labels["com.docker.compose.project"].startswith("llmctl-")
    assert c.image.tags == [llamacpp_image]
    first_id = c.id
    state = json.loads(next((spec_dir / ".llmctl").glob("*/state.json")).read_text())
    assert state["target"] == "compose" and state["active"]["color"] == "blue" and len(state["hash"]) == 64

    # a second `up` with nothing changed changes nothing
    r = _up(spec, docker_engine)
    assert r.code == 0, r.output
    assert "nothing changed" in r.stdout
    (c,) = llmctl_containers(docker_engine)
    assert c.id == first_id and c.attrs["RestartCount"] == 0

    r = _cli(docker_engine, "status", spec, "--output", "json")
    assert r.code == 0, r.output
    status = json.loads(r.stdout)
    assert status["healthy"] is True and status["spec_since_up"] == "unchanged"
    assert [o["id"] for o in status["objects"] if o["kind"] == "container"] == [c.short_id]
    assert [o["state"] for o in status["objects"] if o["kind"] == "proxy"] == ["running"]  # the traffic layer

    # logs through `docker compose logs`; ps finds the deployment by its state file
    r = _cli(docker_engine, "logs", spec, "--tail", "5")
    assert r.code == 0, r.output
    assert 0 < len(r.stdout.splitlines()) <= 5 + 1  # compose may print one attach line
    r = _cli(docker_engine, "ps", str(spec_dir), "-o", "json")
    assert r.code == 0, r.output
    [row] = json.loads(r.stdout)["deployments"]
    assert row["target"] == "compose" and row["state"] == "running"

    # down: no containers, no networks; the model volume stays
    r = _cli(docker_engine, "down", spec)
    assert r.code == 0, r.output
    assert llmctl_containers(docker_engine) == []
    assert _networks(docker_engine) == networks_before
    kept = {v for v in _volumes(docker_engine) if v.startswith("llmctl-")}
    assert kept, "down without --volumes must keep the model volume"
    assert not http_ok(f"http://127.0.0.1:{port}/health")
    r = _cli(docker_engine, "status", spec)
    assert r.code == 1 and "not deployed" in r.stdout

    # up again (reusing the volume), then down --volumes removes it too
    r = _up(spec, docker_engine)
    assert r.code == 0, r.output
    r = _cli(docker_engine, "down", spec, "--volumes")
    assert r.code == 0, r.output
    assert llmctl_containers(docker_engine) == []
    assert not (kept & _volumes(docker_engine))


def test_failed_update_keeps_the_old_deployment_serving(docker_engine, compose_cli, llamacpp_image, crashing_image,
                                                        tiny_gguf, spec_dir, deployments):
    port = free_port()
    path = spec_dir / "llmctl.yaml"
    spec = deployments.add(write_spec(path, model=str(tiny_gguf), port=port, image=llamacpp_image))
    r = _up(spec, docker_engine)
    assert r.code == 0, r.output
    (old,) = llmctl_containers(docker_engine)

    # the new version cannot start: blue/green must keep the old one serving
    write_spec(path, model=str(tiny_gguf), port=port, image=crashing_image)
    r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "llmctl-test-crash-marker" in r.stderr  # the new container's last log lines
    assert "keeps serving" in r.stderr
    (still,) = llmctl_containers(docker_engine)
    assert still.id == old.id and still.status == "running"
    assert http_ok(f"http://127.0.0.1:{port}/health")

    # a good update switches colours: the old container goes, a new one serves on the same port
    write_spec(path, model=str(tiny_gguf), port=port, image=llamacpp_image, concurrency=3)
    r = _up(spec, docker_engine)
    assert r.code == 0, r.output
    (new,) = llmctl_containers(docker_engine)
    assert new.id != old.id and new.labels["dev.llmctl.color"] == "green"
    assert http_ok(f"http://127.0.0.1:{port}/health")


def test_container_that_exits_at_once(docker_engine, compose_cli, crashing_image, tiny_gguf, spec_dir, deployments):
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image=crashing_image))
    r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "exited with code 3" in r.stderr
    assert "llmctl-test-crash-marker" in r.stderr
    assert "Traceback" not in r.output
    assert llmctl_containers(docker_engine) == []  # nothing left running (or stopped)
    assert not list((spec_dir / ".llmctl").glob("*/state.json"))


def test_port_already_taken_fails_preflight_before_anything_starts(docker_engine, compose_cli, llamacpp_image,
                                                                   tiny_gguf, spec_dir, deployments):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=port,
                                          image=llamacpp_image))
        r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "preflight failed" in r.stderr and f"127.0.0.1:{port}" in r.stderr
    assert "fix:" in r.stderr
    assert llmctl_containers(docker_engine) == []


def test_sla_that_cannot_be_met_fails_with_measured_figures(docker_engine, compose_cli, llamacpp_image, tiny_gguf,
                                                            spec_dir, deployments):
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image=llamacpp_image, ttft_ms=0.001))
    r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "SLA TTFT p95" in r.stderr
    assert "measured" in r.stderr and "target 0.001" in r.stderr
    assert llmctl_containers(docker_engine) == []


def test_gpu_plan_refused_on_an_engine_without_gpu_runtime(docker_engine, compose_cli, llamacpp_image, tiny_gguf,
                                                           spec_dir, deployments):
    """The private dockerd has no nvidia runtime (and this machine no GPU): `up` must refuse."""
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image=llamacpp_image, gpu="A100-80GB"))
    r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "preflight failed" in r.stderr
    assert "NVIDIA container runtime: the engine has no `nvidia` runtime" in r.stderr
    assert "nvidia-ctk runtime configure" in r.stderr  # the fix, spelled out
    assert llmctl_containers(docker_engine) == []


def test_engine_without_bridge_network_is_a_clear_message(docker_engine, compose_cli, llamacpp_image, tiny_gguf,
                                                          spec_dir, deployments):
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image=llamacpp_image))
    r = _cli(docker_engine, "up", spec)  # default: bridge networking
    assert r.code == 1, r.output
    assert "no bridge network" in r.stderr and "--network host" in r.stderr
    assert llmctl_containers(docker_engine) == []


def test_secrets_go_to_a_0600_env_file_and_never_to_the_output(docker_engine, compose_cli, llamacpp_image, tiny_gguf,
                                                               spec_dir, deployments):
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image=llamacpp_image, environment="staging"))
    r = run_llmctl("up", spec, "--network", "host", env={"DOCKER_HOST": docker_engine.host, "LLAMA_API_KEY": ""})
    assert r.code == 2, r.output
    assert "LLAMA_API_KEY" in r.stderr and "Traceback" not in r.output
    assert llmctl_containers(docker_engine) == []

    secret = "s3cret-value-for-llmctl-tests"
    r = _up(spec, docker_engine, env={"LLAMA_API_KEY": secret})
    assert r.code == 0, r.output
    assert secret not in r.output
    (env_file,) = (spec_dir / ".llmctl").glob("*/*/*.env")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == f"LLAMA_API_KEY={secret}\n"
    for f in (spec_dir / ".llmctl").rglob("*.yaml"):
        assert secret not in f.read_text()
    port = json.loads(next((spec_dir / ".llmctl").glob("*/state.json")).read_text())["active"]["port"]
    from support.net import http_status

    assert http_status(f"http://127.0.0.1:{port}/v1/models") == 401  # the key reached the server


def test_image_that_cannot_be_pulled(docker_engine, compose_cli, tiny_gguf, spec_dir, deployments):
    """No registry is reachable here: the pull fails at once, with docker compose's own pull output."""
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=free_port(),
                                      image="llmctl-test/not-here:1"))
    r = _up(spec, docker_engine)
    assert r.code == 1, r.output
    assert "pulling llmctl-test/not-here:1" in r.stderr
    assert "cannot pull image llmctl-test/not-here:1" in r.stderr and "overrides.image" in r.stderr
    assert llmctl_containers(docker_engine) == []


def test_status_sees_a_stopped_container_and_up_replaces_it(docker_engine, compose_cli, llamacpp_image, tiny_gguf,
                                                            spec_dir, deployments):
    port = free_port()
    spec = deployments.add(write_spec(spec_dir / "llmctl.yaml", model=str(tiny_gguf), port=port, image=llamacpp_image))
    r = _up(spec, docker_engine, "--no-smoke")
    assert r.code == 0, r.output
    (c,) = llmctl_containers(docker_engine)
    c.stop(timeout=10)

    r = _cli(docker_engine, "status", spec)
    assert r.code == 1, r.output
    assert "NOT healthy" in r.stdout and "exited" in r.stdout

    r = _up(spec, docker_engine, "--no-smoke")
    assert r.code == 0, r.output
    assert "is not running: replacing it" in r.stderr
    (new,) = llmctl_containers(docker_engine)
    assert new.id != c.id and new.status == "running"
    assert http_ok(f"http://127.0.0.1:{port}/health")

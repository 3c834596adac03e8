"""Parts of `up` that need no engine: state files, the env file, digests, port rewriting, and the compose
override file (validated by the real `docker compose config`, which merges it as `up` does)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import pytest

from deploy.conftest import require, write_spec
from llmctl.deploy import base, secrets, state
from llmctl.errors import InputError
from llmctl.typed import updated


def _service(tmp_path, tiny_gguf, **kw):
    from llmctl.deploy.rollout import load

    return load(write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=18123, **kw))


def test_state_round_trip_and_atomic_write(tmp_path):
    st = state.State(name="n", slug="s", target="compose", spec="/x/llmctl.yaml", hash="h" * 64,
                     active={"color": "blue", "project": "p"}, url="http://127.0.0.1:1", model="m", engine="vllm")
    path = st.save(tmp_path)
    assert json.loads(path.read_text())["schema"] == state.SCHEMA
    assert state.load_state(tmp_path) == st
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
    state.clear_state(tmp_path)
    assert state.load_state(tmp_path) is None


def test_unreadable_state_is_an_input_error_naming_the_file(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(InputError, match="state.json"):
        state.load_state(tmp_path)


def test_digest_is_order_free_and_sensitive_to_content():
    a = state.digest({"a": "1", "b": "2"})
    assert a == state.digest({"b": "2", "a": "1"})
    assert a != state.digest({"a": "1", "b": "3"})
    assert a != state.digest({"a": "1", "b": "2"}, {"env": "x"})


def test_env_file_is_0600_and_a_missing_required_secret_names_the_variable(tmp_path, tiny_gguf):
    _, _, svc = _service(tmp_path, tiny_gguf, environment="production")
    with pytest.raises(InputError, match="LLAMA_API_KEY") as exc:
        secrets.env_values(svc, {})
    assert "export LLAMA_API_KEY" in str(exc.value)
    values = secrets.env_values(svc, {"LLAMA_API_KEY": "k-123456"})
    path = tmp_path / "x.env"
    h = secrets.write_env_file(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "LLAMA_API_KEY=k-123456\n" and "k-123456" not in h
    with pytest.raises(InputError, match="line break"):
        secrets.env_values(svc, {"LLAMA_API_KEY": "a\nb"})


def test_listen_args_and_staging_port():
    assert base.listen_args(["x", "--host", "0.0.0.0", "--port", "80"], "127.0.0.1", 9) == \
        ["x", "--host", "127.0.0.1", "--port", "9"]
    assert base.listen_args(["x", "--port"], None, 9) == ["x", "--port"]  # a flag without value is left alone


def test_staging_copy_moves_only_the_host_port(tmp_path, tiny_gguf):
    _, _, svc = _service(tmp_path, tiny_gguf)
    moved = base.with_host_port(svc, 40001)
    assert moved.ports[0].host == 40001 and moved.ports[0].container == svc.ports[0].container
    assert moved.native_argv[moved.native_argv.index("--port") + 1] == "40001"
    assert moved.argv == svc.argv and svc.ports[0].host == 18123


@pytest.mark.parametrize("network", ["host", "bridge"])
def test_compose_override_merges_with_the_rendered_file(tmp_path, tiny_gguf, network):
    """`docker compose config` (no engine needed) merges compose.yaml and the override as `up` does."""
    from llmctl.deploy.base import Context
    from llmctl.targets.compose.apply import ComposeDriver, override_text

    require(shutil.which("docker"), "the docker CLI is not installed")
    _, _, svc = _service(tmp_path, tiny_gguf, image="example/llama:1")
    driver = ComposeDriver()
    driver.api_version = lambda: (1, 41)  # an engine older than 25.0: no healthcheck.start_interval
    ctx = Context(spec_path=tmp_path / "llmctl.yaml", slug=svc.slug, dir=tmp_path / ".llmctl", options={"network": network})
    files = driver.files(ctx, svc, "green")
    assert files["compose.llmctl.yaml"] == override_text(svc, "green", network=network, start_interval=False)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run(["docker", "compose", "-f", "compose.yaml", "-f", "compose.llmctl.yaml", "config",
                          "--format", "json"], cwd=tmp_path, capture_output=True, text=True, check=False)
    require(out.returncode == 0 or "is not a docker command" not in out.stderr, "no docker compose plugin")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)["services"][svc.slug]
    assert s["labels"]["dev.llmctl.deployment"] == svc.slug and s["labels"]["dev.llmctl.color"] == "green"
    assert "start_interval" not in s["healthcheck"]
    if network == "host":
        assert s["network_mode"] == "host" and not s.get("ports")
        ep = s["entrypoint"]
        assert ep[ep.index("--host") + 1] == "127.0.0.1" and ep[ep.index("--port") + 1] == "18123"
        assert s["healthcheck"]["test"][-1] == "http://127.0.0.1:18123/health"
    else:
        assert s["ports"][0]["published"] == "18123" and s["ports"][0]["host_ip"] == "127.0.0.1"
        assert s["entrypoint"] == svc.argv


@pytest.mark.parametrize("vendor, var", [("nvidia", "CUDA_VISIBLE_DEVICES"), ("amd", "HIP_VISIBLE_DEVICES")])
def test_local_replicas_get_their_own_port_and_gpus(tmp_path, vendor, var):
    """Host processes of a 2-replica plan with 2 GPUs each: replica i listens on the first port + i and
    sees only GPUs 2i, 2i+1 (the vendor's visibility variable); replica 2 keeps its files apart."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))  # the render tests' hand-made plans
    from render_plans import make_plan, make_spec

    from llmctl.render import build_service
    from llmctl.targets.local.apply import instance_records

    svc = build_service(make_plan(replicas=2, tp=2), make_spec(hardware=[{"gpu": "A100-80GB", "gpus": 4}]))
    svc = updated(svc, gpu=updated(svc.gpu, vendor=vendor))
    argv = ["llama-server", "--host", "127.0.0.1", "--port", "9000", "-m", "x.gguf"]
    recs = instance_records(svc, "blue", tmp_path / "blue", argv, str(tmp_path / "data"), [])
    assert [r["port"] for r in recs] == [svc.ports[0].host, svc.ports[0].host + 1]
    assert [r["argv"][r["argv"].index("--port") + 1] for r in recs] == [str(r["port"]) for r in recs]
    assert [r["env"][var] for r in recs] == ["0,1", "2,3"]
    assert recs[0]["dir"] == str(tmp_path / "blue") and recs[1]["dir"] == str(tmp_path / "blue" / "replica-2")

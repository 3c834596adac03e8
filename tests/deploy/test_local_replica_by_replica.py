"""Replica by replica on the local target: two replicas, each on its own GPU, and no spare GPU for a
second copy. An update replaces them one at a time behind the real HAProxy while a bounded load streams
through the spec's port: nothing fails or is cut, one replica always serves, and each new process sees
only its own GPU. A broken new version fails on its first replica and the old version serves on both
again; `rollback` goes back replica by replica too.

No GPU can run here. The spec describes two RTX 4090s; the engine is the CPU build of llama-server
(the real binary, which ignores CUDA_VISIBLE_DEVICES and the offload flags); and the doctor's
preflight, whose GPU check refuses the plan on this machine, is replaced for this test. Everything
else is real: the processes, their ports and environment, HAProxy and its runtime API, the smoke test.
`up` runs in this process for that reason (the command line would run the GPU check)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port

from deploy.conftest import write_spec
from deploy.test_local_zero_drop import engines_on_path  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(x.decode(errors="replace").split("=", 1) for x in raw if b"=" in x)


def _state(spec: str, env: dict) -> dict:
    from llmctl.deploy.state import deployment_dir, load_state

    slug = json.loads(run_llmctl("status", spec, "--output", "json", env=env).stdout)["slug"]
    st = load_state(deployment_dir(spec, slug))
    return {"color": st.active["color"], "replicas": [st.active, *st.active.get("more_replicas", [])]}


def _write(path: Path, model: str, port: int, concurrency: int) -> str:
    spec = write_spec(path, model=model, port=port, target="local", name="two gpus", gpu="RTX 4090",
                      concurrency=concurrency)
    path.write_text(path.read_text().replace("    gpus: 1\n", "    gpus: 2\n") + "  replicas: 2\n")
    return spec


def test_update_replica_by_replica_without_spare_gpus(tiny_gguf, tmp_path, engines_on_path, monkeypatch):  # noqa: F811
    from llmctl.deploy import rollout
    from llmctl.errors import CheckFailed

    for key, value in engines_on_path.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(rollout, "preflight", lambda *a, **k: None)  # the GPU check: see the module docstring
    said: list[str] = []
    monkeypatch.setattr("llmctl.deploy.proxied.say", said.append)
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = _write(path, str(tiny_gguf), port, 2)

    def up() -> int:
        return rollout.up(spec, target=None, options={}, timeout_s=120, smoke=True, smoke_timeout_s=120,
                          echo=lambda _m: None)

    load = None
    timings: dict[str, float] = {}
    try:
        assert up() == 0
        first = _state(spec, engines_on_path)
        assert [r["env"]["CUDA_VISIBLE_DEVICES"] for r in first["replicas"]] == ["0", "1"]
        load = StreamLoad(f"http://127.0.0.1:{port}", str(tiny_gguf), workers=2, max_tokens=16).start()
        load.wait_for(4, timeout_s=120)

        # the update: no spare GPU holds a second copy of two replicas, so one replica at a time
        _write(path, str(tiny_gguf), port, 3)
        started = time.monotonic()
        assert up() == 0
        timings["update"] = time.monotonic() - started
        assert any("replacing the 2 replicas one at a time" in m for m in said), said
        now = _state(spec, engines_on_path)
        assert now["color"] == "green"
        pids = [r["pid"] for r in now["replicas"]]
        assert [_environ(p)["CUDA_VISIBLE_DEVICES"] for p in pids] == ["0", "1"]  # each process sees its own GPU
        assert not any(Path(f"/proc/{r['pid']}").exists() for r in first["replicas"])  # blue's processes ended
        load.wait_for(load.report.total + 4, timeout_s=120)
        assert {"green-1", "green-2"} <= set(load.report.served_by)

        # a broken version (its model file cut short: llama-server cannot load it): its first replica
        # fails, the old one comes back, green serves on both again
        broken = tmp_path / "cut.gguf"
        broken.write_bytes(Path(tiny_gguf).read_bytes()[:-4096])
        _write(path, str(broken), port, 3)
        started = time.monotonic()
        with pytest.raises(CheckFailed) as failed:
            up()
        timings["broken"] = time.monotonic() - started
        assert "failed to load model" in str(failed.value) and "serves on all 2 replicas again" in str(failed.value)
        _write(path, str(tiny_gguf), port, 3)
        back = _state(spec, engines_on_path)
        assert back["color"] == "green" and all(Path(f"/proc/{r['pid']}").exists() for r in back["replicas"])
        before = Counter(load.report.served_by)
        load.wait_for(load.report.total + 4, timeout_s=120)
        assert set(load.report.served_by - before) <= {"green-1", "green-2"}

        # rollback to blue: replica by replica as well
        started = time.monotonic()
        assert rollout.rollback(spec, timeout_s=120, smoke=True, smoke_timeout_s=120, echo=lambda _m: None) == 0
        timings["rollback"] = time.monotonic() - started
        assert _state(spec, engines_on_path)["color"] == "blue"
        assert sum("replicas one at a time" in m for m in said) == 3  # update, broken update, rollback
        load.wait_for(load.report.total + 4, timeout_s=120)
    finally:
        report = load.stop() if load else None
        r = run_llmctl("down", spec, env=engines_on_path)
    assert r.code == 0, r.output
    assert report is not None
    print(f"\nreplica by replica: {report.ok} streams finished, {len(report.failed)} failed; update "
          f"{timings.get('update', 0):.1f}s, broken update back on the old version {timings.get('broken', 0):.1f}s, "
          f"rollback {timings.get('rollback', 0):.1f}s")
    assert report.failed == [], report.failed[:5]


def test_one_replica_without_a_spare_gpu_needs_allow_downtime_and_says_how_long(tiny_gguf, tmp_path, engines_on_path,  # noqa: F811
                                                                                 monkeypatch):
    """One replica on the host's only GPU: an update cannot start beside it. `up` refuses before touching
    anything and says how long the service would be down (the running version's own load time here);
    with --allow-downtime it replaces the replica in place. (The same GPU stand-in as above.)"""
    from llmctl.deploy import rollout
    from llmctl.errors import CheckFailed

    for key, value in engines_on_path.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(rollout, "preflight", lambda *a, **k: None)
    port = free_port()
    path = tmp_path / "llmctl.yaml"
    spec = write_spec(path, model=str(tiny_gguf), port=port, target="local", name="one gpu", gpu="RTX 4090")

    def up(**options) -> int:
        return rollout.up(spec, target=None, options=options, timeout_s=120, smoke=True, smoke_timeout_s=120,
                          echo=lambda _m: None)

    try:
        assert up() == 0
        first = _state(spec, engines_on_path)
        write_spec(path, model=str(tiny_gguf), port=port, target="local", name="one gpu", gpu="RTX 4090",
                   concurrency=3)
        with pytest.raises(CheckFailed, match="--allow-downtime") as refused:
            up()
        ready_s = first["replicas"][0]["ready_s"]
        assert f"down while the model loads: about {ready_s:g} s" in str(refused.value)
        assert _state(spec, engines_on_path)["replicas"][0]["pid"] == first["replicas"][0]["pid"]  # untouched
        assert up(allow_downtime=True) == 0
        after = _state(spec, engines_on_path)
        assert after["color"] == "green" and not Path(f"/proc/{first['replicas'][0]['pid']}").exists()
    finally:
        r = run_llmctl("down", spec, env=engines_on_path)
    assert r.code == 0, r.output

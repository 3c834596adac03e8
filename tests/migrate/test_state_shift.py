"""The running migration with the real HAProxy and two real llama.cpp servers on the tiny GGUF: the
old side plays Ollama's OpenAI API (Ollama cannot run here; llama-server answers the same /v1 paths),
the new side is a second server on the same weights. A bounded streaming load runs throughout.

- `--apply` (apply.run): parity passes, the shift goes 10% → 50% → 100%, no request fails, both
  sides served requests; `rollback` brings every new request back to the old side;
- a crash of the proxy: a re-run starts it again with the recorded shares and does not redo parity;
- a new side that dies during a step: the gate sees it DOWN, and traffic goes back to the old side
  by itself;
- finalize only after 100%, and it leaves the old server running.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from llmctl.errors import CheckFailed
from llmctl.migrate.apply import run
from llmctl.migrate.state import Migration
from llmctl.migrate.steps import finalize, rollback, shift
from llmctl.traffic.proxy import Proxy
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port

from .outdir import model_entry, write_inventory

pytestmark = pytest.mark.e2e
OBSERVE_S = 2.0


@pytest.fixture
def proxy_cleanup():
    dirs = []
    yield dirs
    for d in dirs:
        Proxy(d).stop(timeout_s=10)


@pytest.fixture
def sides(start_llama_server, tmp_path, proxy_cleanup):
    """(old, new, out): two real llama-servers on the tiny GGUF — the old plays Ollama — and a migration
    folder whose inventory names the old one; its proxy is stopped after the test."""
    require_haproxy()
    old, new = start_llama_server(), start_llama_server()
    out = tmp_path / "migration-tiny"
    write_inventory(out, old.base_url, [model_entry("tiny")])
    proxy_cleanup.append(out / "proxy")
    return old, new, out


def _served(load: StreamLoad) -> dict:
    return dict(load.report.served_by)


def test_apply_shifts_to_100_without_a_failed_request_and_rolls_back(sides):
    old, new, out = sides
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    # the proxy first, at 0% (stop_at=0 runs parity only), so the load runs from the start
    assert run(out, new_url=new.base_url, parity_api="openai", port=port, stop_at=0, say=lambda _s: None) == 0
    load = StreamLoad(url, "tiny", workers=2, max_tokens=8, max_requests=5000).start()
    try:
        load.wait_for(4, timeout_s=60)
        assert set(_served(load)) == {"ollama-1"}
        assert run(out, new_url=new.base_url, parity_api="openai", observe_s=OBSERVE_S, say=lambda _s: None) == 0
        m = Migration.load(out)
        assert m.shares == {"ollama": 0.0, "vllm": 100.0} and m.phase == "at-100"
        assert [s["name"] for s in m.data["steps"] if s["name"].startswith("shift")] == ["shift-10", "shift-50", "shift-100"]
        seen = load.report.served_by["vllm-1"]
        load.wait_for(load.report.total + 4, timeout_s=60)
        assert load.report.served_by["vllm-1"] > seen  # at 100% the new side serves
        r = run_llmctl("migrate", "status", "--out", str(out), "-o", "json")
        assert r.code == 0 and json.loads(r.stdout)["shares"]["vllm"] == 100.0

        r = run_llmctl("migrate", "rollback", "--out", str(out))
        assert r.code == 0, r.output
        before = load.report.served_by["ollama-1"]
        load.wait_for(load.report.total + 6, timeout_s=60)
        assert load.report.served_by["ollama-1"] >= before + 4  # new requests go to the old side again
    finally:
        report = load.stop()
    assert report.failed == [], report.failed[:5]
    assert report.served_by["ollama-1"] > 0 and report.served_by["vllm-1"] > 0
    assert (out / "parity.json").exists() and "PASSED" in (out / "parity.md").read_text()
    assert old.alive() is None  # the old server was never touched


def test_a_proxy_crash_resumes_with_the_recorded_shares(sides):
    old, new, out = sides
    assert run(out, new_url=new.base_url, parity_api="openai", port=free_port(), stop_at=10, observe_s=0.5, say=lambda _s: None) == 0
    proxy = Proxy(out / "proxy")
    workers = _haproxy_workers(out)
    os.kill(proxy.master_pid(), signal.SIGKILL)  # the crash
    for child in workers:
        os.kill(child, signal.SIGKILL)
    parity_runs = len([s for s in Migration.load(out).data["steps"] if s["name"] == "parity"])
    assert run(out, new_url=new.base_url, parity_api="openai", stop_at=10, say=lambda _s: None) == 0
    m = Migration.load(out)
    assert proxy.running() and m.shares["vllm"] == 10.0
    assert len([s for s in m.data["steps"] if s["name"] == "parity"]) == parity_runs  # not redone
    weights = {s["name"]: s["weight"] for g in json.loads((out / "proxy" / "routes.json").read_text())["groups"]
               for s in g["servers"]}
    assert weights == {"ollama-1": 180, "vllm-1": 20}
    with pytest.raises(CheckFailed, match="not 100%"):
        finalize(m, say=lambda _s: None)


def test_a_new_side_that_dies_during_a_step_is_rolled_back(sides):
    old, new, out = sides
    assert run(out, new_url=new.base_url, parity_api="openai", port=free_port(), stop_at=0, say=lambda _s: None) == 0
    m = Migration.load(out)

    def say(text: str) -> None:
        if text.startswith("shifted 10%"):
            new.kill()  # the new side crashes right after it got its share

    with m.locked(), pytest.raises(CheckFailed, match="failed its gate"):
        shift(m, 10, observe_s=15, say=say)
    m = Migration.load(out)
    assert m.shares == {"ollama": 100.0, "vllm": 0.0} and m.phase == "rolled-back"
    assert m.step("shift-10")["status"] == "failed" and "not healthy" in m.step("shift-10")["reason"]
    r = run_llmctl("migrate", "status", "--out", str(out))
    assert r.code == 0 and "ollama 100%" in r.stdout


def test_finalize_stops_routing_to_the_old_side_and_keeps_it_running(sides):
    old, new, out = sides
    assert run(out, new_url=new.base_url, parity_api="openai", port=free_port(), observe_s=0, say=lambda _s: None) == 0
    r = run_llmctl("migrate", "finalize", "--out", str(out))
    assert r.code == 0 and "stopping it is your choice" in r.stderr
    assert Migration.load(out).phase == "finalized"
    stats = Proxy(out / "proxy").admin.stats("be_v1")
    assert stats["ollama-1"]["status"].startswith("MAINT") and old.alive() is None
    m = Migration.load(out)
    with m.locked():
        rollback(m, say=lambda _s: None)  # still possible while the old server runs
    assert Proxy(out / "proxy").admin.stats("be_v1")["ollama-1"]["status"].split()[0] == "UP"


def require_haproxy() -> None:
    from support.requires import require_tool

    require_tool("haproxy", "the traffic layer")


def _haproxy_workers(out) -> list[int]:
    from llmctl.traffic.proxy import _children

    pid = Proxy(out / "proxy").master_pid()
    return _children(pid) if pid else []


def test_a_run_killed_during_a_step_redoes_that_step_only(sides):
    """The llmctl process dies while it watches the 10% step (the step stays `running` in the file):
    a re-run keeps the new side and the parity result, and watches the 10% step again."""
    old, new, out = sides
    assert run(out, new_url=new.base_url, parity_api="openai", port=free_port(), stop_at=0, say=lambda _s: None) == 0
    m = Migration.load(out)
    m.begin("shift-10")  # what a process killed mid-step leaves behind
    m.set_shares({"ollama": 90.0, "vllm": 10.0})
    said: list[str] = []
    assert run(out, new_url=new.base_url, parity_api="openai", stop_at=10, observe_s=0.5, say=said.append) == 0
    m = Migration.load(out)
    assert [s["status"] for s in m.data["steps"] if s["name"] == "shift-10"] == ["interrupted", "done"]
    assert len([s for s in m.data["steps"] if s["name"] == "parity"]) == 1
    assert not any("parity:" in s for s in said) and any(s.startswith("10% step passed") for s in said)

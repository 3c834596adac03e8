"""End to end on the real-server tier: Ollama → vLLM with a bounded load running throughout.

Old side: the real llama.cpp server on the tiny GGUF plays Ollama (Ollama cannot run here; its OpenAI
API at /v1 is what llama-server answers too). New side: vLLM CPU on the same tiny weights in Hugging
Face format, started by `--apply` (apply.run) from vllm.yaml + plan.json — once for this module.

Asserted: parity passes (exact agreement: same weights), the shift reaches 100% through the gated
steps, no request of the load fails, an Ollama-native client keeps working through the compatibility
front (when the front is part of this build), and `rollback` brings new requests back to the old
side. The old server is never stopped by the migration.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx
import pytest

from support.requires import require, require_tool
from llmctl.migrate import processes
from llmctl.migrate.apply import run
from llmctl.migrate.state import Migration
from support import servers
from support.cli import run_llmctl
from support.load import StreamLoad
from support.net import free_port

from .e2e_support import ENGINE_ARGS, clean_up, vllm_env, write_new_side
from .outdir import model_entry, write_front, write_inventory

pytestmark = pytest.mark.e2e
OBSERVE_S = 3.0
HAS_FRONT = importlib.util.find_spec("llmctl.migrate.front") is not None


@pytest.fixture(scope="module")
def migrated(tmp_path_factory, tiny_models):
    """The whole `--apply`: proxy and parity at 0% first, then (with the load running) 10 → 50 → 100%."""
    require(servers.vllm_available() is None, servers.vllm_available() or "")
    require(servers.llama_cpp_available() is None, servers.llama_cpp_available() or "")
    require_tool("haproxy", "the traffic layer")
    hf_dir, gguf = tiny_models
    logs = tmp_path_factory.mktemp("logs")
    out = tmp_path_factory.mktemp("migrate") / "migration-tiny"
    old = servers.start_llama_server(gguf, logs)
    write_inventory(out, old.base_url, [model_entry("tiny")])
    write_new_side(out, hf_dir)
    old_api, old_front, native = None, None, None
    port = free_port()
    said: list[str] = []
    load = None
    try:
        if HAS_FRONT:
            write_front(out, "tiny", "tiny")
            old_api, old_front = _old_native_front(out, old.base_url, logs)
        with vllm_env():
            rc0 = run(out, parity_api="openai", python=servers.vllm_python(), engine_args=ENGINE_ARGS, port=port, stop_at=0,
                      old_api_url=old_api, say=said.append)
            assert rc0 == 0, "\n".join(said)
            load = StreamLoad(f"http://127.0.0.1:{port}", "tiny", workers=2, max_tokens=8, max_requests=20000).start()
            native = NativeLoad(f"http://127.0.0.1:{port}").start() if HAS_FRONT else None
            load.wait_for(4, timeout_s=120)
            rc = run(out, parity_api="openai", observe_s=OBSERVE_S, old_api_url=old_api, say=said.append)
        yield {"out": out, "rc": rc, "said": said, "load": load, "url": f"http://127.0.0.1:{port}", "old": old,
               "native": native}
    finally:
        if load is not None:
            load.stop()
        if native is not None:
            native.stop()
        clean_up(out)
        if old_front:
            processes.stop(old_front)
        old.stop()


class NativeLoad:
    """An Ollama-native client in a loop: POST /api/chat (not streamed) through the proxy, each answer
    checked for `done: true`; bounded by `max_requests` and stopped by `stop()`."""

    def __init__(self, base_url: str, max_requests: int = 5000) -> None:
        import threading

        self.url, self.max_requests = base_url + "/api/chat", max_requests
        self.ok, self.failed, self.served_by = 0, [], {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "NativeLoad":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the native client did not stop"

    def _run(self) -> None:
        body = {"model": "tiny", "stream": False, "messages": [{"role": "user", "content": "hello"}],
                "options": {"num_predict": 4}}
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set() and self.ok + len(self.failed) < self.max_requests:
                try:
                    r = client.post(self.url, json=body)
                    good = r.status_code == 200 and r.json().get("done") is True
                except (httpx.HTTPError, ValueError) as exc:
                    self.failed.append(repr(exc))
                    continue
                if good:
                    self.ok += 1
                    server = r.headers.get("x-llmctl-server", "?")
                    self.served_by[server] = self.served_by.get(server, 0) + 1
                else:
                    self.failed.append(f"HTTP {r.status_code}: {r.text[:200]}")


def _old_native_front(out: Path, llama_url: str, logs: Path) -> tuple[str, dict]:
    """Ollama's native API on the old side, played by the front over llama-server with the recorded
    /api/show and /api/tags answers (front.json)."""
    cfg = json.loads((out / "front.json").read_text()) | {"backend": llama_url}
    path = logs / "old-front.json"
    path.write_text(json.dumps(cfg))
    import sys

    port = free_port()
    record = processes.spawn("old-front", [sys.executable, "-m", "llmctl.migrate.front", "--config", str(path),
                                           "--host", "127.0.0.1", "--port", str(port)], logs, port=port)
    url = f"http://127.0.0.1:{port}"
    processes.wait_http(url + "/api/version", timeout_s=60, what="the old side's native API", record=record)
    return url, record


def test_parity_passes_and_the_shift_reaches_100(migrated):
    out = migrated["out"]
    assert migrated["rc"] == 0, "\n".join(migrated["said"])
    parity = json.loads((out / "parity.json").read_text())
    assert parity["schema"] == "llmctl.migrate.parity/v1" and parity["passed"], (out / "parity.md").read_text()
    greedy = parity["models"][0]["checks"]["greedy"]
    assert greedy["top1_agreement"] == 1.0 and parity["models"][0]["weights"] == "same"
    perf = parity["models"][0]["performance"]
    assert perf["ollama"]["ttft_ms"] and perf["vllm"]["ttft_ms"]
    m = Migration.load(out)
    assert m.shares == {"ollama": 0.0, "vllm": 100.0} and m.phase == "at-100"
    shifts = [s for s in m.data["steps"] if s["name"].startswith("shift-")]
    assert [s["name"] for s in shifts] == ["shift-10", "shift-50", "shift-100"] and all(s["status"] == "done" for s in shifts)
    assert m.started("vllm") and processes.alive(m.started("vllm"))
    load = migrated["load"]
    before = load.report.served_by["vllm-1"]
    load.wait_for(load.report.total + 4, timeout_s=120)
    assert load.report.served_by["vllm-1"] > before
    assert load.report.failed == [], load.report.failed[:5]


def test_an_ollama_native_client_keeps_working_through_the_front(migrated):
    require(HAS_FRONT, "the Ollama-compatible front (llmctl.migrate.front) is not part of this build")
    url = migrated["url"]
    tags = httpx.get(url + "/api/tags", timeout=30)
    assert tags.status_code == 200 and tags.headers["x-llmctl-server"] == "vllm-1"
    assert tags.headers["x-llmctl-backend"] == "be_api"
    assert [m["name"] for m in tags.json()["models"]] == ["tiny:latest"]  # Ollama names a tag without one :latest
    show = httpx.post(url + "/api/show", json={"model": "tiny"}, timeout=30)
    assert show.status_code == 200 and show.json()["details"]["family"] == "llama"  # the recorded answer
    r = httpx.post(url + "/api/chat", json={"model": "tiny", "stream": False,
                                             "messages": [{"role": "user", "content": "hello"}],
                                             "options": {"num_predict": 8}}, timeout=120)
    assert r.status_code == 200 and r.headers["x-llmctl-server"] == "vllm-1", r.text
    body = r.json()
    assert body["done"] is True and body["message"]["content"]
    # parity's native path (Ollama's /api/generate, raw prompt, logprobs + top_logprobs) works on the
    # front's Ollama-shaped answers: vLLM through the front against vLLM directly agrees exactly
    from llmctl.migrate.parity import Side, run_parity

    m = Migration.load(migrated["out"])
    doc = run_parity(Side("ollama", m.endpoints["front"]["url"], "tiny", api="ollama"),
                     Side("vllm", m.endpoints["new"]["url"], "tiny"), perf=False)
    assert doc["passed"] and doc["checks"]["greedy"]["top1_agreement"] == 1.0, json.dumps(doc["checks"])[:1500]
    native = migrated["native"]  # the native client that ran through the whole shift
    assert native.failed == [] and native.served_by.get("ollama-1") and native.served_by.get("vllm-1"), \
        (native.failed[:3], native.served_by)
    # a streamed native answer: NDJSON lines, the last one done
    with httpx.stream("POST", url + "/api/generate", json={"model": "tiny", "prompt": "hello world",
                                                          "options": {"num_predict": 8}}, timeout=120) as s:
        assert s.status_code == 200 and s.headers["x-llmctl-server"] == "vllm-1"
        lines = [json.loads(line) for line in s.iter_lines() if line.strip()]
    assert lines[-1]["done"] is True and "".join(x.get("response", "") for x in lines)


def test_rollback_brings_traffic_back_and_no_request_failed(migrated):
    out, load = migrated["out"], migrated["load"]
    r = run_llmctl("migrate", "rollback", "--out", str(out))
    assert r.code == 0, r.output
    before = load.report.served_by["ollama-1"]
    load.wait_for(load.report.total + 6, timeout_s=120)
    assert load.report.served_by["ollama-1"] >= before + 4
    report = load.stop()
    assert report.failed == [], report.failed[:5]
    assert report.served_by["ollama-1"] > 0 and report.served_by["vllm-1"] > 0
    assert migrated["old"].alive() is None  # the old server kept running throughout
    r = run_llmctl("migrate", "rollback", "--stop-new", "--out", str(out))
    assert r.code == 0 and "vllm (pid" in r.stderr, r.output
    assert Migration.load(out).started("vllm") is None

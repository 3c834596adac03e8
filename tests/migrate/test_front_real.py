"""The Ollama-compatible front as a real process (uvicorn) on top of the real llama-server, driven as
Ollama clients drive Ollama: httpx speaking the native API, and the official `ollama` Python client.

Ollama itself cannot run here, so the expected shapes come from its source at v0.32.15 and are cited
(api/types.go line numbers, server/routes.go handlers). Between the front and llama-server sits a
recording TCP relay (`Relay`): it forwards bytes both ways unchanged and keeps each request, so a test
can assert what the backend was sent (SYSTEM / MESSAGE injection, options mapping).

The backpressure test uses a synthetic OpenAI stream (`EndlessBackend`): the tiny model's whole answer
(512 tokens at most) fits in the socket buffers, so only a stream far larger than them can show
whether the front reads ahead of its client.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from support.requires import require, require_module
from support.net import free_port, http_status, wait_until

REPO = Path(__file__).resolve().parents[2]
MODEL = "tiny-chat:1b"  # the Ollama tag clients use; llama-server serves it as "tiny"
SYSTEM = "You answer in one word."
HISTORY = [{"role": "user", "content": "one two"}, {"role": "assistant", "content": "three"}]
# Go's time.Time in JSON: RFC 3339 with up to 9 fraction digits (api/types.go ChatResponse.CreatedAt l.531)
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
# api/types.go Metrics (l.557-564): time.Duration = integer nanoseconds
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


# --------------------------------------------------------------------------- support: relay, front, backend


@dataclass
class Relay:
    """A TCP relay 127.0.0.1:port -> upstream that keeps every HTTP request it forwarded."""

    upstream: int
    port: int = 0
    requests: list[tuple[str, dict]] = field(default_factory=list)  # (request line, JSON body)
    _sock: socket.socket | None = None

    def start(self) -> "Relay":
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._sock:
            self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(client.close)
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=60)
            except OSError:
                return
            stack.callback(up.close)
            seen = bytearray()
            recorded = False

            def pump_up() -> None:
                nonlocal recorded
                with contextlib.suppress(OSError):
                    while data := client.recv(65536):
                        seen.extend(data)
                        if not recorded:
                            recorded = self._record(bytes(seen))
                        up.sendall(data)
                    up.shutdown(socket.SHUT_WR)

            t = threading.Thread(target=pump_up, daemon=True)
            t.start()
            with contextlib.suppress(OSError):
                while data := up.recv(65536):
                    client.sendall(data)
            t.join(timeout=5)

    def _record(self, seen: bytes) -> bool:
        """Keep the request once its body is complete (the front sends one request per connection)."""
        head, sep, body = seen.partition(b"\r\n\r\n")
        if not sep:
            return False
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        if len(body) < length:
            return False
        line = head.split(b"\r\n", 1)[0].decode()
        try:
            payload = json.loads(body[:length]) if length else {}
        except ValueError:
            payload = {}
        self.requests.append((line, payload))
        return True

    def last(self, path: str, timeout: float = 10) -> dict:
        """The JSON body of the newest request to `path`."""
        return wait_until(lambda: next((b for line, b in reversed(self.requests) if f" {path} " in line), None),
                          timeout=timeout, what=f"a request to {path} through the relay")

    def clear(self) -> None:
        self.requests.clear()


@dataclass
class Front:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> str | None:
        rc = self.process.poll()
        return None if rc is None else f"the front exited with {rc}:\n{self.log()[-3000:]}"

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        return self.process.returncode


@contextlib.contextmanager
def running_front(config: dict, workdir: Path, extra: list[str] | None = None) -> Iterator[Front]:
    require_module("starlette", "the front's web framework")
    require_module("uvicorn", "the front's server")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "front.json"
    path.write_text(json.dumps(config, indent=2))
    port = free_port()
    log = workdir / f"front-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmctl.migrate.front", "--config", str(path), "--host", "127.0.0.1",
             "--port", str(port), *(extra or [])],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    front = Front(proc, port, log)
    try:
        wait_until(lambda: http_status(front.url + "/") == 200, timeout=60, what="the front", alive=front.alive)
        yield front
    finally:
        front.stop()


def front_config(backend_port: int, **extra) -> dict:
    return {
        "schema": "llmctl.migrate.front/v1",
        "backend": f"http://127.0.0.1:{backend_port}",
        "api_key_env": None,
        "version": "0.32.15",
        "models": [
            {"name": MODEL, "aliases": ["tiny"], "served_name": "tiny", "system": SYSTEM, "messages": HISTORY,
             "options": {"temperature": 0.7, "seed": 42, "stop": ["<user>"], "num_ctx": 512, "top_k": 1},
             "template": None, "show": None, "embedding": False, "context_length": 512},
            # the same backend model with no Modelfile settings, for comparisons
            {"name": "plain", "aliases": [], "served_name": "tiny", "system": None, "messages": [],
             "options": {}, "template": None, "show": None, "embedding": False, "context_length": 512},
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def backend(tiny_gguf, e2e_log_dir):
    """The real llama-server on the tiny GGUF, chat and embeddings in one process (--embeddings
    --pooling mean: a causal model has no pooling type of its own)."""
    from support import servers

    require(servers.llama_cpp_available() is None, servers.llama_cpp_available() or "")
    server = servers.start_llama_server(tiny_gguf, e2e_log_dir, alias="tiny",
                                        extra=["--embeddings", "--pooling", "mean"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def relay(backend):
    r = Relay(backend.port).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def front(relay, tmp_path_factory):
    with running_front(front_config(relay.port), tmp_path_factory.mktemp("front")) as f:
        yield f


@pytest.fixture
def client(front):
    with httpx.Client(base_url=front.url, timeout=60) as c:
        yield c


def ndjson(resp: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in resp.iter_lines() if line.strip()]


def assert_final_metrics(final: dict) -> None:
    assert final["done"] is True and final["done_reason"] in ("stop", "length")
    for key in DURATIONS:
        assert isinstance(final[key], int) and final[key] > 0, (key, final)
    assert final["total_duration"] >= final["load_duration"]
    assert isinstance(final["prompt_eval_count"], int) and final["prompt_eval_count"] > 0
    assert isinstance(final["eval_count"], int) and final["eval_count"] > 0
    assert CREATED_AT.match(final["created_at"]), final["created_at"]


# --------------------------------------------------------------------------- chat and generate


def test_root_and_version(client):
    r = client.get("/")
    assert r.status_code == 200 and r.text == "Ollama is running"  # routes.go l.1877-1878
    assert client.head("/").status_code == 200
    assert client.get("/api/version").json() == {"version": "0.32.15"}


def test_health_follows_the_backend(client, relay, tmp_path):
    assert client.get("/health").json() == {"status": "ok"}
    cfg = front_config(relay.port)
    cfg["models"].append({"name": "ghost:7b", "served_name": "ghost"})
    with running_front(cfg, tmp_path / "ghost") as f:
        r = httpx.get(f.url + "/health", timeout=30)
        assert r.status_code == 503 and r.json()["error"] == "the backend does not serve ghost"
    with running_front(front_config(free_port()), tmp_path / "down") as f:
        r = httpx.get(f.url + "/health", timeout=30)
        assert r.status_code == 503 and "cannot reach the model backend" in r.json()["error"]
        assert httpx.get(f.url + "/", timeout=30).status_code == 200  # Ollama's `/` only says it is up


def test_chat_streams_ndjson_with_nanosecond_metrics(client):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}],
            "options": {"temperature": 0, "num_predict": 8}}
    with client.stream("POST", "/api/chat", json=body) as resp:  # stream defaults to true (ChatRequest.Stream)
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        chunks = ndjson(resp)
    assert len(chunks) >= 2
    for c in chunks[:-1]:
        # api/types.go ChatResponse (l.520): model, created_at, message{role, content}, done
        assert set(c) == {"model", "created_at", "message", "done"}, c
        assert c["model"] == MODEL and c["done"] is False and c["message"]["role"] == "assistant"
        assert CREATED_AT.match(c["created_at"])
    final = chunks[-1]
    assert final["message"] == {"role": "assistant", "content": ""}
    assert_final_metrics(final)
    assert final["done_reason"] == "length" and final["eval_count"] == 8
    streamed = "".join(c["message"]["content"] for c in chunks)

    # the same request unstreamed: one object, the same (greedy) text
    one = client.post("/api/chat", json={**body, "stream": False})
    assert one.status_code == 200 and one.headers["content-type"].startswith("application/json")
    data = one.json()
    assert data["message"]["content"] == streamed and streamed
    assert_final_metrics(data)


def test_generate_streaming_and_not(client, relay):
    body = {"model": MODEL, "prompt": "hello", "options": {"temperature": 0, "num_predict": 6}}
    with client.stream("POST", "/api/generate", json=body) as resp:
        chunks = ndjson(resp)
    for c in chunks[:-1]:
        # api/types.go GenerateResponse (l.891): response instead of message
        assert set(c) == {"model", "created_at", "response", "done"}, c
    assert_final_metrics(chunks[-1])
    assert chunks[-1]["eval_count"] == 6
    one = client.post("/api/generate", json={**body, "stream": False}).json()
    assert one["response"] == "".join(c["response"] for c in chunks)
    # not raw: the prompt goes through the chat template with the Modelfile's SYSTEM and MESSAGEs
    sent = relay.last("/v1/chat/completions")
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == SYSTEM and sent["messages"][-1]["content"] == "hello"
    # a request `system` replaces the Modelfile's; sending `context` leaves the MESSAGE history out
    client.post("/api/generate", json={**body, "stream": False, "system": "mine", "context": [1, 2]})
    sent = relay.last("/v1/chat/completions")
    assert sent["messages"] == [{"role": "system", "content": "mine"}, {"role": "user", "content": "hello"}]


def test_generate_raw_sends_the_prompt_verbatim(client, relay):
    r = client.post("/api/generate", json={"model": MODEL, "prompt": "<x> raw text", "raw": True, "stream": False,
                                           "options": {"num_predict": 3}})
    assert r.status_code == 200 and r.json()["eval_count"] == 3
    sent = relay.last("/v1/completions")
    assert sent["prompt"] == "<x> raw text" and sent["model"] == "tiny" and "messages" not in sent
    # fill-in-the-middle: prompt and suffix to the completions API
    r = client.post("/api/generate", json={"model": MODEL, "prompt": "def f(", "suffix": "):", "stream": False,
                                           "options": {"num_predict": 2}})
    assert r.status_code == 200, r.text
    sent = relay.last("/v1/completions")
    assert sent["prompt"] == "def f(" and sent["suffix"] == "):"
    bad = client.post("/api/generate", json={"model": MODEL, "prompt": "x", "raw": True, "system": "s"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "raw mode does not support template, system, or context"}  # routes.go l.422


def test_load_and_unload_answers(client):
    # an empty prompt / message list loads the model (routes.go l.478-485, l.2645-2652)
    r = client.post("/api/generate", json={"model": MODEL}).json()
    assert r["done"] is True and r["done_reason"] == "load" and r["response"] == ""
    r = client.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0}).json()
    assert r["done_reason"] == "unload" and r["message"] == {"role": "assistant", "content": ""}


def test_system_and_message_injection_reach_the_backend(client, relay):
    """server/routes.go ChatHandler l.2656-2659: Modelfile MESSAGEs before the request's messages, the
    Modelfile SYSTEM first unless the request starts with its own system message."""
    q = [{"role": "user", "content": "four"}]
    with_mf = client.post("/api/chat", json={"model": MODEL, "messages": q, "stream": False,
                                            "options": {"num_predict": 1}}).json()
    sent = relay.last("/v1/chat/completions")
    assert sent["messages"] == [{"role": "system", "content": SYSTEM}, *HISTORY, {"role": "user", "content": "four"}]
    plain = client.post("/api/chat", json={"model": "plain", "messages": q, "stream": False,
                                          "options": {"num_predict": 1}}).json()
    assert relay.last("/v1/chat/completions")["messages"] == q
    # llama-server counted the injected text: more prompt tokens for the same question
    assert with_mf["prompt_eval_count"] > plain["prompt_eval_count"] + 5

    own = [{"role": "system", "content": "mine"}, *q]
    client.post("/api/chat", json={"model": MODEL, "messages": own, "stream": False, "options": {"num_predict": 1}})
    assert relay.last("/v1/chat/completions")["messages"] == [*HISTORY, *own]


def test_options_mapping_and_modelfile_defaults(client, relay):
    r = client.post("/api/chat", json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False,
        "options": {"temperature": 0.2, "top_p": 0.9, "min_p": 0.05, "repeat_penalty": 1.2, "num_predict": 4,
                    "num_ctx": 99999, "bogus": 1}})
    assert r.status_code == 200 and r.json()["eval_count"] <= 4
    sent = relay.last("/v1/chat/completions")
    assert sent["model"] == "tiny"  # served_name
    # request wins over the Modelfile (temperature), Modelfile fills the rest (seed, stop, top_k)
    assert sent["temperature"] == 0.2 and sent["seed"] == 42 and sent["stop"] == ["<user>"] and sent["top_k"] == 1
    assert sent["top_p"] == 0.9 and sent["min_p"] == 0.05
    assert sent["repetition_penalty"] == 1.2 and "repeat_penalty" not in sent
    assert sent["max_tokens"] == 4 and "num_predict" not in sent
    assert "num_ctx" not in sent and "bogus" not in sent  # num_ctx is the backend's --max-model-len
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    bad = client.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                         "options": {"temperature": "hot"}})
    assert bad.status_code == 500 and bad.json() == {"error": 'option "temperature" must be of type float32'}


def test_format_think_tools_and_logprobs_are_translated(client, relay):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    r = client.post("/api/chat", json={"model": "plain", "messages": [{"role": "user", "content": "x"}],
                                      "stream": False, "tools": tools, "think": False, "options": {"num_predict": 2}})
    assert r.status_code == 200, r.text
    sent = relay.last("/v1/chat/completions")
    assert sent["tools"] == tools and sent["chat_template_kwargs"] == {"enable_thinking": False}
    # a backend's refusal comes back with its status and message, Ollama-shaped
    r = client.post("/api/chat", json={"model": "plain", "messages": [{"role": "user", "content": "x"}],
                                      "tools": tools, "logprobs": True})
    assert r.status_code == 400 and r.json() == {"error": "logprobs is not supported with tools + stream"}

    r = client.post("/api/chat", json={"model": "plain", "messages": [{"role": "user", "content": "x"}],
                                      "stream": False, "format": "json", "logprobs": True,
                                      "top_logprobs": 2, "options": {"num_predict": 2}})
    assert r.status_code == 200, r.text
    sent = relay.last("/v1/chat/completions")
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    # llama-server returns logprobs; they come back in Ollama's shape (api/types.go Logprob l.510)
    lps = r.json().get("logprobs")
    assert lps and {"token", "logprob"} <= set(lps[0]) and len(lps[0]["top_logprobs"]) == 2
    bad = client.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                         "top_logprobs": 21})
    assert bad.status_code == 400 and bad.json() == {"error": "top_logprobs must be between 0 and 20"}


def test_raw_generate_carries_llama_servers_logprobs(client):
    """llama-server answers /v1/completions logprobs in the chat shape ({content: [...]}); the front's
    raw /api/generate (what migration parity sends to Ollama) still returns them, Ollama-shaped."""
    r = client.post("/api/generate", json={"model": "plain", "prompt": "the cat", "raw": True, "stream": False,
                                          "logprobs": True, "top_logprobs": 3,
                                          "options": {"num_predict": 3, "temperature": 0}})
    assert r.status_code == 200, r.text
    lps = r.json().get("logprobs")
    assert lps and len(lps) == 3 and all({"token", "logprob"} <= set(x) for x in lps)
    assert all(len(x["top_logprobs"]) == 3 for x in lps)


# --------------------------------------------------------------------------- embeddings


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_embed_is_l2_normalised(client):
    r = client.post("/api/embed", json={"model": "plain", "input": ["hello world", "one two three"]})
    assert r.status_code == 200, r.text
    data = r.json()
    # api/types.go EmbedResponse (l.621): model, embeddings, total_duration, load_duration, prompt_eval_count
    assert set(data) == {"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"}
    assert data["model"] == "plain" and len(data["embeddings"]) == 2 and data["prompt_eval_count"] > 0
    for v in data["embeddings"]:
        assert abs(_norm(v) - 1.0) < 1e-6
    # `dimensions`: cut, then normalised again (routes.go EmbedHandler) - a cut unit vector is not unit
    full = data["embeddings"][0]
    cut = client.post("/api/embed", json={"model": "plain", "input": "hello world", "dimensions": 8}).json()
    v8 = cut["embeddings"][0]
    assert len(v8) == 8 and abs(_norm(v8) - 1.0) < 1e-6 and _norm(full[:8]) < 0.99
    assert v8 == pytest.approx([x / _norm(full[:8]) for x in full[:8]], abs=1e-6)
    # the legacy endpoint answers the vector as the model gives it (EmbeddingsHandler: no normalize)
    legacy = client.post("/api/embeddings", json={"model": "plain", "prompt": "hello world"}).json()["embedding"]
    assert [x / _norm(legacy) for x in legacy] == pytest.approx(full, abs=1e-5)
    # empty input, wrong input type
    assert client.post("/api/embed", json={"model": "plain", "input": []}).json() == {"model": "plain", "embeddings": []}
    bad = client.post("/api/embed", json={"model": "plain", "input": [1, 2]})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid input type"}


def test_embed_truncate_flag_reaches_the_backend(client, relay):
    client.post("/api/embed", json={"model": "plain", "input": "x"})
    assert relay.last("/v1/embeddings")["truncate_prompt_tokens"] == -1
    relay.clear()
    client.post("/api/embed", json={"model": "plain", "input": "x", "truncate": False})
    assert "truncate_prompt_tokens" not in relay.last("/v1/embeddings")


# --------------------------------------------------------------------------- model listing


def test_tags_show_ps_shapes(client):
    tags = client.get("/api/tags").json()["models"]
    # api/types.go ListModelResponse (l.822)
    assert [t["name"] for t in tags] == ["tiny-chat:1b", "plain:latest"]
    for t in tags:
        assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(t)
        assert CREATED_AT.match(t["modified_at"])
        assert set(t["details"]) >= {"parent_model", "format", "family", "families", "parameter_size",
                                     "quantization_level"}  # ModelDetails (l.933)
    assert client.head("/api/tags").status_code == 200

    ps = client.get("/api/ps").json()["models"]
    # api/types.go ProcessModelResponse (l.835); the backend lists "tiny", so both tags are loaded
    assert {p["name"] for p in ps} == {"tiny-chat:1b", "plain:latest"}
    for p in ps:
        assert set(p) == {"name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"}
        assert p["context_length"] == 512 and CREATED_AT.match(p["expires_at"])

    show = client.post("/api/show", json={"model": "TINY-CHAT:1b"}).json()  # names compare without case
    # api/types.go ShowResponse (l.737): parameters text, system, messages, details, model_info, capabilities
    assert show["system"] == SYSTEM and show["messages"] == HISTORY
    assert "temperature" in show["parameters"] and show["model_info"] == {} and show["capabilities"] == ["completion"]
    assert client.post("/api/show", json={"name": "tiny-chat:1b", "system": "x"}).json()["system"] == "x"
    missing = client.post("/api/show", json={"model": "nope"})
    assert missing.status_code == 404 and missing.json() == {"error": "model 'nope:latest' not found"}


def test_show_replays_the_recorded_answer(relay, tmp_path):
    recorded = {"modelfile": "FROM x\n", "parameters": "temperature 0.7", "template": "{{ .Prompt }}",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "1.2B", "quantization_level": "Q8_0"},
                "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
                "capabilities": ["completion", "tools"], "modified_at": "2026-08-01T10:00:00.5+02:00"}
    cfg = front_config(relay.port)
    cfg["models"][0]["show"] = recorded
    with running_front(cfg, tmp_path) as f, httpx.Client(base_url=f.url, timeout=30) as c:
        assert c.post("/api/show", json={"model": MODEL}).json() == recorded
        tag = c.get("/api/tags").json()["models"][0]
        assert tag["details"] == recorded["details"] and tag["modified_at"] == recorded["modified_at"]
        assert tag["capabilities"] == ["completion", "tools"]
        # what the old server would refuse, from its recorded capabilities (routes.go ChatHandler l.2610-2632)
        r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "think": True})
        assert r.status_code == 400 and r.json() == {"error": '"tiny-chat:1b" does not support thinking'}
    cfg["models"][0]["show"] = {**recorded, "capabilities": ["embedding"]}
    with running_front(cfg, tmp_path / "emb") as f, httpx.Client(base_url=f.url, timeout=30) as c:
        r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 400 and r.json() == {"error": '"tiny-chat:1b" does not support chat'}
        r = c.post("/api/generate", json={"model": MODEL, "prompt": "x", "tools": []})
        assert r.status_code == 400 and r.json() == {"error": '"tiny-chat:1b" does not support generate'}
        assert c.post("/api/embed", json={"model": MODEL, "input": "x"}).status_code == 200
    cfg["models"][0]["show"] = {**recorded, "capabilities": ["completion"]}
    with running_front(cfg, tmp_path / "notools") as f, httpx.Client(base_url=f.url, timeout=30) as c:
        r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                      "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})
        assert r.status_code == 400
        assert r.json() == {"error": "registry.ollama.ai/library/tiny-chat:1b does not support tools"}


# --------------------------------------------------------------------------- errors


def test_unknown_model_answers_as_ollama_does(client):
    # routes.go ChatHandler l.2485 / GenerateHandler l.289 / EmbedHandler l.844
    for path, body in (("/api/chat", {"messages": [{"role": "user", "content": "x"}]}),
                       ("/api/generate", {"prompt": "x"}), ("/api/embed", {"input": "x"})):
        r = client.post(path, json={"model": "llama9:70b", **body})
        assert r.status_code == 404 and r.json() == {"error": "model 'llama9:70b' not found"}, (path, r.text)
    r = client.post("/api/embeddings", json={"model": "llama9", "prompt": "x"})
    assert r.status_code == 404 and r.json() == {"error": 'model "llama9" not found, try pulling it first'}
    r = client.post("/api/chat", json={"messages": []})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}
    r = client.post("/api/chat", content=b"")
    assert r.status_code == 400 and r.json() == {"error": "missing request body"}
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/chat").status_code == 405


def test_backend_down_is_a_clean_error(tmp_path):
    dead = free_port()  # nothing listens there
    with running_front(front_config(dead), tmp_path) as f, httpx.Client(base_url=f.url, timeout=30) as c:
        t0 = time.monotonic()
        for stream in (True, False):
            r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                          "stream": stream})
            assert r.status_code == 502
            assert r.json()["error"].startswith(f"cannot reach the model backend at http://127.0.0.1:{dead}")
        r = c.post("/api/embed", json={"model": "plain", "input": "x"})
        assert r.status_code == 502 and "cannot reach the model backend" in r.json()["error"]
        assert time.monotonic() - t0 < 20  # refused connections fail fast, no hang
        assert c.get("/api/ps").json() == {"models": []}
        assert c.get("/").text == "Ollama is running"
        log = f.log()
    assert "Traceback" not in log


def test_a_backend_that_never_answers_times_out(tmp_path):
    """The read timeout bounds the wait for a backend that accepts and then says nothing."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # accepts (the kernel completes the handshake), never answers
    try:
        port = mute.getsockname()[1]
        with running_front(front_config(port), tmp_path, ["--read-timeout", "2"]) as f, \
                httpx.Client(base_url=f.url, timeout=30) as c:
            t0 = time.monotonic()
            r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
            took = time.monotonic() - t0
            assert r.status_code == 504 and "did not answer in time" in r.json()["error"], r.text
            assert 1.5 < took < 15, took
            assert "Traceback" not in f.log()
    finally:
        mute.close()


def test_api_key_from_the_named_variable(backend, tiny_gguf, e2e_log_dir, tmp_path):
    """api_key_env: the front sends the key as a bearer token; a wrong one comes back as the backend's 401."""
    from support import servers

    keyed = servers.start_llama_server(tiny_gguf, e2e_log_dir, alias="tiny", extra=["--api-key", "s3cret"])
    try:
        cfg = front_config(keyed.port, api_key_env="FRONT_BACKEND_KEY")
        os.environ["FRONT_BACKEND_KEY"] = "s3cret"
        try:
            with running_front(cfg, tmp_path / "good") as f, httpx.Client(base_url=f.url, timeout=30) as c:
                r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                              "stream": False, "options": {"num_predict": 2}})
                assert r.status_code == 200, r.text
                assert {m["name"] for m in c.get("/api/ps").json()["models"]} == {"tiny-chat:1b", "plain:latest"}
            os.environ["FRONT_BACKEND_KEY"] = "wrong"
            with running_front(cfg, tmp_path / "bad") as f, httpx.Client(base_url=f.url, timeout=30) as c:
                r = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
                assert r.status_code == 401 and r.json() == {"error": "Invalid API Key"}
                assert c.get("/api/ps").json() == {"models": []}  # /v1/models needs the key too
        finally:
            os.environ.pop("FRONT_BACKEND_KEY", None)
    finally:
        keyed.stop()


def test_oversized_body_is_refused(relay, tmp_path):
    with running_front(front_config(relay.port), tmp_path, ["--max-body-mib", "1"]) as f, \
            httpx.Client(base_url=f.url, timeout=30) as c:
        r = c.post("/api/chat", content=b"{" + b" " * (2**20 + 10) + b"}", headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json() == {"error": "request body larger than 1 MiB"}
        ok = c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "one two " * 20}],
                                       "stream": False, "options": {"num_predict": 1}})
        assert ok.status_code == 200, ok.text


def test_backend_dying_mid_stream_ends_with_an_error_line(tmp_path):
    backend = EndlessBackend(events=10**6, content="x" * 200).start()
    try:
        with running_front(front_config(backend.port), tmp_path) as f, \
                httpx.Client(base_url=f.url, timeout=30) as c, \
                c.stream("POST", "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}) as r:
            lines = r.iter_lines()
            assert json.loads(next(lines))["done"] is False
            backend.kill_connections()
            rest = [json.loads(line) for line in lines if line.strip()]
            assert rest and rest[-1].keys() == {"error"}, rest[-1:]
            assert "broke off" in rest[-1]["error"]
            assert "Traceback" not in f.log()
    finally:
        backend.stop()


# --------------------------------------------------------------------------- the official client


def test_official_ollama_client(front):
    require_module("ollama", "the official Ollama Python client (PyPI ollama)")
    import ollama

    c = ollama.Client(host=front.url, timeout=60)
    opts = {"temperature": 0, "num_predict": 5}
    res = c.chat(model=MODEL, messages=[{"role": "user", "content": "hello"}], options=opts)
    assert res.done and res.message.role == "assistant" and res.message.content
    assert res.eval_count == 5 and res.total_duration > 0
    parts = list(c.chat(model=MODEL, messages=[{"role": "user", "content": "hello"}], options=opts, stream=True))
    assert "".join(p.message.content for p in parts) == res.message.content and parts[-1].done
    gen = c.generate(model=MODEL, prompt="hello", options=opts)
    assert gen.response and gen.done_reason == "length"
    emb = c.embed(model="plain", input=["a b", "c d"])
    assert len(emb.embeddings) == 2 and abs(_norm(emb.embeddings[0]) - 1) < 1e-6
    assert {m.model for m in c.list().models} == {"tiny-chat:1b", "plain:latest"}
    shown = c.show(MODEL)
    assert "temperature" in shown.parameters and shown.capabilities == ["completion"]
    assert {m.model for m in c.ps().models} == {"tiny-chat:1b", "plain:latest"}
    with pytest.raises(ollama.ResponseError) as exc:
        c.chat(model="llama9:70b", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 404 and exc.value.error == "model 'llama9:70b' not found"


# --------------------------------------------------------------------------- backpressure


class EndlessBackend:
    """A synthetic OpenAI-compatible chat stream: `events` SSE chunks of real vLLM shape, each written
    with a blocking sendall, so `sent` counts what the front has taken off the socket (plus the kernel's
    buffers). It serves one stream per connection and closes it after the last event."""

    def __init__(self, events: int, content: str):
        self.events, self.content = events, content
        self.sent = 0
        self.sent_bytes = 0
        self.cut = threading.Event()  # a send failed: the reader went away
        self.finished = threading.Event()  # the whole stream went out
        self._conns: list[socket.socket] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]

    def start(self) -> "EndlessBackend":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._sock.close()
        self.kill_connections()

    def kill_connections(self) -> None:
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            # read the whole request body: closing a socket with unread input sends a reset, which
            # would cut off the end of the answer at the front
            head, _, body = buf.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            while len(body) < length:
                data = conn.recv(65536)
                if not data:
                    return
                body += data
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for i in range(self.events):
                chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1796050000, "model": "tiny",
                         "choices": [{"index": 0, "delta": {"content": self.content}, "logprobs": None,
                                      "finish_reason": None}]}
                line = b"data: " + json.dumps(chunk).encode() + b"\n\n"
                conn.sendall(line)
                self.sent += 1
                self.sent_bytes += len(line)
            last = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1796050000, "model": "tiny",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": self.events, "total_tokens": 3 + self.events}}
            conn.sendall(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
            self.finished.set()
        if not self.finished.is_set():
            self.cut.set()
        with contextlib.suppress(OSError):
            conn.close()


def test_slow_client_does_not_make_the_front_buffer_the_stream(tmp_path):
    """A client that stops reading must stop the front reading the backend: the backend's sendall
    blocks once the socket buffers between the three are full. If the front read ahead (collected the
    answer, or queued it without bound), the synthetic backend would get all of its 64 MiB out."""
    events, content = 16_000, "y" * 4000  # ~4.1 KB per SSE event, ~66 MB in all
    backend = EndlessBackend(events, content).start()
    try:
        with running_front(front_config(backend.port), tmp_path) as f:
            rss_before = f.rss_kib()
            s = socket.create_connection(("127.0.0.1", f.port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}).encode()
            s.sendall(b"POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                      b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
            first = s.recv(4096)
            assert first.startswith(b"HTTP/1.1 200"), first[:200]

            # the client reads nothing more; wait until the backend's progress stops (bounded)
            def stalled() -> bool:
                before = backend.sent
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    if backend.sent != before:
                        return False
                    time.sleep(0.05)
                return True

            wait_until(stalled, timeout=60, what="the backend's stream to stall behind the slow client",
                       interval=0.05, alive=f.alive)
            total = events * (len(content) + 150)
            assert backend.sent < events, "the backend sent its whole stream to a client that reads nothing"
            assert backend.sent_bytes < total / 2, (backend.sent_bytes, total)
            growth_mib = (f.rss_kib() - rss_before) / 1024
            assert growth_mib < 48, f"the front grew by {growth_mib:.0f} MiB while its client did not read"

            # the client reads again: everything arrives, in order, ending with the done line
            received = bytearray(first)
            s.settimeout(60)
            while data := s.recv(1 << 20):
                received.extend(data)
            s.close()
            body_bytes = bytes(received).split(b"\r\n\r\n", 1)[1]
            lines = [json.loads(x) for x in _unchunk(body_bytes).splitlines() if x.strip()]
            assert len(lines) == events + 1 and lines[-1]["done"] is True, (len(lines), lines[-1].get("error"), f.log()[-2000:])
            assert all(line["message"]["content"] == content for line in lines[:-1])
            assert lines[-1]["eval_count"] == events
    finally:
        backend.stop()


def _unchunk(data: bytes) -> bytes:
    """Decode an HTTP/1.1 chunked body."""
    out = bytearray()
    i = 0
    while i < len(data):
        j = data.index(b"\r\n", i)
        size = int(data[i:j].split(b";")[0], 16)
        if size == 0:
            break
        out.extend(data[j + 2:j + 2 + size])
        i = j + 2 + size + 2
    return bytes(out)


def test_client_going_away_closes_the_backend_stream(tmp_path):
    """When the client disconnects, the front drops its backend request too (so the engine stops
    generating for nobody): the synthetic backend's next sends fail long before its stream's end."""
    backend = EndlessBackend(events=200_000, content="w" * 1000).start()
    try:
        with running_front(front_config(backend.port), tmp_path) as f:
            with httpx.Client(base_url=f.url, timeout=30) as c, \
                    c.stream("POST", "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}) as r:
                assert json.loads(next(r.iter_lines()))["done"] is False
            # the client is gone
            wait_until(backend.cut.is_set, timeout=30, what="the backend stream to be closed by the front")
            assert not backend.finished.is_set() and backend.sent < 200_000
            assert http_status(f.url + "/") == 200 and "Traceback" not in f.log()
    finally:
        backend.stop()


def test_unstreamed_client_going_away_closes_the_backend_stream(tmp_path):
    """The same for `"stream": false`: the front collects the answer, but not for a client that left."""
    backend = SlowBackend(events=600, interval=0.05).start()  # 30 s of generation
    try:
        with running_front(front_config(backend.port), tmp_path) as f:
            with httpx.Client(base_url=f.url, timeout=1.5) as c, pytest.raises(httpx.ReadTimeout):
                c.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                          "stream": False})
            wait_until(backend.cut.is_set, timeout=20, what="the backend stream to be closed by the front")
            assert not backend.finished.is_set()
            assert "Traceback" not in f.log()
    finally:
        backend.stop()


def test_concurrent_streams_all_complete(front):
    """Four streams at once (llama-server has four slots) through one front process."""
    import concurrent.futures

    def one(i: int) -> dict:
        with httpx.Client(base_url=front.url, timeout=60) as c, c.stream("POST", "/api/chat", json={
                "model": MODEL, "messages": [{"role": "user", "content": f"count {i}"}],
                "options": {"num_predict": 24, "temperature": 0}}) as r:
            return ndjson(r)[-1]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        finals = list(pool.map(one, range(8)))
    assert all(f["done"] and f["eval_count"] == 24 for f in finals), finals


# --------------------------------------------------------------------------- shutdown


def test_sigterm_lets_a_running_stream_finish(tmp_path):
    backend = SlowBackend(events=20, interval=0.1).start()
    try:
        with running_front(front_config(backend.port), tmp_path, ["--graceful-timeout", "20"]) as f, \
                httpx.Client(base_url=f.url, timeout=30) as c, \
                c.stream("POST", "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}) as r:
            lines = r.iter_lines()
            assert json.loads(next(lines))["done"] is False
            os.killpg(f.process.pid, signal.SIGTERM)
            rest = [json.loads(line) for line in lines if line.strip()]
            assert rest[-1]["done"] is True and len(rest) == 20  # 19 more text chunks + the done line
            # uvicorn re-raises the signal it caught once it has shut down (Server.capture_signals): the
            # process ends "killed by SIGTERM", which systemd and container runtimes count as a clean stop
            assert f.process.wait(timeout=30) == -signal.SIGTERM
            assert "Traceback" not in f.log() and "Finished server process" in f.log()
            assert http_status(f.url + "/") is None  # it stopped listening
    finally:
        backend.stop()


class SlowBackend(EndlessBackend):
    """EndlessBackend pacing its events `interval` seconds apart (a model generating)."""

    def __init__(self, events: int, interval: float):
        super().__init__(events, "z")
        self.interval = interval

    def _serve(self, conn: socket.socket) -> None:
        orig = conn.sendall

        def paced(data: bytes) -> None:
            if data.startswith(b"data: "):
                time.sleep(self.interval)  # the pace of generation, not synchronisation
            orig(data)

        class Paced:
            def __getattr__(self, name):
                return getattr(conn, name)

        p = Paced()
        p.sendall = paced  # type: ignore[attr-defined]
        super()._serve(p)  # type: ignore[arg-type]

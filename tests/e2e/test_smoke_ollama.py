"""`llmctl smoke --api ollama` (Ollama's native API: /api/version, /api/tags, /api/chat as NDJSON).

Ollama itself cannot be installed on the test machines (its installer and its model pulls need
ollama.com), so these tests replay RECORDED responses (tests/e2e/recorded/, in the shapes of
Ollama's API reference) from a small HTTP server on 127.0.0.1. Everything else is real: the CLI,
httpx, the NDJSON stream parsing and the timing.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.cli import run_llmctl

RECORDED = Path(__file__).parent / "recorded"


class _Ollama(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: list = []
    fail_stream = False

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _json(self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.requests_seen.append(("GET", self.path, None))
        if self.path == "/api/version":
            self._json(200, (RECORDED / "ollama_version.json").read_bytes())
        elif self.path == "/api/tags":
            self._json(200, (RECORDED / "ollama_tags.json").read_bytes())
        else:
            self._json(404, b"404 page not found", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.requests_seen.append(("POST", self.path, body))
        if self.path != "/api/chat":
            self._json(404, b"404 page not found", "text/plain")
            return
        if body.get("model") not in ("llama3.2", "llama3.2:latest"):
            self._json(404, json.dumps({"error": f"model \"{body.get('model')}\" not found, try pulling it first"}).encode())
            return
        if not body.get("stream", True):
            self._json(200, (RECORDED / "ollama_chat.json").read_bytes())
            return
        # streamed: NDJSON, one chunk per line, chunked transfer encoding as Ollama sends it
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = (RECORDED / "ollama_chat_stream.ndjson").read_bytes().splitlines(keepends=True)
        if self.fail_stream:
            lines = lines[:2] + [b'{"error":"an error was encountered while running the model"}\n']
        for line in lines:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def recorded_ollama():
    handler = type("Handler", (_Ollama,), {"requests_seen": [], "fail_stream": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_smoke_passes_against_recorded_ollama(recorded_ollama):
    url, handler = recorded_ollama
    r = run_llmctl("smoke", "--api", "ollama", "--url", url, "--model", "llama3.2", "--concurrency", "2",
                   "--output", "json", "--timeout", "30")
    assert r.code == 0, r.output
    report = json.loads(r.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("ready", "model listed", "chat completion", "streaming", "burst x2"):
        assert checks[name]["status"] == "pass", checks[name]
    assert "metrics" not in checks  # Ollama exports no Prometheus metrics
    assert report["measurements"]["single_stream"]["chunks"] == 7  # the 7 non-empty recorded pieces
    chats = [b for (m, p, b) in handler.requests_seen if p == "/api/chat"]
    assert len(chats) == 1 + 1 + 2  # chat, stream, burst of 2: bounded
    assert all(b["options"]["num_predict"] == 32 and b["options"]["temperature"] == 0 for b in chats)
    assert [b["stream"] for b in chats].count(False) == 1


def test_ollama_model_not_pulled_fails(recorded_ollama):
    url, _ = recorded_ollama
    r = run_llmctl("smoke", "--api", "ollama", "--url", url, "--model", "qwen2.5:7b", "--timeout", "30")
    assert r.code == 1
    assert "'qwen2.5:7b' is not served" in r.stdout
    assert "llama3.2:latest" in r.stdout
    assert "not found, try pulling it first" in r.stdout


def test_ollama_error_inside_the_stream_fails(recorded_ollama):
    url, handler = recorded_ollama
    handler.fail_stream = True
    r = run_llmctl("smoke", "--api", "ollama", "--url", url, "--model", "llama3.2", "--output", "json",
                   "--timeout", "30")
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["streaming"]["status"] == "fail"
    assert "error was encountered while running the model" in checks["streaming"]["detail"]

"""A stand-in for a running Ollama's native API, played from tests/migrate/recorded/ (Ollama cannot be
installed here; the recordings keep the shapes of Ollama v0.32.15's api/types.go, see recorded/README.md).

Binds 127.0.0.1 on a free port; answers GET /api/version, /api/tags, /api/ps and POST /api/show like
Ollama's handlers (400 "model is required", 404 "model 'X' not found"); counts the requests it got."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).parent / "recorded"


class RecordedOllama:
    def __init__(self, folder: Path = RECORDED):
        self.folder = folder
        self.requests: list[tuple[str, str, dict | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                owner.requests.append(("GET", self.path, None))
                name = {"/api/version": "version.json", "/api/tags": "tags.json", "/api/ps": "ps.json"}.get(self.path)
                if name is None:
                    self._send(404, {"error": "404 page not found"})
                    return
                self._send(200, json.loads((owner.folder / name).read_text(encoding="utf-8")))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    body = None
                owner.requests.append(("POST", self.path, body))
                if self.path != "/api/show":
                    self._send(404, {"error": "404 page not found"})
                    return
                if not isinstance(body, dict) or not (body.get("model") or body.get("name")):
                    self._send(400, {"error": "model is required"})
                    return
                model = body.get("model") or body.get("name")
                path = owner.folder / "show" / (model.replace(":", "_").replace("/", "_") + ".json")
                if ":" not in model:
                    path = owner.folder / "show" / (model + "_latest.json")
                if not path.is_file():
                    self._send(404, {"error": f"model '{model}' not found"})
                    return
                self._send(200, json.loads(path.read_text(encoding="utf-8")))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "RecordedOllama":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

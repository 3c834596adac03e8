"""A stand-in for the Hugging Face Hub and the Ollama registry, on 127.0.0.1, for resolution tests.

Neither service can be reached from the test machines, so this server answers the few requests llmctl
makes, in the shapes the real services use:
- Hub: `GET /api/models/{repo}/revision/{rev}` (fields `_id`, `id`, `sha`, `gated`, `siblings[].rfilename`,
  as huggingface_hub's ModelInfo reads them), `GET /{repo}/resolve/{rev}/{file}` (a 302 to `/cdn/...`
  for weight files, safetensors and GGUF, as the Hub redirects LFS/Xet files to its CDN), and the gated-repo answer: 401 with
  `X-Error-Code: GatedRepo` (the header huggingface_hub's hf_raise_for_status turns into GatedRepoError).
- Ollama registry: `GET /v2/{ns}/{model}/manifests/{tag}` (a Docker manifest v2 with Ollama media
  types) and `GET /v2/{ns}/{model}/blobs/{digest}` (a 307 to `/r2/...` storage, as recorded in
  https://github.com/gpustack/gguf-packer-go README "Ollama Model", 2024-07-25).
Files are served from disk with Range support (206), so tests can serve sparse files of full size.
Every request and every body byte is counted. `mode` = "dead" closes connections unanswered; "stall"
accepts and waits (bounded) without answering, to exercise client time-outs.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Repo:
    sha: str
    files: dict[str, Path | bytes]
    gated: bool | str = False


@dataclass
class OllamaTag:
    manifest: bytes
    blobs: dict[str, Path | bytes]  # digest -> content


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    tags: dict[str, OllamaTag] = field(default_factory=dict)  # "namespace/model:tag"
    requests: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    mode: str = "ok"
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.bytes_sent = 0


class _Handler(BaseHTTPRequestHandler):
    hub: Hub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        hub = self.hub
        with hub.lock:
            hub.requests.append(self.path)
        if hub.mode == "dead":
            self.close_connection = True
            self.connection.close()
            return
        if hub.mode == "stall":
            hub.release.wait(30)  # bounded: the fixture sets it at teardown
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            return self._model_info(m.group(1))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve(m.group(1), m.group(3))
        m = re.fullmatch(r"/cdn/([^/]+/[^/]+)/(.+)", path)
        if m:
            repo = hub.repos.get(m.group(1))
            if repo and m.group(2) in repo.files:
                return self._content(repo.files[m.group(2)])
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", path)
        if m:
            tag = hub.tags.get(f"{m.group(1)}/{m.group(2)}:{m.group(3)}")
            if tag is None:
                return self._json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
            return self._content(tag.manifest, ctype="application/vnd.docker.distribution.manifest.v2+json")
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/blobs/(sha256:[0-9a-f]+)", path)
        if m:
            self.send_response(307)
            self.send_header("Location", f"/r2/{m.group(3)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = re.fullmatch(r"/r2/(sha256:[0-9a-f]+)", path)
        if m:
            for tag in hub.tags.values():
                if m.group(1) in tag.blobs:
                    return self._content(tag.blobs[m.group(1)])
        return self._json(404, {"error": "not found"})

    def _model_info(self, repo_id: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self.send_response(401)
            body = json.dumps({"error": "Repository not found"}).encode()
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._write(body)
            return
        self._json(200, {"_id": "0" * 24, "id": repo_id, "sha": repo.sha, "gated": repo.gated,
                         "siblings": [{"rfilename": name} for name in sorted(repo.files)]})

    def _resolve(self, repo_id: str, name: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or name not in repo.files:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if repo else "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if repo.gated and not self.headers.get("Authorization"):
            body = json.dumps({"error": f"Access to model {repo_id} is restricted. You must have access to it "
                                        "and be authenticated to access it. Please log in."}).encode()
            self.send_response(401)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", f"Access to model {repo_id} is restricted and you are not in the "
                                                "authorized list. Visit https://huggingface.co/" + repo_id + " to ask for access.")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._write(body)
            return
        if name.endswith((".safetensors", ".gguf")):
            self.send_response(302)
            self.send_header("Location", f"/cdn/{repo_id}/{name}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._content(repo.files[name])

    def _content(self, src: Path | bytes, ctype: str = "application/octet-stream") -> None:
        size = src.stat().st_size if isinstance(src, Path) else len(src)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        status = 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                status = 206
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
        length = max(end - start + 1, 0)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if isinstance(src, Path):
            with src.open("rb") as fh:
                fh.seek(start)
                remaining = length
                while remaining > 0:
                    chunk = fh.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    if not self._write(chunk):
                        return
                    remaining -= len(chunk)
        else:
            self._write(src[start:end + 1])

    def _json(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write(body)

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        with self.hub.lock:
            self.hub.bytes_sent += len(data)
        return True


class HubServer:
    def __init__(self, hub: Hub):
        handler = type("Handler", (_Handler,), {"hub": hub})
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="model-hub", daemon=True)

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.hub.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

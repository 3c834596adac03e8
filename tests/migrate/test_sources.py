"""Every kind of `--from`: an llmctl spec planned for Ollama, a compose file and a Kubernetes manifest
running ollama/ollama (their OLLAMA_* settings, read with file:line), the local Ollama store (manifests
and GGUF headers written here the way `ollama pull` leaves them; Ollama itself cannot run here), and
bad input of every kind: exit 2 with the field or file named, never a traceback or a hang."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import time
from pathlib import Path

import pytest
from support.cli import run_llmctl

sys.path.insert(0, str(Path(__file__).parent))
from recorded_ollama import RecordedOllama  # noqa: E402

from llmctl.spec import load_spec  # noqa: E402


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on it now
    return port


def items_of(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "decisions.json").read_text())
    return {i["item"]: i for i in doc["models"][0]["items"]}


def test_spec_source(tmp_path):
    spec = tmp_path / "llmctl.yaml"
    spec.write_text(f"""name: helpdesk
model: llama3.2:1b
workload:
  concurrency: 4
  context_length: 8192
hardware:
  - gpu: L4
target: compose
endpoint:
  port: {closed_port()}
overrides:
  backend: ollama
""")
    out = tmp_path / "m"
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(spec), "--out", str(out))
    assert r.code == 0, r.output
    inv = json.loads((out / "inventory.json").read_text())
    # the tag the source's plan pulls (on an L4 the planner picks the 16-bit one)
    assert inv["source"]["kind"] == "spec" and inv["models"][0]["name"].startswith("llama3.2:1b")
    assert inv["server"]["env"]["OLLAMA_NUM_PARALLEL"] == "4"  # as the Ollama engine renders the source spec
    new = load_spec(out / "vllm.yaml")
    assert new.name == "helpdesk-vllm" and new.hardware[0].gpu == "L4"  # the source spec's hardware
    assert new.workload.concurrency == 4 and new.overrides.max_num_seqs == 4
    assert items_of(out)["OLLAMA_NUM_PARALLEL"]["status"] == "carried"


def test_spec_planned_for_vllm_is_refused(tmp_path):
    spec = tmp_path / "llmctl.yaml"
    spec.write_text("name: x\nmodel: llama3.2:1b\nhardware:\n  - gpu: L4\noverrides:\n  backend: vllm\n")
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(spec), "--out", str(tmp_path / "m"))
    assert r.code == 2 and "not Ollama" in r.stderr, r.output


COMPOSE = """services:
  web:
    image: nginx:1.27
  ollama:
    image: ollama/ollama:0.32.15
    environment:
      OLLAMA_NUM_PARALLEL: "4"
      OLLAMA_KV_CACHE_TYPE: {kv}
      OLLAMA_MAX_QUEUE: "64"
      OLLAMA_KEEP_ALIVE: "-1"
      OLLAMA_FLASH_ATTENTION: "1"
    ports:
      - "127.0.0.1:{port}:11434"
    healthcheck:
      test: ["CMD", "ollama", "run", "llama3.2:1b", "hi"]
"""


def test_compose_source_without_a_server(tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE.format(kv="q8_0", port=closed_port()))
    out = tmp_path / "m"
    start = time.monotonic()
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--hardware", "A100-80GB", "--out", str(out))
    assert r.code == 0, r.output
    assert time.monotonic() - start < 60
    inv = json.loads((out / "inventory.json").read_text())
    assert inv["source"]["kind"] == "compose" and "service ollama" in inv["source"]["where"]
    assert inv["server"]["env"]["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert inv["server"]["env_where"]["OLLAMA_KV_CACHE_TYPE"] == f"{f}:8"
    assert [m["name"] for m in inv["models"]] == ["llama3.2:1b"]  # from the healthcheck command
    items = items_of(out)
    assert items["OLLAMA_KV_CACHE_TYPE"]["status"] == "approximated" and items["OLLAMA_KV_CACHE_TYPE"]["vllm"] == {"kv_cache_dtype": "fp8"}
    assert items["OLLAMA_MAX_QUEUE"]["vllm"] == {"max_num_queued_reqs": 64}
    assert items["OLLAMA_FLASH_ATTENTION"]["status"] == "dropped" and "attention backend" in items["OLLAMA_FLASH_ATTENTION"]["reason"]
    assert items["OLLAMA_KEEP_ALIVE"]["ollama"] == "-1"
    new = load_spec(out / "vllm.yaml")
    assert new.overrides.kv_cache_dtype == "fp8" and new.overrides.max_num_seqs == 4
    assert new.serving.max_queued_requests == 64 and new.target == "compose"


def test_compose_source_reads_the_live_server_given_by_url(tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE.format(kv="f16", port=closed_port()))
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--url", srv.url, "--hardware", "L4",
                       "--out", str(tmp_path / "m"))
    assert r.code == 0, r.output
    inv = json.loads((tmp_path / "m" / "inventory.json").read_text())
    assert inv["server"]["version"] == "0.32.15" and len(inv["models"]) == 3
    assert inv["server"]["env"]["OLLAMA_NUM_PARALLEL"] == "4"


def test_bad_kv_cache_type_names_the_line(tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE.format(kv="q3_k", port=closed_port()))
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--hardware", "L4", "--out", str(tmp_path / "m"))
    assert r.code == 2 and f"{f}:8" in r.stderr and "OLLAMA_KV_CACHE_TYPE" in r.stderr, r.output


K8S = """apiVersion: v1
kind: Service
metadata: {name: ollama}
spec:
  ports: [{port: 11434}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ollama
spec:
  template:
    spec:
      containers:
        - name: ollama
          image: ollama/ollama:0.32.15
          env:
            - name: OLLAMA_HOST
              value: "0.0.0.0:11434"
            - name: OLLAMA_CONTEXT_LENGTH
              value: "16384"
            - name: OLLAMA_NUM_PARALLEL
              value: "2"
          startupProbe:
            exec:
              command: ["/bin/sh", "-c", "/bin/ollama pull qwen2.5:7b && /bin/ollama run qwen2.5:7b hi"]
"""


def test_kubernetes_source(tmp_path):
    f = tmp_path / "ollama.yaml"
    f.write_text(K8S)
    out = tmp_path / "m"
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--hardware", "L4", "--out", str(out))
    assert r.code == 0, r.output
    inv = json.loads((out / "inventory.json").read_text())
    assert inv["source"]["kind"] == "kubernetes" and inv["models"][0]["name"] == "qwen2.5:7b"
    assert inv["server"]["env"]["OLLAMA_CONTEXT_LENGTH"] == "16384"
    assert inv["server"]["env_where"]["OLLAMA_CONTEXT_LENGTH"] == f"{f}:20"
    new = load_spec(out / "vllm.yaml")
    assert new.target == "kubernetes" and new.overrides.max_model_len == 16384 and new.model == "Qwen/Qwen2.5-7B-Instruct"
    assert items_of(out)["OLLAMA_CONTEXT_LENGTH"]["status"] == "carried"
    assert (out / "deploy").is_dir() and any(p.suffix == ".yaml" for p in (out / "deploy").iterdir())


def _blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest


def _gguf(path: Path, source_url: str) -> None:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_context_length(4096)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_file_type(7)  # Q8_0 as llama.cpp numbers it (the tensors here stay f32; only the key is read)
    w.add_string("general.source.url", source_url)
    w.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_store_source_maps_from_gguf_provenance(tmp_path):
    root = tmp_path / "models"
    model = tmp_path / "m.gguf"
    _gguf(model, "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct")
    data = model.read_bytes()
    params = json.dumps({"temperature": 0.3, "num_ctx": 4096, "stop": ["<|eot_id|>"]}).encode()
    system = b"Be brief."
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": _blob(root, data), "size": len(data)},
              {"mediaType": "application/vnd.ollama.image.params", "digest": _blob(root, params), "size": len(params)},
              {"mediaType": "application/vnd.ollama.image.system", "digest": _blob(root, system), "size": len(system)}]
    config = b'{"model_format":"gguf","model_family":"llama","file_type":"Q8_0"}'
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": _blob(root, config), "size": len(config)}, "layers": layers}
    path = root / "manifests" / "registry.ollama.ai" / "library" / "brief" / "latest"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))
    out = tmp_path / "m"
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(root), "--hardware", "L4", "--out", str(out))
    assert r.code == 0, r.output
    inv = json.loads((out / "inventory.json").read_text())
    m = inv["models"][0]
    assert inv["source"]["kind"] == "store" and m["name"] == "brief:latest"
    assert m["parameters"] == {"temperature": 0.3, "num_ctx": 4096, "stop": ["<|eot_id|>"]}
    assert m["system"] == "Be brief." and m["details"]["quantization_level"] == "Q8_0"
    doc = json.loads((out / "decisions.json").read_text())
    assert doc["models"][0]["confidence"] == "exact" and doc["models"][0]["hf_repo"] == "meta-llama/Llama-3.2-1B-Instruct"
    items = items_of(out)
    assert items["SYSTEM"]["status"] == "carried" and items["PARAMETER temperature"]["status"] == "carried"


@pytest.mark.parametrize("args, expect", [
    (["--from", "/no/such/file.yaml"], "does not exist"),
    (["--from", "http://127.0.0.1:1/x/y"], "not a server address"),
    (["--from", "URL", "--map", "llama3.2"], "TAG=ORG/REPO"),
    (["--from", "URL", "--map", "nosuch:1b=org/repo"], "inventory has no tag"),
    (["--from", "URL", "--hardware", "Z9000-1GB"], "--hardware"),
    (["--from", "URL", "--model", "ghost:7b"], "--model ghost:7b"),
    (["--from", "TEXT"], "not a spec, compose file or Kubernetes manifest"),
    (["--from", "NOOLLAMA"], "no service runs the ollama/ollama image"),
])
def test_bad_input_exits_2(tmp_path, args, expect):
    text = tmp_path / "notes.yaml"
    text.write_text("hello: world\n")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n")
    with RecordedOllama() as srv:
        args = [{"URL": srv.url, "TEXT": str(text), "NOOLLAMA": str(compose)}.get(a, a) for a in args]
        r = run_llmctl("migrate", "ollama-to-vllm", *args, "--out", str(tmp_path / "o"))
    assert r.code == 2, r.output
    assert expect in r.stderr and "Traceback" not in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_unreachable_url_is_bounded(tmp_path):
    start = time.monotonic()
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", f"http://127.0.0.1:{closed_port()}", "--out", str(tmp_path / "o"))
    assert r.code == 2 and "cannot read the Ollama server" in r.stderr, r.output
    assert time.monotonic() - start < 30


def test_a_server_that_is_not_ollama(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", f"http://127.0.0.1:{srv.server_address[1]}",
                       "--out", str(tmp_path / "o"))
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.code == 2 and "not a JSON object" in r.stderr, r.output


def test_store_without_a_store_is_bad_input(tmp_path):
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", "store", "--out", str(tmp_path / "o"),
                   env={"OLLAMA_MODELS": str(tmp_path / "none"), "HOME": str(tmp_path)})
    assert r.code == 2 and "no local Ollama store" in r.stderr, r.output


def test_allow_gguf_describes_the_plugin_and_help_lists_the_commands(tmp_path):
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--allow-gguf",
                       "--out", str(tmp_path / "o"), "-o", "json")
    assert r.code == 0, r.output
    items = {i["item"]: i for i in json.loads(r.stdout)["models"][0]["items"]}
    gguf = items["GGUF weights"]
    assert gguf["status"] == "approximated" and "experimental" in gguf["reason"] and "vllm-gguf-plugin" in gguf["reason"]
    assert "not rendered" in gguf["where"]
    h = run_llmctl("migrate", "--help")
    assert h.code == 0 and "ollama-to-vllm" in h.stdout and "vllm-to-ollama" in h.stdout
    assert "migrate" in run_llmctl("--help").stdout


def test_a_silent_or_trickling_server_is_bounded(tmp_path):
    """A server that accepts and never answers, and one that sends a byte a second forever: each
    request has a whole-answer limit (LLMCTL_NET_TIMEOUT, short here), so the command ends with exit 2."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(60):  # bounded: at most a minute, ended early by the test
                if stop.wait(0.5):
                    return
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        for port in (silent.getsockname()[1], srv.server_address[1]):
            start = time.monotonic()
            r = run_llmctl("migrate", "ollama-to-vllm", "--from", f"http://127.0.0.1:{port}", "--out",
                           str(tmp_path / "o"), env={"LLMCTL_NET_TIMEOUT": "2"}, timeout=60)
            assert r.code == 2 and "did not answer within 2 s" in r.stderr, r.output
            assert time.monotonic() - start < 20
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()
        silent.close()


def test_a_url_given_must_answer(tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE.format(kv="f16", port=closed_port()))
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--url", f"http://127.0.0.1:{closed_port()}",
                   "--out", str(tmp_path / "m"))
    assert r.code == 2 and "cannot read the Ollama server" in r.stderr, r.output
    r = run_llmctl("migrate", "ollama-to-vllm", "--from", str(f), "--url", "ftp://x", "--out", str(tmp_path / "m"))
    assert r.code == 2 and "--url" in r.stderr, r.output

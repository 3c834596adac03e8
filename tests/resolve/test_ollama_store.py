"""A tag this machine has pulled is read from Ollama's own folder, without the network.

Ollama cannot run here, so the test writes the folder Ollama would leave: the manifest (the shape of a
real one, `cat ~/.ollama/models/manifests/registry.ollama.ai/library/gemma/2b` as recorded in
https://github.com/shayansm2/llm-zoomcamp-playground/blob/main/week2/hw.md) and content-addressed blobs,
with a tiny real GGUF as the model layer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.resolve import resolve_model, set_offline
from support.cli import run_llmctl
from support.ggufs import write_gguf


def blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest


def pull(root: Path, name: str, tag: str, model: bytes, *, namespace: str = "library",
         params: dict | None = None, template: str = "{{ .Prompt }}", system: str | None = None) -> dict:
    """Write what `ollama pull name:tag` leaves behind; return the manifest."""
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": blob(root, model), "size": len(model)}]
    license_text = b"Example licence text."
    layers.append({"mediaType": "application/vnd.ollama.image.license", "digest": blob(root, license_text),
                   "size": len(license_text)})
    tpl = template.encode()
    layers.append({"mediaType": "application/vnd.ollama.image.template", "digest": blob(root, tpl), "size": len(tpl)})
    if system:
        layers.append({"mediaType": "application/vnd.ollama.image.system", "digest": blob(root, system.encode()),
                       "size": len(system.encode())})
    prm = json.dumps(params or {"stop": ["<end_of_turn>"]}).encode()
    layers.append({"mediaType": "application/vnd.ollama.image.params", "digest": blob(root, prm), "size": len(prm)})
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                         "model_type": "8.0B", "file_type": "F32", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [x["digest"] for x in layers]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": blob(root, config), "size": len(config)},
                "layers": layers}
    path = root / "manifests" / "registry.ollama.ai" / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, separators=(",", ":")))
    return manifest


@pytest.fixture
def store(isolated: Path) -> Path:
    return isolated / "ollama-models"  # OLLAMA_MODELS points here (conftest)


def test_pulled_tag_resolves_offline_with_exact_bytes(store: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    total = write_gguf(gguf, vocab=1000)
    pull(store, "tiny-chat", "1b", gguf.read_bytes(), params={"num_ctx": 8192, "stop": ["</s>"]},
         system="You are terse.")
    set_offline(True)
    m = resolve_model(Catalog.load(), "tiny-chat:1b")
    assert m.kind == "ollama" and m.source == "ollama-store"
    assert m.weight_bytes == total and m.gguf_quantization is not None
    assert m.ollama_tag == "tiny-chat:1b" and m.path is None  # vLLM must never mount the blob
    assert (m.arch.num_hidden_layers, m.arch.hidden_size, m.arch.vocab_size) == (2, 64, 1000)
    man = m.ollama_manifest
    assert man.params == {"num_ctx": 8192, "stop": ["</s>"]}
    assert man.template == "{{ .Prompt }}" and man.system == "You are terse."
    assert man.model.size == len(gguf.read_bytes()) and man.digest.startswith("sha256:")


def test_second_resolution_reads_no_blob(store: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    total = write_gguf(gguf)
    manifest = pull(store, "tiny-chat", "latest", gguf.read_bytes())
    first = resolve_model(Catalog.load(), "tiny-chat")
    blob_path = store / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")
    blob_path.write_bytes(b"")  # a second read of the blob would now fail
    again = resolve_model(Catalog.load(), "tiny-chat:latest")
    assert again.weight_bytes == first.weight_bytes == total


def test_namespaced_tag_and_lowercased_path(store: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    write_gguf(gguf)
    pull(store, "mymodel", "q4_k_m", gguf.read_bytes(), namespace="someone")
    m = resolve_model(Catalog.load(), "someone/MyModel:Q4_K_M")
    assert m.source == "ollama-store" and m.ollama_tag == "someone/MyModel:Q4_K_M"


def test_corrupt_blob_is_a_clear_error(store: Path) -> None:
    pull(store, "broken", "1b", b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(InputError) as exc:
        resolve_model(Catalog.load(), "broken:1b", where="model")
    assert exc.value.exit_code == 2 and "ollama pull" in str(exc.value)


def test_plan_of_a_pulled_tag_through_the_cli(store: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    write_gguf(gguf)
    pull(store, "tiny-chat", "1b", gguf.read_bytes())
    spec = tmp_path / "llmctl.yaml"
    spec.write_text("name: t\nmodel: tiny-chat:1b\nworkload:\n  concurrency: 1\n  prompt_tokens: 64\n"
                    "  output_tokens: 16\n  context_length: 1024\nhardware:\n  - gpu: RTX 4090\n    gpus: 1\n")
    r = run_llmctl("plan", str(spec), "--offline", "-o", "json")
    assert r.code == 0, json.loads(r.stdout)["problems"]
    plan = json.loads(r.stdout)
    assert plan["backend"] in ("ollama", "llama.cpp") and plan["model"]["ollama_tag"] in ("tiny-chat:1b", None)

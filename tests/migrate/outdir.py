"""Minimal out-folder inputs of `llmctl migrate` (the contract's inventory.json and front.json), written
by hand for the apply tests. Shapes follow the dry run's schemas; the `show` answer replayed by the
front follows Ollama v0.32.15 api/types.go ShowResponse (details, parameters, template, model_info,
capabilities)."""

from __future__ import annotations

import json
from pathlib import Path


def model_entry(tag: str, *, quantization_level: str = "F32", size_vram: int = 0) -> dict:
    details = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
               "parameter_size": "0.1M", "quantization_level": quantization_level}
    return {
        "name": tag, "digest": "sha256:" + "0" * 64, "size": 1_000_000, "details": details, "parent_model": "",
        "modelfile": f"FROM {tag}\nPARAMETER temperature 0\n", "parameters": {"temperature": 0}, "template": "",
        "system": None, "messages": [], "model_info": {"general.architecture": "llama", "llama.context_length": 2048},
        "capabilities": ["completion"], "adapters": [],
        "loaded": {"context_length": 2048, "size_vram": size_vram} if size_vram else None,
    }


def write_inventory(out: Path, old_url: str | None, models: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    inv = {"schema": "llmctl.migrate.inventory/v1",
           "source": {"kind": "url" if old_url else "spec", "where": old_url or "ollama.yaml", "url": old_url},
           "server": {"version": "0.32.15", "env": {"OLLAMA_NUM_PARALLEL": "4"}},
           "models": models, "native_api_seen": True}
    path = out / "inventory.json"
    path.write_text(json.dumps(inv, indent=2) + "\n")
    return path


def write_front(out: Path, tag: str, served_name: str, backend: str = "http://127.0.0.1:8000") -> Path:
    entry = model_entry(tag)
    show = {"modelfile": entry["modelfile"], "parameters": "temperature 0", "template": "", "details": entry["details"],
            "model_info": entry["model_info"], "capabilities": entry["capabilities"]}
    cfg = {"schema": "llmctl.migrate.front/v1", "backend": backend, "api_key_env": None, "version": "0.32.15",
           "models": [{"name": tag, "aliases": [], "served_name": served_name, "system": None, "messages": [],
                       "options": {}, "template": None, "show": show, "embedding": False, "context_length": 2048}]}
    path = out / "front.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path

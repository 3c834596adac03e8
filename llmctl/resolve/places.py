"""Where models may already be on this machine: a path the user wrote, the Hugging Face cache, Ollama's
model folder. Only file-system look-ups (no parsing), so a plan that finds nothing local stays cheap."""

from __future__ import annotations

import os
from pathlib import Path

from llmctl.errors import InputError


def local_path(ref: str, base_dir: Path | None) -> Path | None:
    """The file or folder `ref` names, or None when it names none (then it is a tag or an id)."""
    explicit = ref.startswith(("/", "./", "../", "~")) or ref.lower().endswith(".gguf")
    candidates = [Path(ref).expanduser()]
    if base_dir is not None and not Path(ref).is_absolute():
        candidates.insert(0, base_dir / ref)
    for c in candidates:
        if c.exists():
            return c
    if explicit:
        raise InputError(f"model path {ref!r} does not exist",
                         hint="check the path; relative paths are read from the spec's folder")
    return None


def hf_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface" / "hub")
    return dirs


def hf_cache_snapshot(hf_id: str) -> Path | None:
    """The newest snapshot of `hf_id` in the local Hugging Face cache that holds config.json."""
    name = "models--" + hf_id.replace("/", "--")
    for root in hf_cache_dirs():
        entry = root / name
        if not entry.is_dir():
            continue
        ref = entry / "refs" / "main"
        if ref.is_file():
            snap = entry / "snapshots" / ref.read_text().strip()
            if (snap / "config.json").is_file():
                return snap
        snaps = sorted((entry / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if snaps:
            return snaps[0].parent
    return None


def ollama_models_dirs() -> list[Path]:
    """`$OLLAMA_MODELS`, else `~/.ollama/models` and `/usr/share/ollama/.ollama/models` (the Linux service's home),
    as Ollama's FAQ "Where are models stored?" gives them."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()]
    return [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def ollama_store_present() -> bool:
    return any((d / "manifests").is_dir() for d in ollama_models_dirs())

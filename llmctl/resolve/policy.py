"""When llmctl may use the network to resolve a model, how long it waits, and where it caches answers.

Every default of model resolution lives here:
- the network is allowed unless `--offline`, `LLMCTL_OFFLINE=1` or `HF_HUB_OFFLINE=1` (the variable
  huggingface_hub itself honours) says otherwise;
- a request gives up after CONNECT_TIMEOUT_S to connect and READ_TIMEOUT_S between bytes, and is not
  retried: a plan must fail fast, not hang;
- answers are cached as JSON under `$LLMCTL_CACHE_DIR/models` (default `$XDG_CACHE_HOME/llmctl/models`,
  i.e. `~/.cache/llmctl/models`), keyed by repository and revision or by digest.
"""

from __future__ import annotations

import os
from pathlib import Path

CONNECT_TIMEOUT_S = 5.0  # a reachable registry answers a TCP connect in well under a second
READ_TIMEOUT_S = 15.0  # the slowest step is a CDN redirect for a large blob's first bytes
MAX_REMOTE_HEADER_BYTES = 1 << 20  # a remote GGUF/safetensors header larger than this is refused (1 MiB)
# a whole GGUF header (tokenizer arrays included, needed to reach the tensor list) larger than this is
# refused: a 262k-token vocabulary with scores and types (Gemma 3) is under 8 MiB
MAX_REMOTE_GGUF_HEADER_BYTES = 32 << 20
HUB_ENDPOINT = "https://huggingface.co"  # huggingface_hub's default; HF_ENDPOINT replaces it
OLLAMA_REGISTRY = "https://registry.ollama.ai"  # Ollama's default registry; LLMCTL_OLLAMA_REGISTRY replaces it

_TRUE = {"1", "true", "yes", "on"}
_forced_offline = False


def set_offline(value: bool = True) -> None:
    """`llmctl plan --offline`: forbid the network for the rest of this process."""
    global _forced_offline
    _forced_offline = value


def network_allowed() -> bool:
    if _forced_offline:
        return False
    for name in ("LLMCTL_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return False
    return True


def offline_reason() -> str:
    if _forced_offline:
        return "--offline"
    for name in ("LLMCTL_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"{name}=1"
    return ""


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds; LLMCTL_NET_TIMEOUT=<s> sets both (tests use a short one)."""
    raw = os.environ.get("LLMCTL_NET_TIMEOUT")
    if raw:
        try:
            t = float(raw)
            if t > 0:
                return t, t
        except ValueError:
            pass
    return CONNECT_TIMEOUT_S, READ_TIMEOUT_S


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


def ollama_registry() -> str:
    return (os.environ.get("LLMCTL_OLLAMA_REGISTRY") or OLLAMA_REGISTRY).rstrip("/")


def cache_root() -> Path:
    base = os.environ.get("LLMCTL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "llmctl")
    return Path(base) / "models"

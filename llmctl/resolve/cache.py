"""A small JSON cache on disk for what resolution learned (Hub configs and header sizes, Ollama manifests,
parsed GGUF headers). Entries never expire: a key names an immutable thing (a digest, a commit) or a
reference as the user wrote it (repo@revision, name:tag), which a user refreshes by deleting the entry
or the whole folder. An unwritable cache only costs the next plan a request.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from llmctl.resolve.policy import cache_root


def _path(kind: str, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[:120]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_root() / kind / f"{safe}-{digest}.json"


def get(kind: str, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_path(kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def put(kind: str, key: str, value: dict[str, Any]) -> Path | None:
    from llmctl.fileio import write_atomic

    path = _path(kind, key)
    try:
        write_atomic(path, json.dumps(value, sort_keys=True))
    except (OSError, TypeError, ValueError):
        return None
    return path


def location(kind: str, key: str) -> Path:
    return _path(kind, key)

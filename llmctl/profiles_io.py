"""Reading profiles/*.yaml quickly.

The pure-Python YAML parser needs ~0.3 s for the catalog, more than the whole of `llmctl plan` may
take. Parsed profiles are therefore cached as JSON under the user's cache folder, keyed by a hash
of the file's bytes: an edited profile is re-parsed on its next use, and a cache that cannot be
written (read-only home, CI sandbox) only costs the parse.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmctl.paths import profiles_dir


def cache_dir() -> Path:
    base = os.environ.get("LLMCTL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "llmctl")
    return Path(base) / "profiles"


def load_yaml_cached(path: str | Path) -> Any:
    path = Path(path)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:24]
    cached = cache_dir() / f"{path.stem}-{digest}.json"
    try:
        return json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(raw.decode("utf-8"))
    try:
        from llmctl.fileio import write_atomic

        write_atomic(cached, json.dumps(data))
    except (OSError, TypeError, ValueError):
        pass  # unwritable cache or a value JSON cannot hold: parse again next time
    return data


@lru_cache(maxsize=32)
def profile(name: str) -> Any:
    """A file of profiles/ by name, e.g. profile("gpus.yaml")."""
    return load_yaml_cached(profiles_dir() / name)

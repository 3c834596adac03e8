"""Writing files safely, and YAML text for people."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, text: str, *, mode: int | None = None) -> None:
    """Write `text` to `path` all at once: a temporary file in the same folder, then rename.

    A reader never sees half a file, and a crash leaves the old file intact. `mode` (e.g. 0o600 for
    secrets) is applied before the rename, so the content is never readable with wider permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def to_yaml(data: Any) -> str:
    """Block-style YAML with keys in the order given (for plans and inventory output)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()

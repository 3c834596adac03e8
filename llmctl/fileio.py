"""Reading input files with limits, writing files safely, and YAML text for people."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Inputs are small: the largest shipped spec is about 2 KB and a saved plan about 60 KB. The limits
# keep a wrong file (a model, a log, /dev/zero) from being read into memory and parsed for minutes.
MAX_SPEC_BYTES = 1024 * 1024
MAX_PLAN_BYTES = 16 * 1024 * 1024
STDIN = "-"


def read_text_input(path: str | Path, *, what: str, max_bytes: int, hint: str | None = None) -> str:
    """The text of `path` (or of standard input for "-"): at most `max_bytes`, UTF-8, no NUL bytes.

    Every failure is an InputError (exit 2) naming the file and, where there is one, the line.
    """
    import sys

    from llmctl.errors import InputError

    name = "<stdin>" if str(path) == STDIN else str(path)
    too_big = InputError(f"{what} file is larger than {max_bytes // 1024:,} KiB", where=name,
                         hint=f"is {name} really a {what}?")
    try:
        if str(path) == STDIN:
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            p = Path(path)
            if p.is_dir():
                raise InputError(f"{what} file {name} is a folder")
            with open(p, "rb") as fh:
                if os.fstat(fh.fileno()).st_size > max_bytes:
                    raise too_big
                data = fh.read(max_bytes + 1)  # also bounds pipes and devices, whose size is unknown
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {name}", hint=hint) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} file {name}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise too_big
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                         where=f"{name}:{line}", hint=f"save the {what} as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        raise InputError(f"contains a NUL byte (binary data, not a {what})", where=f"{name}:{text.count(chr(10), 0, nul) + 1}")
    return text.removeprefix("\ufeff")  # a byte order mark some editors write


def write_atomic(path: str | Path, text: str | bytes, *, mode: int | None = None) -> None:
    """Write `text` (UTF-8; or bytes as they are) to `path` all at once: a temporary file in the same
    folder, then rename.

    A reader never sees half a file, and a crash leaves the old file intact. `mode` (e.g. 0o600 for
    secrets) is applied before the rename, so the content is never readable with wider permissions.
    Without `mode` the file keeps the mode it had, or a new one gets what open() would give it
    (0666 less the umask) — not mkstemp's 0600: charts and manifests are not secrets.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    import tempfile  # here, not at the top: reading a spec (every command) needs none of it

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8", newline="")) as fh:
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


def _umask() -> int:
    try:  # Linux shows it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def to_yaml(data: Any) -> str:
    """Block-style YAML with keys in the order given (for plans and inventory output)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()

"""What `llmctl up` applied, kept beside the spec in `.llmctl/<slug>/state.json` (written atomically).

`status` and `down` read it from a later command; `up` compares its hash with the newly rendered
deployment to decide between "nothing changed", a first start and a blue/green update.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import InputError

SCHEMA = "llmctl.state/v1"
STATE_DIR = ".llmctl"


def state_root(spec_path: str | Path) -> Path:
    """`.llmctl/` in the folder that holds the spec."""
    return Path(spec_path).resolve().parent / STATE_DIR


def deployment_dir(spec_path: str | Path, slug: str) -> Path:
    return state_root(spec_path) / slug


def digest(files: dict[str, str], extra: dict[str, Any] | None = None) -> str:
    """sha256 over file names and contents (and `extra`, e.g. the env file's own hash), order-free."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    if extra:
        h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass
class State:
    name: str
    slug: str
    target: str
    spec: str  # the spec file, absolute
    hash: str  # digest of what is running (rendered files + runtime options)
    active: dict[str, Any]  # the target's record of the running instance (color, port, project, pid, …)
    url: str
    model: str  # served model name
    engine: str
    applied_at: float = field(default_factory=time.time)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of what was applied
    options: dict[str, Any] = field(default_factory=dict)  # up's runtime options (network, user, context…)
    smoke: str = ""  # digest of what the last passing smoke test checked (SLA, concurrency); "" = not tested
    schema: str = SCHEMA
    # behind the traffic layer: the running ServiceSpec and the one before it (for `llmctl rollback`)
    service: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)  # the earlier colour's record (stopped)
    previous_service: dict[str, Any] = field(default_factory=dict)
    previous_hash: str = ""
    previous_files: dict[str, str] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        from llmctl.fileio import write_atomic

        path = directory / "state.json"
        write_atomic(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


def load_state(directory: Path) -> State | None:
    path = directory / "state.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
        return State(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"unreadable deployment state: {exc}", where=str(path),
                         hint="remove the file (and what it described) by hand, then run `llmctl up` again") from None


def clear_state(directory: Path) -> None:
    (directory / "state.json").unlink(missing_ok=True)


def renamed_deployments(spec_path: str | Path, slug: str) -> list[tuple[Path, State]]:
    """Deployments of the same spec file under another name (the spec's `name:` changed since `up`):
    what `status`, `down` and `up` must still see, or the old one would be orphaned, holding its port."""
    root = state_root(spec_path)
    spec = str(Path(spec_path).resolve())
    found = []
    for path in sorted(root.glob("*/state.json")) if root.is_dir() else []:
        if path.parent.name == slug:
            continue
        try:
            state = load_state(path.parent)
        except InputError:
            continue
        if state is not None and state.spec == spec:
            found.append((path.parent, state))
    return found

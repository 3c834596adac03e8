"""`llmctl ps`: the llmctl deployments on this host — from the `.llmctl/<slug>/state.json` records
beside specs under the given folders, and from Docker containers carrying llmctl's labels (which
also finds compose deployments whose spec folder is elsewhere or gone)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmctl.deploy.state import STATE_DIR, load_state
from llmctl.errors import LlmctlError

MAX_DIRS = 5000  # folders visited looking for .llmctl/ (a home directory is not searched to the bottom)
MAX_DEPTH = 4  # below each root
SKIP = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".cache", "site-packages"}


@dataclass
class Row:
    name: str
    target: str
    engine: str
    model: str
    url: str
    state: str  # running | not running | unknown (…)
    spec: str  # the spec file, or "-" when only Docker labels know of it
    color: str = "-"
    slug: str = ""


def state_files(roots: list[Path]) -> list[Path]:
    """`.llmctl/*/state.json` under `roots`, breadth first, bounded by MAX_DEPTH and MAX_DIRS."""
    found: list[Path] = []
    seen = 0
    queue = [(r.resolve(), 0) for r in roots]
    while queue and seen < MAX_DIRS:
        folder, depth = queue.pop(0)
        seen += 1
        state_root = folder / STATE_DIR
        if state_root.is_dir():
            found.extend(sorted(state_root.glob("*/state.json")))
        if depth >= MAX_DEPTH:
            continue
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            continue
        queue.extend((c, depth + 1) for c in children if c.name not in SKIP and not c.name.startswith("."))
    return found


def from_states(roots: list[Path], *, check: bool = True) -> list[Row]:
    from llmctl.deploy.base import Context
    from llmctl.deploy.rollout import get_driver

    rows = []
    for path in state_files(roots):
        try:
            st = load_state(path.parent)
        except LlmctlError as exc:
            rows.append(Row(path.parent.name, "?", "?", "?", "-", f"unreadable ({str(exc).splitlines()[0][:60]})",
                            str(path)))
            continue
        if st is None:
            continue
        status = "-"
        if check:
            try:
                driver = get_driver(st.target)
                ctx = Context(spec_path=Path(st.spec), slug=st.slug, dir=path.parent, options=dict(st.options))
                status = "running" if driver.running(ctx, st.active) else "not running"
            except LlmctlError as exc:
                status = f"unknown ({str(exc).splitlines()[0][:60]})"
        rows.append(Row(st.name, st.target, st.engine, st.model, st.url, status, st.spec,
                        str(st.active.get("color", "-")), st.slug))
    return rows


def from_docker_labels(known_slugs: set[str]) -> tuple[list[Row], str | None]:
    """Containers labelled by llmctl whose deployment no state file here describes; (rows, why not)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        containers = client.containers.list(all=True, filters={"label": "dev.llmctl.deployment"})
    except Exception as exc:  # noqa: BLE001 - no Docker here is normal
        return [], str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
    rows: dict[str, Row] = {}
    for c in containers:
        slug = c.labels.get("dev.llmctl.deployment", "?")
        if slug in known_slugs:
            continue
        project = c.labels.get("com.docker.compose.project", "")
        row = rows.setdefault(project or c.name, Row(slug, "compose", "?", "?", "-", c.status, "-",
                                                     c.labels.get("dev.llmctl.color", "-"), slug))
        if c.status == "running":
            row.state = "running"
    return list(rows.values()), None


def deployments(roots: list[Path], *, docker: bool = True, check: bool = True) -> tuple[list[Row], list[str]]:
    rows = from_states(roots, check=check)
    notes = []
    if docker and (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        extra, why = from_docker_labels({r.slug for r in rows})
        rows += extra
        if why:
            notes.append(f"Docker not searched: {why}")
    return rows, notes


def as_json(rows: list[Row], notes: list[str]) -> dict[str, Any]:
    return {"schema": "llmctl.ps/v1", "deployments": [asdict(r) for r in rows], "notes": notes}

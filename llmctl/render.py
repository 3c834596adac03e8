"""The render pipeline (Plan → Engine → ServiceSpec → Target → files) and safe writing of its files.

Writing is careful with what the operator has: each file goes to a temporary file in the same folder
and is renamed into place (never half-written); `.llmctl-render.json` records the sha256 of every
file written, so a file changed by hand since the last render is noticed and left alone unless
`--force` is given.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmctl.errors import CheckFailed, InputError
from llmctl.fileio import write_atomic

if TYPE_CHECKING:
    from llmctl.plan import Plan
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec
    from llmctl.targets.base import RenderOptions

MANIFEST = ".llmctl-render.json"
# Environment variables whose values must never reach a rendered file (checked on every render).
SECRET_ENV = ("VLLM_API_KEY", "LLAMA_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OLLAMA_API_KEY")


@dataclass
class Rendered:
    target: str
    service: "ServiceSpec"
    files: dict[str, str]
    notes: list[str] = field(default_factory=list)


def build_service(plan: "Plan", spec: "Spec") -> "ServiceSpec":
    from llmctl.engines import get_engine

    return get_engine(plan.backend).build(plan, spec)


def render_service(service: "ServiceSpec", target: str, options: "RenderOptions | None" = None) -> Rendered:
    from llmctl.targets import RenderOptions, get_target

    options = options or RenderOptions()
    plugin = get_target(target)
    if options.namespace is not None:
        import re

        from llmctl.targets.base import NAMESPACE_RE

        if not plugin.namespaced:
            raise InputError(f"--namespace: {target} files have no namespace", hint="drop -n, or render for a target whose objects live in a namespace")
        if len(options.namespace) > 63 or not re.fullmatch(NAMESPACE_RE, options.namespace):
            raise InputError(f"--namespace: {options.namespace!r} is not a valid namespace name "
                             "(lower-case letters, digits and '-', at most 63, starting and ending alphanumeric)")
    files = plugin.render(service, options)
    leak_check(files, service)
    return Rendered(target=target, service=service, files=files, notes=list(options.notes))


def render_plan(plan: "Plan", spec: "Spec", target: str | None = None, options: "RenderOptions | None" = None) -> Rendered:
    target = target or spec.target
    from llmctl.targets.registry import renderer

    renderer(target)  # a target with nothing to render says so before any planning work
    if not plan.feasible:
        raise CheckFailed("the plan cannot work: " + "; ".join(plan.problems or ["infeasible"]))
    return render_service(build_service(plan, spec), target, options)


def leak_check(files: dict[str, str], service: "ServiceSpec") -> None:
    """Refuse to produce a file that contains the value of a secret from this process's environment."""
    names = set(SECRET_ENV) | {s.env for s in service.secrets} | {s.key for s in service.secrets}
    for name in sorted(names):
        value = os.environ.get(name, "")
        if len(value) < 6:  # too short to tell a secret from an ordinary word
            continue
        for fname, text in files.items():
            if value in text:
                raise CheckFailed(f"refusing to write {fname}: it would contain the value of ${name}")


# --------------------------------------------------------------------------- writing


@dataclass
class Change:
    name: str
    status: str  # new | unchanged | updated | edited (changed by hand since the last render)
    diff: str = ""


def _sha(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    path = out / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data.get("files", {})
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}  # unreadable manifest: treat every differing file as edited by hand


def compare(out: Path, files: dict[str, str]) -> list[Change]:
    manifest = _read_manifest(out)
    changes: list[Change] = []
    for name in sorted(files):
        _check_name(name)
        new = files[name]
        path = out / name
        if path.is_dir():
            raise InputError(f"--out: {path} is a folder, where llmctl writes a file")
        if not path.exists():
            changes.append(Change(name, "new"))
            continue
        old_bytes = path.read_bytes()
        if old_bytes == new.encode("utf-8"):
            changes.append(Change(name, "unchanged"))
            continue
        old = old_bytes.decode("utf-8", errors="replace")
        diff = "".join(difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"{name} (on disk)", f"{name} (rendered)"
        ))
        edited = manifest.get(name) != _sha(old_bytes)
        changes.append(Change(name, "edited" if edited else "updated", diff))
    return changes


def write_files(out: str | Path, files: dict[str, str], *, force: bool = False, dry_run: bool = False) -> list[Change]:
    """Write `files` into `out` atomically; refuse (CheckFailed) if one was edited by hand, unless force."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} exists and is not a folder")
    changes = compare(out, files) if out.exists() else [Change(n, "new") for n in sorted(files) if _check_name(n)]
    edited = [c.name for c in changes if c.status == "edited"]
    if edited and not force:
        raise _refuse(out, edited)
    if dry_run:
        return changes
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out)
    for c in changes:
        if c.status != "unchanged":
            write_atomic(out / c.name, files[c.name], mode=0o644)
        manifest[c.name] = _sha(files[c.name])
    body = json.dumps({"generator": "llmctl render", "files": dict(sorted(manifest.items()))}, indent=2, sort_keys=True)
    write_atomic(out / MANIFEST, body + "\n", mode=0o644)
    return changes


def _refuse(out: Path, edited: list[str]) -> CheckFailed:
    return CheckFailed(
        f"{', '.join(edited)} in {out} changed by hand since llmctl wrote {'it' if len(edited) == 1 else 'them'}; "
        "nothing was written (the diff is above). Re-run with --force to overwrite."
    )


def _check_name(name: str) -> bool:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts or len(p.parts) != 1:
        raise RuntimeError(f"a target produced an unsafe file name: {name!r}")
    return True

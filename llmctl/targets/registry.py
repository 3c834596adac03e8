"""The one list of deployment targets: for each, what renders its files, what applies them and what
doctor checks it needs. Each target is one package, llmctl/targets/<name>/ (render.py, apply.py,
checks.py, templates/); `render`, `up`/`down`/`status` and `doctor` all look targets up here
(nothing else keeps a list)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.deploy.base import Driver
    from llmctl.targets.base import Target


@dataclass(frozen=True)
class TargetEntry:
    name: str
    render: str | None  # "module:Class" of the renderer; None: nothing to render (local processes)
    deploy: str | None  # "module:Class" of the driver behind up/down/status
    checks: str | None = None  # "module:function" of its doctor checks (llmctl/targets/<name>/checks.py)
    on_this_host: bool = True  # the service runs on the machine llmctl runs on (doctor checks its GPUs, disk)
    container: bool = False  # the engine runs in a container whose /dev/shm the rendered files size
    docker_volumes: bool = False  # the model cache is a Docker named volume (under Docker's data root)
    why_no_render: str = ""  # said when `render` is asked for a target with nothing to render


REGISTRY: dict[str, TargetEntry] = {
    "compose": TargetEntry("compose", "llmctl.targets.compose.render:ComposeTarget",
                           "llmctl.targets.compose.apply:ComposeDriver", "llmctl.targets.compose.checks:checks",
                           container=True, docker_volumes=True),
    "systemd": TargetEntry("systemd", "llmctl.targets.systemd.render:SystemdTarget",
                           "llmctl.targets.systemd.apply:SystemdDriver", "llmctl.targets.systemd.checks:checks"),
    "kubernetes": TargetEntry("kubernetes", "llmctl.targets.kubernetes.render:KubernetesTarget",
                              "llmctl.targets.kubernetes.apply:KubernetesDriver", "llmctl.targets.kubernetes.checks:checks",
                              on_this_host=False, container=True),
    "local": TargetEntry("local", None, "llmctl.targets.local.apply:LocalDriver", "llmctl.targets.local.checks:checks",
                         why_no_render="`local` runs the engine directly and has no files to render"),
}


def _load(ref: str):
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)()


def renderable() -> tuple[str, ...]:
    return tuple(n for n, e in REGISTRY.items() if e.render)


def deployable() -> tuple[str, ...]:
    return tuple(n for n, e in REGISTRY.items() if e.deploy)


def entry(name: str) -> TargetEntry:
    """The registry's line for a target; an unknown name is an input error listing the known ones."""
    found = REGISTRY.get(name)
    if found is None:
        raise InputError(f"target: {name!r} is not a target", hint="one of: " + ", ".join(REGISTRY))
    return found


def renderer(name: str) -> "Target":
    found = REGISTRY.get(name)
    if found is None or found.render is None:
        why = found.why_no_render if found is not None and found.why_no_render else f"{name!r} cannot be rendered"
        raise InputError(f"target: {why}", hint="choose --target " + ", ".join(renderable()))
    return _load(found.render)


def driver(name: str) -> "Driver":
    found = REGISTRY.get(name)
    if found is None or found.deploy is None:
        raise InputError(f"target: {name!r} cannot be deployed", hint="one of: " + ", ".join(deployable()))
    return _load(found.deploy)


def target_checks(name: str):
    """The target's doctor checks: f(req, env, kubectl) -> (results, docker_info); None if it has none."""
    found = REGISTRY.get(name)
    if found is None or found.checks is None:
        return None
    module, attr = found.checks.split(":")
    return getattr(importlib.import_module(module), attr)

"""The one list of deployment targets: for each, what renders its files and what applies them.
`render` and `up`/`down`/`status` both look targets up here (nothing else keeps a list)."""

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
    checks: str | None = None  # "module:function" of its doctor checks (llmctl/targets/checks.py)


REGISTRY: dict[str, TargetEntry] = {
    "compose": TargetEntry("compose", "llmctl.targets.compose:ComposeTarget", "llmctl.deploy.compose:ComposeDriver",
                           "llmctl.targets.checks:compose_checks"),
    "systemd": TargetEntry("systemd", "llmctl.targets.systemd:SystemdTarget", "llmctl.deploy.systemd:SystemdDriver",
                           "llmctl.targets.checks:systemd_checks"),
    "kubernetes": TargetEntry("kubernetes", "llmctl.targets.kubernetes:KubernetesTarget",
                              "llmctl.deploy.kubernetes:KubernetesDriver", "llmctl.targets.checks:kubernetes_checks"),
    "local": TargetEntry("local", None, "llmctl.deploy.local:LocalDriver", "llmctl.targets.checks:local_checks"),
}


def _load(ref: str):
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)()


def renderable() -> tuple[str, ...]:
    return tuple(n for n, e in REGISTRY.items() if e.render)


def deployable() -> tuple[str, ...]:
    return tuple(n for n, e in REGISTRY.items() if e.deploy)


def renderer(name: str) -> "Target":
    entry = REGISTRY.get(name)
    if entry is None or entry.render is None:
        raise InputError(f"target: {name!r} cannot be rendered", hint="one of: " + ", ".join(renderable()))
    return _load(entry.render)


def driver(name: str) -> "Driver":
    entry = REGISTRY.get(name)
    if entry is None or entry.deploy is None:
        raise InputError(f"target: {name!r} cannot be deployed", hint="one of: " + ", ".join(deployable()))
    return _load(entry.deploy)


def target_checks(name: str):
    """The target's doctor checks: f(req, env, kubectl) -> (results, docker_info); None if it has none."""
    entry = REGISTRY.get(name)
    if entry is None or entry.checks is None:
        return None
    module, attr = entry.checks.split(":")
    return getattr(importlib.import_module(module), attr)

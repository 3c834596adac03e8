"""Deployment targets: each renders a ServiceSpec as files (compose, systemd, Kubernetes)."""

from __future__ import annotations

from llmctl.errors import InputError
from llmctl.targets.base import RenderOptions, Target

TARGETS = ("compose", "systemd", "kubernetes")


def get_target(name: str) -> Target:
    if name == "compose":
        from llmctl.targets.compose import ComposeTarget

        return ComposeTarget()
    if name == "systemd":
        from llmctl.targets.systemd import SystemdTarget

        return SystemdTarget()
    if name == "kubernetes":
        from llmctl.targets.kubernetes import KubernetesTarget

        return KubernetesTarget()
    raise InputError(f"target: {name!r} cannot be rendered", hint="one of: " + ", ".join(TARGETS))


__all__ = ["TARGETS", "RenderOptions", "Target", "get_target"]

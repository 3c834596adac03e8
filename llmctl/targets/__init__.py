"""Deployment targets: each renders a ServiceSpec as files (compose, systemd, Kubernetes).
The list of targets lives in llmctl/targets/registry.py."""

from __future__ import annotations

from llmctl.targets.base import RenderOptions, Target
from llmctl.targets.registry import renderable

TARGETS = renderable()


def get_target(name: str) -> Target:
    from llmctl.targets.registry import renderer

    return renderer(name)


__all__ = ["TARGETS", "RenderOptions", "Target", "get_target"]

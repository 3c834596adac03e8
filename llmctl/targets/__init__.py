"""Deployment targets: each renders a ServiceSpec as files (compose, systemd, Kubernetes).
The list of targets lives in llmctl/targets/registry.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmctl.targets.base import RenderOptions, Target


def get_target(name: str) -> "Target":
    from llmctl.targets.registry import renderer

    return renderer(name)


def __getattr__(name: str) -> Any:
    """RenderOptions, Target and TARGETS on first use: reading a spec needs only the registry's names,
    not the renderers' base classes (PEP 562)."""
    if name in ("RenderOptions", "Target"):
        from llmctl.targets import base

        return getattr(base, name)
    if name == "TARGETS":
        from llmctl.targets.registry import renderable

        return renderable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TARGETS", "RenderOptions", "Target", "get_target"]

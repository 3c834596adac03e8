"""Ollama model names: `[host/][namespace/]model[:tag]`, with defaults host `registry.ollama.ai`,
namespace `library` and tag `latest` (ollama v0.32.15 types/model/name.go ParseName, Merge,
DefaultName). Names compare case-insensitively (server/routes.go getExistingName uses EqualFold),
so "llama3.2", "llama3.2:latest" and "registry.ollama.ai/library/llama3.2:latest" are one model.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

T = TypeVar("T")


def parse(name: str) -> tuple[str, str, str, str]:
    """(host, namespace, model, tag) with Ollama's defaults filled in."""
    s = name.strip()
    tag = ""
    if s.rfind(":") > s.rfind("/"):  # "/" cannot be in a tag, so a ":" after the last "/" starts it
        s, tag = s.rsplit(":", 1)
    parts = s.split("/")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else ""
    host = "/".join(parts[:-2]) if len(parts) >= 3 else ""
    if "://" in host:  # a scheme is kept apart from the host (ParseNameBare)
        host = host.split("://", 1)[1]
    return host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG


def canonical(name: str) -> str:
    """A key equal for every spelling of the same model."""
    host, namespace, model, tag = parse(name)
    return f"{host}/{namespace}/{model}:{tag}".lower()


def full(name: str) -> str:
    """host/namespace/model:tag, as Ollama names a model in its capability errors (Model.Name)."""
    host, namespace, model, tag = parse(name)
    return f"{host}/{namespace}/{model}:{tag}"


def display_shortest(name: str) -> str:
    """The short form Ollama shows (Name.DisplayShortest): host and namespace only when not default,
    the tag always ("llama3.2" -> "llama3.2:latest")."""
    host, namespace, model, tag = parse(name)
    if host.lower() != DEFAULT_HOST:
        return f"{host}/{namespace}/{model}:{tag}"
    if namespace.lower() != DEFAULT_NAMESPACE:
        return f"{namespace}/{model}:{tag}"
    return f"{model}:{tag}"


class NameIndex(dict):
    """canonical name -> entry, for a model's name and each of its aliases."""

    @classmethod
    def build(cls, entries: Iterable[tuple[Iterable[str], T]]) -> "NameIndex":
        index = cls()
        for names, entry in entries:
            for n in names:
                index.setdefault(canonical(n), entry)
        return index

    def find(self, name: str):
        if not name or not name.strip():
            return None
        return self.get(canonical(name))

"""Ollama model names and manifests, as Ollama itself reads them.

A name is `[host/][namespace/]model[:tag]`; the defaults are `registry.ollama.ai`, `library` and
`latest` (ollama/ollama types/model/name.go, DefaultName). A pulled name's manifest is the file
`manifests/{host}/{namespace}/{model}/{tag}` under the models folder (Name.Filepath; some releases
lower-case it), and each layer's blob is `blobs/sha256-<hex>` (digest with ':' as '-').
A manifest is a Docker image manifest v2 whose layers carry Ollama media types
(ollama/ollama server/images.go, server/model.go).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"

MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_MESSAGES = "application/vnd.ollama.image.messages"


@dataclass(frozen=True)
class OllamaName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The name as `ollama list` shows it: library models without host and namespace."""
        if self.host == DEFAULT_HOST and self.namespace == DEFAULT_NAMESPACE:
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_HOST:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def manifest_parts(self) -> tuple[str, str, str, str]:
        return self.host, self.namespace, self.model, self.tag


def parse_name(ref: str) -> OllamaName | None:
    """`llama3.1:8b` → registry.ollama.ai/library/llama3.1:8b; None when `ref` cannot be an Ollama name."""
    ref = ref.strip()
    if not ref or " " in ref or ref.startswith(("/", ".", "~")) or "@" in ref:
        return None
    path, tag = ref, DEFAULT_TAG
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        path = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
        tag = last.split(":", 1)[1] or DEFAULT_TAG
    parts = path.split("/")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, namespace, model = DEFAULT_HOST, parts[0], parts[1]
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        return None
    if not model or not namespace or not host:
        return None
    return OllamaName(host, namespace, model, tag)


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    size: int

    @property
    def blob_name(self) -> str:
        return self.digest.replace(":", "-")


@dataclass(frozen=True)
class OllamaManifest:
    """What a pulled (or remote) Ollama model is made of; `migrate` reads the same record."""

    name: str  # as `ollama list` shows it
    digest: str | None  # sha256 of the manifest bytes (what `ollama list` abbreviates as ID)
    model: Layer | None
    layers: tuple[Layer, ...]
    config: dict[str, Any] = field(default_factory=dict)  # model_format, model_family, file_type, ...
    params: dict[str, Any] = field(default_factory=dict)  # the params layer (num_ctx, stop, temperature, ...)
    template: str | None = None
    system: str | None = None
    adapters: tuple[str, ...] = ()  # digests of LoRA adapter layers
    projector: Layer | None = None  # vision projector (older multimodal models keep it apart)
    location: str | None = None  # manifest file, or registry URL

    @property
    def total_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        def lay(x: Layer | None) -> dict[str, Any] | None:
            return None if x is None else {"mediaType": x.media_type, "digest": x.digest, "size": x.size}
        return {"name": self.name, "digest": self.digest, "model": lay(self.model),
                "layers": [lay(x) for x in self.layers], "config": self.config, "params": self.params,
                "template": self.template, "system": self.system, "adapters": list(self.adapters),
                "projector": lay(self.projector), "location": self.location}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "OllamaManifest":
        def lay(x: dict[str, Any] | None) -> Layer | None:
            return None if not x else Layer(str(x["mediaType"]), str(x["digest"]), int(x["size"]))
        return cls(name=d["name"], digest=d.get("digest"), model=lay(d.get("model")),
                   layers=tuple(lay(x) for x in d.get("layers") or () if x), config=d.get("config") or {},
                   params=d.get("params") or {}, template=d.get("template"), system=d.get("system"),
                   adapters=tuple(d.get("adapters") or ()), projector=lay(d.get("projector")),
                   location=d.get("location"))


class ManifestError(ValueError):
    pass


def parse_manifest(raw: bytes) -> tuple[list[Layer], Layer | None]:
    """(layers, config blob) of a manifest's bytes."""
    try:
        doc = json.loads(raw.decode("utf-8"))
        layers = [Layer(str(x["mediaType"]), str(x["digest"]), int(x["size"])) for x in doc["layers"]]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"not an Ollama manifest: {exc}") from None
    cfg = doc.get("config")
    config = None
    if isinstance(cfg, dict) and cfg.get("digest"):
        try:
            config = Layer(str(cfg.get("mediaType", "")), str(cfg["digest"]), int(cfg.get("size") or 0))
        except (TypeError, ValueError):
            config = None
    return layers, config


def first(layers: list[Layer], media_type: str) -> Layer | None:
    return next((x for x in layers if x.media_type == media_type), None)


def parse_params(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

"""Step 4b of resolution: an Ollama tag read from the registry (the Docker registry v2 API Ollama pulls
from), never downloading the weights.

Requests: the manifest (`/v2/{namespace}/{model}/manifests/{tag}`), its config blob (model family and
file type), and the first bytes of the model blob (`/v2/{namespace}/{model}/blobs/{digest}`, a Range
request that the registry may redirect to its storage) until the GGUF header's architecture keys and
vocabulary size are read. The header's tokenizer arrays and tensor list are not read (they are
megabytes); the weights are then the model layer's size from the manifest: the GGUF file Ollama maps
into memory, of which the header is well under 1%.
"""

from __future__ import annotations

import json
from typing import Any

from llmctl.catalog import Catalog, ResolvedModel
from llmctl.errors import InputError
from llmctl.resolve import cache, gguf_header
from llmctl.resolve.net import STATS, NetworkError, httpx_timeout, is_network_failure, read_prefix
from llmctl.resolve.ollama_names import (DEFAULT_HOST, MANIFEST_MEDIA_TYPE, MEDIA_ADAPTER, MEDIA_MODEL,
                                         MEDIA_PARAMS, MEDIA_PROJECTOR, MEDIA_SYSTEM, MEDIA_TEMPLATE, ManifestError,
                                         OllamaManifest, OllamaName, first, parse_manifest, parse_params)
from llmctl.resolve.policy import MAX_REMOTE_HEADER_BYTES, ollama_registry

_TEXT_LAYER_MAX = 64 * 1024  # params/template/system are read when smaller than this


class NotInRegistry(Exception):
    """The registry answered: no such model or tag."""


def cached(name: OllamaName) -> dict[str, Any] | None:
    return cache.get("ollama", _key(name))


def _key(name: OllamaName) -> str:
    return "/".join(name.manifest_parts())


def fetch(name: OllamaName, where: str | None) -> dict[str, Any]:
    if name.host != DEFAULT_HOST:
        raise NotInRegistry(f"{name.host} is not the Ollama registry")
    try:
        entry = _fetch(name, where)
    except (InputError, NotInRegistry):
        raise
    except Exception as exc:  # noqa: BLE001
        if is_network_failure(exc):
            raise NetworkError(f"Ollama registry at {ollama_registry()}: {str(exc)[:200] or type(exc).__name__}") from None
        raise
    cache.put("ollama", _key(name), entry)
    return entry


def _fetch(name: OllamaName, where: str | None) -> dict[str, Any]:
    import hashlib

    import httpx

    base = f"{ollama_registry()}/v2/{name.namespace}/{name.model}"
    with httpx.Client(follow_redirects=True, timeout=httpx_timeout()) as client:
        STATS.requests += 1
        r = client.get(f"{base}/manifests/{name.tag}", headers={"Accept": MANIFEST_MEDIA_TYPE})
        STATS.bytes_read += len(r.content)
        if r.status_code in (404, 401, 403):
            raise NotInRegistry(f"{name.display} is not in the Ollama registry ({r.status_code})")
        r.raise_for_status()
        raw = r.content
        try:
            layers, config_layer = parse_manifest(raw)
        except ManifestError as exc:
            raise InputError(f"the registry's manifest of {name.display} is not valid: {exc}", where=where) from None
        model = first(layers, MEDIA_MODEL)
        if model is None:
            raise InputError(f"the registry's manifest of {name.display} has no model layer", where=where)

        def small(layer: Any) -> str | None:
            if layer is None or layer.size > _TEXT_LAYER_MAX:
                return None
            STATS.requests += 1
            resp = client.get(f"{base}/blobs/{layer.digest}")
            STATS.bytes_read += len(resp.content)
            return resp.text if resp.status_code == 200 else None

        config_text = small(config_layer)
        try:
            config = json.loads(config_text) if config_text else {}
        except ValueError:
            config = {}
        params_text = small(first(layers, MEDIA_PARAMS))

        class _Source:
            def read(self, offset: int, size: int) -> bytes:
                return read_prefix(client, f"{base}/blobs/{model.digest}", {}, offset, size)

        try:
            header = gguf_header.parse(_Source(), stop_at_tokenizer=True, budget=MAX_REMOTE_HEADER_BYTES)
        except gguf_header.GgufError as exc:
            raise InputError(f"the GGUF header of {name.display} ({model.digest[:19]}) is corrupt: {exc}",
                             where=where, hint="the registry served a damaged blob; try again later") from None
        manifest = OllamaManifest(
            name=name.display, digest="sha256:" + hashlib.sha256(raw).hexdigest(), model=model,
            layers=tuple(layers), config=config if isinstance(config, dict) else {},
            params=parse_params(params_text) if params_text else {},
            template=small(first(layers, MEDIA_TEMPLATE)), system=small(first(layers, MEDIA_SYSTEM)),
            adapters=tuple(x.digest for x in layers if x.media_type == MEDIA_ADAPTER),
            projector=first(layers, MEDIA_PROJECTOR), location=f"{base}/manifests/{name.tag}",
        )
    from llmctl.resolve.ollama_store import summary

    return {"manifest": manifest.to_json(), "header": summary(header)}


def to_model(catalog: Catalog, ref: str, name: OllamaName, entry: dict[str, Any], *, where: str | None,
             from_cache: bool) -> ResolvedModel:
    from llmctl.resolve.local import model_from_gguf_header

    manifest = OllamaManifest.from_json(entry["manifest"])
    h = entry["header"]
    header = gguf_header.GgufHeader(**{**h, "tensor_names": set(h.get("tensor_names") or ())})
    size = (manifest.model.size if manifest.model else 0) + (manifest.projector.size if manifest.projector else 0)
    model = model_from_gguf_header(
        catalog, ref, header, where=where, kind="ollama", ollama_tag=name.display, source="registry",
        revision=manifest.digest, ollama_manifest=manifest, weight_bytes=size or None,
        notes=(f"{name.display} from the Ollama registry{' (cached)' if from_cache else ''}: "
               f"architecture from the model blob's GGUF header, weights = the {size}-byte model layer",),
    )
    if model.gguf_quantization is None and manifest.config.get("file_type"):
        from dataclasses import replace

        model = replace(model, gguf_quantization=str(manifest.config["file_type"]).upper())
    return model

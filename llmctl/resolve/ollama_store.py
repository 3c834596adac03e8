"""Step 2 of resolution: a tag this machine has already pulled, read from Ollama's own model folder.

The folder is `$OLLAMA_MODELS`, else `~/.ollama/models`, else `/usr/share/ollama/.ollama/models` (the
Linux service's home) — Ollama's FAQ "Where are models stored?". The model layer's GGUF header gives
the exact architecture and tensor bytes; the params, template, system and adapter layers are kept on
the result for `migrate`. Parsed headers are cached by blob digest, so a second plan reads no blob.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from llmctl.catalog import Catalog, ResolvedModel
from llmctl.errors import InputError
from llmctl.resolve import cache, gguf_header
from llmctl.resolve.places import ollama_models_dirs
from llmctl.resolve.ollama_names import (MEDIA_ADAPTER, MEDIA_MODEL, MEDIA_PARAMS, MEDIA_PROJECTOR, MEDIA_SYSTEM,
                                         MEDIA_TEMPLATE, ManifestError, OllamaManifest, OllamaName, first,
                                         parse_manifest, parse_params)

MAX_TEXT_LAYER = 1 << 20  # params/template/system layers are a few KB; read at most 1 MiB of each


def models_dirs() -> list[Path]:
    return ollama_models_dirs()


def find_manifest(name: OllamaName) -> tuple[Path, Path] | None:
    """(models folder, manifest file) of a pulled name, or None."""
    for root in models_dirs():
        base = root / "manifests"
        for parts in (name.manifest_parts(), tuple(p.lower() for p in name.manifest_parts())):
            path = base.joinpath(*parts)
            if path.is_file():
                return root, path
    return None


def read_manifest(root: Path, path: Path, name: OllamaName) -> OllamaManifest:
    raw = path.read_bytes()
    layers, _config = parse_manifest(raw)
    blobs = root / "blobs"

    def text(media: str) -> str | None:
        layer = first(layers, media)
        if layer is None:
            return None
        try:
            with (blobs / layer.blob_name).open("rb") as fh:
                return fh.read(MAX_TEXT_LAYER).decode("utf-8", "replace")
        except OSError:
            return None

    params_text = text(MEDIA_PARAMS)
    return OllamaManifest(
        name=name.display, digest="sha256:" + hashlib.sha256(raw).hexdigest(), model=first(layers, MEDIA_MODEL),
        layers=tuple(layers), params=parse_params(params_text) if params_text else {},
        template=text(MEDIA_TEMPLATE), system=text(MEDIA_SYSTEM),
        adapters=tuple(x.digest for x in layers if x.media_type == MEDIA_ADAPTER),
        projector=first(layers, MEDIA_PROJECTOR), location=str(path),
    )


def resolve(catalog: Catalog, ref: str, name: OllamaName, where: str | None) -> ResolvedModel | None:
    found = find_manifest(name)
    if found is None:
        return None
    root, path = found
    try:
        manifest = read_manifest(root, path, name)
    except (OSError, ManifestError) as exc:
        raise InputError(f"cannot read Ollama's manifest {path}: {exc}", where=where,
                         hint=f"`ollama pull {name.display}` again, or remove the broken manifest") from None
    if manifest.model is None:
        raise InputError(f"Ollama's manifest {path} has no model layer", where=where)
    blob = root / "blobs" / manifest.model.blob_name
    header = _header(blob, manifest.model.digest, where)
    from llmctl.resolve.local import model_from_gguf_header

    return model_from_gguf_header(
        catalog, ref, header, where=where, kind="ollama", ollama_tag=name.display, source="ollama-store",
        revision=manifest.digest, ollama_manifest=manifest,
        notes=(f"pulled {name.display}: {header.tensor_count} tensors read from {blob}",),
    )


def _header(blob: Path, digest: str, where: str | None) -> gguf_header.GgufHeader:
    hit = cache.get("gguf", digest)
    if hit is not None:
        try:
            return gguf_header.GgufHeader(**{**hit, "tensor_names": set(hit.get("tensor_names") or ())})
        except TypeError:
            pass
    try:
        header = gguf_header.read_file(blob)
    except (gguf_header.GgufError, OSError) as exc:
        raise InputError(f"cannot read the GGUF header of Ollama's blob {blob}: {exc}", where=where,
                         hint="the blob is truncated or corrupt; `ollama pull` the tag again") from None
    cache.put("gguf", digest, summary(header))
    return header


def summary(header: gguf_header.GgufHeader) -> dict:
    """What a cache entry keeps of a header: scalar keys and the tensor facts resolution reads."""
    keep = {"output.weight", "blk.0.attn_q.bias"}
    return {"version": header.version, "architecture": header.architecture,
            "kv": {k: v for k, v in header.kv.items() if not isinstance(v, str) or len(v) < 256},
            "tensor_count": header.tensor_count, "tensors_read": header.tensors_read,
            "tensor_bytes": header.tensor_bytes, "n_elements": header.n_elements,
            "tensor_names": sorted(header.tensor_names & keep), "header_bytes": header.header_bytes,
            "vocab_size": header.vocab_size}

"""Model sources: turn a model reference into an architecture with exact bytes, offline first.

Order, the first that answers wins:
1. a local path: a GGUF file, a Hugging Face folder, or a Hugging Face cache entry (`org/name` that
   `~/.cache/huggingface/hub` holds);
2. the local Ollama store: a tag this machine has pulled (`$OLLAMA_MODELS`, `~/.ollama/models`,
   `/usr/share/ollama/.ollama/models`): exact architecture and tensor bytes from the blob's GGUF header;
3. the curated catalog (profiles/models.yaml): Ollama tags and Hugging Face repos it lists;
4. online, unless `--offline`, `LLMCTL_OFFLINE=1` or `HF_HUB_OFFLINE=1`: the Hugging Face Hub
   (config.json and safetensors headers; for `hf.co/{user}/{repo}[:{quant}]` the GGUF file's headers)
   or the Ollama registry (manifest and GGUF header), each answer cached on disk so the next plan
   makes no request;
5. a catalog repo whose name differs only by a suffix (`...-AWQ`, `...-FP8`), with a note.
A network failure falls back to 5 with a warning; nothing found is an error naming what was tried.
"""

from __future__ import annotations

import sys
from pathlib import Path

from llmctl.catalog import Catalog, ResolvedModel
from llmctl.errors import InputError
from llmctl.resolve.policy import network_allowed, offline_reason, set_offline

__all__ = ["resolve_model", "set_offline", "network_allowed"]


def resolve_model(catalog: Catalog, reference: str, *, base_dir: Path | None = None,
                  where: str | None = None) -> ResolvedModel:
    from llmctl import model_refs
    from llmctl.resolve import places

    ref = reference.strip()
    if not ref:
        raise InputError("model is empty", where=where)
    tried: list[str] = []
    # 1. local path
    path = places.local_path(ref, base_dir)
    if path is not None:
        from llmctl.resolve import local

        return local.from_path(catalog, ref, path, where)
    hf_id = ref if model_refs.looks_like_hf_id(ref) else None
    if hf_id:
        snap = places.hf_cache_snapshot(hf_id.partition("@")[0])
        if snap is not None:
            from llmctl.resolve import local

            return local.from_hf_folder(catalog, ref, snap, kind="hf-cache", where=where, hf_id=hf_id)
        tried.append("the Hugging Face cache")
    # 2. the local Ollama store (parsed only when this machine has one)
    name = None
    if not hf_id:
        if places.ollama_store_present():
            from llmctl.resolve import ollama_store
            from llmctl.resolve.ollama_names import parse_name

            name = parse_name(ref)
            if name is not None:
                found = ollama_store.resolve(catalog, ref, name, where)
                if found is not None:
                    return found
        tried.append("the local Ollama store (" + ", ".join(str(p) for p in places.ollama_models_dirs()) + ")")
    hf_gguf_ref = None
    if model_refs.is_hf_gguf_ref(ref):
        from llmctl.resolve import hf_gguf

        hf_gguf_ref = hf_gguf.parse_ref(ref)
        entry = hf_gguf.cached(*hf_gguf_ref) if hf_gguf_ref else None
        if entry is not None:  # read from the Hub before: exact, and no request
            return hf_gguf.to_model(catalog, ref, entry, where=where, from_cache=True)
    # 3. the catalog
    found = model_refs.exact(catalog, ref)
    if found is not None:
        return found
    tried.append("the catalog")
    # 4. online (answers cached on disk)
    warning = None
    if not hf_id and name is None:
        from llmctl.resolve.ollama_names import parse_name

        name = parse_name(ref)
    if hf_id or name is not None:
        try:
            if hf_gguf_ref:
                found = _online_hf_gguf(catalog, ref, hf_gguf_ref, where, tried)
            else:
                found = _online(catalog, ref, hf_id, name, where, tried)
        except _Offline:
            found = None
        except _NetworkFailure as exc:
            warning = str(exc)
            found = None
        if found is not None:
            return found
    # 5. a catalog near match
    found = model_refs.approximate(catalog, ref)
    if found is not None:
        if warning:
            _warn(f"{warning}; using the catalog's {found.arch.id} instead")
            found = _with_note(found, f"{warning}; planned with the catalog's {found.arch.id}")
        return found
    raise model_refs.unknown(catalog, ref, where, tried)


class _Offline(Exception):
    pass


class _NetworkFailure(Exception):
    pass


def _online(catalog: Catalog, ref: str, hf_id: str | None, name, where: str | None,
            tried: list[str]) -> ResolvedModel | None:
    if hf_id:
        from llmctl.resolve import hub

        repo, _, revision = hf_id.partition("@")
        entry = hub.cached(repo, revision or None)
        if entry is not None:
            return hub.to_model(catalog, ref, entry, where=where, from_cache=True)
        entry = _ask("the Hugging Face Hub", lambda: hub.fetch(repo, revision or None, where), hub.NotOnHub, tried)
        return None if entry is None else hub.to_model(catalog, ref, entry, where=where, from_cache=False)
    from llmctl.resolve import registry

    entry = registry.cached(name)
    if entry is not None:
        return registry.to_model(catalog, ref, name, entry, where=where, from_cache=True)
    entry = _ask("the Ollama registry", lambda: registry.fetch(name, where), registry.NotInRegistry, tried)
    return None if entry is None else registry.to_model(catalog, ref, name, entry, where=where, from_cache=False)


def _online_hf_gguf(catalog: Catalog, ref: str, repo_quant: tuple[str, str | None], where: str | None,
                    tried: list[str]) -> ResolvedModel | None:
    from llmctl.resolve import hf_gguf, hub

    entry = _ask("the Hugging Face Hub", lambda: hf_gguf.fetch(*repo_quant, where), hub.NotOnHub, tried)
    return None if entry is None else hf_gguf.to_model(catalog, ref, entry, where=where, from_cache=False)


def _ask(source: str, fetch, not_found: type[Exception], tried: list[str]):
    """One online source: its answer; None (noted in `tried`) when it does not have the model;
    _Offline when the network is not allowed; _NetworkFailure when it cannot be reached."""
    from llmctl.resolve.net import NetworkError

    if not network_allowed():
        tried.append(f"{source} (not asked: {offline_reason()})")
        raise _Offline
    try:
        return fetch()
    except not_found as exc:
        tried.append(f"{source} ({exc})")
        return None
    except NetworkError as exc:
        tried.append(f"{source} (unreachable: {exc})")
        raise _NetworkFailure(f"could not reach {exc}") from None


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _with_note(model: ResolvedModel, note: str) -> ResolvedModel:
    from dataclasses import replace

    return replace(model, notes=(*model.notes, note) if model.notes else ("catalog", note))

"""The inventory (`inventory.json`, schema llmctl.migrate.inventory/v1): what the Ollama side serves,
read without changing anything — from the live API, the local store's manifests and GGUF headers, or
(when no server answers) the model names a deployment file carries, with the catalog's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl.errors import InputError
from llmctl.migrate.modelfile import parse_modelfile, parse_show_parameters
from llmctl.migrate.sources import Source

SCHEMA = "llmctl.migrate.inventory/v1"
# keys of an /api/show model_info worth keeping from a store's GGUF header (arrays are left out, as
# /api/show leaves them out without `verbose`)
_KEEP_INFO = ("general.", "tokenizer.ggml.model", "tokenizer.chat_template")


def build(src: Source, names: list[str]) -> dict[str, Any]:
    """The inventory of `src`; `names`: tags to add when the source names none (`--model`)."""
    from llmctl.migrate import live

    native = True
    basis = ("Ollama serves its native API (/api/*) on the same port as its OpenAI one; request logs are not "
             "read, so native clients are assumed")
    if src.kind == "url" or src.url_given or (src.url and src.kind != "store" and live.reachable(src.url)):
        data = live.read_server(src.url)  # type: ignore[arg-type]
        models = [_from_show(name, data["show"][name], data["tags"], data["ps"])
                  for name in data["show"]]
        version = data["version"]
        read_from = f"{src.url} (/api/version, /api/tags, /api/ps, /api/show)"
    elif src.kind == "store":
        models = _from_store(src.store_dir)
        version = None
        read_from = "manifests and GGUF headers of " + (str(src.store_dir) if src.store_dir else "the local store")
    else:
        wanted = list(dict.fromkeys([*src.names, *names]))
        if not wanted:
            raise InputError(f"{src.where}: no model to migrate: no Ollama server answered"
                             + (f" at {src.url}" if src.url else "") + " and the file names no model",
                             hint="pass --url URL of the running server, or --model TAG for each tag it serves")
        models = [_from_catalog(n, src.where) for n in wanted]
        version = None
        read_from = f"{src.where} (no server answered" + (f" at {src.url}" if src.url else "") + "; catalog facts)"
    if not models:
        raise InputError(f"{src.where}: the Ollama side serves no model", hint="nothing to migrate")
    return {
        "schema": SCHEMA,
        "source": {"kind": src.kind, "where": src.where, "url": src.url, "read_from": read_from,
                   "notes": list(src.notes)},
        "server": {"version": version, "env": dict(src.env), "env_where": dict(src.env_lines)},
        "models": models,
        "native_api_seen": native,
        "native_api_basis": basis,
    }


def _from_show(name: str, show: dict[str, Any], tags: dict[str, Any], ps: dict[str, Any]) -> dict[str, Any]:
    where = f"/api/show {name}"
    listed = next((m for m in tags.get("models") or [] if isinstance(m, dict) and m.get("name") == name), {})
    loaded = next((m for m in ps.get("models") or [] if isinstance(m, dict) and m.get("name") == name), None)
    details = show.get("details") if isinstance(show.get("details"), dict) else {}
    params_text = show.get("parameters") or ""
    if not isinstance(params_text, str):
        raise InputError("`parameters` is not text", where=where)
    parameters = parse_show_parameters(params_text, f"{where} parameters")
    modelfile = show.get("modelfile") or ""
    adapters: list[str] = []
    if modelfile:
        mf = parse_modelfile(modelfile, f"{where} modelfile")
        adapters = mf.adapters
    messages = [{"role": m.get("role"), "content": m.get("content")} for m in show.get("messages") or []
                if isinstance(m, dict)]
    return {
        "name": name,
        "digest": listed.get("digest"),
        "size": listed.get("size"),
        "details": details,
        "parent_model": details.get("parent_model") or None,
        "modelfile": modelfile,
        "parameters": parameters,
        "template": show.get("template") or None,
        "system": show.get("system") or None,
        "messages": messages,
        "license": bool(show.get("license")),
        "model_info": show.get("model_info") if isinstance(show.get("model_info"), dict) else {},
        "capabilities": [str(c) for c in show.get("capabilities") or []],
        "adapters": adapters,
        "loaded": ({"context_length": loaded.get("context_length"), "size_vram": loaded.get("size_vram")}
                   if loaded else None),
        "show": show,
    }


def _from_store(store_dir: Path | None) -> list[dict[str, Any]]:
    from llmctl.resolve import gguf_header
    from llmctl.resolve.ollama_names import MEDIA_MESSAGES, OllamaName, first
    from llmctl.resolve.ollama_store import models_dirs, read_manifest

    roots = [store_dir] if store_dir else [d for d in models_dirs() if (d / "manifests").is_dir()]
    if not roots:
        raise InputError("no local Ollama store found", where="--from store",
                         hint="set OLLAMA_MODELS, or pass the models folder as --from")
    out = []
    for root in roots:
        base = root / "manifests"
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            parts = path.relative_to(base).parts
            if len(parts) != 4:
                continue
            name = OllamaName(*parts)
            try:
                man = read_manifest(root, path, name)
            except Exception as exc:  # a broken manifest names itself
                raise InputError(f"cannot read Ollama's manifest: {exc}", where=str(path)) from None
            info: dict[str, Any] = {}
            quant = None
            if man.model is not None:
                try:
                    header = gguf_header.read_file(root / "blobs" / man.model.blob_name)
                except (gguf_header.GgufError, OSError) as exc:
                    raise InputError(f"cannot read the GGUF header of {name.display}: {exc}",
                                     where=str(root / "blobs" / man.model.blob_name)) from None
                info = {k: v for k, v in header.kv.items()
                        if k.startswith(_KEEP_INFO) or k.startswith(header.architecture + ".")}
                info["general.architecture"] = header.architecture
                quant = header.file_type
            messages = []
            layer = first(list(man.layers), MEDIA_MESSAGES)
            if layer is not None:
                import json

                try:
                    raw = json.loads((root / "blobs" / layer.blob_name).read_text(encoding="utf-8"))
                    messages = [{"role": m.get("role"), "content": m.get("content")} for m in raw if isinstance(m, dict)]
                except (OSError, ValueError):
                    messages = []
            arch = info.get("general.architecture")
            out.append({
                "name": name.display, "digest": man.digest, "size": man.total_bytes,
                "details": {"format": "gguf", "family": arch, "quantization_level": quant,
                            "parameter_size": None, "parent_model": ""},
                "parent_model": None, "modelfile": "", "parameters": dict(man.params),
                "template": man.template, "system": man.system, "messages": messages, "license": False,
                "model_info": info, "capabilities": _capabilities(info, man.template),
                "adapters": list(man.adapters), "loaded": None, "show": None,
            })
    return out


def _capabilities(info: dict[str, Any], template: str | None) -> list[str]:
    """What Ollama would report (server/images.go Capabilities): embedding when the GGUF has a pooling
    type and no causal attention, completion otherwise; tools when the template uses .Tools; thinking
    when it uses .Think."""
    arch = info.get("general.architecture", "")
    caps = []
    if info.get(f"{arch}.pooling_type") and info.get(f"{arch}.attention.causal") is False:
        caps.append("embedding")
    else:
        caps.append("completion")
    if template and ".Tools" in template:
        caps.append("tools")
    if template and ".Think" in template:
        caps.append("thinking")
    return caps


def _from_catalog(name: str, where: str) -> dict[str, Any]:
    from llmctl.catalog import Catalog
    from llmctl.model_refs import exact

    found = exact(Catalog.load(), name)
    if found is None:
        raise InputError(f"{name!r} is not an Ollama tag the catalog knows, and no server answered to describe it",
                         where=where, hint="pass --url URL of the running server")
    o = found.arch.ollama or {}
    return {
        "name": found.ollama_tag or name, "digest": None, "size": found.weight_bytes,
        "details": {"format": "gguf", "family": None, "quantization_level": found.gguf_quantization,
                    "parameter_size": f"{found.arch.params_b}B" if found.arch.params_b else None, "parent_model": ""},
        "parent_model": None, "modelfile": "", "parameters": {}, "template": None, "system": None, "messages": [],
        "license": False, "model_info": {}, "capabilities": _catalog_capabilities(found.arch.architecture),
        "adapters": [], "loaded": None, "show": None, "from_catalog": bool(o),
    }


def _catalog_capabilities(architecture: str) -> list[str]:
    """An encoder (BertModel, NomicBertModel, XLMRobertaModel) is an embedding model; the rest generate."""
    if architecture.endswith("Model") and not architecture.endswith(("ForCausalLM", "ForConditionalGeneration")):
        return ["embedding"]
    return ["completion"]

"""Tag → Hugging Face repository, with how sure the mapping is (`mapping.yaml`).

In order, the first that answers wins:
- user: `--map TAG=ORG/REPO[@REVISION]`;
- exact: the GGUF file's own metadata names the repository it was converted from
  (`general.source.url` or `general.source.huggingface.repository`, written by llama.cpp's
  convert_hf_to_gguf.py);
- catalog: profiles/models.yaml lists the Ollama name and size tag, or the `hf.co/ORG/REPO-GGUF:QUANT`
  name is a GGUF repository of a model the catalog lists, or the tag was made FROM one the catalog
  lists (`details.parent_model` of /api/show) — a Modelfile that only adds settings keeps its weights;
- provenance: the GGUF metadata names a base model (`general.base_model.0.repo_url`) — the fine-tune's
  parent, so the weights may differ.
A tag none of these maps is an error that shows the `--map` to write.
"""

from __future__ import annotations

import re
from typing import Any

from llmctl.errors import InputError

HF_URL = re.compile(r"^https?://huggingface\.co/([A-Za-z0-9][\w.\-]*/[\w.\-]+?)(?:/tree/([0-9a-f]{7,40}|[\w.\-]+))?/?$")


def parse_maps(items: tuple[str, ...] | list[str]) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for item in items:
        tag, sep, repo = item.partition("=")
        repo, _, rev = repo.strip().partition("@")
        if not sep or not tag.strip() or not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", repo):
            raise InputError(f"--map {item!r}: write TAG=ORG/REPO[@REVISION]", where="--map",
                             hint="e.g. --map llama3.2:1b=meta-llama/Llama-3.2-1B-Instruct")
        out[tag.strip()] = (repo, rev or None)
    return out


def map_model(model: dict[str, Any], maps: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """{hf_repo, revision, confidence, how} for one inventory model (hf_repo None when unmapped)."""
    name = model["name"]
    short = name[:-len(":latest")] if name.endswith(":latest") else name
    for key in (name, short):
        if key in maps:
            repo, rev = maps[key]
            return {"hf_repo": repo, "revision": rev, "confidence": "user", "how": f"--map {key}={repo}"}
    info = model.get("model_info") or {}
    for key in ("general.source.url", "general.source.huggingface.repository"):
        value = info.get(key)
        if isinstance(value, str):
            m = HF_URL.match(value.strip())
            repo = m.group(1) if m else (value.strip() if re.fullmatch(r"[\w.\-]+/[\w.\-]+", value.strip()) else None)
            if repo:
                return {"hf_repo": repo, "revision": m.group(2) if m else None, "confidence": "exact",
                        "how": f"GGUF metadata {key} = {value}"}
    from llmctl.catalog import Catalog
    from llmctl.model_refs import exact

    found = exact(Catalog.load(), name)
    if found is not None and found.hf_id:
        how = (f"{name} is a GGUF repository of the catalog's {found.arch.id}" if name.startswith("hf.co/")
               else f"the catalog lists {name} as {found.arch.id} (profiles/models.yaml)")
        return {"hf_repo": found.hf_id, "revision": None, "confidence": "catalog", "how": how,
                "catalog_id": found.arch.id, "gguf_quantization": found.gguf_quantization}
    parent = (model.get("details") or {}).get("parent_model") or model.get("parent_model")
    if parent and not str(parent).startswith("/"):
        found = exact(Catalog.load(), str(parent))
        if found is not None and found.hf_id:
            return {"hf_repo": found.hf_id, "revision": None, "confidence": "catalog",
                    "how": f"made FROM {parent} (details.parent_model), which the catalog lists as {found.arch.id}",
                    "catalog_id": found.arch.id, "gguf_quantization": found.gguf_quantization}
    for n in range(4):
        value = info.get(f"general.base_model.{n}.repo_url")
        m = HF_URL.match(value.strip()) if isinstance(value, str) else None
        if m:
            return {"hf_repo": m.group(1), "revision": None, "confidence": "provenance",
                    "how": f"GGUF metadata general.base_model.{n}.repo_url = {value} (the base model: a "
                           "fine-tune's own weights differ)"}
    return {"hf_repo": None, "revision": None, "confidence": None,
            "how": "not in the catalog, and the GGUF metadata names no source repository"}


def map_all(inventory: dict[str, Any], maps: dict[str, tuple[str, str | None]]) -> dict[str, dict[str, Any]]:
    names = {m["name"] for m in inventory["models"]}
    for tag in maps:
        if tag not in names and f"{tag}:latest" not in names:
            raise InputError(f"--map {tag}=...: the inventory has no tag {tag!r}", where="--map",
                             hint="tags: " + ", ".join(sorted(names)))
    return {m["name"]: map_model(m, maps) for m in inventory["models"]}


def unmapped_error(tags: list[str]) -> InputError:
    lines = " ".join(f"--map {t}=ORG/REPO" for t in tags)
    return InputError(
        f"no Hugging Face repository is known for {', '.join(tags)}",
        hint=f"name the checkpoint the tag was made from: {lines}  (e.g. --map {tags[0]}=Qwen/Qwen2.5-7B-Instruct)")

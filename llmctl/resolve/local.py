"""Step 1 of resolution: a local path — a GGUF file, a Hugging Face folder, or a Hugging Face cache entry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from llmctl.catalog import Catalog, ModelArch, ResolvedModel
from llmctl.errors import InputError
from llmctl.model_refs import match_arch, with_catalog_facts
from llmctl.resolve import gguf_header
from llmctl.resolve.hf_config import hf_config_to_arch, hf_quant_name, safetensors_bytes


def from_path(catalog: Catalog, ref: str, path: Path, where: str | None) -> ResolvedModel:
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise InputError(f"{path} is a file but not a .gguf model", where=where,
                             hint="point `model` at a .gguf file or a Hugging Face folder with config.json")
        return from_gguf(catalog, ref, path, where)
    return from_hf_folder(catalog, ref, path, kind="hf-folder", where=where)


def from_gguf(catalog: Catalog, ref: str, path: Path, where: str | None, **extra) -> ResolvedModel:
    try:
        header = gguf_header.read_file(path)
    except (gguf_header.GgufError, OSError) as exc:
        raise InputError(f"cannot read the GGUF header of {path}: {exc}", where=where,
                         hint="the file is truncated or not a GGUF model; download it again") from None
    return model_from_gguf_header(catalog, ref, header, where=where, kind="gguf-file", path=str(path.resolve()),
                                  notes=(f"read {header.tensor_count} tensors from the GGUF header of {path}",), **extra)


def model_from_gguf_header(catalog: Catalog, ref: str, header: gguf_header.GgufHeader, *, where: str | None,
                           kind: str, notes: tuple[str, ...], weight_bytes: int | None = None,
                           **extra) -> ResolvedModel:
    try:
        arch = ModelArch.from_mapping(header.config(), id=_model_id(ref))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the GGUF header of {ref} lacks a field llmctl needs: {exc}", where=where) from None
    known = match_arch(catalog, arch)
    if known is not None:
        arch = with_catalog_facts(arch, known)
        if not header.tensors_read:  # the tensor list was not read: take what it would have told from the catalog
            arch = replace(arch, tie_word_embeddings=known.tie_word_embeddings,
                           attention_qkv_bias=known.attention_qkv_bias)
    quant = header.file_type
    if header.tensors_read:
        if quant is None:
            quant = gguf_header.quant_from_bits(8 * (header.tensor_bytes or 0) / max(header.n_elements or 1, 1))
        weight_bytes = header.tensor_bytes
    return ResolvedModel(reference=ref, kind=kind, arch=arch, gguf_quantization=quant, weight_bytes=weight_bytes,
                         notes=notes, **extra)


def _model_id(ref: str) -> str:
    name = ref.rstrip("/").split("/")[-1]
    return name.removesuffix(".gguf").replace(":", "-").lower()


def from_hf_folder(catalog: Catalog, ref: str, folder: Path, *, kind: str, where: str | None,
                   hf_id: str | None = None, source: str = "local") -> ResolvedModel:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{folder} has no config.json", where=where,
                         hint="a Hugging Face model folder holds config.json beside its weights")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {cfg_path}: {exc}", where=where) from None
    try:
        arch = ModelArch.from_mapping(hf_config_to_arch(raw), id=(hf_id or folder.name).split("/")[-1].lower())
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{cfg_path} lacks a field llmctl needs: {exc}", where=where) from None
    known = match_arch(catalog, arch)
    if known is not None:
        arch = with_catalog_facts(arch, known)
    weight_bytes, how = safetensors_bytes(folder)
    notes = [f"architecture from {cfg_path}"]
    notes.append(how if weight_bytes else "no weights in the folder: weights counted from the architecture")
    return ResolvedModel(reference=ref, kind=kind, arch=arch, path=str(folder.resolve()), hf_id=hf_id,
                         weight_bytes=weight_bytes, hf_quantization=hf_quant_name(raw.get("quantization_config") or {}),
                         notes=tuple(notes), source=source)

"""Resolve a model reference to an architecture.

Accepted forms, tried in this order:
- a local GGUF file (`./llama.gguf`): the header gives the architecture and exact tensor bytes;
- a local Hugging Face folder (holding `config.json`), or a Hugging Face cache entry
  (`~/.cache/huggingface/hub/models--org--name`): `config.json`, plus safetensors sizes when present;
- a Hugging Face id (`meta-llama/Llama-3.1-8B-Instruct`), matched against the catalog, then the local cache;
- an Ollama tag (`llama3.1:8b`, `qwen2.5:72b-instruct-q8_0`, `hf.co/org/repo:Q4_K_M`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.catalog import Catalog, ModelArch, ResolvedModel

# Suffixes that name a variant or a quantization in Hugging Face repository names, not an architecture.
_HF_SUFFIX_PATTERN = (r"[-_.](instruct|chat|it|base|hf|awq|gptq|int4|int8|fp8|fp16|bf16|w4a16|w8a8|dynamic|gguf|"
                      r"g128|4bit|8bit|v\d+(\.\d+)?|\d{4})$")


@lru_cache(maxsize=1)
def _hf_suffixes() -> "re.Pattern[str]":
    return re.compile(_HF_SUFFIX_PATTERN, re.I)  # compiled on first use: it costs ~5 ms at import


_HF_QUANT_WORDS = {"awq": "AWQ", "gptq": "GPTQ", "fp8": "FP8", "w8a8": "FP8", "int8": "GPTQ-INT8"}


def resolve(catalog: "Catalog", reference: str, *, base_dir: Path | None = None, where: str | None = None) -> "ResolvedModel":
    ref = reference.strip()
    if not ref:
        raise InputError("model is empty", where=where)
    local = _local_path(ref, base_dir)
    if local is not None:
        if local.is_file():
            if local.suffix.lower() != ".gguf":
                raise InputError(f"{local} is a file but not a .gguf model", where=where,
                                 hint="point `model` at a .gguf file or a Hugging Face folder with config.json")
            return _from_gguf(catalog, ref, local, where)
        if local.is_dir():
            return _from_hf_folder(catalog, ref, local, kind="hf-folder", where=where)
    if ref.lower().startswith(("hf.co/", "huggingface.co/")):
        return _from_ollama_hf(catalog, ref, where)
    if "/" in ref and ":" not in ref:
        return _from_hf_id(catalog, ref, where)
    if "/" not in ref or ":" in ref:
        found = _from_ollama_tag(catalog, ref)
        if found is not None:
            return found
    raise _unknown(catalog, ref, where)


# --------------------------------------------------------------------------- local files


def _local_path(ref: str, base_dir: Path | None) -> Path | None:
    looks_like_path = ref.startswith(("/", "./", "../", "~")) or ref.lower().endswith(".gguf") or os.sep in ref and Path(ref).exists()
    candidates = [Path(ref).expanduser()]
    if base_dir is not None and not Path(ref).is_absolute():
        candidates.insert(0, base_dir / ref)
    for c in candidates:
        if c.exists():
            return c
    if looks_like_path and (ref.startswith(("/", "./", "../", "~")) or ref.lower().endswith(".gguf")):
        raise InputError(f"model path {ref!r} does not exist", hint="check the path; relative paths are read from the spec's folder")
    return None


def _from_gguf(catalog: "Catalog", ref: str, path: Path, where: str | None) -> "ResolvedModel":
    from llmctl.catalog import ModelArch, ResolvedModel

    try:
        header = read_gguf_header(path)
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"cannot read GGUF header of {path}: {exc}", where=where) from None
    arch = ModelArch.from_mapping(header["config"], id=path.stem.lower())
    known = _match_arch(catalog, arch)
    if known is not None:
        arch = _with_catalog_facts(arch, known)
    return ResolvedModel(
        reference=ref, kind="gguf-file", arch=arch, path=str(path.resolve()),
        gguf_quantization=header["quantization"], weight_bytes=header["tensor_bytes"],
        notes=(f"read {header['n_tensors']} tensors from the GGUF header",),
    )


# llama.cpp's GGUF keys per architecture → config.json names
_GGUF_KEYS = {
    "block_count": "num_hidden_layers",
    "embedding_length": "hidden_size",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.key_length": "head_dim",
    "context_length": "max_position_embeddings",
    "expert_count": "num_experts",
    "expert_used_count": "experts_per_token",
    "expert_feed_forward_length": "moe_intermediate_size",
    "expert_shared_count": "n_shared_experts",
    "leading_dense_block_count": "first_k_dense_replace",
    "attention.kv_lora_rank": "kv_lora_rank",
    "attention.q_lora_rank": "q_lora_rank",
    "rope.dimension_count": "qk_rope_head_dim",
    "attention.sliding_window": "sliding_window",
}


def read_gguf_header(path: Path) -> dict[str, Any]:
    import gguf

    reader = gguf.GGUFReader(str(path), "r")

    def value(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None or not f.data:
            return None
        part = f.parts[f.data[0]]
        if f.types and f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(part).decode("utf-8", "replace")
        if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
            return len(f.data)
        return part.tolist()[0] if hasattr(part, "tolist") else part

    arch_name = value("general.architecture") or "llama"
    config: dict[str, Any] = {"architecture": f"gguf:{arch_name}"}
    for key, name in _GGUF_KEYS.items():
        v = value(f"{arch_name}.{key}")
        if v is not None:
            config[name] = int(v)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    config["vocab_size"] = len(tokens.data) if tokens is not None else value(f"{arch_name}.vocab_size") or 32000
    names = {t.name for t in reader.tensors}
    config["tie_word_embeddings"] = "output.weight" not in names
    config["attention_qkv_bias"] = "blk.0.attn_q.bias" in names
    if "num_key_value_heads" not in config and "num_attention_heads" in config:
        config["num_key_value_heads"] = config["num_attention_heads"]
    total = sum(int(t.n_bytes) for t in reader.tensors)
    elements = sum(int(t.n_elements) for t in reader.tensors)
    ftype = value("general.file_type")
    quant = None
    if ftype is not None:
        try:
            quant = gguf.LlamaFileType(int(ftype)).name.replace("MOSTLY_", "")
        except ValueError:
            quant = None
    if quant in (None, "GUESSED"):
        quant = _quant_from_bits(8 * total / max(elements, 1))
    if quant == "ALL_F32":
        quant = "F32"
    return {"config": config, "quantization": quant, "tensor_bytes": total,
            "n_tensors": len(reader.tensors), "n_elements": elements}


def _quant_from_bits(bits: float) -> str:
    table = [(3.6, "Q3_K_M"), (4.7, "Q4_K_M"), (5.2, "Q5_0"), (5.9, "Q5_K_M"), (7.0, "Q6_K"), (9.0, "Q8_0"), (17, "F16")]
    for limit, name in table:
        if bits <= limit:
            return name
    return "F32"


def _from_hf_folder(catalog: "Catalog", ref: str, folder: Path, *, kind: str, where: str | None,
                    hf_id: str | None = None) -> "ResolvedModel":
    from llmctl.catalog import ModelArch, ResolvedModel

    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{folder} has no config.json", where=where,
                         hint="a Hugging Face model folder holds config.json beside its weights")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {cfg_path}: {exc}", where=where) from None
    try:
        config = hf_config_to_arch(raw)
        arch = ModelArch.from_mapping(config, id=(hf_id or folder.name).split("/")[-1].lower())
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{cfg_path} lacks a field llmctl needs: {exc}", where=where) from None
    known = _match_arch(catalog, arch)
    if known is not None:
        arch = _with_catalog_facts(arch, known)
    weight_bytes, how = safetensors_bytes(folder)
    notes = [f"architecture from {cfg_path}"]
    notes.append(how if weight_bytes else "no weights in the folder: weights counted from the architecture")
    qcfg = raw.get("quantization_config") or {}
    hf_quant = _hf_quant_name(qcfg)
    return ResolvedModel(reference=ref, kind=kind, arch=arch, path=str(folder.resolve()), hf_id=hf_id,
                         weight_bytes=weight_bytes, hf_quantization=hf_quant, notes=tuple(notes))


def _hf_quant_name(qcfg: dict[str, Any]) -> str | None:
    method = str(qcfg.get("quant_method") or "").lower()
    if not method:
        return None
    if method == "gptq" and int(qcfg.get("bits", 4)) == 8:
        return "GPTQ-INT8"
    return {"awq": "AWQ", "gptq": "GPTQ", "fp8": "FP8", "compressed-tensors": "FP8", "mxfp4": "MXFP4"}.get(method, method.upper())


def hf_config_to_arch(raw: dict[str, Any]) -> dict[str, Any]:
    """config.json (Hugging Face) → the field names of ModelArch."""
    # multimodal configs keep the language model's shape under text_config
    cfg = {**raw, **raw["text_config"]} if isinstance(raw.get("text_config"), dict) else dict(raw)
    archs = cfg.get("architectures") or [cfg.get("model_type", "unknown")]
    out: dict[str, Any] = {
        "architecture": archs[0],
        "num_hidden_layers": int(cfg["num_hidden_layers"]),
        "hidden_size": int(cfg["hidden_size"]),
        "intermediate_size": int(cfg.get("intermediate_size") or 4 * int(cfg["hidden_size"])),
        "num_attention_heads": int(cfg["num_attention_heads"]),
        "num_key_value_heads": int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
        "vocab_size": int(cfg["vocab_size"]),
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "max_position_embeddings": cfg.get("max_position_embeddings"),
        "torch_dtype": cfg.get("torch_dtype") or cfg.get("dtype"),
    }
    if cfg.get("head_dim"):
        out["head_dim"] = int(cfg["head_dim"])
    # Qwen2 always has q/k/v bias; other families say so with attention_bias
    out["attention_qkv_bias"] = bool(cfg.get("attention_bias") or cfg.get("qkv_bias") or archs[0].startswith("Qwen2"))
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if layer_types:
        sliding = sum(1 for t in layer_types if "sliding" in str(t))
        out["sliding_window_layers"] = sliding / len(layer_types)
    elif window and cfg.get("use_sliding_window", True) and not archs[0].startswith("Qwen2"):
        # Gemma-2 alternates sliding and global layers; Mistral-style configs slide on every layer
        out["sliding_window_layers"] = 0.5 if archs[0].startswith(("Gemma2", "Gemma3", "GptOss")) else 1.0
    if window and out.get("sliding_window_layers"):
        out["sliding_window"] = int(window)
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
    if experts:
        out["num_experts"] = int(experts)
        out["experts_per_token"] = int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or 2)
        out["moe_intermediate_size"] = int(cfg.get("moe_intermediate_size") or out["intermediate_size"])
        for key in ("n_shared_experts", "first_k_dense_replace"):
            if cfg.get(key) is not None:
                out[key] = int(cfg[key])
    for key in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        if cfg.get(key):
            out[key] = int(cfg[key])
    return out


def safetensors_bytes(folder: Path) -> tuple[int | None, str]:
    """Exact bytes of the weights: the index's total_size, or the safetensors headers."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            total = int(json.loads(index.read_text())["metadata"]["total_size"])
            return total, f"weights: {total} bytes from {index.name}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None, ""
    total = 0
    for f in files:
        with f.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None, ""
            (n,) = struct.unpack("<Q", head)
        total += f.stat().st_size - 8 - n
    return total, f"weights: {total} bytes from {len(files)} safetensors file(s)"


def hf_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path.home() / ".cache" / "huggingface" / "hub")
    return dirs


def _hf_cache_snapshot(hf_id: str) -> Path | None:
    name = "models--" + hf_id.replace("/", "--")
    for root in hf_cache_dirs():
        entry = root / name
        if not entry.is_dir():
            continue
        ref = entry / "refs" / "main"
        if ref.is_file():
            snap = entry / "snapshots" / ref.read_text().strip()
            if (snap / "config.json").is_file():
                return snap
        snaps = sorted((entry / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if snaps:
            return snaps[0].parent
    return None


# --------------------------------------------------------------------------- Hugging Face ids


def _from_hf_id(catalog: "Catalog", ref: str, where: str | None) -> "ResolvedModel":
    from llmctl.catalog import ResolvedModel

    want = ref.lower()
    for m in catalog.models:
        if want in {a.lower() for a in (m.hf_id or "", *m.hf_aliases)}:
            return ResolvedModel(reference=ref, kind="hf", arch=m, hf_id=ref)
    snap = _hf_cache_snapshot(ref)
    if snap is not None:
        return _from_hf_folder(catalog, ref, snap, kind="hf-cache", where=where, hf_id=ref)
    base = _base_name(ref)
    quant = _hf_quant_from_name(ref)
    for m in catalog.models:
        names = {_base_name(a) for a in (m.hf_id or "", *m.hf_aliases) if a}
        if base in names:
            return ResolvedModel(
                reference=ref, kind="hf", arch=m, hf_id=ref, hf_quantization=quant,
                notes=(f"{ref} is not in the catalog; using the architecture of {m.hf_id}",),
            )
    raise _unknown(catalog, ref, where)


def _base_name(hf_id: str) -> str:
    name = hf_id.split("/")[-1].lower()
    name = name.replace("meta-llama-", "llama-")
    prev = None
    while prev != name:
        prev = name
        name = _hf_suffixes().sub("", name)
    return name


def _hf_quant_from_name(hf_id: str) -> str | None:
    low = hf_id.lower()
    for word, quant in _HF_QUANT_WORDS.items():
        if re.search(rf"(^|[-_/.]){word}($|[-_.])", low):
            return quant
    return None


# --------------------------------------------------------------------------- Ollama tags


def _from_ollama_tag(catalog: "Catalog", ref: str) -> "ResolvedModel | None":
    from llmctl.catalog import ResolvedModel

    name, _, tag = ref.lower().partition(":")
    name = name.removeprefix("library/").removeprefix("registry.ollama.ai/library/")
    tag = tag or "latest"
    best = None
    for m in catalog.models:
        o = m.ollama or {}
        if name not in [str(n).lower() for n in o.get("names", [])]:
            continue
        if tag == "latest" or tag.split("-")[0] in ("instruct", "chat", "text") or _is_quant_word(catalog, tag):
            if o.get("latest"):
                best = (m, "")
                break
            continue
        for size in o.get("size_tags", []):
            s = str(size).lower()
            if tag == s or tag.startswith(s + "-"):
                if best is None or len(s) > len(best[1]):
                    best = (m, s)
    if best is None:
        return None
    model, size = best
    rest = tag[len(size):].strip("-") if size else ("" if tag == "latest" else tag)
    quant = _quant_suffix(catalog, rest) or (model.ollama or {}).get("default_quantization", "Q4_K_M")
    orig_name, _, orig_tag = ref.strip().partition(":")  # Ollama tags are case-sensitive (q4_K_M)
    canonical = f"{orig_name}:{orig_tag or 'latest'}"
    return ResolvedModel(reference=ref, kind="ollama", arch=model, ollama_tag=canonical,
                         hf_id=model.hf_id, gguf_quantization=quant)


def _is_quant_word(catalog: "Catalog", word: str) -> bool:
    return _quant_suffix(catalog, word) is not None and "-" not in word


def _quant_suffix(catalog: "Catalog", rest: str) -> str | None:
    """The quantization named at the end of an Ollama tag: `instruct-q4_K_M` → Q4_K_M, `fp16` → F16."""
    parts = rest.split("-") if rest else []
    for i in range(len(parts)):
        word = "-".join(parts[i:]).replace("fp16", "f16").replace("bf16", "bf16")
        q = catalog.find_quantization(word)
        if q is not None and q.is_gguf:
            return q.id
    return None


def _from_ollama_hf(catalog: "Catalog", ref: str, where: str | None) -> "ResolvedModel":
    """`hf.co/org/repo-GGUF:Q4_K_M`: Ollama pulling a GGUF repository from Hugging Face."""
    from llmctl.catalog import ResolvedModel

    path, _, quant = ref.split("/", 1)[1].partition(":")
    base = _base_name(path.removesuffix("-GGUF").removesuffix("-gguf"))
    for m in catalog.models:
        if base in {_base_name(a) for a in (m.hf_id or "", *m.hf_aliases) if a}:
            q = catalog.find_quantization(quant or "Q4_K_M")
            return ResolvedModel(reference=ref, kind="ollama", arch=m, ollama_tag=ref, hf_id=m.hf_id,
                                 gguf_quantization=(q.id if q else "Q4_K_M"))
    raise _unknown(catalog, ref, where)


# --------------------------------------------------------------------------- helpers


def _match_arch(catalog: "Catalog", arch: "ModelArch") -> "ModelArch | None":
    """A catalog entry with the same shape (so a local file inherits its name, gating and Ollama data)."""
    for m in catalog.models:
        if (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.num_key_value_heads, m.vocab_size,
                m.intermediate_size) == (arch.num_hidden_layers, arch.hidden_size, arch.num_attention_heads,
                                         arch.num_key_value_heads, arch.vocab_size, arch.intermediate_size):
            return m
    return None


def _with_catalog_facts(arch: "ModelArch", known: "ModelArch") -> "ModelArch":
    from dataclasses import replace

    return replace(arch, id=known.id, display_name=known.display_name, hf_id=known.hf_id, gated=known.gated,
                   params_b=known.params_b, ollama=known.ollama, hf_aliases=known.hf_aliases,
                   sliding_window=arch.sliding_window or known.sliding_window,
                   sliding_window_layers=arch.sliding_window_layers or known.sliding_window_layers)


def known_references(catalog: "Catalog") -> list[str]:
    refs: list[str] = []
    for m in catalog.models:
        refs.append(m.id)
        if m.hf_id:
            refs.append(m.hf_id)
        refs.extend(m.hf_aliases)
        o = m.ollama or {}
        for n in o.get("names", []):
            for s in o.get("size_tags", []):
                refs.append(f"{n}:{s}")
    return refs


def _unknown(catalog: "Catalog", ref: str, where: str | None) -> InputError:
    refs = known_references(catalog)
    low = {r.lower(): r for r in refs}
    close = difflib.get_close_matches(ref.lower(), list(low), n=5, cutoff=0.5)
    hint = ("near matches: " + ", ".join(low[c] for c in close)) if close else (
        "use an Ollama tag (llama3.1:8b), a Hugging Face id (Qwen/Qwen2.5-7B-Instruct), "
        "a .gguf file or a folder with config.json"
    )
    return InputError(f"unknown model {ref!r}", where=where, hint=hint)

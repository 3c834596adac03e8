"""Hugging Face checkpoints: config.json to architecture fields, and safetensors headers to exact bytes.

A safetensors file starts with an 8-byte little-endian header length N, then N bytes of JSON that map
each tensor to its dtype, shape and `data_offsets` [begin, end) in the data that follows
(https://github.com/huggingface/safetensors#format). The weights' bytes are the sum of end - begin,
exact without reading a single weight.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100_000_000  # the safetensors format's own limit on N (safetensors/src/tensor.rs MAX_HEADER_SIZE)


class SafetensorsError(ValueError):
    pass


def hf_quant_name(qcfg: dict[str, Any]) -> str | None:
    method = str(qcfg.get("quant_method") or "").lower()
    if not method:
        return None
    if method == "gptq" and int(qcfg.get("bits", 4)) == 8:
        return "GPTQ-INT8"
    return {"awq": "AWQ", "gptq": "GPTQ", "fp8": "FP8", "compressed-tensors": "FP8", "mxfp4": "MXFP4"}.get(method, method.upper())


def hf_config_to_arch(raw: dict[str, Any]) -> dict[str, Any]:
    """config.json (Hugging Face) → the field names of ModelArch."""
    # multimodal configs keep the language model's shape under text_config (or llm_config)
    inner = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw.get("llm_config")
    cfg = {**raw, **inner} if isinstance(inner, dict) else dict(raw)
    archs = cfg.get("architectures") or raw.get("architectures") or [cfg.get("model_type", "unknown")]
    out: dict[str, Any] = {
        "architecture": archs[0],
        "num_hidden_layers": int(cfg["num_hidden_layers"]),
        "hidden_size": int(cfg["hidden_size"]),
        "intermediate_size": int(cfg.get("intermediate_size") or 4 * int(cfg["hidden_size"])),
        "num_attention_heads": int(cfg["num_attention_heads"]),
        "num_key_value_heads": int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
        "vocab_size": int(cfg["vocab_size"]),
        # transformers' defaults when the key is absent: Gemma configs tie, Llama/Qwen/Mistral ones do not
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", raw.get(
            "tie_word_embeddings", str(archs_hint(cfg, raw)).startswith("Gemma")))),
        "max_position_embeddings": cfg.get("max_position_embeddings"),
        "torch_dtype": cfg.get("torch_dtype") or cfg.get("dtype") or raw.get("torch_dtype"),
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
        out["sliding_window_layers"] = 0.5 if archs[0].startswith(("Gemma2", "GptOss")) else (
            5 / 6 if archs[0].startswith("Gemma3") else 1.0)  # Gemma 3: five local layers per global one
    if window and out.get("sliding_window_layers"):
        out["sliding_window"] = int(window)
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
    if experts:
        out["num_experts"] = int(experts)
        out["experts_per_token"] = int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or 2)
        out["moe_intermediate_size"] = int(cfg.get("moe_intermediate_size") or out["intermediate_size"])
        if cfg.get("intermediate_size_mlp"):
            # Llama 4: intermediate_size is one expert's width, intermediate_size_mlp the dense layers';
            # every MoE layer adds one shared expert, and MoE layers come every `interleave_moe_layer_step`
            # layers (counted here as that many dense layers first: the same parameter totals)
            out["intermediate_size"] = int(cfg["intermediate_size_mlp"])
            out["n_shared_experts"] = 1
            step = int(cfg.get("interleave_moe_layer_step") or 1)
            out["first_k_dense_replace"] = out["num_hidden_layers"] - out["num_hidden_layers"] // step
        for key in ("n_shared_experts", "first_k_dense_replace"):
            if cfg.get(key) is not None:
                out[key] = int(cfg[key])
    for key in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        if cfg.get(key):
            out[key] = int(cfg[key])
    return out


def archs_hint(cfg: dict[str, Any], raw: dict[str, Any]) -> str:
    archs = cfg.get("architectures") or raw.get("architectures") or [str(cfg.get("model_type", "")).capitalize()]
    return str(archs[0])


def header_length(first8: bytes) -> int:
    if len(first8) < 8:
        raise SafetensorsError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", first8[:8])
    if n == 0 or n > MAX_HEADER:
        raise SafetensorsError(f"header length {n} is not plausible")
    return n


def tensor_bytes(header_json: bytes) -> tuple[int, dict[str, int]]:
    """(total bytes, bytes per dtype) of one safetensors header."""
    try:
        head = json.loads(header_json.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError(f"header is not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise SafetensorsError("header is not a JSON object")
    total = 0
    by_dtype: dict[str, int] = {}
    for name, info in head.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            dtype = str(info["dtype"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r} has no valid data_offsets/dtype") from None
        if end < begin:
            raise SafetensorsError(f"tensor {name!r} ends before it begins")
        total += end - begin
        by_dtype[dtype] = by_dtype.get(dtype, 0) + end - begin
    return total, by_dtype


def safetensors_bytes(folder: Path) -> tuple[int | None, str]:
    """Exact bytes of the weights in a local folder: the safetensors headers, or the index's total_size."""
    files = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            data = json.loads(index.read_text())
            wanted = sorted(set(data["weight_map"].values()))
            if all((folder / f).is_file() for f in wanted):
                files = [folder / f for f in wanted]
            else:
                total = int(data["metadata"]["total_size"])
                return total, f"weights: {total} bytes from {index.name}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    if not files:
        return None, ""
    total = 0
    for f in files:
        try:
            with f.open("rb") as fh:
                n = header_length(fh.read(8))
                size, _ = tensor_bytes(fh.read(n))
        except (OSError, SafetensorsError):
            # a partly downloaded or foreign file: fall back to its size minus the header
            try:
                with f.open("rb") as fh:
                    n = header_length(fh.read(8))
                size = f.stat().st_size - 8 - n
            except (OSError, SafetensorsError):
                return None, ""
        total += size
    from llmctl.term import count

    return total, f"weights: {total} bytes from {count(len(files), 'safetensors file')}"

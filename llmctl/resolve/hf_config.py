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
    out.update(_hybrid_fields(cfg, layer_types))
    out.update(_gemma4_fields(cfg, out))
    vision = vision_params(raw.get("vision_config"), out["hidden_size"])
    if vision:
        out["vision_params"] = vision
    return out


def _hybrid_fields(cfg: dict[str, Any], layer_types: list | None) -> dict[str, Any]:
    """Qwen3.5/3.6 and Qwen3-Next: `layer_types` (or every `full_attention_interval`-th layer) says which layers
    are full attention; the others are Gated DeltaNet with the `linear_*` shape."""
    if not cfg.get("linear_num_value_heads"):
        return {}
    layers = int(cfg["num_hidden_layers"])
    if layer_types:
        linear = sum(1 for t in layer_types if str(t) == "linear_attention")
    else:
        interval = int(cfg.get("full_attention_interval") or 4)
        linear = layers - layers // interval
    out: dict[str, Any] = {"linear_attention_layers": linear, "attn_output_gate": bool(cfg.get("attn_output_gate"))}
    for key in ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
                "linear_conv_kernel_dim"):
        if cfg.get(key):
            out[key] = int(cfg[key])
    shared = cfg.get("shared_expert_intermediate_size")
    per_expert = cfg.get("moe_intermediate_size")
    if shared and per_expert and cfg.get("num_experts"):
        out["n_shared_experts"] = max(1, round(int(shared) / int(per_expert)))
    return out


def _gemma4_fields(cfg: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """Gemma 4: global layers with their own head size / KV heads (K = V), KV-shared layers, a MoE block beside the
    dense MLP, per-layer embeddings. Only the keys the config carries."""
    res: dict[str, Any] = {}
    if cfg.get("global_head_dim"):
        res["global_head_dim"] = int(cfg["global_head_dim"])
    if cfg.get("num_global_key_value_heads"):
        res["global_num_key_value_heads"] = int(cfg["num_global_key_value_heads"])
    if cfg.get("attention_k_eq_v"):
        res["attention_k_eq_v"] = True
    if cfg.get("num_kv_shared_layers"):
        res["kv_shared_layers"] = int(cfg["num_kv_shared_layers"])
    if cfg.get("use_double_wide_mlp"):
        res["double_wide_mlp"] = True
    if cfg.get("hidden_size_per_layer_input"):
        res["per_layer_embedding_dim"] = int(cfg["hidden_size_per_layer_input"])
        res["per_layer_vocab_size"] = int(cfg.get("vocab_size_per_layer_input") or out["vocab_size"])
    if cfg.get("enable_moe_block"):
        res["moe_beside_dense"] = True
        res["num_experts"] = int(cfg["num_experts"])
        res["experts_per_token"] = int(cfg.get("top_k_experts") or cfg.get("num_experts_per_tok") or 2)
        res["moe_intermediate_size"] = int(cfg["moe_intermediate_size"])
    return res


def vision_params(vc: Any, text_hidden: int) -> int | None:
    """Parameters of the vision tower and its projector, for the towers whose layout is known:
    Qwen3-VL-style ViTs (here only Qwen3.5/3.6's: LayerNorm, biased qkv/proj, 2-matrix GELU MLP, learned position table,
    patch-merger MLP; transformers models/qwen3_vl modeling_qwen3_vl.py) and GLM-OCR's CogViT (RMSNorm, biased qkv,
    gated SiLU MLP, patch merger into the text width; transformers models/glm4v + glm_ocr). None otherwise."""
    if not isinstance(vc, dict) or not vc.get("depth"):
        return None
    kind = str(vc.get("model_type") or "")
    h, depth, inter = int(vc["hidden_size"]), int(vc["depth"]), int(vc["intermediate_size"])
    out = int(vc.get("out_hidden_size") or text_hidden)
    merge = int(vc.get("spatial_merge_size") or 2)
    patch = int(vc.get("patch_size") or 14) ** 2 * int(vc.get("temporal_patch_size") or 2) * int(vc.get("in_channels") or 3)
    if kind.startswith("qwen3_5"):
        block = 4 * h * h + 4 * h + 2 * h * inter + inter + h + 4 * h
        wide = h * merge * merge
        merger = 2 * h + wide * wide + wide + wide * out + out
        deep = len(vc.get("deepstack_visual_indexes") or [])
        mergers = merger * (1 + deep) + deep * 2 * (wide - h)  # deepstack mergers norm the merged width
        pos = int(vc.get("num_position_embeddings") or 0) * h
        return depth * block + patch * h + h + pos + mergers
    if kind == "glm_ocr_vision":
        bias = bool(vc.get("attention_bias", True))
        block = 4 * h * h + (3 * h if bias else 0) + 3 * h * inter + 2 * h
        merger = h * merge * merge * out + out + 3 * out * inter + 2 * out  # downsample conv + gated merger MLP
        return depth * block + patch * h + h + 2 * h + merger
    return None


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

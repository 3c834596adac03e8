"""Repos and tags for the stand-in Hub and registry (tests/support/model_hub.py)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from support.model_hub import OllamaTag, Repo

DATA = Path(__file__).resolve().parent / "data"
SMOL = "HuggingFaceTB/SmolLM2-135M"
SMOL_SHA = "93efa2f097d58c2a74874c7e644dbc9b0cee75a2"  # any 40-hex commit: the cache key must carry it
SMOL_PARAMS = 134_515_008


def llama_tensors(cfg: dict) -> list[tuple[str, list[int]]]:
    """The tensor names and shapes transformers writes for a LlamaForCausalLM with config `cfg`."""
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // heads
    out = [("model.embed_tokens.weight", [cfg["vocab_size"], h])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "self_attn.q_proj.weight", [heads * hd, h]), (p + "self_attn.k_proj.weight", [kv * hd, h]),
                (p + "self_attn.v_proj.weight", [kv * hd, h]), (p + "self_attn.o_proj.weight", [h, heads * hd]),
                (p + "mlp.gate_proj.weight", [inter, h]), (p + "mlp.up_proj.weight", [inter, h]),
                (p + "mlp.down_proj.weight", [h, inter]), (p + "input_layernorm.weight", [h]),
                (p + "post_attention_layernorm.weight", [h])]
    out.append(("model.norm.weight", [h]))
    if not cfg.get("tie_word_embeddings"):
        out.append(("lm_head.weight", [cfg["vocab_size"], h]))
    return out


def write_safetensors(path: Path, tensors: list[tuple[str, list[int]]], *, dtype: str = "BF16",
                      width: int = 2) -> int:
    """A safetensors file of full size: the real header, then the data region left sparse. Returns data bytes."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * width]}
        offset += n * width
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return offset


def smol_repo(tmp: Path, *, shards: int = 1, gated: bool | str = False, corrupt: bool = False) -> tuple[Repo, int]:
    cfg_bytes = (DATA / "HuggingFaceTB--SmolLM2-135M.config.json").read_bytes()
    cfg = json.loads(cfg_bytes)
    tensors = llama_tensors(cfg)
    files: dict = {"config.json": cfg_bytes, "README.md": b"# SmolLM2\n", "tokenizer.json": b"{}",
                   "generation_config.json": b"{}"}
    total = 0
    if shards == 1:
        path = tmp / "model.safetensors"
        total = write_safetensors(path, tensors)
        files["model.safetensors"] = path
    else:
        per = -(-len(tensors) // shards)
        weight_map = {}
        for i in range(shards):
            name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = tensors[i * per:(i + 1) * per]
            total += write_safetensors(tmp / name, part)
            files[name] = tmp / name
            weight_map.update({t: name for t, _ in part})
        files["model.safetensors.index.json"] = json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}).encode()
    if corrupt:
        bad = tmp / "model.safetensors"
        bad.write_bytes(struct.pack("<Q", 64) + b"{not json" + b" " * 55)
        files = {k: v for k, v in files.items() if not k.startswith("model")}
        files["model.safetensors"] = bad
    return Repo(sha=SMOL_SHA, files=files, gated=gated), total


def ollama_tag(gguf_bytes: bytes, *, file_type: str = "F32") -> tuple[str, OllamaTag]:
    """A registry tag in the shape of the recorded llama3.1:8b answer (gguf-packer-go README): the config
    blob and four layers, the model layer being `gguf_bytes`."""
    def digest(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    template = b"{{ .Prompt }}"
    license_text = b"Example licence."
    params = json.dumps({"stop": ["<|eot_id|>"]}).encode()
    layers = [(gguf_bytes, "application/vnd.ollama.image.model"), (template, "application/vnd.ollama.image.template"),
              (license_text, "application/vnd.ollama.image.license"), (params, "application/vnd.ollama.image.params")]
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                         "model_type": "8.0B", "file_type": file_type, "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [digest(b) for b, _ in layers]}},
                        separators=(",", ":")).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": digest(config), "mediaType": "application/vnd.docker.container.image.v1+json",
                           "size": len(config)},
                "layers": [{"digest": digest(b), "mediaType": m, "size": len(b)} for b, m in layers]}
    blobs = {digest(b): b for b, _ in layers}
    blobs[digest(config)] = config
    return digest(gguf_bytes), OllamaTag(manifest=json.dumps(manifest, indent=2).encode(), blobs=blobs)

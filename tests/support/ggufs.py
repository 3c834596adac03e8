"""Small real GGUF files, written with llama.cpp's own `gguf` package (no weights of any size needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_gguf(path: Path, *, arch: str = "llama", layers: int = 2, hidden: int = 64, ffn: int = 128, heads: int = 2,
               kv: int = 2, vocab: int = 320, merges: int = 0, tied: bool = False, file_type: int | None = None,
               f16: bool = False, split_max_tensors: int = 0, extra_kv: dict | None = None,
               drop: frozenset[str] = frozenset()) -> int:
    """Write a GGUF model; return its exact tensor bytes. `vocab`/`merges` size the tokenizer arrays, which
    sit between the architecture keys and the tensor list, as in real files. `split_max_tensors` writes a
    split file instead, as llama.cpp's gguf-split names it: `<stem>-00001-of-0000N.gguf` beside `path`.
    `extra_kv` adds architecture keys (`<arch>.` is prefixed; ints are uint32, lists arrays); `drop` leaves out
    the named tensors (a layer without attn_v, as Gemma 4's K = V global layers have)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    if file_type is not None:
        w.add_file_type(file_type)
    for key, value in (extra_kv or {}).items():
        if isinstance(value, list):
            w.add_array(f"{arch}.{key}", value)
        else:
            w.add_uint32(f"{arch}.{key}", int(value))
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i:06d}" for i in range(vocab)])
    if merges:
        w.add_token_merges([f"t{i} m{i}" for i in range(merges)])
    rng = np.random.default_rng(0)
    dtype = np.float16 if f16 else np.float32
    total = 0

    def t(name: str, *shape: int) -> None:
        nonlocal total
        if name in drop:
            return
        arr = rng.standard_normal(shape).astype(dtype)
        total += arr.nbytes
        w.add_tensor(name, arr)

    t("token_embd.weight", vocab, hidden)
    for i in range(layers):
        t(f"blk.{i}.attn_q.weight", hidden, hidden)
        t(f"blk.{i}.attn_k.weight", hidden * kv // heads, hidden)
        t(f"blk.{i}.attn_v.weight", hidden * kv // heads, hidden)
        t(f"blk.{i}.attn_output.weight", hidden, hidden)
        t(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        t(f"blk.{i}.ffn_up.weight", ffn, hidden)
        t(f"blk.{i}.ffn_down.weight", hidden, ffn)
        t(f"blk.{i}.attn_norm.weight", hidden)
        t(f"blk.{i}.ffn_norm.weight", hidden)
    t("output_norm.weight", hidden)
    if not tied:
        t("output.weight", vocab, hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total

"""Read a GGUF header from any byte source: a local file, or a remote blob read with range requests.

The layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic `GGUF`, version
(uint32, 2 or 3), tensor count and key/value count (uint64), the key/value pairs, then one entry per
tensor (name, dimensions, ggml type, offset). Tensor bytes follow from each tensor's element count and
its type's block size, taken from the `gguf` package (llama.cpp's own Python package).

Remote blobs: everything before the tensor list can be megabytes of tokenizer arrays (a 128k-token
vocabulary and its merges). `stop_at_tokenizer=True` stops at the first tokenizer array once the
architecture keys are read, so a remote read costs tens of kilobytes; the tensor list (exact bytes,
tied embeddings) is then not read, and the caller says so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class GgufError(ValueError):
    """The bytes are not a GGUF header llmctl can read (bad magic, truncated, absurd counts)."""


class ByteSource(Protocol):
    def read(self, offset: int, size: int) -> bytes: ...


class FileSource:
    def __init__(self, path: Path):
        self.path = path
        self._fh = path.open("rb")
        self.bytes_read = 0

    def read(self, offset: int, size: int) -> bytes:
        self._fh.seek(offset)
        data = self._fh.read(size)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._fh.close()


# value types of the GGUF spec: id -> struct format (None: string / array)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 26  # 64 MiB: no key or value in a real model comes close
_MAX_COUNT = 1 << 24  # keys, tensors, or array items beyond this are a corrupt header
_CHUNK = 1 << 16

# GGUF architecture keys -> config.json names (llama.cpp's gguf-py/gguf/constants.py Keys.LLM / Keys.Attention)
ARCH_KEYS = {
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
    "vocab_size": "vocab_size",
}
_NEEDED = ("block_count", "embedding_length", "attention.head_count")


@dataclass
class GgufHeader:
    version: int
    architecture: str
    kv: dict[str, Any]  # scalar and string values; arrays as their length
    tensor_count: int
    tensors_read: bool = False
    tensor_bytes: int | None = None  # exact sum over tensors; None when the tensor list was not read
    n_elements: int | None = None
    tensor_names: set[str] = field(default_factory=set)
    header_bytes: int = 0  # bytes parsed
    vocab_size: int | None = None

    def config(self) -> dict[str, Any]:
        """The header as ModelArch fields (config.json names)."""
        arch = self.architecture
        out: dict[str, Any] = {"architecture": f"gguf:{arch}"}
        for key, name in ARCH_KEYS.items():
            v = self.kv.get(f"{arch}.{key}")
            if isinstance(v, (list, tuple)):  # per-layer values (e.g. head_count_kv of hybrid models)
                v = max(v) if v else None
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[name] = int(v)
        vocab = self.vocab_size or out.get("vocab_size") or 32000
        out["vocab_size"] = int(vocab)
        if "num_key_value_heads" not in out and "num_attention_heads" in out:
            out["num_key_value_heads"] = out["num_attention_heads"]
        if self.tensors_read:
            out["tie_word_embeddings"] = "output.weight" not in self.tensor_names
            out["attention_qkv_bias"] = "blk.0.attn_q.bias" in self.tensor_names
        out.update(self._layer_kinds(out))
        return out

    def _layer_kinds(self, out: dict[str, Any]) -> dict[str, Any]:
        """Layers of different kinds, as the converters write them (ollama convert/convert_qwen3next.go and
        convert_gemma4.go @ fb307609; llama.cpp reads the same keys):
        - hybrids (qwen35, qwen35moe, qwen3next): `full_attention_interval` and the `ssm.*` shape of the Gated
          DeltaNet layers (state_size = key head dim, group_count = key heads, time_step_rank = value heads,
          inner_size = value heads x value head dim); block_count includes the MTP layers (`nextn_predict_layers`).
        - gemma4: key_length is the global layers' head size, key_length_swa the sliding ones'; head_count_kv and
          sliding_window_pattern are per layer; shared_kv_layers; embedding_length_per_layer_input."""
        arch, kv = self.architecture, self.kv
        res: dict[str, Any] = {}

        def get(key: str) -> Any:
            return kv.get(f"{arch}.{key}")

        interval, inner, v_heads = get("full_attention_interval"), get("ssm.inner_size"), get("ssm.time_step_rank")
        if isinstance(interval, int) and isinstance(inner, int) and isinstance(v_heads, int) and v_heads:
            layers = int(out["num_hidden_layers"]) - int(get("nextn_predict_layers") or 0)
            res.update(num_hidden_layers=layers, linear_attention_layers=layers - layers // max(interval, 1),
                       linear_num_key_heads=int(get("ssm.group_count") or 0),
                       linear_key_head_dim=int(get("ssm.state_size") or 0),
                       linear_num_value_heads=v_heads, linear_value_head_dim=inner // v_heads,
                       linear_conv_kernel_dim=int(get("ssm.conv_kernel") or 4))
        swa_dim, pattern, kv_heads = get("attention.key_length_swa"), get("attention.sliding_window_pattern"), get(
            "attention.head_count_kv")
        if isinstance(swa_dim, int) and isinstance(get("attention.key_length"), int):
            res.update(head_dim=swa_dim, global_head_dim=int(get("attention.key_length")))
            if isinstance(pattern, list) and pattern:
                sliding = [i for i, is_swa in enumerate(pattern) if is_swa]
                full = [i for i, is_swa in enumerate(pattern) if not is_swa]
                res["sliding_window_layers"] = len(sliding) / len(pattern)
                if isinstance(kv_heads, list) and len(kv_heads) == len(pattern):
                    if sliding:
                        res["num_key_value_heads"] = int(kv_heads[sliding[0]])
                    if full:
                        res["global_num_key_value_heads"] = int(kv_heads[full[0]])
                if full and self.tensors_read:
                    res["attention_k_eq_v"] = f"blk.{full[0]}.attn_v.weight" not in self.tensor_names
            if get("attention.shared_kv_layers"):
                res["kv_shared_layers"] = int(get("attention.shared_kv_layers"))
            if get("embedding_length_per_layer_input"):
                res["per_layer_embedding_dim"] = int(get("embedding_length_per_layer_input"))
        return res

    @property
    def file_type(self) -> str | None:
        """llama.cpp's general.file_type as a quantization name (Q4_K_M, Q8_0, F16, ...)."""
        ftype = self.kv.get("general.file_type")
        if ftype is None:
            return None
        try:
            from gguf import LlamaFileType

            name = LlamaFileType(int(ftype)).name.replace("MOSTLY_", "")
        except (ImportError, ValueError):
            return None
        if name == "GUESSED":
            return None
        return {"ALL_F32": "F32", "MXFP4_MOE": "MXFP4"}.get(name, name)


class _Cursor:
    """Sequential reads over a ByteSource, fetched in chunks."""

    def __init__(self, source: ByteSource, budget: int | None):
        self.source = source
        self.pos = 0
        self.buf = b""
        self.buf_start = 0
        self.budget = budget

    def take(self, n: int) -> bytes:
        end = self.pos + n
        while end > self.buf_start + len(self.buf):
            want = max(_CHUNK, end - (self.buf_start + len(self.buf)))
            if self.budget is not None and self.buf_start + len(self.buf) + want > self.budget:
                want = self.budget - (self.buf_start + len(self.buf))
                if want <= 0:
                    raise GgufError(f"header longer than the {self.budget}-byte read limit")
            # keep only what has not been consumed yet
            keep = self.buf[self.pos - self.buf_start:]
            self.buf_start = self.pos
            chunk = self.source.read(self.buf_start + len(keep), want)
            if not chunk:
                raise GgufError(f"truncated: the file ends at byte {self.buf_start + len(keep)} inside the header")
            self.buf = keep + chunk
        out = self.buf[self.pos - self.buf_start:end - self.buf_start]
        self.pos = end
        return out

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > _MAX_STRING:
            raise GgufError(f"a string of {n} bytes at byte {self.pos - 8}: not a GGUF header")
        return self.take(n).decode("utf-8", "replace")


def _value(cur: _Cursor, vtype: int, key: str, keep_arrays: bool) -> Any:
    if vtype in _SCALARS:
        return cur.unpack(_SCALARS[vtype])
    if vtype == _STRING:
        return cur.string()
    if vtype == _ARRAY:
        itype = cur.unpack("<I")
        count = cur.unpack("<Q")
        if count > _MAX_COUNT * 4:
            raise GgufError(f"{key}: an array of {count} items is not plausible")
        if itype in _SCALARS:
            size = struct.calcsize(_SCALARS[itype])
            raw = cur.take(size * count)
            if keep_arrays and count <= 4096:
                return list(struct.unpack(f"<{count}{_SCALARS[itype][1]}", raw))
            return count
        if itype == _STRING:
            for _ in range(count):
                cur.string()
            return count
        if itype == _ARRAY:
            for _ in range(count):
                _value(cur, _ARRAY, key, False)
            return count
        raise GgufError(f"{key}: unknown array item type {itype}")
    raise GgufError(f"{key}: unknown value type {vtype}")


def parse(source: ByteSource, *, stop_at_tokenizer: bool = False, budget: int | None = None,
          need_arch: bool = True) -> GgufHeader:
    """Parse the header of the GGUF at `source`. Raises GgufError for anything that is not one.

    `need_arch=False` reads a later part of a split file (`-00002-of-00003.gguf`): llama.cpp's gguf-split
    writes the model's keys into the first part only, the others hold the split keys and their tensors."""
    cur = _Cursor(source, budget)
    try:
        magic = cur.take(4)
    except GgufError:
        raise GgufError("empty file: not a GGUF model") from None
    if magic != b"GGUF":
        raise GgufError(f"bad magic {magic!r}: not a GGUF file")
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise GgufError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors = cur.unpack("<Q")
    n_kv = cur.unpack("<Q")
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise GgufError(f"{n_tensors} tensors / {n_kv} keys: not a GGUF header")
    kv: dict[str, Any] = {}
    arch = None
    vocab = None
    for _ in range(n_kv):
        key = cur.string()
        vtype = cur.unpack("<I")
        if (stop_at_tokenizer and vtype == _ARRAY and key.startswith("tokenizer.") and arch
                and all(f"{arch}.{k}" in kv for k in _NEEDED)):
            cur.unpack("<I")
            count = cur.unpack("<Q")
            if key == "tokenizer.ggml.tokens":
                vocab = count
            return _header(version, arch, kv, n_tensors, vocab, cur.pos)
        value = _value(cur, vtype, key, keep_arrays=not key.startswith("tokenizer."))
        if key == "tokenizer.ggml.tokens":
            vocab = value
        kv[key] = value
        if key == "general.architecture":
            arch = str(value)
    if not arch and need_arch:
        raise GgufError("no general.architecture key")
    header = _header(version, arch or "", kv, n_tensors, vocab, cur.pos, need_arch)
    total = elements = 0
    names: set[str] = set()
    sizes = _quant_sizes()
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.unpack("<I")
        if n_dims > 8:
            raise GgufError(f"tensor {name!r} has {n_dims} dimensions: not a GGUF header")
        count = 1
        for _d in range(n_dims):
            count *= cur.unpack("<Q")
        ttype = cur.unpack("<I")
        cur.unpack("<Q")  # offset
        if ttype not in sizes:
            raise GgufError(f"tensor {name!r} has unknown ggml type {ttype}")
        block, type_size = sizes[ttype]
        total += count // block * type_size
        elements += count
        names.add(name)
    header.tensors_read = True
    header.tensor_bytes = total
    header.n_elements = elements
    header.tensor_names = names
    header.header_bytes = cur.pos
    return header


def _header(version: int, arch: str | None, kv: dict[str, Any], n_tensors: int, vocab: int | None, pos: int,
            need_arch: bool = True) -> GgufHeader:
    if not arch and need_arch:
        raise GgufError("no general.architecture key before the tokenizer")
    return GgufHeader(version=version, architecture=arch or "", kv=kv, tensor_count=n_tensors, vocab_size=vocab,
                      header_bytes=pos)


def _quant_sizes() -> dict[int, tuple[int, int]]:
    """ggml type id -> (elements per block, bytes per block), from llama.cpp's gguf package."""
    from gguf.constants import GGML_QUANT_SIZES

    return {int(t): v for t, v in GGML_QUANT_SIZES.items()}


def read_file(path: Path) -> GgufHeader:
    src = FileSource(path)
    try:
        return parse(src)
    finally:
        src.close()


def quant_from_bits(bits: float) -> str:
    """A quantization name for a file whose type llama.cpp did not record."""
    table = [(3.6, "Q3_K_M"), (4.7, "Q4_K_M"), (5.2, "Q5_0"), (5.9, "Q5_K_M"), (7.0, "Q6_K"), (9.0, "Q8_0"), (17, "F16")]
    for limit, name in table:
        if bits <= limit:
            return name
    return "F32"

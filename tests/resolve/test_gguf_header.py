"""The GGUF header reader: exact tensor bytes, an early stop before the tokenizer, and clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.resolve import gguf_header
from support.ggufs import write_gguf


def test_exact_tensor_bytes_match_the_gguf_package(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "m.gguf"
    total = write_gguf(path, vocab=500, merges=200, tied=True, f16=True)
    header = gguf_header.read_file(path)
    reader = gguf.GGUFReader(str(path))
    assert header.tensor_bytes == total == sum(int(t.n_bytes) for t in reader.tensors)
    assert header.tensor_count == len(reader.tensors)
    cfg = header.config()
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]) == (2, 64, 128, 500)
    assert cfg["tie_word_embeddings"] is True  # no output.weight tensor


def test_hybrid_layers_are_read_from_a_qwen35_header(tmp_path: Path) -> None:
    """The keys Ollama's and llama.cpp's converters write for Qwen3.5: 4 + 1 MTP blocks, every 4th layer full
    attention, Gated DeltaNet with 2 key heads of 16 and 4 value heads of 16 (inner 64), conv kernel 4."""
    path = tmp_path / "q35.gguf"
    write_gguf(path, arch="qwen35", layers=5, extra_kv={
        "full_attention_interval": 4, "nextn_predict_layers": 1, "ssm.inner_size": 64, "ssm.state_size": 16,
        "ssm.group_count": 2, "ssm.time_step_rank": 4, "ssm.conv_kernel": 4})
    cfg = gguf_header.read_file(path).config()
    assert (cfg["num_hidden_layers"], cfg["linear_attention_layers"]) == (4, 3)
    assert (cfg["linear_num_key_heads"], cfg["linear_key_head_dim"]) == (2, 16)
    assert (cfg["linear_num_value_heads"], cfg["linear_value_head_dim"], cfg["linear_conv_kernel_dim"]) == (4, 16, 4)


def test_gemma4_layer_types_are_read_from_its_header(tmp_path: Path) -> None:
    """Gemma 4's keys (ollama convert/convert_gemma4.go): key_length is the global head size, key_length_swa the
    sliding one; per-layer KV heads and sliding pattern; a global layer without attn_v keeps K = V."""
    path = tmp_path / "g4.gguf"
    write_gguf(path, arch="gemma4", layers=3, heads=2, kv=2, drop=frozenset({"blk.2.attn_v.weight"}), extra_kv={
        "attention.key_length": 64, "attention.key_length_swa": 32, "attention.sliding_window": 512,
        "attention.head_count_kv": [2, 2, 1], "attention.sliding_window_pattern": [True, True, False],
        "attention.shared_kv_layers": 1, "embedding_length_per_layer_input": 8})
    cfg = gguf_header.read_file(path).config()
    assert (cfg["head_dim"], cfg["global_head_dim"]) == (32, 64)
    assert (cfg["num_key_value_heads"], cfg["global_num_key_value_heads"]) == (2, 1)
    assert cfg["sliding_window_layers"] == pytest.approx(2 / 3) and cfg["sliding_window"] == 512
    assert cfg["attention_k_eq_v"] is True and cfg["kv_shared_layers"] == 1 and cfg["per_layer_embedding_dim"] == 8


class _Counting:
    def __init__(self, data: bytes):
        self.data = data
        self.read_bytes = 0

    def read(self, offset: int, size: int) -> bytes:
        out = self.data[offset:offset + size]
        self.read_bytes += len(out)
        return out


def test_stop_at_tokenizer_reads_only_the_architecture(tmp_path: Path) -> None:
    path = tmp_path / "big-vocab.gguf"
    write_gguf(path, vocab=40000, merges=40000)
    full = gguf_header.read_file(path)
    src = _Counting(path.read_bytes())
    early = gguf_header.parse(src, stop_at_tokenizer=True)
    assert not early.tensors_read and early.tensor_bytes is None
    assert early.vocab_size == 40000  # the tokens array's length, read without its strings
    assert early.config()["num_hidden_layers"] == full.config()["num_hidden_layers"] == 2
    assert full.header_bytes > 500_000  # the tokenizer makes the whole header large ...
    assert src.read_bytes < 100_000  # ... and the early stop reads a small part of it


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"GGML" + b"\0" * 60, "bad magic"),
    (b"GGUF" + struct.pack("<I", 7) + b"\0" * 16, "version 7"),
    (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1), "not a GGUF header"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 50), "not a GGUF header"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + struct.pack("<Q", 4) + b"abcd", "truncated"),
])
def test_corrupt_headers_are_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(gguf_header.GgufError, match=message):
        gguf_header.read_file(path)
    with pytest.raises(InputError) as exc:
        Catalog.load().resolve_model(str(path), where="model")
    assert exc.value.exit_code == 2 and "cannot read the GGUF header" in str(exc.value)


def test_truncated_real_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    write_gguf(path, vocab=3000)
    data = path.read_bytes()
    path.write_bytes(data[:20000])  # cut inside the tokenizer
    with pytest.raises(InputError, match="truncated"):
        Catalog.load().resolve_model(str(path))


def test_corrupt_header_through_the_cli_exits_2_without_a_traceback(tmp_path: Path) -> None:
    from support.cli import run_llmctl

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 1 << 50))
    spec = tmp_path / "llmctl.yaml"
    spec.write_text("name: t\nmodel: ./broken.gguf\nworkload:\n  concurrency: 1\n  prompt_tokens: 64\n"
                    "  output_tokens: 16\n  context_length: 1024\nhardware:\n  - gpu: RTX 4090\n    gpus: 1\n")
    r = run_llmctl("plan", str(spec), "--offline")
    assert r.code == 2, r.output
    assert "cannot read the GGUF header" in r.stderr and "Traceback" not in r.output

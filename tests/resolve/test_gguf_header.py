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

"""GPU names, model references (tags, HF ids, GGUF files, HF folders and cache) resolve as people write them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from support.ggufs import write_gguf
from llmctl.catalog import Catalog
from llmctl.errors import InputError


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize("name,expected", [
    ("A100-80GB", "A100-80GB-SXM"), ("a100 80gb", "A100-80GB-SXM"), ("A100 SXM 80GB", "A100-80GB-SXM"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM"), ("NVIDIA A100 80GB PCIe", "A100-80GB-PCIe"),
    ("RTX 4090", "RTX4090-24GB"), ("rtx4090", "RTX4090-24GB"), ("NVIDIA GeForce RTX 4090", "RTX4090-24GB"),
    ("Apple M2 Ultra", "Apple-M2-Ultra"), ("M3 Max", "Apple-M3-Max"), ("Tesla T4", "T4-16GB-PCIe"),
    ("NVIDIA H100 80GB HBM3", "H100-80GB-SXM"), ("L40S", "L40S-48GB-PCIe"), ("MI300X", "MI300X-192GB"),
])
def test_gpu_names_resolve(cat: Catalog, name: str, expected: str) -> None:
    assert cat.gpu(name).id == expected


def test_ambiguous_gpu_lists_candidates(cat: Catalog) -> None:
    with pytest.raises(InputError) as exc:
        cat.gpu("A100")
    msg = str(exc.value)
    assert "ambiguous" in msg and "A100-40GB" in msg and "A100-80GB" in msg


def test_unknown_gpu_is_an_input_error(cat: Catalog) -> None:
    with pytest.raises(InputError) as exc:
        cat.gpu("Voodoo 5 6000")
    assert exc.value.exit_code == 2 and "unknown GPU" in str(exc.value)


def test_catalog_covers_the_calibration_architectures(cat: Catalog) -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((Path(__file__).resolve().parents[2] / "benchmarks/calibration/model_architectures.yaml").read_text())
    for row in data["models"]:
        hf = row["hf_repo"].split(" ")[0]
        m = cat.resolve_model(hf).arch
        for key in ("num_hidden_layers", "hidden_size", "num_key_value_heads", "vocab_size"):
            assert getattr(m, key) == row[key], (hf, key)


@pytest.mark.parametrize("ref,model_id,quant", [
    ("llama3.1:8b", "llama-3.1-8b", "Q4_K_M"),
    ("llama3.1", "llama-3.1-8b", "Q4_K_M"),
    ("qwen2.5:72b-instruct-q8_0", "qwen2.5-72b", "Q8_0"),
    ("llama3.1:70b-instruct-q4_K_M", "llama-3.1-70b", "Q4_K_M"),
    ("llama3.2:1b", "llama-3.2-1b", "Q8_0"),
    ("gpt-oss:20b", "gpt-oss-20b", "MXFP4"),
    ("mixtral:8x7b", "mixtral-8x7b", None),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", None),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct", "llama-3.1-70b", None),
    ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "llama-3.1-8b", None),
])
def test_model_references(cat: Catalog, ref: str, model_id: str, quant: str | None) -> None:
    m = cat.resolve_model(ref)
    assert m.id == model_id
    if quant:
        assert m.gguf_quantization == quant


def test_quantized_hf_repo_names_its_quantization(cat: Catalog) -> None:
    assert cat.resolve_model("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4").hf_quantization == "AWQ"
    assert cat.resolve_model("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8").hf_quantization == "FP8"


def test_ollama_tag_keeps_its_case(cat: Catalog) -> None:
    assert cat.resolve_model("llama3.1:70b-instruct-q4_K_M").ollama_tag == "llama3.1:70b-instruct-q4_K_M"


def test_unknown_model_suggests_near_matches(cat: Catalog) -> None:
    with pytest.raises(InputError) as exc:
        cat.resolve_model("llama3.1:9b", where="model")
    msg = str(exc.value)
    assert "unknown model" in msg and "llama3.1:8b" in msg and msg.startswith("model:")


def test_missing_local_path_is_clear(cat: Catalog, tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        cat.resolve_model(str(tmp_path / "absent.gguf"))
    assert "does not exist" in str(exc.value)


# ---- local files


def test_gguf_header_gives_architecture_and_exact_bytes(cat: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    import gguf

    total = write_gguf(path, file_type=gguf.LlamaFileType.ALL_F32)
    m = cat.resolve_model(str(path))
    assert m.kind == "gguf-file"
    assert m.weight_bytes == total
    a = m.arch
    assert (a.num_hidden_layers, a.hidden_size, a.intermediate_size, a.num_attention_heads, a.vocab_size) == (2, 64, 128, 2, 320)
    assert a.tie_word_embeddings is False
    assert m.gguf_quantization == "F32"


def test_hf_folder_with_only_config_counts_weights_from_architecture(cat: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "torch_dtype": "bfloat16", "tie_word_embeddings": False}))
    m = cat.resolve_model(str(folder))
    assert m.kind == "hf-folder" and m.weight_bytes is None
    assert m.arch.id == "llama-3.1-8b"  # same shape as the catalog entry: inherits its facts
    assert any("counted from the architecture" in n for n in m.notes)


def test_hf_folder_reads_safetensors_headers(cat: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 100}))
    header = json.dumps({"w": {"dtype": "BF16", "shape": [10, 10], "data_offsets": [0, 200]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 200)
    m = cat.resolve_model(str(folder))
    assert m.weight_bytes == 200
    assert m.arch.attention_qkv_bias is True  # Qwen2 always has q/k/v bias


def test_hf_cache_entry_is_found(cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = tmp_path / "hub" / "models--acme--tiny-chat" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({
        "architectures": ["MistralForCausalLM"], "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "sliding_window": 4096}))
    (tmp_path / "hub" / "models--acme--tiny-chat" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny-chat" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    m = cat.resolve_model("acme/tiny-chat")
    assert m.kind == "hf-cache" and m.arch.num_hidden_layers == 4
    assert m.arch.sliding_window == 4096 and m.arch.sliding_window_layers == 1.0


# ---- GPU names people write, and the NVML names nodes report


@pytest.mark.parametrize("name,expected", [
    ("RTX 3080", "RTX3080-10GB"), ("rtx 3080 ti 12gb", "RTX3080Ti-12GB"), ("RTX A6000", "RTXA6000-48GB"),
    ("L20", "L20-48GB-PCIe"), ("MI325X", "MI325X-256GB"), ("MI355X", "MI355X-288GB"), ("H20", "H20-96GB-SXM"),
    ("GH200", "GH200-96GB"), ("GB200", "GB200-186GB"), ("RTX 6000 Ada", "RTX6000Ada-48GB"),
    ("RTX PRO 6000 Blackwell", "RTXPRO6000-96GB"), ("RTX 4070 Ti SUPER", "RTX4070TiSuper-16GB"),
    ("RTX 5080", "RTX5080-16GB"), ("NVIDIA GeForce RTX 4090 24GB", "RTX4090-24GB"), ("H100 PCIe 80 GB", "H100-80GB-PCIe"),
])
def test_more_gpu_names_resolve(cat: Catalog, name: str, expected: str) -> None:
    assert cat.gpu(name).id == expected


@pytest.mark.parametrize("name", ["RTX 9090", "H100 NVL", "A10"])
def test_unknown_gpu_names_nearest_real_cards(cat: Catalog, name: str) -> None:
    with pytest.raises(InputError) as exc:
        cat.gpu(name)
    msg = str(exc.value)
    assert "unknown GPU" in msg and "ambiguous" not in msg and "nearest known:" in msg


def test_ambiguous_only_when_several_cards_match(cat: Catalog) -> None:
    with pytest.raises(InputError, match="ambiguous: it could be RTX6000Ada-48GB, RTXPRO6000-96GB"):
        cat.gpu("RTX 6000")


def test_every_nvidia_gpu_has_its_nvml_name(cat: Catalog) -> None:
    for g in cat.gpus:
        if g.vendor == "nvidia":
            assert g.raw.get("nvml_name") and g.raw.get("nvml_name_source"), g.id
            assert cat.gpu(g.raw["nvml_name"]).raw["nvml_name"] == g.raw["nvml_name"]
            assert cat.gpu(g.raw["nvml_name"].replace(" ", "-")).raw["nvml_name"] == g.raw["nvml_name"]  # node label
        if g.vendor == "amd":
            assert "amd_product_label" in g.raw, g.id

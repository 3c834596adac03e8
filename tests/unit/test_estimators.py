"""Weights, KV cache and engine memory against published facts and measured start-up figures."""

from __future__ import annotations

import pytest

from llmctl.catalog import Catalog
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.memory import GiB, llamacpp_memory, vllm_memory
from llmctl.estimate.weights import count_params, weight_bytes, weight_bytes_per_gpu


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


# Published totals of the bf16 safetensors (model.safetensors.index.json metadata.total_size)
@pytest.mark.parametrize("model,total_bytes", [
    ("llama-3.1-8b", 16_060_522_496),
    ("mistral-7b-v0.3", 14_496_047_104),
])
def test_bf16_weights_match_published_checkpoints(cat: Catalog, model: str, total_bytes: int) -> None:
    est = weight_bytes(cat.model_by_id(model), cat.quantization("BF16"))
    assert abs(est - total_bytes) / total_bytes < 0.005


@pytest.mark.parametrize("model,billions", [
    ("llama-3.1-8b", 8.03), ("llama-3.1-70b", 70.55), ("llama-3.1-405b", 405.85), ("mixtral-8x7b", 46.70),
    ("qwen2.5-7b", 7.62), ("gemma-2-27b", 27.23), ("deepseek-v2-lite", 15.71), ("qwen3-30b-a3b", 30.53),
    ("gpt-oss-20b", 20.91), ("phi-3-mini-4k", 3.82),
])
def test_parameter_counts(cat: Catalog, model: str, billions: float) -> None:
    assert count_params(cat.model_by_id(model)).total / 1e9 == pytest.approx(billions, rel=0.005)


def test_moe_active_parameters(cat: Catalog) -> None:
    p = count_params(cat.model_by_id("mixtral-8x7b"))
    assert p.active / 1e9 == pytest.approx(12.9, rel=0.02)  # "12.9B active" in Mixtral's announcement


def test_awq_keeps_embeddings_in_16_bit(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-8b")
    p = count_params(a)
    awq = weight_bytes(a, cat.quantization("AWQ"))
    assert awq > (p.embeddings + p.lm_head) * 2  # the 16-bit edges alone are ~2.1 GB
    assert awq < weight_bytes(a, cat.quantization("BF16")) / 2.5


def test_tensor_parallel_splits_weights(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-70b")
    total = weight_bytes(a, cat.quantization("BF16"))
    per4 = weight_bytes_per_gpu(a, total, tp=4, pp=1)
    assert total / 4 <= per4 < total / 4 * 1.01


def test_kv_per_token_llama_8b_is_128_kib(cat: Catalog) -> None:
    shape = kv_shape(cat.model_by_id("llama-3.1-8b"), dtype_bytes=2)
    assert shape.bytes_per_token(8192) == 128 * 1024


def test_kv_splits_heads_under_tp_and_halves_with_fp8(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-70b")  # 8 KV heads
    assert kv_shape(a, dtype_bytes=2, tp=8).bytes_per_token(1) == kv_shape(a, dtype_bytes=2).bytes_per_token(1) / 8
    assert kv_shape(a, dtype_bytes=2, tp=16).bytes_per_token(1) == kv_shape(a, dtype_bytes=2, tp=8).bytes_per_token(1)
    assert kv_shape(a, dtype_bytes=1).bytes_per_token(1) == kv_shape(a, dtype_bytes=2).bytes_per_token(1) / 2


def test_mla_kv_is_the_latent_and_ignores_tp(cat: Catalog) -> None:
    a = cat.model_by_id("deepseek-v2-lite")
    per_token = 27 * (512 + 64) * 2
    assert kv_shape(a, dtype_bytes=2).bytes_per_token(4096) == per_token
    assert kv_shape(a, dtype_bytes=2, tp=4).bytes_per_token(4096) == per_token


def test_sliding_window_layers_cap_their_cache(cat: Catalog) -> None:
    a = cat.model_by_id("gemma-2-9b")  # half the layers slide over 4096 tokens
    shape = kv_shape(a, dtype_bytes=2)
    assert shape.bytes_per_token(4096) == shape.bytes_per_token_full
    assert shape.bytes_per_token(8192) == pytest.approx(shape.bytes_per_token_full * 0.75)


# ---- vLLM start-up (benchmarks/calibration/vllm_startup_memory.yaml)


def test_vllm_a05_llama3_8b_on_80gb(cat: Catalog) -> None:
    """A05: Llama-3-8B, TP1, 0.9 utilisation on 79.22 GiB: KV cache 53.29 GiB."""
    a = cat.model_by_id("llama-3.1-8b")
    est = vllm_memory(a, weight_bytes_total=weight_bytes(a, cat.quantization("BF16")), gpu=cat.gpu("H100 SXM"),
                      max_model_len=8192, gpu_memory_utilization=0.9, capacity_gib=79.22,
                      max_num_batched_tokens=8192, max_num_seqs=256)
    assert est.fits
    assert est.kv_cache_gib == pytest.approx(53.29, rel=0.05)


def test_vllm_a10_qwen7b_on_rtx4060_does_not_start(cat: Catalog) -> None:
    """A10: Qwen2.5-7B (5.2 GiB as loaded) at 0.7 on an 8 GiB card: negative KV budget, vLLM refused."""
    a = cat.model_by_id("qwen2.5-7b")
    est = vllm_memory(a, weight_bytes_total=5.2032 * GiB, gpu=cat.gpu("RTX 4060"), max_model_len=4096,
                      gpu_memory_utilization=0.7, capacity_gib=8.0)
    assert not est.fits and est.kv_cache_tokens == 0
    assert "no room for the KV cache" in est.problems[0]


def test_vllm_refuses_when_kv_is_shorter_than_max_model_len(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-8b")
    est = vllm_memory(a, weight_bytes_total=weight_bytes(a, cat.quantization("BF16")), gpu=cat.gpu("RTX 4090"),
                      max_model_len=131072)
    assert not est.fits and "refuses to start" in est.problems[0]


# ---- Ollama (`ollama ps`, benchmarks/calibration/ollama_memory.yaml)


@pytest.mark.parametrize("model,quant,measured_bytes", [
    ("llama-3.2-1b", "Q8_0", 2_350_966_784),
    ("llama-3.2-3b", "Q4_K_M", 3_367_856_128),
    ("mistral-7b-v0.3", "Q4_K_M", 5_778_720_768),
])
def test_ollama_loaded_size_within_10_percent(cat: Catalog, model: str, quant: str, measured_bytes: int) -> None:
    a = cat.model_by_id(model)
    est = llamacpp_memory(a, weight_bytes_total=weight_bytes(a, cat.quantization(quant)), gpu=cat.gpu("RTX 4090"),
                          gpu_count=1, num_ctx=4096, num_parallel=1)
    assert est.fits and est.offloaded_to_cpu_gib == 0
    assert abs(est.total_gib * GiB - measured_bytes) / measured_bytes < 0.10


def test_llamacpp_offloads_layers_when_vram_is_short(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-70b")
    est = llamacpp_memory(a, weight_bytes_total=weight_bytes(a, cat.quantization("Q4_K_M")), gpu=cat.gpu("RTX 4090"),
                          gpu_count=1, num_ctx=4096, num_parallel=1, system_ram_gib=128)
    assert 0 < est.gpu_layers < 80
    assert est.offloaded_to_cpu_gib > 15
    assert est.total_gib <= cat.gpu("RTX 4090").memory_gib


def test_cpu_only_needs_ram(cat: Catalog) -> None:
    a = cat.model_by_id("llama-3.1-70b")
    est = llamacpp_memory(a, weight_bytes_total=weight_bytes(a, cat.quantization("Q4_K_M")), gpu=None,
                          gpu_count=0, num_ctx=4096, num_parallel=1, capacity_gib=12.8)
    assert not est.fits and "RAM" in est.problems[0]

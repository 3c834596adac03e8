"""vLLM memory follows the release it is asked about (default: the pinned image's).

Figures are checked against the start-up logs in benchmarks/calibration/vllm_startup_memory.yaml by
`python -m benchmarks.accuracy`; these tests pin the version logic itself."""

from __future__ import annotations

from llmctl.catalog import Catalog
from llmctl.estimate.memory import GiB, pinned_version, version_tuple, vllm_memory, vllm_version_constants
from llmctl.estimate.weights import weight_bytes

CAT = Catalog.load()


def _est(version: str | None, max_len: int = 20000):
    a = CAT.model_by_id("llama-3.1-8b")
    return vllm_memory(a, weight_bytes_total=weight_bytes(a, CAT.quantization("BF16")), gpu=CAT.gpu("A100-80GB"),
                       max_model_len=max_len, engine_version=version)


def test_version_strings_compare_numerically():
    assert version_tuple("v0.10.1.1") == (0, 10, 1, 1)
    assert version_tuple("0.9") < version_tuple("0.10.0")
    assert version_tuple("latest") == ()


def test_default_is_the_pinned_image_and_every_estimate_names_its_release():
    pinned = pinned_version("vllm")
    assert pinned and version_tuple(pinned) >= (0, 8)
    assert _est(None).engine_version == pinned
    assert _est("0.6.4").engine_version == "0.6.4"
    assert vllm_version_constants("0.6.4")[0]["engine"] == "v0"
    assert vllm_version_constants("0.10.1.1")[0]["engine"] == "v1"


def test_v0_without_chunked_prefill_profiles_the_whole_model_length():
    old, new = _est("0.6.4"), _est("0.10.1.1")
    # V0 batches 20000 tokens in its profiling pass, V1 the 2048-token chunk: V0 leaves less for the KV cache
    assert old.activation_gib > new.activation_gib + 0.5
    assert old.kv_cache_gib < new.kv_cache_gib
    # above 32768 tokens V0 turned chunked prefill on by itself: the pass shrinks back to the chunk
    long_ctx = _est("0.6.4", max_len=65536)
    assert long_ctx.activation_gib < old.activation_gib


def test_moe_models_keep_the_fused_moe_buffers():
    a = CAT.model_by_id("qwen3-30b-a3b")
    e = vllm_memory(a, weight_bytes_total=weight_bytes(a, CAT.quantization("BF16")), gpu=CAT.gpu("H100 SXM"),
                    max_model_len=8192, engine_version="0.10.1.1")
    tokens = 8192  # large-GPU default
    moe = tokens * a.experts_per_token * (3 * a.moe_intermediate_size + a.hidden_size) * 2 / GiB
    assert moe > 0.1
    assert any("fused-MoE" in row[2] for row in e.explain)


def test_flash_attention_keeps_the_attention_scores_out_of_the_graph():
    from llmctl.estimate.memory import flash_attention_default, graph_bytes, llamacpp_memory

    a = CAT.model_by_id("llama-3.1-70b")
    ctx = 16 * 8192  # 16 slots of 8192 tokens
    without, with_fa = graph_bytes(a, ctx), graph_bytes(a, ctx, flash_attention=True)
    assert without > 10 * GiB  # 512 × 131072 × 64 heads × 4 bytes of scores
    assert with_fa < 1 * GiB
    # Ollama 0.12.6 runs llama-family models without flash attention unless told; qwen3 and gpt-oss with it
    assert not flash_attention_default(a)
    assert flash_attention_default(CAT.model_by_id("qwen3-8b"))
    from llmctl.engines import get_engine

    assert get_engine("llama.cpp").flash_attention_default(a)  # llama-server: --flash-attn auto
    q = CAT.quantization("Q4_K_M")
    m = CAT.model_by_id("qwen3-8b")
    many = llamacpp_memory(m, weight_bytes_total=weight_bytes(m, q), gpu=CAT.gpu("RTX 4090"), gpu_count=1,
                           num_ctx=8192, num_parallel=8)
    assert many.fits and many.gpu_layers == many.total_layers and many.activation_gib < 1
    # a quantized KV cache needs flash attention, so it is on whatever the default
    a8 = CAT.model_by_id("llama-3.1-8b")
    q8 = llamacpp_memory(a8, weight_bytes_total=weight_bytes(a8, q), gpu=CAT.gpu("RTX 4090"), gpu_count=1,
                         num_ctx=8192, num_parallel=8, kv_dtype_bytes=1.0)
    f16 = llamacpp_memory(a8, weight_bytes_total=weight_bytes(a8, q), gpu=CAT.gpu("RTX 4090"), gpu_count=1,
                          num_ctx=8192, num_parallel=8)
    assert q8.activation_gib < f16.activation_gib / 4

"""Hybrid linear-attention layers (Qwen3.5/3.6), Gemma 4's per-layer-type attention and per-layer embeddings, and a
counted vision tower (GLM-OCR): parameter counts, KV cache per token, the fixed state per sequence, and what the
engines' memory estimates make of them."""

from __future__ import annotations

import dataclasses

import pytest

from llmctl.catalog import Catalog
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.memory import GiB, hybrid_pages, llamacpp_memory, vllm_memory
from llmctl.estimate.weights import count_params, weight_bytes


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


# Published sizes in the model names (Qwen's "0.8B" .. "122B-A10B", Gemma's "31B", GLM-OCR's "0.9B" without its
# MTP layer): the counter lands on them only when the linear-attention layers, the vision tower, the K = V global
# layers and the per-layer embeddings are each counted with their own shapes.
@pytest.mark.parametrize("model,billions,rel", [
    ("qwen3.5-0.8b", 0.8, 0.08), ("qwen3.5-2b", 2.0, 0.12), ("qwen3.5-4b", 4.0, 0.15), ("qwen3.5-9b", 9.0, 0.05),
    ("qwen3.5-27b", 27.0, 0.02), ("qwen3.5-35b-a3b", 35.0, 0.01), ("qwen3.5-122b-a10b", 122.0, 0.01),
    ("gemma-4-31b", 30.7, 0.01), ("glm-ocr", 1.1, 0.02),
])
def test_parameter_counts_of_the_new_families(cat: Catalog, model: str, billions: float, rel: float) -> None:
    assert count_params(cat.model_by_id(model)).total / 1e9 == pytest.approx(billions, rel=rel)


def test_glm_ocr_counts_its_vision_tower(cat: Catalog) -> None:
    """The model card's CogViT encoder is ~0.4B of the 0.9B; without it the language model alone is ~0.67B."""
    p = count_params(cat.model_by_id("glm-ocr"))
    assert 0.35e9 < p.vision < 0.5e9
    assert p.total - p.vision < 0.7e9
    # the vision tower runs on images, not on every generated token (nor is the embedding lookup a matmul)
    assert p.per_token_flop_params == p.total - p.vision - p.embeddings + p.lm_head


def test_linear_attention_layers_keep_no_per_token_kv(cat: Catalog) -> None:
    """Qwen3.5-27B: 64 layers, 48 of them Gated DeltaNet; only the 16 full-attention layers keep 2 x 4 KV heads x
    256 per token. Counting every layer as full attention would give 4x the cache."""
    a = cat.model_by_id("qwen3.5-27b")
    assert a.num_hidden_layers == 64 and a.linear_attention_layers == 48
    shape = kv_shape(a, dtype_bytes=2)
    assert shape.bytes_per_token(8192) == 16 * 2 * 4 * 256 * 2
    as_if_dense = dataclasses.replace(a, linear_attention_layers=0)
    assert kv_shape(as_if_dense, dtype_bytes=2).bytes_per_token(8192) == 4 * shape.bytes_per_token(8192)


def test_linear_attention_state_is_fixed_per_sequence(cat: Catalog) -> None:
    """Per linear layer: conv (4 - 1) x (2 x 16 x 128 + 48 x 128) + recurrent 48 x 128 x 128 values (vLLM
    gated_delta_net_state_shape); it does not grow with the context and splits over TP ranks."""
    a = cat.model_by_id("qwen3.5-27b")
    per_layer = 3 * (2 * 16 * 128 + 48 * 128) + 48 * 128 * 128
    shape = kv_shape(a, dtype_bytes=2)
    assert shape.state_bytes_per_seq == 48 * per_layer * 2
    assert shape.bytes_for(1000) - shape.bytes_per_token(1000) * 1000 == shape.state_bytes_per_seq
    assert shape.bytes_for(8000, 3) == pytest.approx(3 * shape.bytes_per_sequence(8000))
    assert kv_shape(a, dtype_bytes=2, tp=4).state_bytes_per_seq == pytest.approx(shape.state_bytes_per_seq / 4)
    # llama.cpp keeps the state in F32
    assert kv_shape(a, dtype_bytes=2, state_dtype_bytes=4).state_bytes_per_seq == 2 * shape.state_bytes_per_seq


def test_vllm_concurrency_of_a_hybrid_counts_kv_and_state(cat: Catalog) -> None:
    """The budget serves whole requests of KV + state: far more of them than if every layer kept KV, and fewer
    than the KV alone would allow."""
    a = cat.model_by_id("qwen3.5-27b")
    w = weight_bytes(a, cat.quantization("FP8"))
    args = dict(weight_bytes_total=w, gpu=cat.gpu("H100 SXM"), max_model_len=32768)
    est = vllm_memory(a, **args)
    shape = kv_shape(a, dtype_bytes=2)
    assert est.max_concurrency == pytest.approx(est.kv_cache_gib * GiB / shape.bytes_per_sequence(32768), rel=0.01)
    kv_only = est.kv_cache_gib * GiB / (shape.bytes_per_token(32768) * 32768)
    assert est.max_concurrency < kv_only
    dense = vllm_memory(dataclasses.replace(a, linear_attention_layers=0), **args)
    assert est.max_concurrency > 2.5 * dense.max_concurrency
    assert est.fits and est.kv_cache_tokens >= 32768


def test_vllm_sizes_attention_blocks_to_hold_one_state(cat: Catalog) -> None:
    """Qwen3.5-27B: one state page is (3 x 10240 + 48 x 128 x 128) x 2 B = 1,634,304 B; one token of one attention
    layer is 2 x 4 x 256 x 2 = 4096 B, so vLLM's attention block becomes 16 x ceil(1634304 / 65536) = 400 tokens
    and each state page is padded to 400 x 4096 B."""
    a = cat.model_by_id("qwen3.5-27b")
    shape = kv_shape(a, dtype_bytes=2)
    block, per_seq = hybrid_pages(shape, 32768)
    assert block == 400
    assert per_seq == 48 * 400 * 4096 + 16 * 4096 * 32800  # 82 blocks of 400 cover 32768 tokens
    fp8 = kv_shape(a, dtype_bytes=1)
    assert hybrid_pages(fp8, 32768)[0] == 800  # an fp8 KV cache halves a token's page: twice the tokens per block


def test_llamacpp_holds_one_state_per_parallel_slot(cat: Catalog) -> None:
    a = cat.model_by_id("qwen3.5-9b")
    w = 6.6e9
    one = llamacpp_memory(a, weight_bytes_total=w, gpu=cat.gpu("H100 SXM"), gpu_count=1, num_ctx=4096, num_parallel=1)
    four = llamacpp_memory(a, weight_bytes_total=w, gpu=cat.gpu("H100 SXM"), gpu_count=1, num_ctx=4096, num_parallel=4)
    shape = kv_shape(a, dtype_bytes=2, state_dtype_bytes=4)
    expected = (shape.bytes_per_token(4 * 4096) * 4 * 4096 + 4 * shape.state_bytes_per_seq) / GiB
    assert four.kv_cache_gib == pytest.approx(expected)
    assert four.kv_cache_gib - 4 * one.kv_cache_gib == pytest.approx(0, abs=1e-9)


def test_gemma4_global_layers_have_their_own_head_size_and_k_eq_v(cat: Catalog) -> None:
    """Gemma 4 31B: 50 sliding layers of 16 KV heads x 256, 10 global layers of 4 KV heads x 512 with one tensor
    for K and V. With one head size for all, the global layers would cost 16 x 256 x 2 each instead of 4 x 512."""
    a = cat.model_by_id("gemma-4-31b")
    assert (a.sliding_layers, a.global_head_dim, a.global_num_key_value_heads, a.attention_k_eq_v) == (50, 512, 4, True)
    shape = kv_shape(a, dtype_bytes=2)
    sliding, glob = 2 * 16 * 256 * 2, 1 * 4 * 512 * 2
    assert shape.bytes_per_token(1024) == 50 * sliding + 10 * glob
    assert shape.bytes_per_token(8192) == pytest.approx(50 * sliding * 1024 / 8192 + 10 * glob)
    uniform = dataclasses.replace(a, global_head_dim=None)
    assert kv_shape(uniform, dtype_bytes=2).bytes_per_token(1024) == 60 * sliding
    # the weights: the global layers' q/o are 32 x 512 wide and they have a k but no v projection
    p, pu = count_params(a), count_params(uniform)
    h = a.hidden_size
    assert p.attention - pu.attention == 10 * ((2 * h * 32 * 512 + h * 4 * 512) - (2 * h * 32 * 256 + 2 * h * 16 * 256))


def test_gemma4_kv_shared_layers_keep_no_cache(cat: Catalog) -> None:
    """Gemma 4 E2B: the last 20 of 35 layers reuse earlier layers' KV; the 15 that keep one are 12 sliding
    (1 KV head x 256) and 3 global (1 x 512, K and V)."""
    a = cat.model_by_id("gemma-4-e2b")
    shape = kv_shape(a, dtype_bytes=2)
    assert (shape.window_layers, shape.full_layers) == (12, 3)
    assert shape.bytes_per_token(512) == 12 * 2 * 256 * 2 + 3 * 2 * 512 * 2


def test_gemma4_per_layer_embeddings_stay_16_bit_in_gguf(cat: Catalog) -> None:
    """E4B: the per-layer table (262144 x 42 x 256) is counted, and kept at 16 bit in a K-quant GGUF."""
    a = cat.model_by_id("gemma-4-e4b")
    p = count_params(a)
    assert p.per_layer_embeddings == 262144 * 42 * 256
    q4 = cat.quantization("Q4_K_M")
    rest = p.total - p.per_layer_embeddings
    assert weight_bytes(a, q4) == pytest.approx(rest * q4.bits_per_weight / 8 + p.per_layer_embeddings * 2)


def test_gemma4_moe_sits_beside_a_dense_mlp(cat: Catalog) -> None:
    a = cat.model_by_id("gemma-4-26b-a4b")
    p = count_params(a)
    assert a.moe_beside_dense and a.num_experts == 128
    assert p.mlp_dense == 30 * 3 * a.hidden_size * a.intermediate_size
    assert p.experts == 30 * 128 * 3 * a.hidden_size * a.moe_intermediate_size


def test_existing_dense_models_are_unchanged(cat: Catalog) -> None:
    """The new fields default to nothing: a Llama keeps every layer as full attention with no state."""
    a = cat.model_by_id("llama-3.1-8b")
    shape = kv_shape(a, dtype_bytes=2)
    assert a.attention_layers == 32 and shape.state_bytes_per_seq == 0 and shape.full_token_bytes == 128 * 1024


@pytest.mark.parametrize("model,quant,tag", [
    ("qwen3.5-27b", "Q4_K_M", "qwen3.5:27b"),  # the default: the bare size tag
    ("qwen3.5-27b", "Q8_0", "qwen3.5:27b-q8_0"),
    ("qwen3.5-27b", "F16", "qwen3.5:27b-bf16"),  # the library has no fp16 tag for it
    ("gemma-4-31b", "Q8_0", "gemma4:31b-it-q8_0"),
    ("gemma-4-26b-a4b", "Q8_0", "gemma4:26b-a4b-it-q8_0"),
    ("qwen3.5-35b-a3b", "Q8_0", "qwen3.5:35b-a3b-q8_0"),
    ("glm-ocr", "Q8_0", "glm-ocr:q8_0"),
    ("llama-3.1-8b", "Q4_K_S", "llama3.1:8b-instruct-q4_K_S"),  # the usual SIZE-instruct-QUANT spelling
])
def test_library_tags_are_spelled_as_each_family_does(cat: Catalog, model: str, quant: str, tag: str) -> None:
    """Tag names seen in the registry copy the top-tags list cites (e.g. qwen3.5:27b-q8_0, gemma4:31b-it-q8_0,
    glm-ocr:q8_0, llama3.1:8b-instruct-q4_K_S)."""
    from llmctl.model_refs import library_tag

    assert library_tag(cat.model_by_id(model).ollama, quant) == tag


def test_a_file_without_layer_kinds_inherits_them_from_the_catalog(cat: Catalog) -> None:
    """A GGUF or config of Qwen3.5-0.8B's shape that does not say which layers are linear attention (an older
    converter) is planned with the catalog's layer kinds, not as 24 full-attention layers."""
    from llmctl.model_refs import match_arch, with_catalog_facts

    known = cat.model_by_id("qwen3.5-0.8b")
    bare = dataclasses.replace(known, id="gguf:qwen35", linear_attention_layers=0, linear_num_value_heads=None,
                               linear_num_key_heads=None, linear_key_head_dim=None, linear_value_head_dim=None)
    assert match_arch(cat, bare) is known
    merged = with_catalog_facts(bare, known)
    assert merged.linear_attention_layers == 18 and merged.linear_state_values() == known.linear_state_values()
    assert kv_shape(merged, dtype_bytes=2).state_bytes_per_seq > 0


def test_hf_quantizations_keep_the_vision_tower_in_16_bit(cat: Catalog) -> None:
    """Qwen3.5-27B-FP8 leaves every model.visual.* Linear unconverted: FP8 sizes the tower at 2 bytes a parameter."""
    a = cat.model_by_id("qwen3.5-27b")
    p = count_params(a)
    fp8 = weight_bytes(a, cat.quantization("FP8"))
    kept = p.norms + p.embeddings + p.lm_head + p.vision
    assert fp8 == pytest.approx((p.total - kept) * 1 + kept * 2)


def test_the_state_counts_against_the_kv_cache_when_vllm_admits_requests(cat: Catalog) -> None:
    """vLLM admits requests while cache pages are free; a hybrid's request also holds its state pages, so fewer
    run together than the KV alone would allow."""
    from llmctl.estimate.burst import simulate_burst

    def step(batch: float, context: float, extra: float, extra_ctx: float) -> float:
        return 10.0 + batch * 0.1 + extra * 0.01

    args = dict(requests=40, prompt_tokens=1000, output_tokens=100, budget=2048, max_seqs=64, kv_tokens=20000)
    plain = simulate_burst(step, **args)
    hybrid = simulate_burst(step, **args, state_tokens=1000)
    assert plain.peak_batch > hybrid.peak_batch >= 1
    assert hybrid.peak_batch <= 20000 / (1000 + 1000) + 1
    assert hybrid.duration_ms > plain.duration_ms


def test_a_vllm_hybrid_deployment_carries_its_state(cat: Catalog) -> None:
    from llmctl.planner import Trace, make_plan
    from llmctl.spec import load_spec_text

    text = """name: t
model: qwen3.5:27b
environment: production
workload: {concurrency: 64, prompt_tokens: 1024, output_tokens: 256, context_length: 32768}
hardware:
  - gpu: H100
    gpus: 1
overrides: {backend: vllm}
"""
    trace = Trace()
    plan = make_plan(load_spec_text(text), catalog=cat, trace=trace)
    assert plan.backend == "vllm"
    dep = [c for c in trace.ranked if c.backend == "vllm" and c.feasible and c.quant.id == "BF16"][0].dep
    assert dep.state_tokens == pytest.approx(48 * 400 * 4096 / dep.kv_bytes_per_token)  # 48 padded state pages
    assert dep.max_batch <= dep.kv_cache_tokens / (1024 + 256 + dep.state_tokens) + 1

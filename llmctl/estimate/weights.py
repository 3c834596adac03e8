"""Parameters and weight bytes counted from the architecture, not from a rounded "8B".

Counts: embeddings (and the LM head unless tied), per layer q/k/v/o (k and v with
`num_key_value_heads × head_dim`, plus bias where the family has it) or MLA projections,
gated MLP (× experts for MoE, plus shared experts and the router), and norms.
Hybrid models count their linear-attention (Gated DeltaNet) layers with their own projections; Gemma 4 counts
its global layers with their own head size and KV heads (one K=V tensor when attention_k_eq_v), its per-layer
embedding table, and the MoE block beside the dense MLP. A vision tower counted from vision_config is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmctl.catalog import ModelArch, Quantization
from llmctl.estimate.memo import ObjectMemo


@dataclass(frozen=True)
class ParamCount:
    embeddings: int  # token embedding table
    lm_head: int  # 0 when tied to the embeddings
    attention: int  # all layers
    mlp_dense: int  # all dense MLP layers
    experts: int  # all routed experts, all layers
    shared: int  # shared experts, all layers
    router: int  # MoE gating layers
    norms: int
    active_experts: int  # routed expert parameters used per token
    per_layer_embeddings: int = 0  # Gemma 3n/4 per-layer embedding table (a lookup, like the token embeddings)
    vision: int = 0  # vision tower and projector

    @property
    def total(self) -> int:
        return (self.embeddings + self.lm_head + self.attention + self.mlp_dense + self.experts + self.shared
                + self.router + self.norms + self.per_layer_embeddings + self.vision)

    @property
    def linear(self) -> int:
        """Parameters in the transformer's linear layers (what AWQ/GPTQ/FP8 quantize)."""
        return self.attention + self.mlp_dense + self.experts + self.shared + self.router

    def part(self, name: str) -> int:
        """Parameters of a named part, as quantization profiles list them (`unquantized: [...]`)."""
        return {"embeddings": self.embeddings, "lm_head": self.lm_head, "attention": self.attention,
                "mlp": self.mlp_dense, "moe_experts": self.experts, "shared_experts": self.shared,
                "router": self.router, "norms": self.norms, "per_layer_embeddings": self.per_layer_embeddings,
                "vision": self.vision}[name]

    @property
    def active(self) -> int:
        """Parameters touched per token: what decode compute scales with (MoE: only routed experts)."""
        return self.total - self.experts + self.active_experts

    @property
    def per_token_flop_params(self) -> int:
        """Parameters that multiply each token (the embedding lookups are not matmuls; the vision tower runs
        on images only)."""
        head = self.lm_head or self.embeddings
        return self.active - self.embeddings - self.per_layer_embeddings - self.vision + head


# values computed once per architecture and quantization object and layout: every device and engine
# of a plan asks for them
_BY_OBJECTS = ObjectMemo()


def _remembered(kind: str, a: ModelArch, q: Quantization | None, rest: tuple = ()) -> Any:
    return _BY_OBJECTS.get(a, q, (kind, *rest))


def _remember(kind: str, a: ModelArch, q: Quantization | None, rest: tuple, value: Any) -> Any:
    return _BY_OBJECTS.put(a, q, (kind, *rest), value)


def count_params(a: ModelArch) -> ParamCount:
    """Parameters of `a`, counted once per architecture object (the planner asks thousands of times)."""
    hit = _remembered("params", a, None)
    return hit if hit is not None else _remember("params", a, None, (), _count_params(a))


def _count_params(a: ModelArch) -> ParamCount:
    h = a.hidden_size
    layers = a.num_hidden_layers
    emb = a.vocab_size * h
    head = 0 if a.tie_word_embeddings else a.vocab_size * h

    if a.is_mla:
        nope = a.qk_nope_head_dim or 128
        rope = a.qk_rope_head_dim or 64
        v = a.v_head_dim or nope
        heads = a.num_attention_heads
        if a.q_lora_rank:
            q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * heads * (nope + rope)
        else:
            q = h * heads * (nope + rope)
        kv = h * (a.kv_lora_rank + rope) + a.kv_lora_rank + a.kv_lora_rank * heads * (nope + v)
        o = heads * v * h
        attn_layer = q + kv + o
    else:
        attn_layer = _attention_layer(a, a.head_dim, a.num_key_value_heads, k_eq_v=False)
    attention = (a.attention_layers if not a.is_mla else layers) * attn_layer
    if a.global_head_dim and not a.is_mla:
        # Gemma 4: the non-sliding layers use their own head size and KV heads, with one K=V tensor
        full = a.attention_layers - a.sliding_layers
        glob = _attention_layer(a, a.global_head_dim, a.global_num_key_value_heads or a.num_key_value_heads,
                                k_eq_v=a.attention_k_eq_v)
        attention += full * (glob - attn_layer)
    attention += a.linear_attention_layers * _linear_attention_layer(a)

    dense_layers = layers
    experts_total = shared_total = router = active_experts = 0
    if a.is_moe:
        first_dense = a.first_k_dense_replace or 0
        moe_layers = layers - first_dense
        dense_layers = first_dense
        per_expert = 3 * h * (a.moe_intermediate_size or a.intermediate_size)
        experts_total = moe_layers * a.num_experts * per_expert
        active_experts = moe_layers * (a.experts_per_token or 2) * per_expert
        shared_total = moe_layers * (a.n_shared_experts or 0) * per_expert
        router = moe_layers * h * a.num_experts
        if a.moe_beside_dense:  # Gemma 4 26B: the expert block sits beside a dense MLP in every layer
            dense_layers = layers
    mlp_dense = dense_layers * 3 * h * a.intermediate_size
    if a.double_wide_mlp and a.kv_shared_layers:
        mlp_dense += a.kv_shared_layers * 3 * h * a.intermediate_size
    per_layer_table = 0
    if a.per_layer_embedding_dim:
        ple = a.per_layer_embedding_dim
        per_layer_table = (a.per_layer_vocab_size or a.vocab_size) * layers * ple
        # the model-wide projection into all layers' inputs, then per layer a gate and a projection back
        mlp_dense += h * layers * ple + layers * 2 * h * ple
    norms = layers * 2 * h + h
    return ParamCount(
        embeddings=emb, lm_head=head, attention=attention, mlp_dense=mlp_dense,
        experts=experts_total, shared=shared_total, router=router, norms=norms, active_experts=active_experts,
        per_layer_embeddings=per_layer_table, vision=a.vision_params or 0,
    )


def _attention_layer(a: ModelArch, head_dim: int, kv_heads: int, *, k_eq_v: bool) -> int:
    """q/k/v/o of one softmax-attention layer; Qwen3.5's output gate doubles the q projection; with K = V the
    layer has no v projection."""
    h = a.hidden_size
    q_out = a.num_attention_heads * head_dim
    kv_out = kv_heads * head_dim
    kv_tensors = 1 if k_eq_v else 2
    params = h * q_out * (2 if a.attn_output_gate else 1) + kv_tensors * h * kv_out + q_out * h
    if a.attention_qkv_bias:
        params += q_out + kv_tensors * kv_out
    return params


def _linear_attention_layer(a: ModelArch) -> int:
    """One Gated DeltaNet layer (transformers models/qwen3_next, qwen3_5: Qwen3NextGatedDeltaNet): the q/k/v/z
    input projection, the b/a projection (one value per value head each), the depthwise conv over q/k/v, dt_bias
    and A_log per value head, the gated norm and the output projection."""
    if not a.linear_attention_layers:
        return 0
    h = a.hidden_size
    kh, vh = a.linear_num_key_heads or 0, a.linear_num_value_heads or 0
    kd, vd = a.linear_key_head_dim or 0, a.linear_value_head_dim or 0
    conv_dim = 2 * kh * kd + vh * vd
    return (h * (conv_dim + vh * vd) + h * 2 * vh + conv_dim * (a.linear_conv_kernel_dim or 4) + 2 * vh + vd
            + vh * vd * h)


def sixteen_bit_parts(q: Quantization) -> tuple[str, ...]:
    """The parts (ParamCount.part names) quantization `q` keeps at 16 bit.

    GGUF bits-per-weight figures are averages over a whole model (embeddings and output included), but
    Ollama restores vision/audio/projector tensors ("v.", "a.", "mm.") after llama-quantize and keeps
    per_layer_token_embd at F16 on K-quants (ollama server/create.go isEmbeddedCompatibilityTensor,
    server/quantization.go llamaQuantizeArgs, at fb307609). AWQ/GPTQ/FP8/MXFP4 quantize some parts only:
    those the profile lists in `unquantized` (embeddings, LM head, attention, router …), and norms, stay
    16 bit; a list there wins over the format (MXFP4 GGUFs have one)."""
    if q.unquantized:
        return ("norms", *q.unquantized)
    return ("per_layer_embeddings", "vision") if q.is_gguf else ()


def weight_bytes(a: ModelArch, q: Quantization) -> float:
    """Bytes of the whole checkpoint in quantization `q`: its bits per weight, the parts it keeps at 16 bit
    at 2 bytes. Computed once per architecture and quantization object (every device and engine asks)."""
    hit = _remembered("weights", a, q)
    if hit is not None:
        return hit
    p = count_params(a)
    kept = sum(p.part(name) for name in sixteen_bit_parts(q))
    return _remember("weights", a, q, (), (p.total - kept) * q.bits_per_weight / 8 + kept * 2)


def lookup_bytes_per_gpu(a: ModelArch, q: Quantization, tp: int, pp: int) -> float:
    """Bytes one GPU holds that a decode step does not read whole: tables it looks rows up in — the token
    embeddings when the LM head is a matrix of its own (tied, the head reads them all each step), the
    per-layer embeddings — and the vision tower, which runs on images in prefill only. vLLM splits the
    embeddings across TP ranks (VocabParallelEmbedding); with pipeline stages the heaviest stage may be
    the one with the LM head, so nothing is taken off. Computed once per architecture, quantization
    and layout."""
    if pp > 1:
        return 0.0
    hit = _remembered("lookup", a, q, (tp,))
    if hit is not None:
        return hit
    p = count_params(a)
    kept = sixteen_bit_parts(q)
    parts = ["per_layer_embeddings", "vision"] + (["embeddings"] if p.lm_head else [])
    return _remember("lookup", a, q, (tp,),
                     sum(p.part(part) * (2.0 if part in kept else q.bits_per_weight / 8) for part in parts) / tp)


def weight_bytes_per_gpu(a: ModelArch, total_bytes: float, tp: int, pp: int) -> float:
    """The largest share one GPU holds. vLLM splits every linear layer, the embeddings and the LM head
    across TP ranks; k/v projections are replicated when there are fewer KV heads than ranks. Pipeline
    stages split the layers; the first holds the embeddings, the last the LM head: take the heavier."""
    stage, params = _heaviest_stage(a, tp, pp)
    scale = total_bytes / params  # bytes per parameter, averaged
    return stage * scale


def _heaviest_stage(a: ModelArch, tp: int, pp: int) -> tuple[float, int]:
    """(parameters one GPU of the heaviest stage holds, all parameters or 1): what weight_bytes_per_gpu
    scales by the bytes per parameter, once per architecture object and layout."""
    hit = _remembered("stage", a, None, (tp, pp))
    if hit is not None:
        return hit
    p = count_params(a)
    layer_params = (p.total - p.embeddings - p.lm_head) / a.num_hidden_layers
    kv_replication = 0.0
    if not a.is_mla and tp > a.num_key_value_heads:
        # only softmax-attention layers have k/v projections
        kv_per_layer = 2 * a.hidden_size * a.num_key_value_heads * a.head_dim * a.attention_layers / a.num_hidden_layers
        kv_replication = kv_per_layer * (tp / a.num_key_value_heads - 1) / tp
    layers_per_stage = math.ceil(a.num_hidden_layers / pp)
    edge = p.embeddings + p.lm_head if pp == 1 else max(p.embeddings, p.lm_head)
    stage = layers_per_stage * (layer_params / tp + kv_replication) + edge / tp
    return _remember("stage", a, None, (tp, pp), (stage, max(p.total, 1)))

"""Parameters and weight bytes counted from the architecture, not from a rounded "8B".

Counts: embeddings (and the LM head unless tied), per layer q/k/v/o (k and v with
`num_key_value_heads × head_dim`, plus bias where the family has it) or MLA projections,
gated MLP (× experts for MoE, plus shared experts and the router), and norms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmctl.catalog import ModelArch, Quantization


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

    @property
    def total(self) -> int:
        return (self.embeddings + self.lm_head + self.attention + self.mlp_dense + self.experts + self.shared
                + self.router + self.norms)

    @property
    def linear(self) -> int:
        """Parameters in the transformer's linear layers (what AWQ/GPTQ/FP8 quantize)."""
        return self.attention + self.mlp_dense + self.experts + self.shared + self.router

    def part(self, name: str) -> int:
        """Parameters of a named part, as quantization profiles list them (`unquantized: [...]`)."""
        return {"embeddings": self.embeddings, "lm_head": self.lm_head, "attention": self.attention,
                "mlp": self.mlp_dense, "moe_experts": self.experts, "shared_experts": self.shared,
                "router": self.router, "norms": self.norms}[name]

    @property
    def active(self) -> int:
        """Parameters touched per token: what decode compute scales with (MoE: only routed experts)."""
        return self.total - self.experts + self.active_experts

    @property
    def per_token_flop_params(self) -> int:
        """Parameters that multiply each token (the embedding lookup is not a matmul)."""
        head = self.lm_head or self.embeddings
        return self.active - self.embeddings + head


_COUNTS: dict[int, tuple[ModelArch, ParamCount]] = {}


def count_params(a: ModelArch) -> ParamCount:
    """Parameters of `a`, counted once per architecture object (the planner asks thousands of times)."""
    hit = _COUNTS.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    if len(_COUNTS) > 256:
        _COUNTS.clear()
    pc = _count_params(a)
    _COUNTS[id(a)] = (a, pc)
    return pc


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
        q_out = a.num_attention_heads * a.head_dim
        kv_out = a.num_key_value_heads * a.head_dim
        attn_layer = h * q_out + 2 * h * kv_out + q_out * h
        if a.attention_qkv_bias:
            attn_layer += q_out + 2 * kv_out

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
    mlp_dense = dense_layers * 3 * h * a.intermediate_size
    norms = layers * 2 * h + h
    return ParamCount(
        embeddings=emb, lm_head=head, attention=layers * attn_layer, mlp_dense=mlp_dense,
        experts=experts_total, shared=shared_total, router=router, norms=norms, active_experts=active_experts,
    )


def weight_bytes(a: ModelArch, q: Quantization) -> float:
    """Bytes of the whole checkpoint in quantization `q`.

    GGUF bits-per-weight figures are averages over a whole model (embeddings and output included),
    so they apply to the total. AWQ/GPTQ/FP8/MXFP4 quantize some parts only: those the profile lists
    in `unquantized` (embeddings, LM head, attention, router …) stay 16 bit, as do norms.
    """
    p = count_params(a)
    if not q.unquantized:
        return p.total * q.bits_per_weight / 8
    kept = p.norms + sum(p.part(name) for name in q.unquantized)
    return (p.total - kept) * q.bits_per_weight / 8 + kept * 2


def weight_bytes_per_gpu(a: ModelArch, total_bytes: float, tp: int, pp: int) -> float:
    """The largest share one GPU holds. vLLM splits every linear layer, the embeddings and the LM head
    across TP ranks; k/v projections are replicated when there are fewer KV heads than ranks. Pipeline
    stages split the layers; the first holds the embeddings, the last the LM head: take the heavier."""
    p = count_params(a)
    scale = total_bytes / max(p.total, 1)  # bytes per parameter, averaged
    layer_params = (p.total - p.embeddings - p.lm_head) / a.num_hidden_layers
    kv_replication = 0.0
    if not a.is_mla and tp > a.num_key_value_heads:
        kv_per_layer = 2 * a.hidden_size * a.num_key_value_heads * a.head_dim
        kv_replication = kv_per_layer * (tp / a.num_key_value_heads - 1) / tp
    layers_per_stage = math.ceil(a.num_hidden_layers / pp)
    edge = p.embeddings + p.lm_head if pp == 1 else max(p.embeddings, p.lm_head)
    stage = layers_per_stage * (layer_params / tp + kv_replication) + edge / tp
    return stage * scale

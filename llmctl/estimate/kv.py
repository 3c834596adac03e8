"""KV cache bytes per token, per GPU, and the fixed state per sequence of linear-attention layers.

- Standard attention (MHA/GQA): 2 × ceil(kv_heads / TP) × head_dim × layers × dtype bytes.
- MLA (DeepSeek-V2/V3): layers × (kv_lora_rank + qk_rope_head_dim) × dtype bytes, the same on every TP rank.
- Sliding-window layers hold at most the window, so for a request of L tokens they cost
  min(window, L) / L of a full layer per token.
- Gemma 4: the global layers have their own head size and KV head count and, with attention_k_eq_v, keep one
  tensor for K and V (llama.cpp: n_embd_head_k/v and n_head_kv per layer, src/llama-hparams.cpp); the last
  `kv_shared_layers` layers reuse an earlier layer's cache and keep none (llama.cpp has_kv(il) /
  n_layer_kv_from_start).
- Hybrid models (Qwen3.5/3.6): linear-attention layers keep no per-token KV at all, only a fixed state per
  sequence: conv state + recurrent state (ModelArch.linear_state_values). vLLM gives each running request one
  state page per such layer (vllm/v1/kv_cache_interface.py MambaSpec.page_size_bytes, conv and temporal state in
  the model dtype unless mamba_ssm_cache_dtype is set: mamba_utils.py gated_delta_net_state_dtype); llama.cpp
  allocates it for every one of n_seq_max slots in F32 (src/llama-memory-recurrent.cpp, r/s tensors of
  n_embd_r()/n_embd_s() × mem_size rows; type_r/type_s F32 in llama_model::create_memory).
- Pipeline parallelism splits the layers: a stage holds ceil(layers / PP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmctl.catalog import ModelArch
from llmctl.estimate.memo import ObjectMemo


@dataclass(frozen=True)
class KvShape:
    bytes_per_token_full: float  # per GPU, if every layer that keeps a KV cache kept every token
    full_layers: int  # layers per GPU that keep the whole context
    window_layers: int  # layers per GPU with a sliding window
    window: int | None
    bytes_per_layer_token: float  # per GPU, one sliding (or uniform) layer, one token
    full_token_bytes: float = 0.0  # per GPU, per token, all full-context layers together
    state_bytes_per_seq: float = 0.0  # per GPU, per sequence: linear-attention layers' fixed state
    linear_layers: int = 0  # layers per GPU with a fixed state instead of a KV cache

    def bytes_per_token(self, context: int) -> float:
        """Average KV bytes per token for requests of `context` tokens (sliding layers amortised). The fixed
        per-sequence state of linear-attention layers is not in here: see `bytes_for`."""
        window_bytes = self.bytes_per_token_full - self.full_token_bytes
        if not self.window_layers or not self.window or context <= 0:
            return self.bytes_per_token_full
        frac = min(1.0, self.window / context)
        return self.full_token_bytes + window_bytes * frac

    def bytes_for(self, context: int, sequences: int = 1) -> float:
        return self.bytes_per_token(context) * context * sequences + self.state_bytes_per_seq * sequences

    def bytes_per_sequence(self, context: int) -> float:
        """What one request of `context` tokens holds: its KV plus its fixed state."""
        return self.bytes_per_token(context) * context + self.state_bytes_per_seq


_SHAPES = ObjectMemo()


def kv_shape(a: ModelArch, *, dtype_bytes: float, tp: int = 1, pp: int = 1, state_dtype_bytes: float = 2.0) -> KvShape:
    """KV cache shape per GPU, computed once per (architecture object, dtype, TP, PP, state dtype).
    `state_dtype_bytes`: bytes per value of the linear-attention state (vLLM: the model dtype, 2; llama.cpp: 4)."""
    rest = (dtype_bytes, tp, pp, state_dtype_bytes)
    hit = _SHAPES.get(a, None, rest)
    if hit is not None:
        return hit
    return _SHAPES.put(a, None, rest, _kv_shape(a, dtype_bytes=dtype_bytes, tp=tp, pp=pp,
                                                  state_dtype_bytes=state_dtype_bytes))


def _kv_shape(a: ModelArch, *, dtype_bytes: float, tp: int, pp: int, state_dtype_bytes: float) -> KvShape:
    total = a.num_hidden_layers
    stage = math.ceil(total / pp)
    share = stage / total  # the fraction of each kind of layer one pipeline stage holds
    if a.is_mla:
        per_layer = (a.kv_lora_rank + (a.qk_rope_head_dim or 64)) * dtype_bytes
    else:
        per_layer = 2 * math.ceil(a.num_key_value_heads / tp) * a.head_dim * dtype_bytes
    # layers that keep a cache of their own: not the linear-attention ones, not the KV-shared ones
    cached = a.attention_layers - a.kv_shared_layers
    window_layers = 0
    if a.sliding_window and a.sliding_window_layers:
        sliding = a.sliding_layers
        # KV-shared layers (Gemma 3n/4) are the last ones; count the sliding share of those that keep a cache
        window_layers = round(sliding * cached / max(a.attention_layers, 1))
    full_layers = cached - window_layers
    full_per_layer = per_layer
    if a.global_head_dim and not a.is_mla:
        kv_heads = a.global_num_key_value_heads or a.num_key_value_heads
        tensors = 1 if a.attention_k_eq_v else 2
        full_per_layer = tensors * math.ceil(kv_heads / tp) * a.global_head_dim * dtype_bytes
    if pp == 1:
        w, f, lin = window_layers, full_layers, a.linear_attention_layers
    else:  # a stage holds its share of each kind, rounded up as the engine's split would at worst
        w, f = math.ceil(window_layers * share), math.ceil(full_layers * share)
        lin = math.ceil(a.linear_attention_layers * share)
    conv, recurrent = a.linear_state_values(tp)
    full_bytes = f * full_per_layer
    return KvShape(
        bytes_per_token_full=full_bytes + w * per_layer,
        full_layers=f,
        window_layers=w,
        window=a.sliding_window if w else None,
        bytes_per_layer_token=per_layer,
        full_token_bytes=full_bytes,
        state_bytes_per_seq=lin * (conv + recurrent) * state_dtype_bytes,
        linear_layers=lin,
    )

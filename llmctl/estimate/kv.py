"""KV cache bytes per token, per GPU.

- Standard attention (MHA/GQA): 2 × ceil(kv_heads / TP) × head_dim × layers × dtype bytes.
- MLA (DeepSeek-V2/V3): layers × (kv_lora_rank + qk_rope_head_dim) × dtype bytes, the same on every TP rank.
- Sliding-window layers hold at most the window, so for a request of L tokens they cost
  min(window, L) / L of a full layer per token.
- Pipeline parallelism splits the layers: a stage holds ceil(layers / PP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmctl.catalog import ModelArch


@dataclass(frozen=True)
class KvShape:
    bytes_per_token_full: float  # per GPU, if every layer kept every token
    full_layers: int  # layers per GPU that keep the whole context
    window_layers: int  # layers per GPU with a sliding window
    window: int | None
    bytes_per_layer_token: float  # per GPU, one layer, one token

    def bytes_per_token(self, context: int) -> float:
        """Average bytes per token for requests of `context` tokens (sliding layers amortised)."""
        if not self.window_layers or not self.window or context <= 0:
            return self.bytes_per_token_full
        frac = min(1.0, self.window / context)
        return self.bytes_per_layer_token * (self.full_layers + self.window_layers * frac)

    def bytes_for(self, context: int, sequences: int = 1) -> float:
        return self.bytes_per_token(context) * context * sequences


_SHAPES: dict[tuple, tuple[ModelArch, KvShape]] = {}


def kv_shape(a: ModelArch, *, dtype_bytes: float, tp: int = 1, pp: int = 1) -> KvShape:
    """KV cache shape per GPU, computed once per (architecture object, dtype, TP, PP)."""
    key = (id(a), dtype_bytes, tp, pp)
    hit = _SHAPES.get(key)
    if hit is not None and hit[0] is a:
        return hit[1]
    if len(_SHAPES) > 4096:
        _SHAPES.clear()
    shape = _kv_shape(a, dtype_bytes=dtype_bytes, tp=tp, pp=pp)
    _SHAPES[key] = (a, shape)
    return shape


def _kv_shape(a: ModelArch, *, dtype_bytes: float, tp: int, pp: int) -> KvShape:
    layers = math.ceil(a.num_hidden_layers / pp)
    if a.is_mla:
        per_layer = (a.kv_lora_rank + (a.qk_rope_head_dim or 64)) * dtype_bytes
    else:
        per_layer = 2 * math.ceil(a.num_key_value_heads / tp) * a.head_dim * dtype_bytes
    window_layers = 0
    if a.sliding_window and a.sliding_window_layers:
        window_layers = round(layers * a.sliding_window_layers)
    return KvShape(
        bytes_per_token_full=per_layer * layers,
        full_layers=layers - window_layers,
        window_layers=window_layers,
        window=a.sliding_window if window_layers else None,
        bytes_per_layer_token=per_layer,
    )

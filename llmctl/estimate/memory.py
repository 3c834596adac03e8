"""How each engine spends memory, per GPU: weights, KV cache, activations, overhead.

vLLM claims `capacity × gpu_memory_utilization`, loads the weights, runs a profiling pass of
`max_num_batched_tokens` for the activation peak, subtracts non-torch memory, and gives everything
left to the KV cache; it refuses to start when that holds fewer tokens than `max_model_len`.
llama.cpp (and Ollama, which runs it) needs the GGUF weights, one KV context of
`num_ctx × num_parallel` shared by the slots, a compute-graph buffer and some runtime memory;
when that does not fit in VRAM it keeps some layers on the CPU.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

from llmctl.catalog import GpuProfile, ModelArch
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.memo import ObjectMemo
from llmctl.estimate.weights import count_params, weight_bytes_per_gpu

GiB = 1024**3


@lru_cache(maxsize=1)
def constants() -> dict:
    from llmctl.estimate.constants import checked
    from llmctl.profiles_io import profile

    return checked("estimation.yaml", profile("estimation.yaml"))


def version_tuple(version: str | None) -> tuple[int, ...]:
    """"v0.10.1.1" → (0, 10, 1, 1); anything unparsable → ()."""
    if not version:
        return ()
    m = re.match(r"v?(\d+(?:\.\d+)*)", str(version).strip())
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


@lru_cache(maxsize=8)
def pinned_version(engine: str = "vllm") -> str | None:
    """The version of the image llmctl deploys for `engine` (profiles/engines.yaml, the GPU image tag)."""
    from llmctl.profiles_io import profile

    images = (profile("engines.yaml").get(engine) or {}).get("images") or {}
    tag = str(images.get("gpu") or "").rpartition(":")[2]
    m = re.match(r"v?(\d+\.\d+(?:\.\d+)*)", tag)
    return m.group(1) if m else None


def vllm_version_constants(version: str | None = None) -> tuple[dict, str | None]:
    """(constants, version) for the vLLM release `version` (default: the pinned image's): the defaults
    of estimation.yaml `vllm` with the last `versions` entry not newer than it laid over them.
    Worked out once per version (the planner asks for every candidate)."""
    return _version_constants(version or pinned_version("vllm"))


@lru_cache(maxsize=64)
def _version_constants(version: str | None) -> tuple[dict, str | None]:
    base = constants()["vllm"]
    have = version_tuple(version)
    chosen: dict = {}
    for entry in base.get("versions", []):
        if not have or version_tuple(entry["since"]) <= have:
            chosen = entry
    merged = {k: v for k, v in base.items() if k != "versions"}
    for key, val in chosen.items():
        if key == "since":
            continue
        merged[key] = {**merged[key], **val} if isinstance(val, dict) and isinstance(merged.get(key), dict) else val
    return merged, version


@dataclass
class MemoryEstimate:
    weights_gib: float
    kv_cache_gib: float
    activation_gib: float
    overhead_gib: float
    capacity_gib: float
    kv_cache_tokens: int
    max_concurrency: float
    kv_bytes_per_token: float  # per GPU, at the planned context
    gpus: int  # GPUs one replica uses
    offloaded_to_cpu_gib: float = 0.0
    gpu_layers: int | None = None
    total_layers: int | None = None
    kv_budget_gib: float | None = None  # vLLM: what is left for the KV cache, negative when nothing is
    need_gib: float = 0.0  # llama.cpp: weights + KV + graph + runtime, wherever they end up
    usable_gib: float = 0.0  # llama.cpp: memory of all devices the model may fill
    fits: bool = True
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    explain_source: Callable[[], list[tuple[str, str, str]]] | None = field(default=None, repr=False)
    engine_version: str | None = None  # the engine release whose accounting this follows (vLLM)

    @property
    def explain(self) -> list[tuple[str, str, str]]:
        """(quantity, value, formula) rows for `--explain`."""
        return self.explain_source() if self.explain_source else []

    @property
    def total_gib(self) -> float:
        """Per GPU: everything the engine holds on one device."""
        return self.weights_gib + self.kv_cache_gib + self.activation_gib + self.overhead_gib

    @property
    def replica_gib(self) -> float:
        return self.total_gib * max(self.gpus, 1) + self.offloaded_to_cpu_gib


def _g(x: float) -> str:
    return f"{x:.2f} GiB"


# --------------------------------------------------------------------------- vLLM


_DEFAULTS = ObjectMemo(limit=1024)  # by constants and GPU


def vllm_defaults(gpu: GpuProfile, engine_version: str | None = None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) the OpenAI server picks on this GPU (once per GPU and
    release: every vLLM candidate asks)."""
    c = vllm_version_constants(engine_version)[0]
    hit = _DEFAULTS.get(c, gpu)
    if hit is not None:
        return hit
    large = (gpu.memory_gib or 0) >= c["large_gpu_gib"] and "a100" not in gpu.id.lower()
    size = "large" if large else "small"
    return _DEFAULTS.put(c, gpu, (), (int(c["max_num_batched_tokens"][size]), int(c["max_num_seqs"][size])))


def vllm_memory(
    arch: ModelArch,
    *,
    weight_bytes_total: float,
    gpu: GpuProfile,
    tp: int = 1,
    pp: int = 1,
    max_model_len: int,
    kv_dtype_bytes: float = 2.0,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    capacity_gib: float | None = None,
    engine_version: str | None = None,
    chunked_prefill: bool | None = None,
    _rows: bool = False,
) -> MemoryEstimate:
    """vLLM's memory per GPU, following the accounting of release `engine_version` (default: the pinned
    image's). V0 engines (< 0.8) without chunked prefill — its default up to max_model_len 32768 —
    profile a whole max(max_model_len, 2048)-token batch; V1 always chunks and profiles
    `max_num_batched_tokens`. `_rows`: return the `--explain` rows instead (the estimate keeps its
    inputs and runs again only when a plan is explained)."""
    c, version = vllm_version_constants(engine_version)
    util = gpu_memory_utilization or c["gpu_memory_utilization"]
    default_tokens, default_seqs = vllm_defaults(gpu, version)
    seqs = max_num_seqs or default_seqs
    if c["engine"] == "v0":
        chunked = chunked_prefill if chunked_prefill is not None else max_model_len > c["v0_chunked_prefill_above"]
        default_tokens = default_tokens if chunked else max(max_model_len, 2048)
    tokens = max_num_batched_tokens or default_tokens
    capacity = capacity_gib if capacity_gib is not None else (gpu.memory_gib or 0.0)
    budget = capacity * util

    weights, width, per_token, logits, workspace, moe, act, ranks, non_torch, graphs, shape, per_tok = _vllm_model_terms(
        arch, weight_bytes_total, tp, pp, kv_dtype_bytes, max_model_len, tokens, seqs, c)

    kv_gib = budget - weights - act - non_torch
    block = c["block_size"]
    if shape.state_bytes_per_seq and max_model_len:
        # hybrid: each request also holds one state page per linear-attention layer (MambaSpec), so the budget
        # serves whole requests of KV + state; the tokens are what those requests' attention layers can hold
        block, per_seq = hybrid_pages(shape, max_model_len)
        concurrency = max(kv_gib, 0.0) * GiB / per_seq
        kv_tokens = math.floor(concurrency * max_model_len / block) * block
        blocks = kv_tokens // block
    else:
        blocks = max(0, math.floor(kv_gib * GiB / (per_tok * block))) if kv_gib > 0 else 0
        kv_tokens = blocks * block
        concurrency = kv_tokens / max_model_len if max_model_len else 0.0

    if _rows:
        return _vllm_rows(**locals())  # type: ignore[return-value]
    est = MemoryEstimate(
        weights_gib=weights, kv_cache_gib=max(kv_gib, 0.0), activation_gib=act, overhead_gib=non_torch + graphs,
        capacity_gib=capacity, kv_cache_tokens=kv_tokens, max_concurrency=concurrency,
        kv_bytes_per_token=per_tok, gpus=tp * pp, kv_budget_gib=kv_gib, engine_version=version,
        explain_source=partial(_vllm_explained, arch, weight_bytes_total, gpu, tp, pp, max_model_len, kv_dtype_bytes,
                               gpu_memory_utilization, max_num_seqs, max_num_batched_tokens, capacity_gib,
                               engine_version, chunked_prefill),
    )
    slack = capacity * (1 - util)
    if graphs + c["cuda_context_gib"] > slack:
        est.warnings.append(
            f"CUDA graphs (~{graphs:.1f} GiB) and the CUDA context may not fit in the {slack:.1f} GiB left by "
            f"gpu_memory_utilization {util}; lower it or add --enforce-eager"
        )
    if kv_gib <= 0:
        est.fits = False
        est.problems.append(
            f"vLLM would have no room for the KV cache: {weights:.1f} GiB weights + {act:.1f} GiB activations + "
            f"{non_torch:.1f} GiB runtime exceed the {budget:.1f} GiB budget on {gpu.id}"
        )
    elif kv_tokens < max_model_len or concurrency < 1:
        est.fits = False
        est.problems.append(
            f"KV cache holds {kv_tokens} tokens, fewer than max_model_len {max_model_len}: vLLM refuses to start"
        )
    return est

_MODEL_TERMS = ObjectMemo()  # by architecture, constants and the plain values below


def _vllm_model_terms(arch: ModelArch, weight_bytes_total: float, tp: int, pp: int, kv_dtype_bytes: float,
                      max_model_len: int, tokens: int, seqs: int, c: dict) -> tuple:
    """What vllm_memory holds besides the KV cache, by what it depends on (the model, layout, batch
    sizes and the release's constants, not the device's memory): worked out once for the devices of a
    plan that share them. (weights GiB, MLP width, activation bytes per token, logits bytes, workspace
    GiB, fused-MoE bytes, activation GiB, ranks, non-torch GiB, CUDA graphs GiB, KV shape, KV bytes per
    token at max_model_len)."""
    rest = (weight_bytes_total, tp, pp, kv_dtype_bytes, max_model_len, tokens, seqs)
    hit = _MODEL_TERMS.get(arch, c, rest)
    if hit is not None:
        return hit
    weights = weight_bytes_per_gpu(arch, weight_bytes_total, tp, pp) / GiB

    width = _mlp_width(arch)
    per_token = (2 * width + 2 * arch.hidden_size) * 2 / tp
    logits = seqs * arch.vocab_size * 4
    workspace = c["activation"]["workspace_gib"]
    moe = _moe_workspace(arch, tokens, tp)
    act = (tokens * per_token + logits + moe) / GiB + workspace

    ranks = tp * pp
    non_torch = c["non_torch"]["base_gib"] + (c["non_torch"]["nccl_gib"] if ranks > 1 else 0.0)
    graphs = min(c["cuda_graphs"]["max_gib"], c["cuda_graphs"]["base_gib"] + c["cuda_graphs"]["per_extra_rank_gib"] * (tp - 1))

    shape = kv_shape(arch, dtype_bytes=kv_dtype_bytes, tp=tp, pp=pp)
    per_tok = shape.bytes_per_token(max_model_len)
    return _MODEL_TERMS.put(arch, c, rest,
                            (weights, width, per_token, logits, workspace, moe, act, ranks, non_torch, graphs, shape, per_tok))


def _vllm_explained(arch, weight_bytes_total, gpu, tp, pp, max_model_len, kv_dtype_bytes, gpu_memory_utilization,
                    max_num_seqs, max_num_batched_tokens, capacity_gib, engine_version,
                    chunked_prefill) -> list[tuple[str, str, str]]:
    """vllm_memory's `--explain` rows for the arguments an estimate kept (positional: no dict per estimate)."""
    return vllm_memory(  # type: ignore[return-value]
        arch, weight_bytes_total=weight_bytes_total, gpu=gpu, tp=tp, pp=pp, max_model_len=max_model_len,
        kv_dtype_bytes=kv_dtype_bytes, gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens, capacity_gib=capacity_gib, engine_version=engine_version,
        chunked_prefill=chunked_prefill, _rows=True)


def hybrid_pages(shape, max_model_len: int) -> tuple[int, float]:
    """(attention block size in tokens, bytes one request of max_model_len holds) for a hybrid model in vLLM.
    vLLM makes an attention page at least as large as one linear-attention state: the block size becomes
    16 × ceil(state page / (16 × one token's KV in one layer)) and the state page is padded up to the attention
    page (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig @ 0144dd5b). A request then holds
    one padded page per linear-attention layer and ceil(max_model_len / block) blocks per attention layer."""
    layer_token = shape.bytes_per_layer_token  # one attention layer, one token
    attention_layers = shape.full_layers + shape.window_layers
    state_page = shape.state_bytes_per_seq / max(shape.linear_layers, 1)
    block = 16 * math.ceil(state_page / (16 * layer_token)) if layer_token else 16
    tokens = math.ceil(max_model_len / block) * block
    kv = shape.bytes_per_token(tokens) * tokens if attention_layers else 0.0
    return block, kv + shape.linear_layers * block * layer_token


def _moe_workspace(arch: ModelArch, tokens: int, tp: int) -> float:
    """Bytes of the fused-MoE kernel's intermediate buffers in the profiling pass: per token and routed
    expert, the gate/up output (2 × moe_intermediate / TP), the activated half (moe_intermediate / TP)
    and the expert output (hidden), bf16 (vllm/model_executor/layers/fused_moe/fused_moe.py,
    intermediate_cache1..3). Dense models: 0."""
    if not arch.is_moe:
        return 0.0
    inter = (arch.moe_intermediate_size or arch.intermediate_size) / tp
    return tokens * (arch.experts_per_token or 2) * (3 * inter + arch.hidden_size) * 2


def _mlp_width(arch: ModelArch) -> int:
    if arch.is_moe:
        per = arch.moe_intermediate_size or arch.intermediate_size
        return per * ((arch.experts_per_token or 2) + (arch.n_shared_experts or 0))
    return arch.intermediate_size


def _kv_formula(arch: ModelArch, dtype_bytes: float, tp: int, pp: int, context: int) -> str:
    layers = math.ceil((arch.attention_layers - arch.kv_shared_layers) / pp)  # the layers that keep a cache
    if arch.is_mla:
        base = f"MLA: {layers} layers × ({arch.kv_lora_rank} + {arch.qk_rope_head_dim}) × {dtype_bytes:g} B"
    else:
        base = (f"2 × ceil({arch.num_key_value_heads} kv_heads / TP {tp}) × {arch.head_dim} head_dim × "
                f"{layers} layers × {dtype_bytes:g} B")
    if arch.global_head_dim and not arch.is_mla:
        kv = arch.global_num_key_value_heads or arch.num_key_value_heads
        base += (f"; global layers: {'1 (K = V)' if arch.attention_k_eq_v else '2'} × ceil({kv} kv_heads / TP {tp}) × "
                 f"{arch.global_head_dim} head_dim")
    if arch.kv_shared_layers:
        base += f"; the last {arch.kv_shared_layers} layers reuse earlier layers' KV"
    if arch.sliding_window and arch.sliding_window_layers:
        base += (f"; {arch.sliding_window_layers:.0%} of layers keep only a {arch.sliding_window}-token window "
                 f"(amortised over {context} tokens)")
    if arch.is_hybrid:
        conv, rec = arch.linear_state_values(tp)
        base += (f"; {arch.linear_attention_layers} linear-attention layers keep no KV, only a fixed state of "
                 f"{conv} + {rec} values per sequence each")
    return base


# --------------------------------------------------------------------------- llama.cpp / Ollama


def graph_bytes(arch: ModelArch, context_total: int, num_batch: int | None = None, flash_attention: bool = False) -> float:
    """Compute-graph buffer as Ollama estimates it for llama-family models. Without flash attention the
    attention scores of one layer — batch × context × heads fp32 values — are materialised; with it only
    the mask (batch × context) is, and the buffer is set by the hidden states or the logits."""
    b = num_batch or constants()["llama_cpp"]["num_batch"]
    h, heads, vocab = arch.hidden_size, arch.num_attention_heads, arch.vocab_size
    scores = 0 if flash_attention else heads
    return max(4 * b * (1 + 4 * h + context_total * (1 + scores)), 4 * b * (h + vocab))


def flash_attention_default(arch: ModelArch) -> bool:
    """Ollama's own default: flash attention only for the architectures it lists (estimation.yaml).
    llama-server's default (`--flash-attn auto`: on where the GPU has it) is its engine's to pass."""
    return arch.architecture in constants()["llama_cpp"]["ollama_flash_attention_architectures"]


def llamacpp_memory(
    arch: ModelArch,
    *,
    weight_bytes_total: float,
    gpu: GpuProfile | None,
    gpu_count: int,
    num_ctx: int,
    num_parallel: int,
    kv_dtype_bytes: float = 2.0,
    capacity_gib: float | None = None,
    system_ram_gib: float | None = None,
    flash_attention: bool | None = None,
) -> MemoryEstimate:
    """Memory of one llama.cpp server (Ollama runner). `capacity_gib` is the memory of ONE device
    (for Apple: the unified memory the GPU may wire; for CPU: RAM usable by the model).
    `flash_attention`: None follows Ollama's default for this model (`flash_attention_default`);
    a quantized KV cache needs it on."""
    return LlamaCppSizer(
        arch, weight_bytes_total=weight_bytes_total, gpu=gpu, gpu_count=gpu_count, num_ctx=num_ctx,
        kv_dtype_bytes=kv_dtype_bytes, capacity_gib=capacity_gib, system_ram_gib=system_ram_gib,
        flash_attention=flash_attention,
    ).estimate(num_parallel)


class LlamaCppSizer:
    """`llamacpp_memory` for one server's settings at any number of slots: what does not depend on the
    slots is worked out once, for the planner's slot search (several counts per candidate). `fit`
    gives the figures the search compares, `estimate` the whole estimate; both from the same arithmetic."""

    __slots__ = ("arch", "weight_bytes_total", "gpu", "num_ctx", "kv_dtype_bytes", "system_ram_gib", "flash_attention",
                 "shape", "weights", "runtime", "devices", "capacity_gib", "usable", "on_gpu", "edge_share", "needs")

    def __init__(self, arch: ModelArch, *, weight_bytes_total: float, gpu: GpuProfile | None, gpu_count: int,
                 num_ctx: int, kv_dtype_bytes: float = 2.0, capacity_gib: float | None = None,
                 system_ram_gib: float | None = None, flash_attention: bool | None = None) -> None:
        c = constants()["llama_cpp"]
        self.arch, self.weight_bytes_total, self.gpu, self.num_ctx = arch, weight_bytes_total, gpu, num_ctx
        self.kv_dtype_bytes, self.system_ram_gib = kv_dtype_bytes, system_ram_gib
        self.weights = weight_bytes_total / GiB
        # recurrent state: F32, one slot per parallel sequence (llama.cpp src/llama-memory-recurrent.cpp)
        self.shape = kv_shape(arch, dtype_bytes=kv_dtype_bytes, state_dtype_bytes=4.0)
        if flash_attention is None:
            flash_attention = kv_dtype_bytes < 2 or flash_attention_default(arch)
        self.flash_attention = flash_attention
        self.runtime = c["runtime_gib"]
        self.devices = max(gpu_count, 1)
        if capacity_gib is None:
            capacity_gib = (gpu.memory_gib or 0.0) if gpu is not None else (system_ram_gib or 0.0)
        self.capacity_gib = capacity_gib
        usable = capacity_gib * self.devices
        if gpu is not None and gpu.kind == "gpu":
            usable *= c["gpu_memory_fraction"]
        self.usable = usable
        self.on_gpu = gpu is not None and gpu.kind != "cpu"
        self.edge_share: float | None = None  # share of the weights in the embeddings and LM head (_offload)
        self.needs: dict[int, tuple[int, float, float, float]] = {}  # _need by slots: fit, then estimate, ask

    def _need(self, num_parallel: int) -> tuple[int, float, float, float]:
        """(context tokens, KV, graph, need) in GiB: what the server holds wherever it ends up."""
        hit = self.needs.get(num_parallel)
        if hit is not None:
            return hit
        ctx_total = self.num_ctx * num_parallel
        shape = self.shape
        kv = (shape.bytes_per_token(ctx_total) * ctx_total + shape.state_bytes_per_seq * num_parallel) / GiB
        graph = graph_bytes(self.arch, ctx_total, flash_attention=self.flash_attention) / GiB
        need = self.needs[num_parallel] = ctx_total, kv, graph, self.weights + kv + graph + self.runtime
        return need

    def fit(self, num_parallel: int) -> tuple[bool, float, float, int]:
        """(fits, need_gib, usable_gib, gpu_layers) of the estimate for `num_parallel` slots."""
        _, kv, graph, need = self._need(num_parallel)
        usable = self.usable
        if not self.on_gpu:
            return need <= usable, need, usable, 0
        if need <= usable:
            return True, need, usable, self.arch.num_hidden_layers
        *_, gpu_layers, _, _, offloaded = self._offload(kv, graph, need)
        return not self._spills(max(0.0, offloaded)), need, usable, gpu_layers

    def _offload(self, kv: float, graph: float, need: float) -> tuple[float, float, int, float, float, float]:
        """Not everything fits on the GPU: whole layers (weights and their KV) go to the CPU. (share of
        the weights in the embeddings and LM head, GiB per layer, layers on the GPU, GiB of weights and
        of KV on the GPU, GiB offloaded)."""
        weights, runtime, layers = self.weights, self.runtime, self.arch.num_hidden_layers
        edge_share = self.edge_share
        if edge_share is None:  # once per sizer: the search may offload at several slot counts
            p = count_params(self.arch)
            edge_share = self.edge_share = (p.embeddings + p.lm_head) / max(p.total, 1)
        per_layer = (weights * (1 - edge_share) + kv) / layers
        room = self.usable - graph - runtime - weights * edge_share
        gpu_layers = max(0, min(layers, math.floor(room / per_layer))) if per_layer > 0 else 0
        on_gpu_weights = weights * edge_share + per_layer * gpu_layers - kv * gpu_layers / layers
        on_gpu_kv = kv * gpu_layers / layers
        offloaded = need - (on_gpu_weights + on_gpu_kv + graph + runtime)
        return edge_share, per_layer, gpu_layers, on_gpu_weights, on_gpu_kv, offloaded

    def _spills(self, offloaded_gib: float) -> bool:
        """The offloaded layers need more RAM than the node has free."""
        ram = self.system_ram_gib
        return ram is not None and offloaded_gib > ram * constants()["llama_cpp"]["cpu_memory_fraction"]

    def estimate(self, num_parallel: int, device: GpuProfile | None = None) -> MemoryEstimate:
        """The estimate for `num_parallel` slots; `device`: the one its `--explain` rows name, when the
        sizer serves several devices alike in kind and memory (default: its own)."""
        ctx_total, kv, graph, need = self._need(num_parallel)
        gpu, devices, layers, usable = self.gpu, self.devices, self.arch.num_hidden_layers, self.usable
        weights, runtime = self.weights, self.runtime
        est = MemoryEstimate(
            weights_gib=weights / devices, kv_cache_gib=kv / devices, activation_gib=graph, overhead_gib=runtime,
            capacity_gib=self.capacity_gib, kv_cache_tokens=ctx_total, max_concurrency=float(num_parallel),
            kv_bytes_per_token=self.shape.bytes_per_token(ctx_total), gpus=devices if gpu is not None else 0,
            gpu_layers=layers if gpu is not None else 0, total_layers=layers, need_gib=need, usable_gib=usable,
            explain_source=partial(LlamaCppSizer.rows, self, num_parallel, device),
        )
        if not self.on_gpu:
            est.gpus = 0
            est.gpu_layers = 0
            if need > usable:
                est.fits = False
                est.problems.append(f"needs {need:.1f} GiB of RAM, {usable:.1f} GiB usable")
            return est
        if need <= usable:
            return est
        _, _, gpu_layers, on_gpu_weights, on_gpu_kv, offloaded = self._offload(kv, graph, need)
        est.weights_gib = on_gpu_weights / devices
        est.kv_cache_gib = on_gpu_kv / devices
        est.gpu_layers = gpu_layers
        est.offloaded_to_cpu_gib = max(0.0, offloaded)
        est.warnings.append(
            f"only {gpu_layers} of {layers} layers fit on the GPU; {est.offloaded_to_cpu_gib:.1f} GiB run on the CPU "
            "and decoding slows to the speed of system memory"
        )
        if self._spills(est.offloaded_to_cpu_gib):
            est.fits = False
            est.problems.append(f"{est.offloaded_to_cpu_gib:.1f} GiB would spill to RAM, more than the node has free")
        return est

    def rows(self, num_parallel: int, device: GpuProfile | None = None) -> list[tuple[str, str, str]]:
        """The arithmetic behind `estimate(num_parallel)`, formatted for `--explain` (only when asked);
        `device`: the one to name (default: the sizer's own)."""
        ctx_total, kv, graph, need = self._need(num_parallel)
        split: dict = {}
        if self.on_gpu and need > self.usable:
            _, per_layer, gpu_layers, *_ = self._offload(kv, graph, need)
            split = dict(gpu_layers=gpu_layers, layers=self.arch.num_hidden_layers, per_layer=per_layer)
        return _llamacpp_rows(
            arch=self.arch, c=constants()["llama_cpp"], capacity_gib=self.capacity_gib, ctx_total=ctx_total,
            devices=self.devices, flash_attention=self.flash_attention, gpu=device or self.gpu, graph=graph, kv=kv,
            kv_dtype_bytes=self.kv_dtype_bytes, need=need, num_ctx=self.num_ctx, num_parallel=num_parallel,
            runtime=self.runtime, shape=self.shape, usable=self.usable, weights=self.weights, **split)


def _vllm_rows(*, act, arch, block, blocks, budget, c, capacity, concurrency, graphs, kv_dtype_bytes, kv_gib, kv_tokens,
               max_model_len, moe, non_torch, per_tok, pp, ranks, seqs, tokens, tp, util, version, weight_bytes_total,
               weights, width, workspace, shape=None, per_seq=None, **_: object) -> list[tuple[str, str, str]]:
    """The arithmetic behind vllm_memory's numbers (called with its locals), formatted only for `--explain`."""
    nt = c["non_torch"]
    rows = [
        ("budget", _g(budget), f"{capacity:.2f} GiB capacity × {util} gpu_memory_utilization"),
        ("weights", _g(weights), f"{weight_bytes_total / GiB:.2f} GiB checkpoint split over TP={tp} × PP={pp} "
         "(layers, embeddings and LM head split by rank; k/v replicated when kv_heads < TP)"),
        ("activation peak", _g(act),
         f"{tokens} batched tokens × (2×{width} MLP + 2×{arch.hidden_size} hidden) × 2 B / TP {tp}"
         f" + {seqs} seqs × {arch.vocab_size} vocab × 4 B logits + {workspace} GiB workspace"
         + (f" + {moe / GiB:.2f} GiB fused-MoE buffers" if moe else "")
         + f" (vLLM {version or 'pinned'}, {c['engine'].upper()} accounting)"),
        ("non-torch memory", _g(non_torch),
         f"{nt['base_gib']} GiB CUDA/cuBLAS" + (f" + {nt['nccl_gib']} GiB NCCL buffers" if ranks > 1 else "")),
        ("CUDA graphs", _g(graphs), "captured outside the utilisation budget, in its slack"),
        ("KV cache", _g(kv_gib),
         f"{budget:.2f} budget − {weights:.2f} weights − {act:.2f} activation − {non_torch:.2f} non-torch"),
        ("KV bytes per token", f"{per_tok / 1024:.1f} KiB", _kv_formula(arch, kv_dtype_bytes, tp, pp, max_model_len)),
    ]
    if per_seq is not None and shape is not None:  # hybrid: whole requests of KV + linear-attention state
        rows += [
            ("state per request", f"{shape.linear_layers * block * shape.bytes_per_layer_token / 2**20:.1f} MiB",
             f"{shape.linear_layers} linear-attention layers × one state page, padded to a {block}-token attention "
             "block (vLLM sizes attention blocks to hold one state)"),
            ("max concurrency", f"{concurrency:.2f}",
             f"KV GiB / ({per_seq / 2**20:.1f} MiB per request: state + {max_model_len} tokens of KV)"),
            ("KV cache tokens", f"{kv_tokens}", f"{concurrency:.2f} requests × {max_model_len} max_model_len"),
        ]
        return rows
    rows += [
        ("KV cache tokens", f"{kv_tokens}",
         f"{blocks} blocks of {block} tokens = KV GiB / ({per_tok / 1024:.1f} KiB × {block})"),
        ("max concurrency", f"{concurrency:.2f}", f"{kv_tokens} KV tokens / {max_model_len} max_model_len"),
    ]
    return rows


def _runtime_what(gpu) -> str:
    """What the fixed runtime term stands for on this device (GPU runtime's minimum, or host buffers)."""
    if gpu is None or gpu.kind == "cpu":
        return "runtime buffers in system memory"
    if gpu.kind == "apple":
        return "Metal runtime buffers in unified memory"
    return f"{'ROCm' if gpu.vendor == 'amd' else 'CUDA'} minimum memory and runtime buffers"


def _llamacpp_rows(*, arch, c, capacity_gib, ctx_total, devices, flash_attention, gpu, graph, kv, kv_dtype_bytes, need,
                   num_ctx, num_parallel, runtime, shape, usable, weights, gpu_layers=None, layers=None, per_layer=None,
                   **_: object) -> list[tuple[str, str, str]]:
    """The arithmetic behind llamacpp_memory's numbers (called with its locals), formatted only for `--explain`."""
    rows = [
        ("weights", _g(weights), "GGUF tensor bytes (from the file header when the file is at hand)"),
        ("KV cache", _g(kv), f"{ctx_total} tokens (num_ctx {num_ctx} × num_parallel {num_parallel}) × "
         f"{shape.bytes_per_token(ctx_total) / 1024:.1f} KiB"
         + (f" + {num_parallel} slots × {shape.state_bytes_per_seq / 2**20:.1f} MiB linear-attention state (F32)"
            if shape.state_bytes_per_seq else "")
         + "; " + _kv_formula(arch, kv_dtype_bytes, 1, 1, ctx_total)),
        ("compute graph", _g(graph),
         f"max(4·{c['num_batch']}·(1 + 4·{arch.hidden_size} + {ctx_total}·(1 + "
         + ("0 heads: flash attention keeps no scores" if flash_attention else f"{arch.num_attention_heads} heads")
         + f")), 4·{c['num_batch']}·({arch.hidden_size} + {arch.vocab_size})) bytes"),
        ("runtime", _g(runtime), f"{_runtime_what(gpu)} (fitted on `ollama ps`)"),
        ("needed", _g(need), "weights + KV + graph + runtime"),
        ("usable memory", _g(usable), f"{devices} × {capacity_gib:.2f} GiB"
         + (f" × {c['gpu_memory_fraction']}" if gpu is not None and gpu.kind == "gpu" else "")),
    ]
    if per_layer is not None:
        rows.append(("GPU layers", f"{gpu_layers}/{layers}",
                     f"floor(({usable:.2f} usable − {graph:.2f} graph − {runtime:.2f} runtime − embeddings) / "
                     f"{per_layer:.3f} GiB per layer)"))
    return rows

"""The catalog: GPUs, model architectures and quantizations from profiles/*.yaml, and the resolution
of the names people write ("a100 80gb", "llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct",
"./model.gguf") to those entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from llmctl.errors import InputError
from llmctl.paths import profiles_dir


def _load_yaml(path: Path) -> Any:
    from llmctl.profiles_io import load_yaml_cached

    return load_yaml_cached(path)


def normalize(name: str) -> str:
    """How GPU names are compared: case, spaces, dashes, underscores and vendor words do not matter."""
    s = name.lower()
    for word in ("nvidia", "geforce", "tesla", "apple"):
        s = s.replace(word, "")
    return re.sub(r"[\s\-_/]+", "", s)


_VENDOR_WORDS = {"nvidia", "geforce", "tesla", "apple", "amd", "instinct", "graphics", "gpu", "card"}


def _tokens(name: str) -> list[str]:
    """Words of a GPU name: "NVIDIA GeForce RTX3080 Ti 12 GB" -> ["rtx", "3080", "ti", "12gb"]. Model numbers stay
    whole ("a10g" is not "a10"); sizes join their unit."""
    s = re.sub(r"(\d+(?:\.\d+)?)\s*(gb|g)\b", r"\1gb", name.lower())
    out: list[str] = []
    for t in re.split(r"[^a-z0-9.]+", s):
        m = re.fullmatch(r"(rtx|gtx|m)(\d+)", t)
        out += [m.group(1), m.group(2)] if m else [t]
    return [t for t in out if t and t not in _VENDOR_WORDS]


# words a name may add to a card's own name and still mean that card (memory size, form factor, memory type)
_DESCRIPTIVE = re.compile(r"\d+(\.\d+)?gb|pcie|sxm\d?|hbm\d?e?|oam|gddr\d?x?|edition|server|workstation")


def _within(part: list[str], whole: list[str]) -> bool:
    rest = list(whole)
    for t in part:
        if t not in rest:
            return False
        rest.remove(t)
    return True


def _minus(whole: list[str], part: list[str]) -> list[str]:
    rest = list(whole)
    for t in part:
        rest.remove(t)
    return rest


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class GpuProfile:
    id: str
    name: str
    vendor: str
    kind: str  # gpu | apple | cpu
    arch: str
    compute_capability: str | None
    memory_gb: float | None
    memory_gib: float | None  # usable device memory as the driver reports it; None: comes from the node
    bandwidth_gbs: float
    bf16_tflops: float
    fp8_tflops: float | None
    interconnect_type: str
    interconnect_gbs: float
    price_usd_per_hour: float
    aliases: tuple[str, ...] = ()
    memory_options_gb: tuple[float, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_accelerator(self) -> bool:
        return self.kind in ("gpu", "apple")

    def cc_at_least(self, version: str | None) -> bool:
        if version is None:
            return True
        if self.compute_capability is None:
            return False
        return _version_parts(self.compute_capability) >= _version_parts(version)


@lru_cache(maxsize=256)
def _version_parts(version: str) -> tuple[int, ...]:
    """"8.9" → (8, 9); the planner compares the same few compute capabilities for every candidate."""
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True)
class ModelArch:
    """What the estimators need from a model's config.json."""

    id: str
    architecture: str
    num_hidden_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    max_position_embeddings: int | None = None
    attention_qkv_bias: bool = False
    sliding_window: int | None = None
    sliding_window_layers: float = 0.0  # fraction of layers with a sliding window
    torch_dtype: str | None = "bfloat16"
    num_experts: int | None = None
    experts_per_token: int | None = None
    moe_intermediate_size: int | None = None
    n_shared_experts: int | None = None
    first_k_dense_replace: int | None = None
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    # Hybrid layers (Qwen3.5/3.6, Qwen3-Next): `linear_attention_layers` of the layers are Gated DeltaNet linear
    # attention with a fixed-size state per sequence (conv state + recurrent state), no per-token KV.
    linear_attention_layers: int = 0
    linear_num_key_heads: int | None = None
    linear_num_value_heads: int | None = None
    linear_key_head_dim: int | None = None
    linear_value_head_dim: int | None = None
    linear_conv_kernel_dim: int | None = None
    attn_output_gate: bool = False  # the full-attention q projection also yields a per-head output gate (2x q)
    # Per-layer-type attention (Gemma 4): the global (non-sliding) layers use their own head size and KV head
    # count; with attention_k_eq_v they keep one tensor that serves as both K and V.
    global_head_dim: int | None = None
    global_num_key_value_heads: int | None = None
    attention_k_eq_v: bool = False
    kv_shared_layers: int = 0  # the last N layers reuse an earlier layer's KV and keep none of their own
    moe_beside_dense: bool = False  # every layer has a dense MLP and a routed-expert block side by side
    double_wide_mlp: bool = False  # the KV-shared layers' MLP is twice intermediate_size wide
    # Per-layer embeddings (Gemma 3n/4 E-models): a second table of per_layer_vocab_size x (layers x dim)
    per_layer_embedding_dim: int | None = None
    per_layer_vocab_size: int | None = None
    vision_params: int | None = None  # vision tower + projector parameters, counted from vision_config
    display_name: str = ""
    hf_id: str | None = None
    hf_aliases: tuple[str, ...] = ()
    gated: bool = False
    params_b: float | None = None  # published
    checkpoint_bytes: int | None = None  # published bf16 safetensors size
    ollama: dict[str, Any] | None = None

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts and self.num_experts > 1)

    @property
    def is_mla(self) -> bool:
        return bool(self.kv_lora_rank)

    @property
    def is_hybrid(self) -> bool:
        """Some layers are linear attention with a fixed-size state instead of a KV cache."""
        return self.linear_attention_layers > 0

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention (full or sliding window)."""
        return self.num_hidden_layers - self.linear_attention_layers

    @property
    def sliding_layers(self) -> int:
        return round(self.num_hidden_layers * self.sliding_window_layers) if self.sliding_window else 0

    def linear_state_values(self, tp: int = 1) -> tuple[int, int]:
        """(conv state, recurrent state) values one linear-attention layer keeps per sequence, per TP rank:
        conv = (kernel - 1) x (2 x k_heads x k_dim + v_heads x v_dim), recurrent = v_heads x v_dim x k_dim
        (vllm/model_executor/layers/mamba/mamba_utils.py gated_delta_net_state_shape; the same sizes as
        llama.cpp's n_embd_r()/n_embd_s() in src/llama-hparams.cpp)."""
        if not self.is_hybrid:
            return 0, 0
        kh, vh = self.linear_num_key_heads or 0, self.linear_num_value_heads or 0
        kd, vd = self.linear_key_head_dim or 0, self.linear_value_head_dim or 0
        conv = ((self.linear_conv_kernel_dim or 4) - 1) * (2 * kh * kd + vh * vd) // tp
        return conv, vh * vd * kd // tp

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, id: str | None = None) -> "ModelArch":
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        kwargs["id"] = id or data.get("id") or data.get("architecture", "model")
        heads = int(kwargs["num_attention_heads"])
        kwargs.setdefault("num_key_value_heads", heads)
        if not kwargs.get("head_dim"):
            if data.get("kv_lora_rank"):  # MLA: the attention width per head is nope + rope
                kwargs["head_dim"] = int(data.get("qk_nope_head_dim", 128)) + int(data.get("qk_rope_head_dim", 64))
            else:
                kwargs["head_dim"] = int(kwargs["hidden_size"]) // heads
        for name in ("hf_aliases",):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


@dataclass(frozen=True)
class Quantization:
    id: str
    format: str  # gguf | hf
    bits_per_weight: float
    engines: tuple[str, ...]
    quality_rank: int
    aliases: tuple[str, ...] = ()
    unquantized: tuple[str, ...] = ()  # parts kept in 16 bit, e.g. embeddings, lm_head
    vllm_quantization: str | None = None
    needs_compute_capability: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_gguf(self) -> bool:
        return self.format == "gguf"


@dataclass(frozen=True)
class KvDtype:
    id: str
    bytes_per_value: float
    engines: tuple[str, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to an architecture and, when known, exact weight bytes."""

    reference: str
    kind: str  # ollama | hf | gguf-file | hf-folder | hf-cache (a checkpoint known from its files: local or Hub)
    arch: ModelArch
    hf_id: str | None = None
    ollama_tag: str | None = None
    path: str | None = None
    gguf_quantization: str | None = None  # the quantization named by the tag or found in the file
    hf_quantization: str | None = None  # AWQ / GPTQ / FP8 named by an HF id or a config
    weight_bytes: int | None = None  # bytes of the weights: exact from a header, or a tag's published size
    notes: tuple[str, ...] = ()
    source: str = "catalog"  # local | ollama-store | catalog | hub | registry: where the facts came from
    revision: str | None = None  # Hugging Face commit or Ollama manifest digest, when read from one
    ollama_manifest: Any = None  # llmctl.resolve.ollama_names.OllamaManifest of a pulled or remote tag
    gguf_source: str | None = None  # `repo:QUANT` for llama.cpp's -hf, when the reference named a GGUF repo

    @property
    def id(self) -> str:
        return self.arch.id

    @property
    def gated(self) -> bool:
        return self.arch.gated


# --------------------------------------------------------------------------- the catalog


class Catalog:
    def __init__(self, gpus: list[GpuProfile], models: list[ModelArch], quants: list[Quantization],
                 kv_dtypes: list[KvDtype], apple_fraction: dict[str, float]):
        self.gpus = gpus
        self.models = models
        self.quantizations = quants
        self.kv_dtypes = kv_dtypes
        self.apple_gpu_memory_fraction = apple_fraction
        self._gpu_index: dict[str, GpuProfile] = {}
        for g in gpus:
            for alias in (g.id, g.name, *g.aliases, g.raw.get("nvml_name") or g.id):
                self._gpu_index.setdefault(normalize(alias), g)
        self._quant_index = {}
        for q in quants:
            for alias in (q.id, *q.aliases):
                self._quant_index[alias.lower()] = q
        self._kv_index = {}
        for k in kv_dtypes:
            for alias in (k.id, *k.aliases):
                self._kv_index[alias.lower()] = k

    @classmethod
    def load(cls, folder: Path | None = None) -> "Catalog":
        return _load_catalog(str(folder or profiles_dir()))

    def copy(self) -> "Catalog":
        return Catalog(list(self.gpus), self.models, self.quantizations, self.kv_dtypes, self.apple_gpu_memory_fraction)

    # ---- GPUs

    def synthesize_gpu(self, hint: dict[str, Any]) -> GpuProfile:
        """A profile for a detected GPU the catalog lacks: its memory as detected, its speed borrowed
        from the nearest known profile (same vendor and kind, same compute capability, closest memory).
        An estimate, and the plan says so (inventory adds the warning)."""
        from dataclasses import replace

        same = [g for g in self.gpus if g.vendor == hint.get("vendor", "nvidia") and g.kind == hint.get("kind", "gpu")]
        if not same:
            same = [g for g in self.gpus if g.kind == "gpu"]
        mem = float(hint["memory_gib"])
        ref = min(same, key=lambda g: (g.compute_capability != hint.get("compute_capability"),
                                       abs((g.memory_gib or 0) - mem)))
        prof = replace(ref, id=str(hint["id"]), name=str(hint.get("name") or hint["id"]), memory_gib=mem,
                       memory_gb=round(mem * 1.073741824), aliases=(),
                       compute_capability=hint.get("compute_capability") or ref.compute_capability)
        self.gpus.append(prof)
        for alias in (prof.id, prof.name):
            self._gpu_index[normalize(alias)] = prof
        return prof

    def find_gpu(self, name: str) -> GpuProfile | None:
        return self._gpu_index.get(normalize(name))

    def gpu(self, name: str, *, where: str | None = None) -> GpuProfile:
        """The card `name` means: an exact id, name, alias or NVML name; else the one card whose name holds
        every word and number written (or whose alias the name holds). Several such cards: ambiguous. None:
        unknown, with the nearest real names."""
        found = self.find_gpu(name)
        if found:
            return found
        want = _tokens(name)
        narrower: set[str] = set()  # cards some name of which contains everything written ("A100" -> both A100s)
        broader: dict[str, int] = {}  # cards one of whose names the text contains ("RTX 3080 Ti 12GB")
        for g in self.gpus:
            for alias in (g.id, g.name, *g.aliases, g.raw.get("nvml_name") or ""):
                have = _tokens(alias)
                if not have or not want:
                    continue
                if _within(want, have):
                    narrower.add(g.id)
                elif _within(have, want) and all(_DESCRIPTIVE.fullmatch(t) for t in _minus(want, have)):
                    broader[g.id] = max(broader.get(g.id, 0), len(have))
        if len(narrower) == 1:
            return self._by_id(next(iter(narrower)))
        if len(narrower) > 1:
            raise InputError(f"GPU name {name!r} is ambiguous: it could be {', '.join(sorted(narrower))}",
                             where=where, hint="write one of those names")
        if broader:
            best = max(broader.values())
            top = sorted(i for i, n in broader.items() if n == best)
            if len(top) == 1:
                return self._by_id(top[0])
            raise InputError(f"GPU name {name!r} is ambiguous: it could be {', '.join(top)}", where=where,
                             hint="write one of those names")
        import difflib

        close = difflib.get_close_matches(normalize(name), list(self._gpu_index), n=8, cutoff=0.6)
        nearest: list[str] = []
        for key in close:
            gid = self._gpu_index[key].id
            if gid not in nearest:
                nearest.append(gid)
        raise InputError(
            f"unknown GPU {name!r}" + (f"; nearest known: {', '.join(nearest[:3])}" if nearest else ""),
            where=where, hint=None if nearest else "known GPUs: " + ", ".join(g.id for g in self.gpus),
        )

    def _by_id(self, gid: str) -> GpuProfile:
        return next(g for g in self.gpus if g.id == gid)

    # ---- quantizations

    def quantization(self, name: str, *, where: str | None = None) -> Quantization:
        q = self._quant_index.get(name.lower())
        if q is None:
            import difflib

            close = difflib.get_close_matches(name.lower(), list(self._quant_index), n=3, cutoff=0.5)
            raise InputError(
                f"unknown quantization {name!r}" + (f"; did you mean {close[0]}?" if close else ""),
                where=where, hint="known: " + ", ".join(q.id for q in self.quantizations),
            )
        return q

    def find_quantization(self, name: str) -> Quantization | None:
        return self._quant_index.get(name.lower())

    def kv_dtype(self, name: str, *, where: str | None = None) -> KvDtype:
        k = self._kv_index.get(name.lower())
        if k is None:
            raise InputError(
                f"unknown kv_cache_dtype {name!r}", where=where,
                hint="known: " + ", ".join(k.id for k in self.kv_dtypes),
            )
        return k

    # ---- models

    def model_by_id(self, model_id: str) -> ModelArch | None:
        for m in self.models:
            if m.id == model_id:
                return m
        return None

    def resolve_model(self, reference: str, *, base_dir: Path | None = None, where: str | None = None) -> ResolvedModel:
        """Resolution lives in llmctl.resolve, which imports this module's records; this convenience
        method imports it only when called, so neither module needs the other to load."""
        from llmctl.resolve import resolve_model

        return resolve_model(self, reference, base_dir=base_dir, where=where)


CATALOG_FILES = ("gpus.yaml", "models.yaml", "quantizations.yaml")


@lru_cache(maxsize=4)
def _load_catalog(folder: str) -> Catalog:
    """The catalog of `folder`, built once per content: the built records are kept beside the parsed
    profiles (llmctl.profiles_io.cache_dir), keyed by the sha256 of the three files and of this module,
    so `llmctl plan` reads them back (~4 ms) instead of building ~200 records and their indexes
    (~14 ms). The cache is a pickle in the user's own cache folder, which is as trusted as the code
    llmctl runs from; anything unreadable or unwritable there only means building again."""
    import hashlib
    import pickle

    from llmctl.profiles_io import cache_dir

    root = Path(folder)
    h = hashlib.sha256(Path(__file__).read_bytes())
    for name in CATALOG_FILES:
        h.update(b"\0" + (root / name).read_bytes())
    cached = cache_dir() / f"catalog-{h.hexdigest()[:24]}.pickle"
    try:
        catalog = pickle.loads(cached.read_bytes())
        if isinstance(catalog, Catalog):
            return catalog
    except Exception:  # noqa: BLE001 - missing, truncated, or from other code: build it again
        pass
    catalog = _build_catalog(root)
    try:
        from llmctl.fileio import write_atomic

        write_atomic(cached, pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL))
    except (OSError, pickle.PicklingError):
        pass
    return catalog


def _build_catalog(root: Path) -> Catalog:
    gdoc = _load_yaml(root / "gpus.yaml")
    mdoc = _load_yaml(root / "models.yaml")
    qdoc = _load_yaml(root / "quantizations.yaml")
    gpus = [_gpu(g) for g in gdoc["gpus"]]
    models = [ModelArch.from_mapping(m) for m in mdoc["models"]]
    quants = [_quant(q) for q in qdoc["quantizations"]]
    kv = [
        KvDtype(
            id=str(k["id"]),
            bytes_per_value=float(k["bytes_per_value"]),
            engines=tuple(k.get("engines") or ()),
            aliases=tuple(k.get("aliases") or ()),
        )
        for k in qdoc.get("kv_cache_dtypes", [])
    ]
    apple = gdoc.get("apple_gpu_memory_fraction") or {"le_36gb": 0.667, "gt_36gb": 0.75}
    return Catalog(gpus, models, quants, kv, apple)


def _gpu(d: dict[str, Any]) -> GpuProfile:
    ic = d.get("interconnect") or {}
    return GpuProfile(
        id=str(d["id"]),
        name=str(d.get("name") or d["id"]),
        vendor=str(d.get("vendor", "nvidia")),
        kind=str(d.get("kind", "gpu")),
        arch=str(d.get("arch", "")),
        compute_capability=(str(d["compute_capability"]) if d.get("compute_capability") else None),
        memory_gb=d.get("memory_gb"),
        memory_gib=d.get("memory_gib"),
        bandwidth_gbs=float(d["bandwidth_gbs"]),
        bf16_tflops=float(d.get("bf16_tflops") or 0.0),
        fp8_tflops=(float(d["fp8_tflops"]) if d.get("fp8_tflops") else None),
        interconnect_type=str(ic.get("type", "none")),
        interconnect_gbs=float(ic.get("bandwidth_gbs") or 0.0),
        price_usd_per_hour=float(d.get("price_usd_per_hour") or 0.0),
        aliases=tuple(str(a) for a in d.get("aliases") or ()),
        memory_options_gb=tuple(float(x) for x in d.get("memory_options_gb") or ()),
        raw=dict(d),
    )


def _quant(d: dict[str, Any]) -> Quantization:
    return Quantization(
        id=str(d["id"]),
        format=str(d.get("format", "gguf")),
        bits_per_weight=float(d["bits_per_weight"]),
        engines=tuple(d.get("engines") or ()),
        quality_rank=int(d.get("quality_rank", 0)),
        aliases=tuple(str(a) for a in d.get("aliases") or ()),
        unquantized=tuple(d.get("unquantized") or ()),
        vllm_quantization=d.get("vllm_quantization"),
        needs_compute_capability=(str(d["needs_compute_capability"]) if d.get("needs_compute_capability") else None),
        raw=dict(d),
    )

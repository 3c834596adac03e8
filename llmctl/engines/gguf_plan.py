"""Planning hooks shared by the engines that run llama.cpp's runtime (llama-server and Ollama): GGUF
formats, one or all of a node's GPUs with layers split between them and RAM, and fixed slots
(`num_parallel`) that each hold a full context."""

from __future__ import annotations

from llmctl.candidates import Candidate, Context, weights_of
from llmctl.catalog import KvDtype, Quantization, ResolvedModel
from llmctl.engines import get_engine
from llmctl.estimate.memory import LlamaCppSizer, flash_attention_default
from llmctl.estimate.performance import Deployment
from llmctl.pools import Pool
from llmctl.search import largest_within
from llmctl.term import count

GiB = 1024**3

# GGUF quantizations worth proposing when the user did not name one (the common Ollama library tags)
GGUF_CHOICES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")

# llama-server's default logical batch (-b, common/common.h: n_batch = 2048)
DEFAULT_BATCH = 2048


def quant_options(ctx: Context, *, needs_library_entry: bool) -> list[Quantization]:
    """GGUF formats: the file's own, the one a tag spells, else the common library quantizations.
    `needs_library_entry`: the engine pulls by name from a library the model must be in (Ollama)."""
    cat, model = ctx.catalog, ctx.model
    if serves_own_file(model):
        q = cat.find_quantization(model.gguf_quantization)
        if q is None and model.weight_bytes:
            q = _file_quantization(model)
        return [q] if q else []
    if model.kind in ("hf-folder", "hf-cache") and not model.arch.ollama:
        return []
    if needs_library_entry and not model.arch.ollama:
        return []
    # the library's own default (Q4_0 for older tags) is what a bare tag pulls: always a choice
    native = model.gguf_quantization or (model.arch.ollama or {}).get("default_quantization")
    names = GGUF_CHOICES + ((native,) if native and native not in GGUF_CHOICES else ())
    return [cat.quantization(n) for n in names if cat.find_quantization(n)]


def serves_own_file(model: ResolvedModel) -> bool:
    """The model's own file decides the quantization: a local GGUF, a pulled tag read from the Ollama store,
    a GGUF repository reference, a tag that names one (llama3.1:8b-instruct-q8_0)."""
    pulled = model.source == "ollama-store"
    own = model.kind == "gguf-file" or pulled or bool(model.gguf_source) or tag_names_quant(model)
    return bool(model.gguf_quantization) and own


def no_quant_reason(ctx: Context, title: str) -> str | None:
    if ctx.model.kind in ("hf-folder", "hf-cache"):
        return f"{title} needs a GGUF file; convert the folder with llama.cpp's convert_hf_to_gguf.py first"
    return None


def _file_quantization(model: ResolvedModel) -> Quantization:
    """A GGUF file in a type the catalog does not list (F32, IQ2_XS, …): its bits come from the file."""
    from llmctl.estimate.weights import count_params

    bits = 8 * (model.weight_bytes or 0) / max(count_params(model.arch).total, 1)
    return Quantization(id=model.gguf_quantization or "GGUF", format="gguf", bits_per_weight=round(bits, 3),
                        engines=_gguf_engines(), quality_rank=10)


def _gguf_engines() -> tuple[str, ...]:
    from llmctl.engines import all_engines

    return tuple(e.name for e in all_engines() if getattr(e, "loads_gguf", False))


def tag_names_quant(model: ResolvedModel) -> bool:
    """True when the Ollama tag spelled a quantization (llama3.1:8b-instruct-q8_0), not a bare size."""
    if model.kind != "ollama" or not model.ollama_tag or ":" not in model.ollama_tag:
        return False
    tag = model.ollama_tag.split(":", 1)[1].lower()
    q = (model.gguf_quantization or "").lower().replace("f16", "fp16")
    return tag.endswith(q) or tag.endswith((model.gguf_quantization or "").lower())


def candidates(ctx: Context, engine: str, pool: Pool, q: Quantization, kvs: list[KvDtype]) -> list[Candidate]:
    ov = ctx.spec.overrides
    out: list[Candidate] = []
    total = weights_of(ctx, q)
    counts = [1] if pool.per_node == 1 else [1, pool.per_node]
    if ov.tensor_parallel:
        counts = [ov.tensor_parallel]
    enough_slots = min(ctx.spec.workload.concurrency, 4)
    for kv in kvs:
        enough = False  # a candidate with this KV dtype fits with the slots we want
        flash = ctx.once(("flash attention", engine, kv.id), lambda: flash_attention_needed(kv) or
                         get_engine(engine).flash_attention_default(ctx.model.arch))
        for n in counts:
            c = Candidate(engine, q, kv, pool, devices=n, weight_bytes_total=total)
            if n > pool.per_node:
                c.reject = f"{n} GPUs per replica, {pool.names[0]} has {pool.per_node}"
                out.append(c)
                continue
            _fit(ctx, c, flash)
            out.append(c)
            enough = enough or (c.feasible and c.num_parallel >= enough_slots)
            if c.feasible and (c.mem.gpu_layers or 0) >= (c.mem.total_layers or 0):
                break  # fits fully on fewer GPUs: more would only cost more
        if enough and kv.bytes_per_value >= 2 and not ov.kv_cache_dtype:
            break  # f16 KV holds the slots we want: a quantized KV cache adds nothing
    return out


def _fit(ctx: Context, c: Candidate, flash: bool) -> None:
    """Choose the slots (num_parallel): as many as the concurrency asks for, fewer if they do not fit.
    `flash`: the server runs with flash attention."""
    ov = ctx.spec.overrides
    want = ov.num_parallel or ctx.spec.workload.concurrency
    dev = c.pool.device
    gpu = None if dev.kind == "cpu" else dev

    # Ollama and llama-server run the same runtime: with the same flash attention their candidates
    # share these figures (ctx.memo). The first candidate under a key makes the sizer and searches its
    # slots for every later one, and builds the estimate. The key holds the system RAM as well: layers that do
    # not fit on the GPUs go there, so nodes with the same GPUs and different RAM size differently.
    key = (dev.id, c.pool.capacity_gib, c.pool.system_ram_gib, c.devices, c.quant.id, c.kv.id, flash)
    # the figures depend on the device only through its kind and memory: devices alike in those (an
    # H100 and an A100 of 80 GB) share one sizer and its slot search; each device's estimate stays its
    # own (its `--explain` rows name the device's runtime)
    fit_key = (dev.kind, dev.memory_gib, *key[1:])
    shared = ctx.memo.get(("slots", fit_key))
    if shared is None:
        sizer = LlamaCppSizer(
            ctx.model.arch, weight_bytes_total=c.weight_bytes_total, gpu=gpu, gpu_count=c.devices,
            num_ctx=ctx.max_model_len, kv_dtype_bytes=c.kv.bytes_per_value, capacity_gib=c.pool.capacity_gib,
            system_ram_gib=c.pool.system_ram_gib, flash_attention=flash)
        shared = ctx.memo[("slots", fit_key)] = (sizer, _slots(sizer, want, ctx.model.arch.num_hidden_layers,
                                                                on_gpu=gpu is not None, forced=bool(ov.num_parallel)))
    sizer, n = shared
    k = ("estimate", n, key)
    mem = ctx.memo.get(k)
    if mem is None:
        mem = ctx.memo[k] = sizer.estimate(n, gpu)  # the estimate is built for the choice only
    c.num_parallel, c.mem = n, mem
    if not mem.fits:
        c.reject = mem.problems[0]


def _slots(sizer: LlamaCppSizer, want: int, layers: int, *, on_gpu: bool, forced: bool) -> int:
    """The slots a server gets: `want`, or, when that many do not fit entirely on the device (and the
    count is not forced), the most that do; 1 when none does (it offloads)."""
    def fully_in(n: int) -> bool:
        fits, _, _, gpu_layers = sizer.fit(n)
        return fits and gpu_layers >= layers if on_gpu else fits

    def ratio(n: int) -> float:  # what n slots need over what the device offers (≤ 1: all on the device)
        fits, need, usable, _ = sizer.fit(n)
        return need / usable if (fits and usable > 0) else float("inf")

    if fully_in(want) or forced:
        return want
    return max(1, largest_within(ratio, want, linear=True))


def deployment(ctx: Context, c: Candidate) -> Deployment:
    # llama.cpp splits layers across GPUs and runs them one device after the other, so a token reads
    # every on-device weight and every layer's KV at one device's bandwidth: the totals, not a share
    m = c.mem
    assert m is not None
    dev = c.pool.device
    on_device = m.weights_gib * GiB * max(c.devices, 1) if dev.kind != "cpu" else c.weight_bytes_total
    return Deployment(
        arch=ctx.model.arch, backend=c.backend, device=dev, tp=1, pp=1,
        weight_bytes_per_gpu=on_device,
        kv_bytes_per_token=m.kv_bytes_per_token,
        max_batch=c.num_parallel, max_num_batched_tokens=DEFAULT_BATCH,
        cpu=c.pool.cpu, offloaded_bytes=m.offloaded_to_cpu_gib * GiB,
    )


def layout_rationale(ctx: Context, c: Candidate) -> tuple[str, str]:
    dev = c.pool.device
    layers = c.mem.gpu_layers if c.mem else None
    where = "CPU" if dev.kind == "cpu" else dev.id
    total = c.mem.total_layers if c.mem else None
    return "slots", (
        f"num_parallel {c.num_parallel}: up to {count(c.num_parallel, 'request')} at a time, each with a "
        f"{ctx.max_model_len}-token context; " + (f"{layers}/{total} layers on {where}" if dev.kind != "cpu" else "all layers in RAM"))


def flash_attention_needed(kv: KvDtype) -> bool:
    """A quantized V cache needs flash attention in llama.cpp."""
    return kv.bytes_per_value < 2


class GgufEngine:
    """Mixin for the engines that run llama.cpp's runtime on GGUF files (llama-server, Ollama)."""

    splits_layers = True
    loads_gguf = True
    # the engine pulls models by name from a library the model must be in
    needs_library_entry = False

    def quant_options(self, ctx: Context, pool: Pool) -> list[Quantization]:
        # the same for every pool: worked out once per plan
        return list(ctx.once(("gguf quantizations", self.needs_library_entry),
                             lambda: quant_options(ctx, needs_library_entry=self.needs_library_entry)))

    def kv_options(self, ctx: Context) -> list[KvDtype]:
        return [ctx.catalog.kv_dtype("f16"), ctx.catalog.kv_dtype("q8_0")]

    def no_quant_reason(self, ctx: Context) -> str:
        return no_quant_reason(ctx, self.title) or super().no_quant_reason(ctx)  # type: ignore[misc]

    def candidates(self, ctx: Context, pool: Pool, quant: Quantization, kvs: list[KvDtype]) -> list[Candidate]:
        return candidates(ctx, self.name, pool, quant, kvs)  # type: ignore[attr-defined]

    def deployment(self, ctx: Context, c: Candidate) -> Deployment:
        return deployment(ctx, c)

    def flash_attention_default(self, arch) -> bool:
        """Whether the engine runs `arch` with flash attention unless told otherwise (Ollama's list)."""
        return flash_attention_default(arch)

    def layout_rationale(self, ctx: Context, c: Candidate) -> tuple[str, str]:
        return layout_rationale(ctx, c)

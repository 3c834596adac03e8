"""Model references the curated catalog (profiles/models.yaml) knows: Ollama tags, Hugging Face ids and
`hf.co/...` GGUF references, matched by name without touching the disk or the network.

`exact` is step 3 of resolution (see llmctl/resolve); `approximate` (a repo whose name differs from a
catalog repo only by a variant or quantization suffix) is the last resort when nothing exact answered.
This module imports the catalog's records; the catalog never imports it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from llmctl.catalog import Catalog, ModelArch, ResolvedModel
from llmctl.errors import InputError

# Suffixes that name a variant or a quantization in Hugging Face repository names, not an architecture.
_HF_SUFFIX_PATTERN = (r"[-_.](instruct|chat|it|base|hf|awq|gptq|int4|int8|fp8|fp16|bf16|w4a16|w8a8|dynamic|gguf|"
                      r"g128|4bit|8bit|v\d+(\.\d+)?|\d{4})$")
_HF_QUANT_WORDS = {"awq": "AWQ", "gptq": "GPTQ", "fp8": "FP8", "w8a8": "FP8", "int8": "GPTQ-INT8"}
GB = 10**9


@lru_cache(maxsize=1)
def _hf_suffixes() -> "re.Pattern[str]":
    return re.compile(_HF_SUFFIX_PATTERN, re.I)  # compiled on first use: it costs ~5 ms at import


def looks_like_hf_id(ref: str) -> bool:
    return "/" in ref and ":" not in ref and not ref.lower().startswith(("hf.co/", "huggingface.co/"))


def is_hf_gguf_ref(ref: str) -> bool:
    return ref.lower().startswith(("hf.co/", "huggingface.co/"))


def exact(catalog: Catalog, ref: str) -> ResolvedModel | None:
    """The catalog entry `ref` names exactly (an HF repo it lists, an Ollama name and size tag it lists)."""
    if is_hf_gguf_ref(ref):
        return _from_ollama_hf(catalog, ref)
    if looks_like_hf_id(ref):
        want = ref.lower()
        for m in catalog.models:
            if want in {a.lower() for a in (m.hf_id or "", *m.hf_aliases)}:
                return ResolvedModel(reference=ref, kind="hf", arch=m, hf_id=ref, source="catalog")
        return None
    return _from_ollama_tag(catalog, ref)


def approximate(catalog: Catalog, ref: str) -> ResolvedModel | None:
    """A repo the catalog does not list whose base name matches one it does (an AWQ or FP8 re-upload)."""
    if not looks_like_hf_id(ref):
        return None
    base = _base_name(ref)
    quant = _hf_quant_from_name(ref)
    for m in catalog.models:
        names = {_base_name(a) for a in (m.hf_id or "", *m.hf_aliases) if a}
        if base in names:
            return ResolvedModel(
                reference=ref, kind="hf", arch=m, hf_id=ref, hf_quantization=quant, source="catalog",
                notes=(f"{ref} is not in the catalog; using the architecture of {m.hf_id}",),
            )
    return None


def _base_name(hf_id: str) -> str:
    name = hf_id.split("/")[-1].lower()
    name = name.replace("meta-llama-", "llama-")
    prev = None
    while prev != name:
        prev = name
        name = _hf_suffixes().sub("", name)
    return name


def _hf_quant_from_name(hf_id: str) -> str | None:
    low = hf_id.lower()
    for word, quant in _HF_QUANT_WORDS.items():
        if re.search(rf"(^|[-_/.]){word}($|[-_.])", low):
            return quant
    return None


# --------------------------------------------------------------------------- Ollama tags


def _from_ollama_tag(catalog: Catalog, ref: str) -> ResolvedModel | None:
    name, _, tag = ref.lower().partition(":")
    if "/" in name:  # only the library namespace is curated
        for prefix in ("registry.ollama.ai/library/", "library/"):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        else:
            return None
    tag = tag or "latest"
    best = None
    for m in catalog.models:
        o = m.ollama or {}
        if name not in [str(n).lower() for n in o.get("names", [])]:
            continue
        if tag == "latest" or tag.split("-")[0] in ("instruct", "chat", "text") or _is_quant_word(catalog, tag):
            if o.get("latest"):
                best = (m, "")
                break
            continue
        for size in [*o.get("size_tags", []), *_spelled_prefix(o)]:
            s = str(size).lower()
            if tag == s or tag.startswith(s + "-"):
                if best is None or len(s) > len(best[1]):
                    best = (m, s)
    if best is None:
        return None
    model, size = best
    o = model.ollama or {}
    rest = tag[len(size):].strip("-") if size else ("" if tag == "latest" else tag)
    named = _quant_suffix(catalog, rest)
    default = o.get("default_quantization", "Q4_K_M")
    quant = named or default
    orig_name, _, orig_tag = ref.strip().partition(":")  # Ollama tags are case-sensitive (q4_K_M)
    canonical = f"{orig_name}:{orig_tag or 'latest'}"
    weight_bytes = None
    notes: tuple[str, ...] = ()
    if quant == default and o.get("size_gb") and not _variant(rest):
        weight_bytes = int(float(o["size_gb"]) * GB)
        notes = (f"weights: {o['size_gb']} GB, the published size of {orig_name}:{size or 'latest'} ({default})",)
    return ResolvedModel(reference=ref, kind="ollama", arch=model, ollama_tag=canonical, hf_id=model.hf_id,
                         gguf_quantization=quant, weight_bytes=weight_bytes, notes=notes, source="catalog")


def _spelled_prefix(o: dict) -> list[str]:
    """A `quant_tag` that does not start with the size names its tags on its own (llama4:16x17b's other
    quantizations are 17b-scout-16e-instruct-QUANT): that fixed start counts as a size tag of the entry."""
    spelled = str(o.get("quant_tag") or "")
    if not spelled or "{size}" in spelled:
        return []
    prefix = spelled.split("{quant}")[0].strip("-")
    return [prefix] if prefix else []


def _variant(rest: str) -> bool:
    """True when the tag names a variant whose file differs from the default's (`text`, a fine-tune)."""
    words = [w for w in rest.split("-") if w]
    return any(w not in ("instruct", "chat", "it") and not re.fullmatch(r"q\d.*|f16|fp16|bf16|mxfp4", w) for w in words)


def _is_quant_word(catalog: Catalog, word: str) -> bool:
    return _quant_suffix(catalog, word) is not None and "-" not in word


def _quant_suffix(catalog: Catalog, rest: str) -> str | None:
    """The quantization named at the end of an Ollama tag: `instruct-q4_K_M` → Q4_K_M, `fp16` → F16,
    `bf16` → BF16-GGUF."""
    parts = rest.split("-") if rest else []
    for i in range(len(parts)):
        word = "-".join(parts[i:]).replace("fp16", "f16")
        word = "bf16-gguf" if word == "bf16" else word  # a library tag's bf16 is a GGUF file, not the HF format
        q = catalog.find_quantization(word)
        if q is not None and q.is_gguf:
            return q.id
    return None


def _from_ollama_hf(catalog: Catalog, ref: str) -> ResolvedModel | None:
    """`hf.co/org/repo-GGUF:Q4_K_M`: Ollama pulling a GGUF repository from Hugging Face."""
    path, _, quant = ref.split("/", 1)[1].partition(":")
    base = _base_name(path.removesuffix("-GGUF").removesuffix("-gguf"))
    for m in catalog.models:
        if base in {_base_name(a) for a in (m.hf_id or "", *m.hf_aliases) if a}:
            q = catalog.find_quantization(quant or "Q4_K_M")
            return ResolvedModel(reference=ref, kind="ollama", arch=m, ollama_tag=ref, hf_id=m.hf_id,
                                 gguf_quantization=(q.id if q else "Q4_K_M"), source="catalog")
    return None


# --------------------------------------------------------------------------- shared by the resolvers


def match_arch(catalog: Catalog, arch: ModelArch) -> ModelArch | None:
    """A catalog entry with the same shape (so a file or a remote config inherits its name, gating and Ollama data)."""
    key = (arch.num_hidden_layers, arch.hidden_size, arch.num_attention_heads, arch.num_key_value_heads,
           arch.vocab_size, arch.intermediate_size, arch.num_experts or 0)
    for m in catalog.models:
        if (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.num_key_value_heads, m.vocab_size,
                m.intermediate_size, m.num_experts or 0) == key:
            return m
    return None


# how the layers differ (hybrid linear attention, Gemma 4's global layers): a file or config that does not say
# inherits them from the catalog entry of the same shape
_LAYER_KIND_FIELDS = ("linear_attention_layers", "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                      "linear_value_head_dim", "linear_conv_kernel_dim", "attn_output_gate", "global_head_dim",
                      "global_num_key_value_heads", "attention_k_eq_v", "kv_shared_layers", "moe_beside_dense",
                      "double_wide_mlp", "per_layer_embedding_dim", "per_layer_vocab_size")


def with_catalog_facts(arch: ModelArch, known: ModelArch) -> ModelArch:
    kinds = {f: getattr(known, f) for f in _LAYER_KIND_FIELDS if getattr(known, f) and not getattr(arch, f)}
    return replace(arch, id=known.id, display_name=known.display_name, hf_id=known.hf_id, gated=known.gated,
                   params_b=known.params_b, ollama=known.ollama, hf_aliases=known.hf_aliases,
                   sliding_window=arch.sliding_window or known.sliding_window,
                   sliding_window_layers=arch.sliding_window_layers or known.sliding_window_layers, **kinds)


def known_references(catalog: Catalog) -> list[str]:
    refs: list[str] = []
    for m in catalog.models:
        refs.append(m.id)
        if m.hf_id:
            refs.append(m.hf_id)
        refs.extend(m.hf_aliases)
        o = m.ollama or {}
        for n in o.get("names", []):
            for s in o.get("size_tags", []):
                refs.append(f"{n}:{s}")
    return refs


def unknown(catalog: Catalog, ref: str, where: str | None, tried: list[str]) -> InputError:
    refs = known_references(catalog)
    low = {r.lower(): r for r in refs}
    import difflib  # only for a reference nothing matches

    close = difflib.get_close_matches(ref.lower(), list(low), n=5, cutoff=0.5)
    hint = ("near matches: " + ", ".join(low[c] for c in close)) if close else (
        "use an Ollama tag (llama3.1:8b), a Hugging Face id (Qwen/Qwen2.5-7B-Instruct), "
        "a .gguf file or a folder with config.json"
    )
    message = f"unknown model {ref!r}"
    if tried:
        message += " (tried: " + "; ".join(tried) + ")"
    return InputError(message, where=where, hint=hint)


def library_tag(o: dict, quant_id: str | None) -> str:
    """The library tag of a catalog entry's first size tag that pulls `quant_id` (the bare tag for its default).
    Most library models spell a quantization SIZE-instruct-QUANT (llama3.2:1b-instruct-q4_K_M); an entry whose
    tags read otherwise says so with `quant_tag` (qwen3.5: "{size}-{quant}" as in qwen3.5:27b-q8_0, gemma4:
    "{size}-it-{quant}") and, where its 16-bit tag is bf16, with `f16_word: bf16`."""
    name, size = o["names"][0], (o.get("size_tags") or ["latest"])[0]
    if not quant_id or quant_id.upper() == str(o.get("default_quantization") or "").upper():
        return f"{name}:{size}"
    if quant_id.upper() == "BF16-GGUF":
        word = "bf16"
    elif quant_id.upper() in ("F16", "BF16"):
        word = str(o.get("f16_word") or "fp16")
    elif quant_id[:1].upper() == "Q":
        word = "q" + quant_id[1:]  # q4_K_M, q8_0: Ollama keeps the K upper case
    else:
        word = quant_id.lower()
    return f"{name}:" + str(o.get("quant_tag") or "{size}-instruct-{quant}").format(size=size, quant=word)


"""The decisions: each Ollama setting carried, approximated or dropped, with the reason and where it
now lives; the spec of the vLLM side (an ordinary llmctl spec, planned by the normal planner); the
front's configuration; the client change list.

Facts used (each where it is defined):
- Ollama v0.32.15: PARAMETER names and types (api/types.go Options/Runner); env defaults
  (envconfig/config.go: OLLAMA_NUM_PARALLEL 1, OLLAMA_MAX_QUEUE 512, OLLAMA_KEEP_ALIVE 5m,
  OLLAMA_KV_CACHE_TYPE f16); repeat_penalty applies to the last repeat_last_n (default 64) tokens
  (llama.cpp's sampler, which Ollama's runner uses).
- vLLM v0.33.0: --override-generation-config keys (config/model.py get_diff_sampling_param);
  repetition_penalty over prompt and output tokens (sampling_params.py); --max-num-queued-reqs (HTTP
  503 beyond it, config/scheduler.py); --kv-cache-dtype choices (config/cache.py CacheDType); GGUF only
  through the out-of-tree vllm-gguf-plugin (`vllm[extra-quant]`).
"""

from __future__ import annotations

import re
from typing import Any

from llmctl.errors import InputError
from llmctl.migrate import NEW_ENGINE
from llmctl.typed import dump

DECISIONS_SCHEMA = "llmctl.migrate.decisions/v1"
FRONT_SCHEMA = "llmctl.migrate.front/v1"

ENDPOINTS = [("/api/chat", "/v1/chat/completions"), ("/api/generate", "/v1/completions"),
             ("/api/tags", "/v1/models"), ("/api/embed", "/v1/embeddings"), ("/api/show", "(none: the front answers it)"),
             ("/api/ps", "(none: the front answers it)"), ("/api/version", "/version")]


def vllm_port() -> int:
    """The vLLM side's port: the engine's own (profiles/engines.yaml)."""
    from llmctl.engines.base import typed_profile

    return typed_profile("vllm").port


def item(name: str, ollama: Any, vllm: Any, status: str, where: str, reason: str) -> dict[str, Any]:
    assert status in ("carried", "approximated", "dropped")
    return {"item": name, "ollama": ollama, "vllm": vllm, "status": status, "where": where, "reason": reason}


def select(inventory: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """The one model this migration moves (one vLLM server serves one model)."""
    models = inventory["models"]
    names = [m["name"] for m in models]
    if wanted:
        w = wanted[0]
        for m in models:
            if m["name"] in (w, f"{w}:latest"):
                return m
        raise InputError(f"--model {w}: the inventory has no such tag", where="--model",
                         hint="tags: " + ", ".join(names))
    if len(models) == 1:
        return models[0]
    loaded = [m for m in models if m.get("loaded")]
    if len(loaded) == 1:
        return loaded[0]
    raise InputError(f"the Ollama side serves {len(models)} models; one vLLM server serves one: choose with --model TAG",
                     hint="tags: " + ", ".join(names))


def aliases(model: dict[str, Any], inventory: dict[str, Any]) -> list[str]:
    """Other names clients may send for the same model: tags with the same digest, the bare name of a
    `:latest` tag, and `name`/`name:latest` when the catalog says the tag is the default one."""
    name = model["name"]
    out: list[str] = []
    for other in inventory["models"]:
        if other is not model and model.get("digest") and other.get("digest") == model["digest"]:
            out.append(other["name"])
    base, _, tag = name.partition(":")
    if tag == "latest":
        out.append(base)
    else:
        from llmctl.catalog import Catalog
        from llmctl.model_refs import exact

        found = exact(Catalog.load(), name)
        o = (found.arch.ollama or {}) if found else {}
        if o.get("latest") and tag in [str(s) for s in o.get("size_tags", [])]:
            out += [base, f"{base}:latest"]
    for n in list(out):
        if n.endswith(":latest") and n[:-7] not in out and n[:-7] != name:
            out.append(n[:-7])
    return [n for n in dict.fromkeys(out) if n != name]


def parse_hardware(value: str) -> Any:
    """`--hardware GPU[xN]`, several joined with `,` (one node each), or `detect`."""
    if value.strip() == "detect":
        return "detect"
    nodes = []
    for i, part in enumerate(p.strip() for p in value.split(",")):
        m = re.fullmatch(r"(.+?)(?:\s*[x×*]\s*(\d+))?", part)
        if not part or not m:
            raise InputError(f"--hardware {value!r}: write GPU[xN], e.g. A100-80GB or L4x2", where="--hardware")
        from llmctl.catalog import Catalog

        gpu = Catalog.load().gpu(m.group(1), where="--hardware")
        nodes.append({"name": f"node-{i + 1}", "gpu": gpu.id, "gpus": int(m.group(2) or 1)})
    return nodes


def decide(inventory: dict[str, Any], model: dict[str, Any], mapping: dict[str, Any], *, name: str,
           hardware: Any, source_spec: Any = None, target: str | None = None, keep_ollama_api: bool | None = None,
           allow_gguf: bool = False, chat_template: str | None = None) -> dict[str, Any]:
    """Everything but the plan: the items, the vLLM spec (a dict), the front config."""
    from llmctl.migrate.rules import rules

    R = rules()
    items: list[dict[str, Any]] = []
    env = {**inventory["server"].get("env", {})}
    params = dict(model.get("parameters") or {})
    tag = model["name"]

    items.append(item("model", tag, mapping["hf_repo"] + (f"@{mapping['revision']}" if mapping.get("revision") else ""),
                      "carried" if mapping["confidence"] in ("exact", "user", "catalog") else "approximated",
                      "vllm.yaml model; mapping.yaml", f"{mapping['confidence']}: {mapping['how']}"))
    names = [tag, *aliases(model, inventory)]
    items.append(item("names", tag, names, "carried", "vllm.yaml serving.served_names → --served-model-name",
                      "the exact tag first, so clients keep sending the names they use"))

    # ---- PARAMETERs
    generation: dict[str, Any] = {}
    front_options: dict[str, Any] = {}
    for key, value in params.items():
        if key in R.generation:
            generation[R.generation[key]] = value
            front_options[key] = value
            items.append(item(f"PARAMETER {key}", value, {R.generation[key]: value}, "carried",
                              "vllm.yaml serving.generation → --override-generation-config",
                              "the same sampling setting, a server default a request may override "
                              "(with --generation-config vllm: vLLM's neutral defaults under it, not the checkpoint's)"))
        elif key == "repeat_penalty":
            generation["repetition_penalty"] = value
            front_options[key] = value
            items.append(item("PARAMETER repeat_penalty", value, {"repetition_penalty": value}, "approximated",
                              "vllm.yaml serving.generation → --override-generation-config",
                              "same formula (logits of repeated tokens divided by it when positive, multiplied when "
                              "negative), but Ollama counts only the last repeat_last_n (64) tokens while vLLM "
                              "counts every prompt and output token: the penalty reaches further"))
        elif key == "num_predict":
            front_options[key] = value
            if value > 0:
                generation["max_new_tokens"] = value
                items.append(item("PARAMETER num_predict", value, {"max_new_tokens": value}, "carried",
                                  "vllm.yaml serving.generation → --override-generation-config",
                                  "the default output limit; in vLLM it also caps what a request may ask for"))
            else:
                items.append(item("PARAMETER num_predict", value, None, "approximated", "(vLLM's default)",
                                  "-1 (no limit) / -2 (fill the context): vLLM stops at the context end by default"))
        elif key == "num_ctx":
            front_options[key] = value
            items.append(item("PARAMETER num_ctx", value, {"max_model_len": value}, "carried",
                              "vllm.yaml overrides.max_model_len → --max-model-len",
                              "the context each request may use; vLLM rejects longer prompts instead of truncating"))
        elif key in R.per_request_parameters:
            front_options[key] = value
            items.append(item(f"PARAMETER {key}", value, None, "carried", f"front.json models[].options.{key}",
                              f"the front adds it to every request; {R.per_request_parameters[key]}, so clients "
                              f"calling /v1 directly must send `{key}`"))
        elif key in R.dropped_parameters:
            items.append(item(f"PARAMETER {key}", value, None, "dropped", "-", R.dropped_parameters[key]))
        else:
            items.append(item(f"PARAMETER {key}", value, None, "dropped", "-", "not a setting vLLM has"))

    # ---- TEMPLATE, SYSTEM, MESSAGE, ADAPTER
    if chat_template:
        items.append(item("TEMPLATE", _short(model.get("template") or "-"), chat_template, "carried",
                          "vllm.yaml serving.chat_template → --chat-template",
                          "the Jinja template given with --chat-template replaces the checkpoint's own"))
    elif model.get("template"):
        items.append(item("TEMPLATE", _short(model["template"]), "the checkpoint's chat template", "approximated",
                          "the checkpoint's tokenizer_config.json",
                          "Ollama's template is a Go template, vLLM's a Jinja one: the checkpoint's own template "
                          "(front.json keeps Ollama's text for /api/show) "
                          "formats the same roles; a custom template must be rewritten in Jinja (--chat-template)"))
    if model.get("system"):
        items.append(item("SYSTEM", _short(model["system"]), None, "carried",
                          "front.json models[].system",
                          "the front inserts it when a request has no system message; vLLM has no server-side "
                          "system prompt, so clients calling /v1 directly must send it"))
    if model.get("messages"):
        items.append(item("MESSAGE", len(model["messages"]), None, "carried",
                          "front.json models[].messages",
                          "the front puts them before the request's messages; vLLM has no server-side conversation prefix"))
    for adapter in model.get("adapters") or []:
        items.append(item("ADAPTER", adapter, None, "dropped", "vllm.yaml adapters: (to fill in)",
                          "a GGUF LoRA cannot be loaded by vLLM: add the adapter's PEFT folder (adapter_config.json "
                          "+ adapter_model.safetensors) under `adapters:` in vllm.yaml"))

    # ---- context
    ctx, ctx_from = _context(model, params, env)
    # ---- server settings
    overrides: dict[str, Any] = {"backend": NEW_ENGINE}
    serving: dict[str, Any] = {"served_names": names}
    parallel_s = env.get("OLLAMA_NUM_PARALLEL")
    parallel = _int(parallel_s or R.ollama_defaults["OLLAMA_NUM_PARALLEL"], "OLLAMA_NUM_PARALLEL", inventory)
    if parallel_s:
        overrides["max_num_seqs"] = parallel
        items.append(item("OLLAMA_NUM_PARALLEL", parallel, {"max_num_seqs": parallel}, "carried",
                          "vllm.yaml overrides.max_num_seqs → --max-num-seqs; workload.concurrency",
                          "requests decoded together"))
    else:
        items.append(item("OLLAMA_NUM_PARALLEL", R.ollama_defaults["OLLAMA_NUM_PARALLEL"] + " (default)", None, "approximated",
                          "vllm.yaml workload.concurrency",
                          "Ollama's default serves one request at a time; vLLM batches, so the planner sizes --max-num-seqs"))
    queue = _int(env.get("OLLAMA_MAX_QUEUE", R.ollama_defaults["OLLAMA_MAX_QUEUE"]), "OLLAMA_MAX_QUEUE", inventory)
    if queue > 0:
        serving["max_queued_requests"] = queue
    items.append(item("OLLAMA_MAX_QUEUE", env.get("OLLAMA_MAX_QUEUE", R.ollama_defaults["OLLAMA_MAX_QUEUE"] + " (default)"),
                      {"max_num_queued_reqs": queue} if queue > 0 else None, "carried" if queue > 0 else "dropped",
                      "vllm.yaml serving.max_queued_requests → --max-num-queued-reqs",
                      "both refuse requests beyond the queue with HTTP 503 (Ollama: \"server busy\")"))
    kv = env.get("OLLAMA_KV_CACHE_TYPE", "").strip().lower() or R.ollama_defaults["OLLAMA_KV_CACHE_TYPE"]
    if kv not in R.kv_cache_types:
        raise InputError(f"OLLAMA_KV_CACHE_TYPE={kv!r} is not a value Ollama accepts ({', '.join(R.kv_cache_types)})",
                         where=inventory["server"].get("env_where", {}).get("OLLAMA_KV_CACHE_TYPE") or "OLLAMA_KV_CACHE_TYPE")
    rule = R.kv_cache_types[kv]
    vkv, status, why = rule.vllm, rule.status, rule.reason
    if vkv != "auto":
        overrides["kv_cache_dtype"] = vkv
    items.append(item("OLLAMA_KV_CACHE_TYPE", kv, {"kv_cache_dtype": vkv}, status,
                      "vllm.yaml overrides.kv_cache_dtype → --kv-cache-dtype", why))
    if "OLLAMA_CONTEXT_LENGTH" in env and ctx_from == "OLLAMA_CONTEXT_LENGTH":
        items.append(item("OLLAMA_CONTEXT_LENGTH", env["OLLAMA_CONTEXT_LENGTH"], {"max_model_len": ctx}, "carried",
                          "vllm.yaml overrides.max_model_len → --max-model-len", "the server-wide context"))
    keep = env.get("OLLAMA_KEEP_ALIVE")
    items.append(item("OLLAMA_KEEP_ALIVE", keep or R.ollama_defaults["OLLAMA_KEEP_ALIVE"] + " (default)", None, "dropped", "-",
                      "vLLM keeps its one model loaded for as long as it runs (no unload when idle)"))

    for key, why in R.dropped_env.items():
        if key in env:
            items.append(item(key, env[key], None, "dropped", "-", why))

    # ---- capabilities
    caps = set(model.get("capabilities") or [])
    needs: list[str] = []
    catalog_id = mapping.get("catalog_id")
    from llmctl.engines.sources import sources_for

    src = sources_for(catalog_id) if catalog_id else None
    if "tools" in caps:
        if src and src.tool_call_parser:
            needs.append("tool_calling")
            items.append(item("capability tools", True, {"tool_call_parser": src.tool_call_parser}, "carried",
                              "vllm.yaml needs: tool_calling → --tool-call-parser",
                              "the family's parser (profiles/model_sources.yaml)"))
        else:
            items.append(item("capability tools", True, None, "dropped", "-",
                              "no vLLM tool-call parser is known for this model family"))
    if "thinking" in caps:
        ok = bool(src and src.reasoning_parser and "tool_calling" in needs)
        items.append(item("capability thinking", True, {"reasoning_parser": src.reasoning_parser} if src and src.reasoning_parser else None,
                          "carried" if ok else "approximated",
                          "--reasoning-parser (with tool calling)" if ok else "(the model's own output)",
                          "thinking text is split out by vLLM's reasoning parser" if ok else
                          "vLLM returns the thinking text inline unless a reasoning parser is set"))
    if "vision" in caps:
        needs.append("vision")
        items.append(item("capability vision", True, None, "approximated", "vllm.yaml needs: vision",
                          "vLLM serves the checkpoint's vision tower; llmctl sizes the text model only"))
    embedding = "embedding" in caps
    if embedding:
        needs.append("embeddings")
        items.append(item("capability embedding", True, {"runner": "pooling"}, "carried",
                          "vllm.yaml needs: embeddings → --runner pooling",
                          "/v1/embeddings is served only by vLLM's pooling runner; vectors are not L2-normalised "
                          "unless the model's pooler does it (the front normalises /api/embed)"))

    # ---- GGUF in vLLM
    gguf_q = (model.get("details") or {}).get("quantization_level") or mapping.get("gguf_quantization")
    if allow_gguf:
        items.append(item("GGUF weights", gguf_q, "vllm-gguf-plugin (experimental)", "approximated",
                          "not rendered: vllm.yaml loads the Hugging Face checkpoint",
                          "vLLM v0.33.0 has no GGUF loader in tree; the out-of-tree vllm-gguf-plugin "
                          "(`pip install \"vllm[extra-quant]\"`) is experimental: install it and point `model:` at "
                          "the .gguf file yourself if you accept that"))

    # ---- the spec of the new side
    workload: dict[str, Any] = {"concurrency": max(1, parallel)}
    if ctx:
        workload["context_length"] = ctx
        workload["prompt_tokens"] = max(1, min(512, ctx // 2))
        workload["output_tokens"] = max(1, min(256, ctx // 4))
        overrides["max_model_len"] = ctx
    if generation:
        serving["generation"] = generation
    if chat_template:
        serving["chat_template"] = chat_template
    spec: dict[str, Any] = {"name": name, "model": mapping["hf_repo"], "workload": workload}
    if source_spec is not None:  # its workload is the service's own; the context is the one Ollama was given
        spec["environment"] = source_spec.environment
        kept = dump(source_spec.workload, exclude_none=True)
        if ctx:
            kept["context_length"] = ctx
            if kept["prompt_tokens"] + kept["output_tokens"] > ctx:
                kept["prompt_tokens"], kept["output_tokens"] = workload["prompt_tokens"], workload["output_tokens"]
        if not kept.get("sla"):
            kept.pop("sla", None)
        spec["workload"] = kept
    if needs:
        spec["needs"] = needs
    spec["hardware"] = hardware
    spec["target"] = target or "compose"
    spec["endpoint"] = {"bind": "127.0.0.1", "port": vllm_port()}
    spec["serving"] = serving
    spec["overrides"] = overrides

    keep_api = inventory.get("native_api_seen", True) if keep_ollama_api is None else keep_ollama_api
    front = None
    if keep_api:
        front = {
            "schema": FRONT_SCHEMA,
            "backend": f"http://127.0.0.1:{vllm_port()}",
            "api_key_env": "VLLM_API_KEY" if spec.get("environment", "development") != "development" else None,
            "version": inventory["server"].get("version"),
            "models": [{
                "name": tag, "aliases": names[1:], "served_name": tag, "system": model.get("system"),
                "messages": model.get("messages") or [], "options": front_options,
                "template": model.get("template"), "show": model.get("show"), "embedding": embedding,
                "context_length": ctx,
            }],
        }
    return {"items": items, "spec": spec, "front": front, "context": ctx, "context_from": ctx_from,
            "gguf_quantization": gguf_q, "embedding": embedding}


def _context(model: dict[str, Any], params: dict[str, Any], env: dict[str, str]) -> tuple[int | None, str | None]:
    if params.get("num_ctx"):
        return int(params["num_ctx"]), "num_ctx"
    loaded = model.get("loaded") or {}
    if loaded.get("context_length"):
        return int(loaded["context_length"]), "/api/ps context_length"
    v = env.get("OLLAMA_CONTEXT_LENGTH", "")
    if v.isdigit() and int(v) > 0:
        return int(v), "OLLAMA_CONTEXT_LENGTH"
    return None, None


def _int(value: str, key: str, inventory: dict[str, Any]) -> int:
    try:
        n = int(str(value).strip())
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        where = inventory["server"].get("env_where", {}).get(key) or key
        raise InputError(f"{key}={value!r} is not a whole number", where=where) from None


def _short(text: str, n: int = 80) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= n else one[: n - 1] + "…"


# --------------------------------------------------------------------------- after planning


def quantization_item(plan: Any, gguf_q: str | None, size_bytes: int | None) -> dict[str, Any]:
    from llmctl.catalog import Catalog

    cat = Catalog.load()
    old = cat.find_quantization(gguf_q) if gguf_q else None
    new = cat.find_quantization(plan.quantization)
    weights_new = plan.memory.per_gpu_gib.weights * max(1, plan.tensor_parallel * plan.pipeline_parallel)
    old_gib = (size_bytes / 1024**3) if size_bytes else None
    parts = [f"{gguf_q or '?'} GGUF → {plan.quantization} ({plan.model.source})"]
    if old_gib:
        parts.append(f"weights {old_gib:.1f} GiB → {weights_new:.1f} GiB ({weights_new / old_gib:.1f}×)")
    quality = "unknown"
    if old and new:
        if new.quality_rank > old.quality_rank:
            quality = f"higher: {new.id} ({new.bits_per_weight:g} bits/weight) is closer to the original weights than {old.id} ({old.bits_per_weight:g})"
        elif new.quality_rank < old.quality_rank:
            quality = f"lower: {new.id} ({new.bits_per_weight:g} bits/weight) is further from the original weights than {old.id} ({old.bits_per_weight:g})"
        else:
            quality = "about the same"
    parts.append(f"quality {quality}")
    same = bool(old and new and old.id == new.id)
    return {
        **item("quantization", gguf_q, plan.quantization, "carried" if same else "approximated",
               "plan.json quantization (planned, not forced)",
               "; ".join(parts) + ". vLLM v0.33.0 loads no GGUF in tree (the vllm-gguf-plugin is experimental, "
               "offered with --allow-gguf); the planner picked the best format that fits with the KV cache"),
        "memory": {"gguf_gib": round(old_gib, 2) if old_gib else None, "vllm_weights_gib": round(weights_new, 2),
                   "vllm_per_gpu_total_gib": plan.memory.per_gpu_gib.total, "kv_cache_tokens": plan.memory.kv_cache_tokens},
        "quality": quality,
    }


def client_changes(front: dict[str, Any] | None, spec: dict[str, Any], embedding: bool) -> dict[str, Any]:
    port = spec["endpoint"]["port"]
    keyed = spec.get("environment", "development") != "development"
    common = [
        f"base URL: http://HOST:11434 → the migration proxy's port (or vLLM directly at http://HOST:{port})",
        "API key: Ollama had none; " + ("vLLM requires `Authorization: Bearer $VLLM_API_KEY` on /v1" if keyed else
                                        "vLLM accepts --api-key (set `environment: production` in vllm.yaml to require VLLM_API_KEY)"),
        "truncation: Ollama silently truncates a prompt longer than num_ctx; vLLM rejects it with HTTP 400 — "
        "trim history on the client",
    ]
    if embedding:
        common.append("embeddings: Ollama's /api/embed L2-normalises; vLLM's /v1/embeddings returns the pooler's "
                      "output — normalise on the client, and re-embed stored vectors if the weights changed")
    styles = {
        "curl": ["endpoints: " + ", ".join(f"{a} → {b}" for a, b in ENDPOINTS),
                 "bodies: `messages` stay; `options.temperature` → top-level `temperature`; `stream` sends SSE "
                 "(`data: {...}`) instead of NDJSON; `keep_alive`, `format: json` → `response_format`"],
        "openai-sdk": [f"OpenAI(base_url=\"http://HOST:{port}/v1\", api_key=...) — Ollama's own /v1 had the same "
                       "shape, so only the URL and key change", "model names: unchanged (served under the Ollama tag)"],
        "ollama-sdk": (["keeps working unchanged through the Ollama-compatible front (front.json): point "
                        "OLLAMA_HOST at the proxy"] if front else
                       ["the front is off (--no-keep-ollama-api): move to the OpenAI SDK"]),
    }
    return {"common": common, "per_style": styles}

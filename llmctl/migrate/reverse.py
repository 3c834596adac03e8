"""`llmctl migrate vllm-to-ollama`: a cheap development copy of a vLLM service on Ollama.

The Hugging Face repository becomes the catalog's Ollama tag of the same model (GGUF, the tag's default
quantization unless `--quant`); `serving.generation` becomes Modelfile PARAMETERs (Ollama's names,
api/types.go Options at v0.32.15); the context becomes `num_ctx`. Written: `Modelfile` (build the tag
with `ollama create NAME -f Modelfile`), `ollama.yaml` (an llmctl spec serving that tag with Ollama),
`decisions.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmctl.errors import InputError
from llmctl.migrate import NEW_ENGINE, OLD_ENGINE
from llmctl.migrate.decide import item
from llmctl.spec import Spec
from llmctl.targets.registry import entry
from llmctl.typed import default_of, dump

SCHEMA = "llmctl.migrate.reverse/v1"
# serving.generation → Modelfile PARAMETER (the same meaning unless noted)
TO_PARAMETER = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
                "repetition_penalty": "repeat_penalty", "max_new_tokens": "num_predict"}


def ollama_tag_for(hf_repo: str, quant: str | None) -> tuple[str, str, Any]:
    """(tag, quantization, catalog model) of the catalog's Ollama tag for a Hugging Face repository."""
    from llmctl.catalog import Catalog
    from llmctl.model_refs import approximate, exact, library_tag

    cat = Catalog.load()
    found = exact(cat, hf_repo) or approximate(cat, hf_repo)
    o = (found.arch.ollama or {}) if found else {}
    if not found or not o.get("names"):
        raise InputError(f"no Ollama tag is known for {hf_repo}", where="model",
                         hint="the catalog (profiles/models.yaml) lists the Ollama name of each model it knows")
    name = o["names"][0]
    size = (o.get("size_tags") or ["latest"])[0]
    default = o.get("default_quantization") or "Q4_K_M"
    q = (quant or default)
    tag = f"{name}:{size}"
    if quant and quant.upper() != default.upper():
        qq = cat.find_quantization(quant)
        if qq is None or not qq.is_gguf:
            raise InputError(f"--quant {quant!r} is not a GGUF quantization", where="--quant")
        q = qq.id
        tag = library_tag(o, q)  # SIZE-instruct-QUANT for most library models (llama3.2:1b-instruct-q4_K_M)
        from llmctl.engines.ollama_library import not_published

        why = not_published(o, q)
        if why:
            raise InputError(f"--quant {quant}: {why}", where="--quant",
                             hint="choose one of those, or leave --quant out for the tag's default")
    return tag, q, found


def reverse(source: str, *, out: str | None, quant: str | None, force: bool) -> dict[str, Any]:
    from llmctl.fileio import to_yaml, write_atomic
    from llmctl.migrate.modelfile import render_modelfile
    from llmctl.spec import load_spec, load_spec_text

    spec = load_spec(source)
    from llmctl.planner import make_plan

    plan = make_plan(spec, base_dir=Path(source).resolve().parent)
    if plan.backend != NEW_ENGINE:
        raise InputError(f"the spec's plan serves it with {plan.backend}, not vLLM", where=source,
                         hint="vllm-to-ollama reads a spec planned for vLLM (e.g. a migration's vllm.yaml)")
    repo = plan.model.hf_id or spec.model
    tag, q, found = ollama_tag_for(repo, quant)
    items = [item("model", repo, tag, "approximated", "Modelfile FROM; ollama.yaml model",
                  f"the catalog's Ollama tag of {found.arch.id}: GGUF {q} instead of {plan.quantization} — smaller, "
                  "slightly lower quality")]
    params: dict[str, Any] = {}
    for key, value in spec.serving.generation.given().items():
        pname = TO_PARAMETER[key]
        params[pname] = value
        note = {"repetition_penalty": ("approximated", "Ollama's repeat_penalty counts only the last repeat_last_n "
                                       "(64) tokens; vLLM's counted every token"),
                "max_new_tokens": ("carried", "the default output limit (a request's num_predict overrides it)")}
        status, reason = note.get(key, ("carried", "the same sampling setting"))
        items.append(item(f"generation {key}", value, {pname: value}, status, f"Modelfile PARAMETER {pname}", reason))
    params["num_ctx"] = plan.max_model_len
    items.append(item("max-model-len", plan.max_model_len, {"num_ctx": plan.max_model_len}, "carried",
                      "Modelfile PARAMETER num_ctx",
                      "the context per request; Ollama truncates longer prompts where vLLM rejected them"))
    names = spec.serving.served_names or [plan.model.reference]
    local = names[0]
    items.append(item("served names", names, local, "approximated" if len(names) > 1 else "carried",
                      "`ollama create NAME`", "Ollama answers to the tag it was created as (and NAME:latest); "
                      "other names need `ollama cp`"))
    if spec.serving.max_queued_requests:
        items.append(item("max_queued_requests", spec.serving.max_queued_requests,
                          {"OLLAMA_MAX_QUEUE": spec.serving.max_queued_requests}, "carried",
                          "the Ollama server's environment", "requests beyond the queue get HTTP 503 in both"))
    if spec.adapters:
        items.append(item("adapters", [a.name for a in spec.adapters], None, "dropped", "-",
                          "Ollama needs a GGUF adapter (ADAPTER); convert the PEFT folder with llama.cpp's "
                          "convert_lora_to_gguf.py first"))
    modelfile = render_modelfile(tag, params)
    o_spec = {"name": f"{spec.name}-ollama", "model": tag,
              "workload": dump(spec.workload, exclude_none=True), "hardware": "detect",
              # a development copy runs on this machine: a cluster target becomes the spec default
              "target": spec.target if entry(spec.target).on_this_host else default_of(Spec, "target"),
              "overrides": {"backend": OLD_ENGINE}}
    if not o_spec["workload"].get("sla"):
        o_spec["workload"].pop("sla", None)
    folder = Path(out or f"migration-{spec.name}-ollama")
    spec_text = ("# A development copy of " + spec.name + " on Ollama (llmctl migrate vllm-to-ollama).\n"
                 f"# It serves the library tag; then create the tuned model on it: ollama create {local} -f Modelfile\n"
                 + to_yaml(o_spec))
    load_spec_text(spec_text, str(folder / "ollama.yaml"))  # must be a valid spec
    doc = {"schema": SCHEMA, "source": source, "tag": tag, "name": local, "quantization": q, "items": items,
           "modelfile": modelfile, "out": str(folder)}
    files = {"Modelfile": modelfile, "ollama.yaml": spec_text,
             "decisions.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n"}
    if folder.exists() and not force:
        there = [f for f in files if (folder / f).exists()]
        if there:
            raise InputError(f"{folder} already holds {', '.join(there)}; nothing was written", where="--out",
                             hint="pass --force to overwrite them, or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        write_atomic(folder / fname, text, mode=0o644)
    doc["written"] = list(files)
    return doc


def table(doc: dict[str, Any]) -> str:
    from llmctl.migrate.report import MARK, _val

    lines = [f"{doc['source']} → Ollama {doc['tag']} (as {doc['name']})"]
    for i in doc["items"]:
        lines.append(f"  {MARK[i['status']]:<8} {i['item']}: {_val(i['ollama'])} → {_val(i['vllm'])}  ({i['where']})")
    lines += ["", doc["modelfile"].rstrip("\n"), "",
              f"wrote {doc['out']}/: " + ", ".join(doc.get("written", [])),
              f"next: llmctl up {doc['out']}/ollama.yaml, then on that server: "
              f"ollama create {doc['name']} -f {doc['out']}/Modelfile"]
    return "\n".join(lines)

"""`llmctl migrate ollama-to-vllm` without --apply: inventory, decide, plan, render, write the folder.

Nothing on the Ollama side is changed; the folder is the interface to `--apply` (see the README)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import InputError
from llmctl.typed import dump, updated

TEMPLATE_FILE = "chat-template.jinja"
OUT_FILES = ("inventory.json", "mapping.yaml", "decisions.json", "report.md", "vllm.yaml", "plan.json", "front.json")


@dataclass
class Options:
    source: str
    out: str | None = None
    maps: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    url: str | None = None
    keep_ollama_api: bool | None = None
    allow_gguf: bool = False
    hardware: str | None = None
    chat_template: str | None = None
    force: bool = False
    write: bool = True


@dataclass
class Result:
    decisions: dict[str, Any]
    inventory: dict[str, Any]
    out: Path | None
    feasible: bool
    written: list[str] = field(default_factory=list)


def run(opts: Options) -> Result:
    from llmctl.fileio import to_yaml
    from llmctl.migrate import decide, inventory as inv_mod, mapping as map_mod, sources
    from llmctl.slug import slugify

    maps = map_mod.parse_maps(opts.maps)
    hardware = decide.parse_hardware(opts.hardware) if opts.hardware else None
    src = sources.classify(opts.source, opts.url)
    inventory = inv_mod.build(src, list(opts.models))
    mappings = map_mod.map_all(inventory, maps)
    model = decide.select(inventory, list(opts.models))
    mapping = mappings[model["name"]]
    if not mapping["hf_repo"]:
        raise map_mod.unmapped_error([model["name"]])
    if hardware is None:
        hardware = ([dump(n, exclude_none=True) for n in src.spec.hardware]
                    if src.spec is not None and isinstance(src.spec.hardware, list) else "detect")
    base = slugify(model["name"].replace(":", "-").replace("/", "-")) or "model"
    name = f"{src.spec.name}-vllm" if src.spec is not None else f"{base}-vllm"
    out = Path(opts.out or f"migration-{base}")
    template_text = _read_template(opts.chat_template) if opts.chat_template else None
    d = decide.decide(inventory, model, mapping, name=name, hardware=hardware, source_spec=src.spec,
                      target=src.target, keep_ollama_api=opts.keep_ollama_api, allow_gguf=opts.allow_gguf,
                      chat_template=str((out / TEMPLATE_FILE).resolve()) if template_text is not None else None)

    from llmctl.spec import load_spec_text

    spec_text = ("# The vLLM side of the migration of " + model["name"] + " (llmctl migrate ollama-to-vllm).\n"
                 "# An ordinary llmctl spec: `llmctl plan|render|up` read it.\n" + to_yaml(d["spec"]))
    spec = load_spec_text(spec_text, str(out / "vllm.yaml"))
    from llmctl.planner import make_plan
    from llmctl.spec import spec_digest

    plan = make_plan(spec, base_dir=out.resolve())
    plan = updated(plan, spec_sha256=spec_digest(spec))
    rendered = None
    vllm_args: list[str] = []
    if plan.feasible:
        from llmctl.render import render_plan
        from llmctl.targets import RenderOptions

        rendered = render_plan(plan, spec, None, RenderOptions(source=str(out / "vllm.yaml")))
        argv = list(rendered.service.argv)
        from llmctl.engines import get_engine

        command = list(get_engine(plan.backend).profile.container_command)  # e.g. `vllm serve`
        vllm_args = argv[len(command):] if argv[:len(command)] == command else argv
    items = list(d["items"])
    items.insert(1, decide.quantization_item(plan, d["gguf_quantization"], model.get("size")))
    from llmctl.engines import get_engine

    summary = (f"{plan.quantization} from {plan.model.source} on {plan.gpu.count_per_replica}× {plan.gpu.type}, "
               f"{get_engine(plan.backend).layout_summary(plan)}, max-model-len {plan.max_model_len}" if plan.feasible else
               "cannot work: " + "; ".join(plan.problems or ["infeasible"]))
    doc = {
        "schema": decide.DECISIONS_SCHEMA,
        "source": inventory["source"],
        "models": [{
            "tag": model["name"], "hf_repo": mapping["hf_repo"], "revision": mapping.get("revision"),
            "confidence": mapping["confidence"], "how": mapping["how"], "items": items,
            "served_names": d["spec"]["serving"]["served_names"],
            "plan": {"feasible": plan.feasible, "summary": summary, "quantization": plan.quantization,
                     "source": plan.model.source, "max_model_len": plan.max_model_len,
                     "gpu": plan.gpu.type, "gpus": plan.gpu.count_per_replica, "problems": plan.problems},
            "vllm_args": vllm_args, "warnings": list(plan.warnings),
        }],
        "keep_ollama_api": d["front"] is not None,
        "clients": decide.client_changes(d["front"], d["spec"], d["embedding"]),
        "out": str(out),
    }
    result = Result(doc, inventory, out if opts.write else None, plan.feasible)
    if not opts.write:
        return result
    from llmctl.migrate import report

    files: dict[str, str] = {
        "inventory.json": json.dumps(inventory, indent=2, ensure_ascii=False) + "\n",
        "mapping.yaml": "# Ollama tag → Hugging Face repository (llmctl migrate ollama-to-vllm)\n" + to_yaml(
            {"schema": "llmctl.migrate.mapping/v1",
             "models": {t: {k: v for k, v in m.items() if k in ("hf_repo", "revision", "confidence", "how")}
                        for t, m in mappings.items()}}),
        "decisions.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
        "report.md": report.markdown(doc, inventory),
        "vllm.yaml": spec_text,
        "plan.json": json.dumps(plan.to_public(), indent=2) + "\n",
    }
    if template_text is not None:
        files[TEMPLATE_FILE] = template_text
    if d["front"] is not None:
        files["front.json"] = json.dumps(d["front"], indent=2, ensure_ascii=False) + "\n"
    _refuse_overwrite(out, files, opts.force, rendered is not None)
    from llmctl.fileio import write_atomic

    out.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        write_atomic(out / fname, text, mode=0o644)
    result.written = list(files)
    if rendered is not None:
        from llmctl.render import write_files

        write_files(out / "deploy", rendered.files, force=opts.force)
        result.written.append("deploy/")
    doc["written"] = result.written
    return result


def _read_template(path: str) -> str:
    """A Jinja chat template given with --chat-template (it must at least parse as Jinja)."""
    from llmctl.fileio import read_text_input

    text = read_text_input(path, what="chat template", max_bytes=1 << 20)
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"not a Jinja template: {exc.message}", where=f"{path}:{exc.lineno}",
                         hint="Ollama's Go templates ({{ .System }}) must be rewritten in Jinja for vLLM") from None
    return text


def _refuse_overwrite(out: Path, files: dict[str, str], force: bool, deploy: bool) -> None:
    if force or not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out} exists and is not a folder", where="--out")
    there = [f for f in files if (out / f).exists()] + (["deploy/"] if deploy and (out / "deploy").exists() else [])
    if there:
        raise InputError(f"{out} already holds {', '.join(there)}; nothing was written", where="--out",
                         hint="pass --force to overwrite them, or choose another --out")

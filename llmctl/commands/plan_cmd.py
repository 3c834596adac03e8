"""`llmctl init` and `llmctl plan`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from llmctl.typed import updated

STARTER = """\
# llmctl workload spec — `llmctl plan {path}` turns it into a deployment plan.
name: {name}

# An Ollama tag (llama3.1:8b), a Hugging Face id (meta-llama/Llama-3.1-8B-Instruct),
# a local .gguf file or a local Hugging Face folder (config.json + safetensors).
model: {model}

workload:
  concurrency: 8            # peak simultaneous requests
  prompt_tokens: 1024       # typical input length
  output_tokens: 256        # typical output length
  context_length: 8192      # longest request the service must accept
  # requests_per_minute: 120
  sla:
    ttft_p95_ms: 1500       # time to first token, 95th percentile
    itl_p95_ms: 60          # time between output tokens, 95th percentile
    # output_tokens_per_second: 15

environment: development    # development | staging | production
needs: []                   # lora, structured_output, vision, embeddings, prefix_caching, tool_calling, metrics

# The machines to plan for; or `hardware: detect` to use this machine (see `llmctl inventory`).
# GPU types as people write them: A100-80GB, H100, L4, RTX 4090, M2 Max; omit `gpu` for CPU only.
{hardware}

target: compose             # compose | systemd | kubernetes | local
endpoint:
  bind: 127.0.0.1           # 0.0.0.0 opens the service to the network
  # port: 8000

# Force any decision the planner would make (the plan reports it; exit 1 if it cannot work):
overrides: {{}}
#   backend: vllm           # ollama | vllm | llama.cpp
#   quantization: FP8       # BF16, FP8, AWQ, GPTQ, Q4_K_M, Q8_0, …
#   tensor_parallel: 2
#   max_model_len: 16384
#   gpu_memory_utilization: 0.9
#   image: registry.example.com/vllm/vllm-openai:v0.33.0
"""


@click.command("init")
@click.argument("path", default="llmctl.yaml", type=click.Path(dir_okay=False))
@click.option("--name", default="my-llm", show_default=True, help="Service name.")
@click.option("--model", default="llama3.1:8b", show_default=True,
              help="Model reference: an Ollama tag, a Hugging Face id, a .gguf file or a model folder.")
@click.option("--gpu", default=None, metavar="TYPE",
              help="Plan for this GPU type (e.g. A100-80GB) instead of the hardware detected here.")
@click.option("--gpus", type=click.IntRange(1, 64), default=1, show_default=True, help="With --gpu: GPUs per node.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(path: str, name: str, model: str, gpu: str | None, gpus: int, force: bool) -> None:
    """Write a commented starter spec to PATH (default llmctl.yaml), for the hardware of this machine.

    \b
    Examples:
      llmctl init                                   # this machine, llama3.1:8b
      llmctl init bot.yaml --model Qwen/Qwen2.5-7B-Instruct
      llmctl init prod.yaml --gpu A100-80GB --gpus 2
    """
    from llmctl.catalog import Catalog
    from llmctl.errors import InputError
    from llmctl.fileio import write_atomic

    target = Path(path)
    if target.exists() and not force:
        raise InputError(f"{target} already exists", hint="pass --force to overwrite it")
    catalog = Catalog.load()
    catalog.resolve_model(model, base_dir=target.resolve().parent, where="--model")  # unknown models: exit 2
    if gpu:
        profile = catalog.gpu(gpu, where="--gpu")
        hardware = f"hardware:\n  - name: node-1\n    gpu: {json.dumps(profile.id)}\n    gpus: {gpus}"
    else:
        from llmctl import inventory

        hardware = inventory.hardware_yaml(inventory.detect()).rstrip("\n")
    text = STARTER.format(path=target.name, name=json.dumps(name), model=json.dumps(model), hardware=hardware)
    from llmctl.spec import load_spec_text

    load_spec_text(text, str(target))  # the starter must always be a valid spec
    write_atomic(target, text)
    click.echo(f"wrote {target}; next: llmctl plan {target}")


VIEWS_SCHEMA = "llmctl.plan-views/v1"  # --sweep and --compare together, as JSON or YAML

PLAN_EXAMPLES = """
\b
Examples:
  llmctl plan llmctl.yaml                      # the decision, memory, latency, cost, and why
  llmctl plan llmctl.yaml --explain            # with the arithmetic behind every number
  llmctl plan llmctl.yaml -o json > plan.json  # the llmctl.plan/v1 contract, for CI and `render --plan`
  llmctl plan llmctl.yaml --compare            # the top candidates side by side
  llmctl plan llmctl.yaml --sweep concurrency=1,8,32 --chart load.svg
  cat llmctl.yaml | llmctl plan -              # the spec from standard input

\b
Exit codes: 0 the plan meets the SLA; 1 it cannot work or misses the SLA; 2 bad input.
"""


@click.command("plan", epilog=PLAN_EXAMPLES)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "wide", "json", "yaml"]), default="table",
              show_default=True, help="Output format; `wide`: tables with every column, nothing wrapped or cut.")
@click.option("--explain", is_flag=True, help="Show the arithmetic behind every number (also with --compare).")
@click.option("--compare", is_flag=True, help="Show the top candidates side by side.")
@click.option("--sweep", metavar="VAR=V1,V2,…", help="Predict across loads, e.g. concurrency=1,4,16,64.")
@click.option("--chart", type=click.Path(dir_okay=False), help="With --sweep: write the curves as SVG or HTML.")
@click.option("--offline", is_flag=True, help="Never use the network to resolve the model (also: HF_HUB_OFFLINE=1).")
def plan_cmd(spec_path: str, fmt: str, explain: bool, compare: bool, sweep: str | None, chart: str | None,
             offline: bool) -> int:
    """Plan a deployment for the workload in SPEC: engine, quantization, parallelism, replicas,
    memory per GPU, predicted latency, cost — and why. Exit 1 if the plan cannot work or misses the SLA."""
    from llmctl.errors import InputError

    if chart and not sweep:
        raise InputError("--chart draws the curves of a sweep: add --sweep VAR=V1,V2,…",
                         hint="e.g. --sweep concurrency=1,8,32 --chart load.svg")
    from llmctl.planner import make_plan
    from llmctl.spec import load_spec, spec_digest

    wide = fmt == "wide"
    fmt = "table" if wide else fmt
    if offline:
        from llmctl.resolve.policy import set_offline

        set_offline(True)
    spec = load_spec(spec_path)
    plan = make_plan(spec, base_dir=Path("." if spec_path == "-" else spec_path).resolve().parent)
    plan = updated(plan, spec_sha256=spec_digest(spec))
    if sweep or compare:
        from llmctl import sweep as sweep_mod

        if fmt == "table" or not (sweep and compare):
            docs = []
            if sweep:
                docs.append(sweep_mod.run_sweep(spec, spec_path, sweep, fmt=fmt, chart=chart, wide=wide))
            if compare:
                docs.append(sweep_mod.compare_table(plan, fmt=fmt, explain=explain, wide=wide))
            click.echo("\n\n".join(docs))
        else:  # one document, not two concatenated
            doc = {"schema": VIEWS_SCHEMA,
                   "sweep": sweep_mod.run_sweep(spec, spec_path, sweep, fmt="data", chart=chart),
                   "compare": sweep_mod.compare_table(plan, fmt="data", explain=explain)}
            click.echo(sweep_mod._serialize(doc, fmt))
    else:
        if fmt == "json":
            click.echo(json.dumps(plan.to_public(explain=explain), indent=2))
        elif fmt == "yaml":
            from llmctl.fileio import to_yaml

            click.echo(to_yaml(plan.to_public(explain=explain)), nl=False)
        else:
            from llmctl.plan_table import format_plan

            click.echo(format_plan(plan, explain=explain, wide=wide))
    return verdict(plan)


def verdict(plan) -> int:
    """The exit code of a plan: 1 when it cannot work or misses the SLA (with why, on stderr), else 0."""
    if not plan.feasible:
        print("failed: the plan cannot work — see the problems above", file=sys.stderr)
        return 1
    if not plan.sla.met:
        missed = "; ".join(f"{c.metric} predicted {c.predicted:g}, target {c.target:g}"
                           for c in plan.sla.checks if not c.met)
        print(f"failed: the plan misses the SLA: {missed}", file=sys.stderr)
        return 1
    return 0

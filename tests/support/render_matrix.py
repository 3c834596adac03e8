"""A matrix of real plans for checking renders against the engines themselves.

Every combination of model × hardware × engine × needs × environment below is planned by the real
planner (no hand-made plans), built into its ServiceSpec by the engine plug-in and rendered by every
target; combinations the planner rejects are left out and counted. The engines then judge the
command lines: vLLM's own argument parser, the real llama-server, and the Ollama contract table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from llmctl.errors import CheckFailed, InputError
from llmctl.planner import make_plan
from llmctl.render import build_service, render_service
from llmctl.service import ServiceSpec
from llmctl.spec import Spec
from llmctl.typed import convert

MODELS = ("llama3.1:8b", "qwen2.5:7b", "qwen3:8b", "gpt-oss:20b", "mistral:7b", "llama3.3:70b", "gemma2:9b",
          "llama3.2:3b")
HARDWARE = {
    "L4": [{"name": "n", "gpu": "L4", "gpus": 1}],
    "4090x2": [{"name": "n", "gpu": "RTX 4090", "gpus": 2}],
    "A100x2": [{"name": "n", "gpu": "A100-80GB", "gpus": 2}],
    "H100x8": [{"name": "n", "gpu": "H100", "gpus": 8}],
    "cpu": [{"name": "n", "cpu": "cpu-ddr5-2ch", "cpu_cores": 16, "memory_gb": 64}],
}
ENGINES = ("vllm", "llama.cpp", "ollama")
NEEDS = ((), ("tool_calling",), ("structured_output", "prefix_caching"), ("lora",))
ENVIRONMENTS = ("production", "development")
TARGETS = ("compose", "systemd", "kubernetes")


@dataclass
class Rendered:
    label: str
    spec: Spec
    service: ServiceSpec
    targets: tuple[str, ...]


def _spec(model: str, hardware: str, engine: str, needs: tuple[str, ...], env: str) -> Spec:
    data: dict = {
        "name": f"m-{abs(hash((model, hardware, engine, needs, env))) % 10**6}",
        "model": model,
        "environment": env,
        "needs": list(needs),
        "workload": {"concurrency": 8, "prompt_tokens": 512, "output_tokens": 256, "context_length": 4096},
        "hardware": HARDWARE[hardware],
        "overrides": {"backend": engine},
    }
    if "lora" in needs:
        data["adapters"] = [{"name": "sql", "path": "org/sql-lora", "rank": 32}]
    return convert(data, Spec)


def build_matrix(limit: int | None = None) -> tuple[list[Rendered], dict[str, int]]:
    """(rendered services, counts of what was left out and why)."""
    out: list[Rendered] = []
    skipped = {"planner rejects": 0, "engine rejects the plan": 0}
    for model, hardware, engine, needs, env in itertools.product(MODELS, HARDWARE, ENGINES, NEEDS, ENVIRONMENTS):
        spec = _spec(model, hardware, engine, needs, env)
        try:
            plan = make_plan(spec)
        except InputError:
            skipped["planner rejects"] += 1
            continue
        if not plan.feasible:
            skipped["planner rejects"] += 1
            continue
        try:
            service = build_service(plan, spec)
        except (InputError, CheckFailed):
            skipped["engine rejects the plan"] += 1
            continue
        targets = tuple(t for t in TARGETS if _renders(service, t))
        label = f"{model} {hardware} {engine} {plan.quantization} needs={'+'.join(needs) or '-'} {env}"
        out.append(Rendered(label, spec, service, targets))
        if limit and len(out) >= limit:
            break
    return out, skipped


def _renders(service: ServiceSpec, target: str) -> bool:
    render_service(service, target)  # any error is a bug worth a traceback
    return True


def distinct_argvs(items: list[Rendered], engine: str) -> dict[tuple[str, ...], str]:
    """Each distinct container argv of `engine`, with the label of one plan that renders it."""
    seen: dict[tuple[str, ...], str] = {}
    for r in items:
        if r.service.engine == engine:
            seen.setdefault(tuple(r.service.argv), r.label)
    return seen

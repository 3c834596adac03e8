"""The decision framework people already use, as explicit rules.

Each rule either forbids an engine on some hardware (a hard fact: vLLM has no CPU-only or Metal
build we deploy) or leans toward one (a preference). Preferences only break ties between
candidates that fit and meet the SLA at the same cost; every rule that fired is recorded in the
plan's rationale so the user can see why.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmctl.catalog import GpuProfile
from llmctl.spec import Spec

# Concurrency from which a production service counts as "many users". Public advice puts the point
# where Ollama stops scaling at 10–20 users; the performance model computes the real crossover.
MANY_USERS = 16


@dataclass(frozen=True)
class Lean:
    rule: str
    detail: str
    weights: dict[str, float]  # backend -> preference points


def engine_allowed(backend: str, device: GpuProfile) -> str | None:
    """None if `backend` can run on `device`, else the reason it cannot."""
    if backend == "vllm":
        if device.kind == "cpu":
            return "vLLM needs a GPU (its CPU build is for development, not serving)"
        if device.kind == "apple":
            return "vLLM has no Metal (Apple Silicon) backend"
        if device.vendor not in ("nvidia", "amd"):
            return f"vLLM does not support {device.vendor} accelerators"
    return None


def leanings(spec: Spec, needs_multi_gpu: bool) -> list[Lean]:
    out: list[Lean] = []
    env = spec.environment
    if env == "development":
        out.append(Lean("development → Ollama",
                        "a development environment favours Ollama: one command, models pulled by name, loads on demand",
                        {"ollama": 2, "llama.cpp": 1}))
    else:
        out.append(Lean(f"{env} → vLLM or llama-server",
                        f"a {env} service favours a server with an API key, metrics and a fixed model: vLLM on GPUs, "
                        "llama.cpp's llama-server elsewhere",
                        {"vllm": 2, "llama.cpp": 1.5}))
    if spec.workload.concurrency >= MANY_USERS and env != "development":
        out.append(Lean("many concurrent users → vLLM",
                        f"{spec.workload.concurrency} concurrent users: continuous batching (vLLM) scales where "
                        "Ollama's fixed slots queue", {"vllm": 1}))
    needs = set(spec.needs)
    if "lora" in needs:
        out.append(Lean("LoRA hot-swap → vLLM", "vLLM serves many LoRA adapters on one base model and loads them at run time",
                        {"vllm": 3}))
    if "structured_output" in needs:
        out.append(Lean("structured output → vLLM", "vLLM enforces JSON schemas and grammars with guided decoding "
                        "(llama.cpp has GBNF grammars too)", {"vllm": 1, "llama.cpp": 0.5}))
    if "prefix_caching" in needs:
        out.append(Lean("prefix caching → vLLM", "vLLM shares cached prompt prefixes across all requests "
                        "(llama.cpp reuses a prefix only within one slot)", {"vllm": 1}))
    if needs_multi_gpu:
        out.append(Lean("multi-GPU → vLLM", "the model needs more than one GPU: vLLM's tensor parallelism uses them "
                        "together; llama.cpp only splits layers", {"vllm": 2}))
    return out

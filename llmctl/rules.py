"""The decision framework people already use, as explicit rules.

Where an engine cannot run at all is the engine's own knowledge (`Engine.unavailable_on`). The
rules here lean toward engines (a preference), with each engine's points per rule kept in its
block of profiles/engines.yaml (`preference`). Preferences only break ties between
candidates that fit and meet the SLA at the same cost; every rule that fired is recorded in the
plan's rationale so the user can see why.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmctl.spec import Spec

# Concurrency from which a production service counts as "many users". Public advice puts the point
# where Ollama stops scaling at 10–20 users; the performance model computes the real crossover.
MANY_USERS = 16

# Weight formats of lower quality than this one are planned only when the spec forces one: below
# 4 bits (Q3_K, Q2_K) llama.cpp's own perplexity table shows the quality falling steeply
# (tools/quantize/quantize.cpp: Q4_K_M +0.18 ppl, Q3_K_M +0.66, Q2_K +3.52 @ Llama-3-8B).
QUALITY_FLOOR = "Q4_0"


@dataclass(frozen=True)
class Lean:
    rule: str
    detail: str
    weights: dict[str, float]  # backend -> preference points


def _points(rule_id: str) -> dict[str, float]:
    """Each engine's preference points for a rule, from its block in profiles/engines.yaml."""
    from llmctl.engines import all_engines

    return {e.name: e.profile.preference[rule_id] for e in all_engines() if e.profile.preference.get(rule_id)}


def leanings(spec: Spec, needs_multi_gpu: bool) -> list[Lean]:
    out: list[Lean] = []
    env = spec.environment
    if env == "development":
        out.append(Lean("development → Ollama",
                        "a development environment favours Ollama: one command, models pulled by name, loads on demand",
                        _points("development")))
    else:
        out.append(Lean(f"{env} → vLLM or llama-server",
                        f"a {env} service favours a server with an API key, metrics and a fixed model: vLLM on GPUs, "
                        "llama.cpp's llama-server elsewhere",
                        _points("serving")))
    if spec.workload.concurrency >= MANY_USERS and env != "development":
        out.append(Lean("many concurrent users → vLLM",
                        f"{spec.workload.concurrency} concurrent users: continuous batching (vLLM) scales where "
                        "Ollama's fixed slots queue", _points("many_users")))
    needs = set(spec.needs)
    if "lora" in needs:
        out.append(Lean("LoRA hot-swap → vLLM", "vLLM serves many LoRA adapters on one base model and loads them at run time",
                        _points("lora")))
    if "structured_output" in needs:
        out.append(Lean("structured output → vLLM", "vLLM enforces JSON schemas and grammars with guided decoding "
                        "(llama.cpp has GBNF grammars too)", _points("structured_output")))
    if "prefix_caching" in needs:
        out.append(Lean("prefix caching → vLLM", "vLLM shares cached prompt prefixes across all requests "
                        "(llama.cpp reuses a prefix only within one slot)", _points("prefix_caching")))
    if needs_multi_gpu:
        out.append(Lean("multi-GPU → vLLM", "the model needs more than one GPU: vLLM's tensor parallelism uses them "
                        "together; llama.cpp only splits layers", _points("multi_gpu")))
    return out

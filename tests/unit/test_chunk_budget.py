"""The planner searches vLLM's chunked-prefill budget (max_num_batched_tokens) when the inter-token
latency is what needs extra replicas: a 70B chat for 500 users on H100s needs fewer replicas with a
smaller budget (its ITL falls, its TTFT rises), the argv carries the chosen budget, and the rationale
says why. A budget set in the spec is kept as it is."""

from __future__ import annotations

from llmctl.planner import make_plan
from llmctl.spec import load_spec_text

SPEC = """name: big
model: llama3.1:70b
workload:
  concurrency: 500
  prompt_tokens: 1024
  output_tokens: 256
  context_length: 8192
  sla: {{ttft_p95_ms: {ttft}, itl_p95_ms: 75}}
environment: production
hardware:
  - {{gpu: H100-80GB-SXM, gpus: 8, count: 8}}
target: kubernetes
{extra}"""


def _plan(ttft: int = 2000, extra: str = ""):
    return make_plan(load_spec_text(SPEC.format(ttft=ttft, extra=extra), "big.yaml"))


def test_a_smaller_budget_saves_replicas_when_itl_binds():
    tuned = _plan()
    assert tuned.backend == "vllm" and tuned.sla.met
    assert tuned.engine_args["max_num_batched_tokens"] < 8192
    # the server's default budget at the same tensor parallelism needs more replicas
    default = _plan(extra=f"overrides: {{max_num_batched_tokens: 8192, tensor_parallel: {tuned.tensor_parallel}}}\n")
    assert tuned.replicas < default.replicas
    # and nothing with the default budget, at any parallelism, is cheaper than the tuned plan
    assert tuned.cost.usd_per_hour <= _plan(extra="overrides: {max_num_batched_tokens: 8192}\n").cost.usd_per_hour
    # at the same load (the tuned plan's replicas), the default budget has the higher ITL and lower TTFT
    same = _plan(extra=f"overrides: {{max_num_batched_tokens: 8192, tensor_parallel: {tuned.tensor_parallel}, "
                       f"replicas: {tuned.replicas}}}\n")
    assert tuned.performance.itl_p95_ms < same.performance.itl_p95_ms
    assert tuned.performance.ttft_p95_ms > same.performance.ttft_p95_ms
    note = next(r.detail for r in tuned.rationale if r.rule == "engine tuning")
    assert f"{default.replicas} replicas → {tuned.replicas} replicas" in note


def test_a_budget_in_the_spec_is_kept():
    kept = _plan(extra="overrides: {max_num_batched_tokens: 4096}\n")
    assert kept.engine_args["max_num_batched_tokens"] == 4096
    assert not any(r.rule == "engine tuning" for r in kept.rationale)


def test_no_search_when_ttft_binds():
    """A tight TTFT target: a smaller budget would only make the binding metric worse."""
    tight = _plan(ttft=300)
    assert not any(r.rule == "engine tuning" for r in tight.rationale)


def test_arrival_and_lengths_are_workload_shapes():
    """A burst of 500 requests at once needs more capacity than 500 users in a closed loop; a chat-like
    spread of lengths moves the tail; an open arrival without a rate is refused naming the field."""
    import pytest

    from llmctl.errors import InputError

    closed = _plan()
    burst = make_plan(load_spec_text(SPEC.format(ttft=2000, extra="").replace(
        "  context_length: 8192\n", "  context_length: 8192\n  arrival: burst\n"), "big.yaml"))
    assert burst.replicas * burst.gpu.count_per_replica > closed.replicas * closed.gpu.count_per_replica
    mixed = make_plan(load_spec_text(SPEC.format(ttft=2000, extra="").replace(
        "  context_length: 8192\n", "  context_length: 8192\n  lengths: sharegpt\n"), "big.yaml"))
    assert mixed.performance.ttft_p95_ms != closed.performance.ttft_p95_ms
    with pytest.raises(InputError, match="open needs requests_per_minute"):
        load_spec_text(SPEC.format(ttft=2000, extra="").replace(
            "  context_length: 8192\n", "  context_length: 8192\n  arrival: open\n"), "big.yaml")

"""The planner leaves unweighed only candidates that cannot change the plan (llmctl/weigh.py): every plan
here is made twice, pruning and weighing every candidate, and must come out the same to the byte."""

from __future__ import annotations

import json

import pytest

import llmctl.planner as planner
from llmctl import weigh
from llmctl.planner import Trace, make_plan
from llmctl.spec import load_spec_text

# a mixed inventory: the cheap cards meet the SLA, so most of the expensive ones are never weighed
MIXED = """name: mixed
model: {model}
workload: {{concurrency: {users}, prompt_tokens: 1024, output_tokens: 256, context_length: 4096{arrival},
           sla: {{ttft_p95_ms: {ttft}, itl_p95_ms: {itl}}}}}
hardware:
  - {{name: a, gpu: RTX4090-24GB, gpus: 2}}
  - {{name: b, gpu: L4-24GB-PCIe, gpus: 4}}
  - {{name: c, gpu: A100-80GB-SXM, gpus: 8}}
  - {{name: d, gpu: H100-80GB-SXM, gpus: 8}}
  - {{name: e, gpu: RTX3060-12GB, gpus: 1}}
  - {{name: f, gpu: A10G-24GB-PCIe, gpus: 4}}
  - {{name: g, gpu: L40S-48GB-PCIe, gpus: 2}}
  - {{name: h, gpu: RTX4060Ti-16GB, gpus: 1}}
  - {{name: i, cpu: cpu-server-ddr5-8ch, memory_gb: 512}}
{extra}"""

CASES = {
    "small model, loose SLA": dict(model="qwen3:8b", users=64, ttft=2000, itl=75, arrival="", extra=""),
    "open arrival": dict(model="qwen3:8b", users=64, ttft=2000, itl=75,
                         arrival=", arrival: open, requests_per_minute: 600", extra=""),
    "spread lengths": dict(model="qwen3:8b", users=16, ttft=3000, itl=100, arrival=", lengths: sharegpt", extra=""),
    "burst": dict(model="qwen3:8b", users=32, ttft=10000, itl=100, arrival=", arrival: burst", extra=""),
    "tight ITL: a single sequence is too slow on most cards": dict(model="qwen3:32b", users=64, ttft=2000, itl=25,
                                                                   arrival="", extra=""),
    "forced replicas": dict(model="qwen3:8b", users=64, ttft=2000, itl=75, arrival="",
                            extra="overrides: {replicas: 2}\n"),
}


def _weigh_all(ctx, candidates, evaluate) -> None:
    for c in candidates:
        if c.feasible:
            evaluate(ctx, c)


def _plan(text: str):
    trace = Trace()
    plan = make_plan(load_spec_text(text), trace=trace)
    return json.dumps(plan.to_public(explain=True), sort_keys=True), trace.ranked


@pytest.mark.parametrize("case", list(CASES))
def test_pruning_leaves_the_plan_unchanged(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MIXED.format(**CASES[case])
    pruned_plan, pruned = _plan(text)
    monkeypatch.setattr(planner, "weigh", _weigh_all)
    full_plan, full = _plan(text)
    assert pruned_plan == full_plan
    # the weighed candidates are the full ranking's, in its order, with the same figures
    weighed = [c.label() + c.kv.id for c in pruned if c.feasible and not c.pruned]
    order = {c.label() + c.kv.id: i for i, c in enumerate(full)}
    assert [order[w] for w in weighed] == sorted(order[w] for w in weighed)
    by_label = {c.label() + c.kv.id: c for c in full}
    for c in pruned:
        if c.feasible and not c.pruned:
            twin = by_label[c.label() + c.kv.id]
            assert (c.replicas, c.sla_met, c.violation, c.usd_per_hour) == (
                twin.replicas, twin.sla_met, twin.violation, twin.usd_per_hour)
    # every candidate the plan leaves unweighed ranks below what it shows, and none is on the chosen hardware
    chosen = pruned[0]
    assert all(c.pool is not chosen.pool and c.perf is None for c in pruned if c.pruned)
    first_pruned = next((i for i, c in enumerate(pruned) if c.pruned), len(pruned))
    assert all(c.pruned or not c.feasible for c in pruned[first_pruned:])
    if case == "forced replicas":
        assert not any(c.pruned for c in pruned)  # a forced count can reject as it weighs: all are weighed


@pytest.mark.parametrize("case", ["spread lengths", "burst"])
def test_pruning_prunes(case: str) -> None:
    """The point of it: where a few users per replica meet the SLA on the cheap cards, a third or more
    of the candidates are never weighed."""
    _, ranked = _plan(MIXED.format(**CASES[case]))
    feasible = [c for c in ranked if c.feasible]
    assert sum(c.pruned for c in feasible) > len(feasible) / 3


@pytest.mark.parametrize("case", [c for c in CASES if c != "forced replicas"])
def test_bounds_are_upper_bounds(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No weighed candidate ranks above the bound the pruning took for it."""
    monkeypatch.setattr(planner, "weigh", _weigh_all)
    trace = Trace()
    make_plan(load_spec_text(MIXED.format(**CASES[case])), trace=trace)
    ctx = trace.context
    weighed = [c for c in trace.ranked if c.feasible]
    assert weighed
    below_floor = 0
    for c in weighed:
        cost = weigh._cost_bound(c)
        bound = weigh._bound(ctx, c, cost)
        assert c.key() <= bound <= cost, c.label()
        below_floor += bound[1] == 0
    if "tight ITL" in case:
        assert below_floor > 0  # the ITL floor bites

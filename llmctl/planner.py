"""The planner: enumerate candidates, drop the infeasible ones with a reason, score the rest against
the SLA and cost, pick one and keep the runners-up.

A candidate is engine × quantization × KV dtype × TP/PP (or GPU count and slots for llama.cpp) ×
device pool (llmctl/candidates.py). For each: a memory estimate (does it fit? how much KV?), a
performance estimate (what latency at what concurrency?), the replicas the SLA needs, and the cost.
The Plan and its reasons are written by llmctl/plan_build.py.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmctl.candidates import Candidate, Context, enumerate_candidates, sla_ratio
from llmctl.catalog import Catalog, ResolvedModel
from llmctl.errors import InputError
from llmctl.estimate.performance import Deployment, PerfEstimate, predict
from llmctl.estimate.performance import constants as perf_constants
from llmctl.plan import Plan
from llmctl.plan_build import build_plan
from llmctl.pools import build_pools
from llmctl.rules import leanings
from llmctl.search import largest_within
from llmctl.spec import Node, Spec
from llmctl.term import count
from llmctl.typed import dump
from llmctl.weigh import weigh


@dataclass
class Trace:
    """What the planner weighed, for callers that look further than the Plan (sweep, compare, benchmarks)."""

    context: Context | None = None
    ranked: list[Candidate] = field(default_factory=list)  # best first; infeasible ones last


def make_plan(spec: Spec, *, catalog: Catalog | None = None, base_dir: Path | None = None,
              nodes: list[Node] | None = None, trace: Trace | None = None) -> Plan:
    """The plan for `spec`. Python's cyclic garbage collector is paused while it is made and back on
    (if it was) once the planner's own objects are gone: a plan makes hundreds of thousands of objects
    that live until it is made (candidates, estimates, deployments, predictions), and the collections
    they trigger walk them again and again, about a tenth of the planning time. The planner makes no
    reference cycles: reference counting frees all of it when the plan is returned."""
    was = gc.isenabled()
    gc.disable()
    try:
        return _make_plan(spec, catalog=catalog, base_dir=base_dir, nodes=nodes, trace=trace)
    finally:
        if was:
            gc.enable()


def _make_plan(spec: Spec, *, catalog: Catalog | None, base_dir: Path | None, nodes: list[Node] | None,
               trace: Trace | None) -> Plan:
    catalog = catalog or Catalog.load()
    model = catalog.resolve_model(spec.model, base_dir=base_dir, where="model")
    _check_needs(spec, model)
    detect_warnings: list[str] = []
    if nodes is None:
        if spec.hardware == "detect":
            catalog = catalog.copy()  # detected GPUs may add profiles; keep the cached catalog clean
        nodes, detect_warnings = _nodes(spec, catalog)
    pools = build_pools(nodes, catalog)
    if spec.overrides.gpu_type:
        want = catalog.gpu(spec.overrides.gpu_type, where="overrides.gpu_type").id
        pools = [p for p in pools if p.device.id == want]
        if not pools:
            raise InputError(f"no node in `hardware` has GPU type {want}", where="overrides.gpu_type")
    from llmctl.calibrate.apply import activate

    calibrated = activate(spec, model, pools)
    max_model_len, context_warning = _max_model_len(spec, model)
    ctx = Context(spec, catalog, model, pools, max_model_len, *_sla(spec), leans=[])
    candidates = enumerate_candidates(ctx)
    if not any(c.feasible for c in candidates):  # nothing can work: the closest estimate is what the plan shows
        ctx.size_rejected = True
        candidates = enumerate_candidates(ctx)
    # "the model needs more than one GPU": it fits on several, and on no single one
    needs_multi = (any(c.feasible and c.devices > 1 for c in candidates)
                   and not any(c.feasible and c.devices == 1 for c in candidates))
    ctx.leans = leanings(spec, needs_multi)
    points = {b: sum(l.weights.get(b, 0.0) for l in ctx.leans) for b in {c.backend for c in candidates}}
    for c in candidates:
        if c.reject is None:
            c.preference = points[c.backend]
    plan, ranked = choose(ctx, candidates)
    plan.warnings[:0] = detect_warnings + ([context_warning] if context_warning else [])
    if calibrated.rationale or calibrated.warnings:
        _add_calibration(plan, calibrated)
    if trace is not None:
        trace.context, trace.ranked = ctx, ranked
    return plan


def _add_calibration(plan: Plan, applied) -> None:
    """Say which calibration the plan used ("calibrated from …") and which it skipped."""
    from llmctl.plan import Explanation, Rationale

    plan.rationale[:0] = [Rationale(rule="calibration", detail=d) for d in applied.rationale]
    plan.warnings.extend(applied.warnings)
    plan.explain.extend(Explanation(quantity=q, value=v, formula=f) for q, v, f in applied.explain)


def _check_needs(spec: Spec, model: ResolvedModel) -> None:
    """Needs the model itself cannot meet, whatever the engine."""
    arch = model.arch.architecture or ""
    if "embeddings" in spec.needs and arch.endswith(("ForCausalLM", "ForConditionalGeneration")):
        raise InputError(
            f"embeddings — {model.arch.id} is a chat model ({arch}); its hidden states are not trained "
            "as embeddings, and llama.cpp refuses them (\"Pooling type 'none' is not OAI compatible\")",
            where="needs", hint="serve an embedding model as a service of its own, and drop `embeddings` here")


def _nodes(spec: Spec, catalog: Catalog) -> tuple[list[Node], list[str]]:
    """The spec's nodes, or this machine's (`hardware: detect`) with a profile made up for any GPU the
    catalog does not know, and the warnings detection raised."""
    if spec.hardware != "detect":
        return list(spec.hardware), []
    from llmctl.inventory import detect

    det = detect(catalog=catalog)
    for hint in det.unknown_gpu_hints():
        catalog.synthesize_gpu(hint)
    return list(det.nodes), list(det.warnings)


# The context a service gets when the spec names none: chats grow past one typical request, and an
# engine truncates (llama-server, Ollama) or rejects (vLLM) what does not fit. 4096 is Ollama's own
# default on small GPUs (OLLAMA_CONTEXT_LENGTH, server/routes.go v0.32.15).
CONTEXT_FLOOR = 4096


def _max_model_len(spec: Spec, model: ResolvedModel) -> tuple[int, str | None]:
    """The planned context, and a warning when it was not stated."""
    w = spec.workload
    limit = model.arch.max_position_embeddings
    if spec.overrides.max_model_len or w.context_length:
        want = spec.overrides.max_model_len or w.max_context
        if limit and want > limit:
            field_ = "overrides.max_model_len" if spec.overrides.max_model_len else "workload.context_length"
            raise InputError(f"{want} tokens exceed {model.arch.id}'s maximum context of {limit}", where=field_)
        return want, None
    one_request = w.prompt_tokens + w.output_tokens
    want = max(one_request, CONTEXT_FLOOR)
    if limit:
        want = min(want, limit)
    return want, (f"workload.context_length is not set: planned {want} tokens (one request is {one_request}; "
                  f"the floor is {CONTEXT_FLOOR}); set it to the longest conversation the service must hold")


def _sla(spec: Spec) -> tuple[dict[str, float], bool]:
    s = spec.workload.sla
    sla = {k: v for k, v in (("ttft_p95_ms", s.ttft_p95_ms), ("itl_p95_ms", s.itl_p95_ms),
                             ("output_tokens_per_second", s.output_tokens_per_second)) if v}
    if sla:
        return sla, False
    return dict(perf_constants()["default_sla"]), True


# --------------------------------------------------------------------------- evaluation


def deployment(ctx: Context, c: Candidate) -> Deployment:
    return c.engine.deployment(ctx, c)


def predict_at(ctx: Context, dep: Deployment, concurrency: int) -> PerfEstimate:
    """The performance model at `concurrency` users per replica, remembered per deployment: the SLA
    search, the replica count and the final figures ask for the same points."""
    by_users = ctx.predictions.get(dep)  # a Deployment hashes by identity, and the key keeps it alive
    if by_users is None:
        by_users = ctx.predictions[dep] = {}
    hit = by_users.get(concurrency)
    if hit is not None:
        return hit
    prompt, output, rpm, arrival, lengths = ctx.load
    est = by_users[concurrency] = predict(dep, concurrency=concurrency, prompt_tokens=prompt, output_tokens=output,
                                          requests_per_minute=rpm, arrival=arrival, lengths=lengths)
    return est


def max_concurrency_within_sla(ctx: Context, dep: Deployment, upper: int) -> int:
    """Largest concurrency (≤ upper) one replica serves within the SLA; 0 if not even one user.
    Latency never falls as users are added, so this is where the worst SLA ratio crosses 1."""
    return largest_within(lambda n: sla_ratio(ctx, predict_at(ctx, dep, n)), upper)


def evaluate(ctx: Context, c: Candidate) -> None:
    """Replicas, latency at the planned load, SLA verdict and cost of one feasible candidate, at the
    engine's default knobs and, when those need more than one replica or miss the SLA, at each other
    tuning the engine offers (vLLM: smaller chunked-prefill budgets, which trade TTFT for ITL): the
    tuning that needs the fewest replicas, then the best SLA margin, wins."""
    _evaluate_at(ctx, c)
    if not c.feasible or c.mem is None or (c.sla_met and c.replicas == 1):
        return
    best, default = c, c
    for i, tuning in enumerate(c.engine.tunings(ctx, c)):
        trial = replace(c, tuning={}, tuning_note=None, dep=None, perf=None)
        c.engine.apply_tuning(ctx, trial, tuning)
        if trial.feasible:
            _evaluate_at(ctx, trial)
        better = trial.feasible and (not trial.sla_met, trial.replicas, trial.violation) < \
            (not best.sla_met, best.replicas, best.violation)
        if better:
            best = trial
        elif i == 0:
            break  # the most promising tuning does not help: the others will not either
    if best is not default:
        knobs = ", ".join(f"{k} {v}" for k, v in best.tuning.items())
        best.tuning_note = (f"{knobs} instead of the server's default: {count(default.replicas, 'replica')} → "
                            f"{count(best.replicas, 'replica')}"
                            + (f" (ITL p95 {default.perf.itl_p95_ms:.0f} → {best.perf.itl_p95_ms:.0f} ms, TTFT p95 "
                               f"{default.perf.ttft_p95_ms:.0f} → {best.perf.ttft_p95_ms:.0f} ms, each with the load "
                               f"spread over its own replicas)"
                               if default.perf and best.perf else "")
                            + (", and the SLA is met" if best.sla_met and not default.sla_met else ""))
        for name in ("mem", "dep", "perf", "replicas", "sla_met", "violation", "usd_per_hour", "tuning", "tuning_note"):
            setattr(c, name, getattr(best, name))


def _evaluate_at(ctx: Context, c: Candidate) -> None:
    """Replicas, latency at the planned load, SLA verdict and cost of one feasible candidate as tuned.

    Only the replica count matters for the choice, so instead of the largest load one replica
    serves within the SLA (`max_concurrency_within_sla`, computed later for the candidates the plan
    shows), this searches the fewest replicas that meet it: users per replica = ceil(users /
    replicas) falls as replicas rise, and the inventory bounds them, so a few predictions settle it.
    """
    if not c.feasible or c.mem is None:
        return
    ov = ctx.spec.overrides
    users = ctx.spec.workload.concurrency
    dep = c.dep = c.dep or deployment(ctx, c)  # weigh.py may have made it for the candidate's bound
    available = (c.pool.per_node // c.devices) * (c.pool.nodes // c.pp) if c.pp <= c.pool.nodes else 0
    if ov.replicas:
        c.replicas = ov.replicas
        if ov.replicas > available:
            c.reject = (f"{ov.replicas} replicas need {ov.replicas * c.devices} × {c.pool.device.id}; "
                        f"the inventory has {c.pool.devices}")
    else:
        most = max(1, min(available, users))

        def misses(replicas: int) -> float:  # ≤ 1 when `replicas` replicas meet the SLA
            return sla_ratio(ctx, predict_at(ctx, dep, math.ceil(users / replicas)))

        at_most = misses(most)
        if at_most > 1:
            c.replicas = most  # the SLA is out of reach here: all the capacity there is, and say so
        else:
            lo, hi = 1, most  # fewest replicas that meet it: misses(lo - 1) > 1 ≥ misses(hi)
            # latency grows about linearly with users per replica, so the SLA ratio at `most` replicas
            # predicts the answer (most × ratio); test it and its neighbour before bisecting
            guess = min(max(1, math.ceil(most * at_most)), most)
            if guess < hi and misses(guess) <= 1:
                hi = guess
                if guess == 1 or misses(guess - 1) > 1:
                    lo = guess
                else:
                    hi = guess - 1
            elif guess < hi:
                lo = guess + 1
            while lo < hi:
                mid = (lo + hi) // 2
                if misses(mid) <= 1:
                    hi = mid
                else:
                    lo = mid + 1
            c.replicas = lo
    c.perf = predict_at(ctx, dep, math.ceil(users / c.replicas))
    c.violation = sla_ratio(ctx, c.perf)
    c.sla_met = c.violation <= 1
    c.usd_per_hour = c.pool.device.price_usd_per_hour * c.devices * c.replicas


def shown(best: Candidate, ranked: list[Candidate]) -> list[Candidate]:
    """The candidates whose capacity the plan states: the choice, and every feasible candidate of the
    other engines on the same hardware (the SLA crossover names the one that serves the most users)."""
    return [best] + [c for c in ranked if c.pool is best.pool and c.feasible and c.backend != best.backend]


# --------------------------------------------------------------------------- choice


def choose(ctx: Context, candidates: list[Candidate]) -> tuple[Plan, list[Candidate]]:
    weigh(ctx, candidates, evaluate)
    ranked = sorted(candidates, key=lambda c: c.key(), reverse=True)
    if not ranked:
        raise InputError("no hardware to plan for", where="hardware")
    best = ranked[0]
    forced = [k for k, v in dump(ctx.spec.overrides).items() if v is not None]
    if best.feasible:
        for c in shown(best, ranked):
            c.max_conc_sla = max_concurrency_within_sla(ctx, c.dep, ctx.spec.workload.concurrency)
        return build_plan(ctx, best, ranked, forced), ranked
    # Nothing fits: report the closest candidate that got an estimate, and every reason, so the user can act
    closest = next((c for c in ranked if c.mem is not None), best)
    return build_plan(ctx, closest, ranked, forced, feasible=False), ranked

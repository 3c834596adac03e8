"""Which candidates a plan must weigh: branch and bound over the ranking.

A plan shows its choice, the next ALTERNATIVES candidates of the ranking (one per engine, quantization,
layout and device) and, for the reasons, every candidate on the chosen hardware. Weighing a candidate
(its replica search, SLA verdict and cost, planner.evaluate) is most of a plan's time, and most
candidates of a large inventory rank far below what the plan shows. Each candidate's key is bounded
from above before it is weighed:

- one replica is the least it can need, so it costs at least one replica's price;
- latency never falls as users are added (the replica search relies on it too), so its ITL is at
  least one sequence's decode step, and if that alone misses the SLA, so does the candidate.

Candidates are weighed from the highest bound down, except that those whose one-sequence step already
misses the SLA wait until the rest are weighed (the bar is highest then). Once ALTERNATIVES of them
rank below the best, the lowest of those sets a bar: a candidate whose bound is under it cannot change
what the plan shows, and is left unweighed (`Candidate.pruned`; it ranks after every weighed
candidate). The bar only rises, and the order in which candidates are weighed changes which are
pruned, never the plan: it is the same as if every candidate had been weighed (tests/unit/test_weigh.py).
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Callable

from llmctl.candidates import Candidate, Context
from llmctl.estimate.performance import decode_step_ms, decoding_context
from llmctl.plan_build import ALTERNATIVES, alternative_group

# The one-sequence step is the planner's own arithmetic, but the ITL a prediction reports comes from
# other paths too (a burst's simulated steps, spread lengths): the floor keeps this much slack below it
FLOOR_SLACK = 0.98


def weigh(ctx: Context, candidates: list[Candidate], evaluate: Callable[[Context, Candidate], None]) -> None:
    """`evaluate` the candidates the plan can show and those on the chosen hardware; mark the rest pruned."""
    if ctx.spec.overrides.replicas:  # a forced count can reject a candidate as it is weighed: weigh all
        for c in candidates:
            if c.reject is None:
                evaluate(ctx, c)
        return
    # (bound, -position, candidate), the highest bound first and, among equal bounds, the candidates' order
    queue = [(_cost_bound(c), -i, c) for i, c in enumerate(candidates) if c.reject is None]
    queue.sort(key=itemgetter(0, 1), reverse=True)
    # weighed, as (key, -position, group, candidate), best first as the final ranking orders them, down to the bar
    top: list[tuple[tuple, int, tuple, Candidate]] = []
    bar: tuple | None = None

    def weigh_one(position: int, c: Candidate) -> None:
        nonlocal top, bar
        evaluate(ctx, c)
        key = c.key()
        if bar is None or key > bar:
            top.append((key, position, alternative_group(c), c))
            top.sort(key=itemgetter(0, 1), reverse=True)
            bar = _lowest_shown(top)
            if bar is not None:
                top = [t for t in top if t[0] >= bar]

    # one sequence alone misses the SLA on these: they rank below every candidate that meets it, so they
    # are weighed last, when the bar is highest
    slow: list[tuple[tuple, int, Candidate]] = []
    for n, (cost, position, c) in enumerate(queue):
        if bar is not None and cost < bar:
            for _, _, rest in queue[n:]:
                rest.pruned = True  # sorted: no later bound is higher
            break
        bound = _bound(ctx, c, cost)
        if bound[1] == 0:
            slow.append((bound, position, c))
        else:
            weigh_one(position, c)
    slow.sort(key=itemgetter(0, 1), reverse=True)
    for n, (bound, position, c) in enumerate(slow):
        if bar is not None and bound < bar:
            for _, _, rest in slow[n:]:
                rest.pruned = True
            break
        weigh_one(position, c)
    if not top:
        return
    chosen = top[0][3].pool
    for _, _, c in queue:  # the reasons compare the choice with everything on its hardware
        if c.pruned and c.pool is chosen:
            c.pruned = False
            evaluate(ctx, c)


def _lowest_shown(top: list[tuple[tuple, int, tuple, Candidate]]) -> tuple | None:
    """The key of the last alternative the plan would show from `top` (plan_build._alternatives), or None
    while it shows fewer."""
    seen: set[tuple] = set()
    for key, _, group, _ in top[1:]:
        if group not in seen:
            seen.add(group)
            if len(seen) == ALTERNATIVES:
                return key
    return None


def _cost_bound(c: Candidate) -> tuple:
    """Candidate.key() at its best: it meets the SLA with one replica, as fast as can be."""
    return c.key_with(True, c.pool.device.price_usd_per_hour * c.devices, 0.0, math.inf)


def _bound(ctx: Context, c: Candidate, cost: tuple) -> tuple:
    """`cost` (the candidate's _cost_bound), or, when one sequence's decode step already misses the SLA,
    the key of a candidate that misses it by that much. Keeps the deployment on the candidate for the
    weighing."""
    prompt, output = ctx.load[0], ctx.load[1]
    if c.dep is None:
        c.dep = c.engine.deployment(ctx, c)
    step = decode_step_ms(c.dep, 1, decoding_context(prompt, output)) * FLOOR_SLACK
    floor = 0.0
    for metric, target in ctx.sla.items():
        if metric == "itl_p95_ms":
            floor = max(floor, step / target)
        elif metric == "output_tokens_per_second":
            floor = max(floor, target * step / 1000)
    return cost if floor <= 1 else c.key_with(False, 0.0, floor, math.inf)

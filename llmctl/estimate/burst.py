"""A burst of requests arriving at once, followed step by step through the engine's scheduler.

What `vllm bench serve --request-rate inf` (and a batch job, or a page load that fans out) does:
N requests land at t = 0. The scheduler (vLLM V1, llama-server's slots alike) builds each step from

1. the running sequences that decode — one token each, counted against the step's token budget
   (`max_num_batched_tokens`; llama.cpp: `-b`);
2. prompt chunks of waiting requests, first come first served, with what is left of the budget.
   A request is admitted while the sequence limit (`max_num_seqs`, slots) allows and its prompt's
   KV blocks are free *now* — vLLM does not reserve the blocks the answer will need later;
3. when the running sequences' KV outgrows the cache, the newest ones are preempted: their blocks
   are freed and they queue again at the head, to recompute prompt + answer so far when readmitted.

Identical requests are followed as cohorts (a count, a context length, tokens generated, when their
first token came) and steps are taken several at a time while nothing changes, so a burst of 500
costs about a hundred step evaluations, not 500 × 1024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from llmctl.estimate.lengths import weighted_quantile

DUST = 1e-6  # requests: a cohort smaller than this is rounding left by fluid admission and preemption
# (decoding sequences, their mean context, prompt tokens computed, the mean context those prompt tokens
# attend to: their position in their own prompt, cached prefix included) -> ms
StepFn = Callable[[float, float, float, float], float]


@dataclass
class _Cohort:
    n: float  # requests (fluid: fractions allowed)
    ctx: float  # tokens each holds in the KV cache
    gen: float  # output tokens produced so far
    first: float  # time of the first token, ms (nan before)
    recompute: bool = False  # preempted: its prompt is computed again on readmission


@dataclass
class BurstResult:
    duration_ms: float  # first request in → last token out
    ttft_mean_ms: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    tpot_mean_ms: float  # (last token − first token) / (output − 1), averaged over requests
    tpot_p50_ms: float
    tpot_p95_ms: float
    peak_batch: float  # most sequences decoding together
    preempted: float  # requests preempted at least once (fluid count)


def simulate_burst(step_ms: StepFn, *, requests: int, prompt_tokens: int, output_tokens: int, budget: int,
                   max_seqs: int, kv_tokens: float | None = None, prefix_hit: float = 0.0, warm: int = 0,
                   max_macro_steps: int = 120, state_tokens: float = 0.0) -> BurstResult:
    """Follow `requests` identical requests arriving together. `prefix_hit`: share of every prompt
    found in the prefix cache (not computed, still held); `warm`: requests whose whole prompt is
    cached (a benchmark's warm-up request sends the first prompt once before the run); `state_tokens`: the
    fixed linear-attention state a running request of a hybrid model holds in the same cache, in tokens."""
    n_req = max(1, int(requests))
    out = max(1, int(output_tokens))
    budget = max(1, int(budget))
    cap = math.inf if not kv_tokens else float(kv_tokens)
    compute_share = 1.0 - min(max(prefix_hit, 0.0), 0.99)
    need_fresh = max(1.0, prompt_tokens * compute_share)
    # waiting queue, FIFO: [count, prompt tokens to compute, context it will hold, cohort or None]
    waiting: list[list] = []
    if warm:
        waiting.append([float(min(warm, n_req)), 1.0, float(prompt_tokens), None])
    if n_req - warm > 0:
        waiting.append([float(n_req - min(warm, n_req)), need_fresh, float(prompt_tokens), None])
    running: list[_Cohort] = []
    done: list[_Cohort] = []
    finish: list[float] = []
    t = 0.0
    carry = 0.0  # prompt tokens already computed for the head of the queue
    carry_ctx = 0.0  # those tokens × the context each attended to
    total_steps = n_req * need_fresh / budget + out
    macro = max(1, int(total_steps / max_macro_steps))
    peak = 0.0
    preempted = 0.0
    for _ in range(20 * max_macro_steps + 4 * n_req):  # bounded; ends far earlier
        if not waiting and not running:
            break
        decoders = sum(c.n for c in running)
        used = sum(c.n * (c.ctx + state_tokens) for c in running)
        # steps in this round: never past the next completion
        m = macro
        if running:
            m = max(1, min(m, int(min(out - c.gen for c in running))))
        # prompt tokens this round, first come first served, within the sequence and KV limits
        room = max(0.0, budget - decoders) * m + carry
        computed = -carry
        attended = -carry_ctx  # Σ prompt tokens × the context each attends to
        admitted: list[_Cohort] = []
        done_at: list[float] = []
        while waiting and room > 1e-9:
            count, need, hold, old = waiting[0]
            if count < DUST:  # a sliver left by splitting cohorts, not a request: drop it
                waiting.pop(0)
                continue
            seq_room = max_seqs - decoders - sum(c.n for c in admitted)
            kv_room = (cap - used) / (hold + state_tokens) if cap < math.inf else math.inf
            fit = min(count, room / need, seq_room, kv_room)
            if fit <= 1e-9:
                break
            whole = math.floor(fit + 1e-9) if fit >= 1 else fit  # fluid below one request
            take = min(count, max(whole, min(fit, 1.0)))
            room -= take * need
            computed += take * need
            # the `need` tokens computed follow the `hold − need` already cached: on average each
            # attends to (hold − need) + need / 2
            attended += take * need * (hold - need / 2)
            used += take * (hold + state_tokens)
            gen0 = old.gen if old is not None else 0.0
            first = old.first if old is not None else math.nan
            admitted.append(_Cohort(take, hold + 1, gen0 + 1, first))
            done_at.append(computed)  # prompt tokens of this round computed when this cohort's prompt is done
            if old is not None:
                admitted[-1].recompute = True
            if take >= count - 1e-9:
                waiting.pop(0)
            else:
                waiting[0][0] = count - take
                break
        carry = carry_ctx = 0.0
        if waiting and room > 1e-9 and admitted and waiting[0][1] > 0:
            # the budget left over starts the next prompt (chunked prefill); it finishes next round
            head_kv_room = cap - used if cap < math.inf else math.inf
            if head_kv_room > waiting[0][2] + state_tokens and decoders + sum(c.n for c in admitted) + 1 <= max_seqs:
                carry = min(room, waiting[0][1] - 1)
                carry_ctx = carry * (waiting[0][2] - waiting[0][1] + carry / 2)
                computed += carry
                attended += carry_ctx
        computed = max(computed, 0.0)
        prompt_ctx = max(attended, 0.0) / computed if computed > 0 else 0.0
        if not running and not admitted:
            if not waiting:
                break
            # nothing can run: a prompt larger than the cache; give up rather than spin
            return BurstResult(math.inf, math.inf, math.inf, math.inf, math.inf, math.inf, math.inf, 0.0, 0.0)
        ctx = (sum(c.n * c.ctx for c in running) / decoders + m / 2) if decoders else 0.0
        dt = m * step_ms(decoders, ctx, computed / m, prompt_ctx)
        t += dt
        for c in running:
            c.gen += m
            c.ctx += m
        for c, at in zip(admitted, done_at):
            # prompts finish in order through the round; a cohort decodes the rest of it
            per_step = max(1.0, budget - decoders)
            frac = min(1.0, max(1.0, math.ceil(max(at, 0.0) / per_step - 1e-9)) / m)
            rest = math.floor((1 - frac) * m)
            if math.isnan(c.first):
                c.first = t - dt + dt * frac
            c.gen += rest
            c.ctx += rest
            running.append(c)
        still = []
        for c in running:
            if c.gen >= out - 1e-9:
                done.append(c)
                finish.append(t)
            else:
                still.append(c)
        running = still
        peak = max(peak, sum(c.n for c in running))
        # KV outgrown: preempt the newest first, back to the head of the queue
        used = sum(c.n * (c.ctx + state_tokens) for c in running)
        while used > cap * (1 + 1e-9) + 1e-6 and running:
            c = running[-1]
            excess = (used - cap) / (c.ctx + state_tokens)
            k = min(c.n, max(excess, 0.0))
            if k >= c.n - 1e-9:
                running.pop()
                k = c.n
            else:
                c.n -= k
            if k < DUST:
                break  # rounding, not an overflow
            preempted += k
            used -= k * (c.ctx + state_tokens)
            ghost = _Cohort(k, c.ctx, c.gen, c.first)
            waiting.insert(0, [k, c.ctx, c.ctx, ghost])
    ttfts = [(c.first, c.n) for c in done]
    tpots = [((f - c.first) / max(out - 1, 1), c.n) for c, f in zip(done, finish)]
    total = sum(c.n for c in done) or 1.0
    return BurstResult(
        duration_ms=max(finish) if finish else t,
        ttft_mean_ms=sum(v * w for v, w in ttfts) / total,
        ttft_p50_ms=weighted_quantile(ttfts, 0.5),
        ttft_p95_ms=weighted_quantile(ttfts, 0.95),
        tpot_mean_ms=sum(v * w for v, w in tpots) / total,
        tpot_p50_ms=weighted_quantile(tpots, 0.5),
        tpot_p95_ms=weighted_quantile(tpots, 0.95),
        peak_batch=peak,
        preempted=preempted,
    )

"""Time the planner on everything the catalog holds: every model × every GPU × every quantization ×
every TP, for one workload (64 chat users, 1024-token prompts, 256-token answers).

    python -m benchmarks.plan_all            # median of 3 runs, candidates enumerated and weighed
    python -m benchmarks.plan_all --profile  # also the cProfile hot spots of one run

Judged on CPU time, as the start-up benchmark is: on a machine shared with other jobs, wall time
counts their time too.

One spec per model lists every GPU profile of the catalog as an 8-GPU node (CPU profiles as a CPU
node with 512 GB), so the planner enumerates engines × quantizations × KV dtypes × TP on all of them.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

from llmctl.typed import convert

# 2.0 s for the 28 models x 39 device profiles the catalog held when the budget was set (2026-11-22):
# the same bar per model x device pair as the catalog grows
BUDGET_S_PER_PAIR = 2.0 / (28 * 39)


def specs():
    from llmctl.catalog import Catalog
    from llmctl.spec import Spec

    cat = Catalog.load()
    nodes = []
    for g in cat.gpus:
        if g.kind == "cpu":
            nodes.append({"name": f"n-{g.id}", "cpu": g.id, "memory_gb": 512})
        elif g.kind == "apple":
            nodes.append({"name": f"n-{g.id}", "gpu": g.id, "gpus": 1, "memory_gb": max(g.memory_options_gb or (g.memory_gb or 64,))})
        else:
            nodes.append({"name": f"n-{g.id}", "gpu": g.id, "gpus": 8, "memory_gb": 1024})
    out = []
    for m in cat.models:
        context = min(4096, m.max_position_embeddings or 4096)  # a few models (Llama 2, BERT encoders) hold less
        out.append(convert({
            "name": f"all-{m.id}", "model": m.hf_id or m.id, "hardware": nodes,
            "workload": {"concurrency": 64, "prompt_tokens": min(1024, context // 2), "output_tokens": min(256, context // 4),
                         "context_length": context,
                         "sla": {"ttft_p95_ms": 2000, "itl_p95_ms": 75}},
        }, Spec))
    return out


def run_once(all_specs) -> tuple[float, float, int, int, int, int]:
    """Plan every spec: (wall s, CPU s, candidates, those with a memory estimate, feasible, weighed). Timed
    per plan: making it and freeing what it made (a real `llmctl plan` frees its candidates when make_plan
    returns). The candidates are counted between the clocks with the collector off, so that no collection
    walks them there, out of the timer's sight."""
    from llmctl.planner import Trace, make_plan

    n = sized = feasible = weighed = 0
    wall = cpu = 0.0
    collecting = gc.isenabled()
    for s in all_specs:
        trace = Trace()
        gc.disable()
        w0, c0 = time.perf_counter(), time.process_time()
        make_plan(s, trace=trace)
        w1, c1 = time.perf_counter(), time.process_time()
        gc.disable()  # make_plan turns the collector back on as it found it
        n += len(trace.ranked)
        sized += sum(1 for c in trace.ranked if c.mem is not None)
        feasible += sum(1 for c in trace.ranked if c.feasible)
        weighed += sum(1 for c in trace.ranked if c.feasible and not c.pruned)
        w2, c2 = time.perf_counter(), time.process_time()
        del trace
        wall += (w1 - w0) + (time.perf_counter() - w2)
        cpu += (c1 - c0) + (time.process_time() - c2)
        if collecting:
            gc.enable()
    return wall, cpu, n, sized, feasible, weighed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true", help="print the cProfile hot spots of one run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    from llmctl.catalog import Catalog

    cat = Catalog.load()
    all_specs = specs()
    run_once(all_specs[:1])  # warm caches (profiles, imports) so the runs time the planning alone
    walls, cpus = [], []
    for _ in range(args.runs):
        w, c, n, sized, feasible, weighed = run_once(all_specs)
        walls.append(w)
        cpus.append(c)
    med, med_wall = statistics.median(cpus), statistics.median(walls)
    budget = BUDGET_S_PER_PAIR * len(cat.models) * len(cat.gpus)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(cat.models)} models × {len(cat.gpus)} GPU/Apple/CPU profiles × quantizations × KV dtypes × TP")
    print(f"candidates per run: {n} enumerated, {sized} of them sized (a memory estimate), {feasible} feasible, {weighed} of "
          f"them weighed (SLA search + prediction); the rest could not change a plan (llmctl/weigh.py)")
    print(f"wall time: median of {args.runs} = {med_wall:.3f} s (runs: {', '.join(f'{t:.3f}' for t in walls)}); "
          f"load average {load:.2f}")
    print(f"CPU time: median of {args.runs} = {med:.3f} s (runs: {', '.join(f'{t:.3f}' for t in cpus)}); "
          f"budget {budget:.1f} s ({BUDGET_S_PER_PAIR * 1000:.2f} ms per model × device) → {'PASS' if med <= budget else 'FAIL'}")
    if args.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        run_once(all_specs)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
        pstats.Stats(pr).sort_stats("tottime").print_stats(15)
    return 0 if med <= budget else 1


if __name__ == "__main__":
    sys.exit(main())

"""Serving under load: burst arrival, admission by current KV use, the per-request TTFT cost, the TP
link, the chunked-prefill budget, and the typed constants files.

GPUs cannot run here: these tests check the performance model's arithmetic and its shape against
the facts it encodes (benchmarks/serving.py compares it with published measurements)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.estimate import performance as perf
from llmctl.estimate.constants import estimation_constants, performance_constants
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.weights import weight_bytes, weight_bytes_per_gpu

CAT = Catalog.load()


def vllm_dep(model: str = "qwen2.5-7b", gpu: str = "A100-80GB-PCIe", tp: int = 1, kv_tokens: int | None = 464_848,
             budget: int = 2048, link: str | None = None) -> perf.Deployment:
    a = CAT.model_by_id(model)
    return perf.Deployment(
        arch=a, backend="vllm", budget_includes_decode=True, paged_kv=True, device=CAT.gpu(gpu), tp=tp, pp=1,
        weight_bytes_per_gpu=weight_bytes_per_gpu(a, weight_bytes(a, CAT.quantization("BF16")), tp, 1),
        kv_bytes_per_token=kv_shape(a, dtype_bytes=2.0, tp=tp).bytes_per_token_full, max_batch=256,
        max_num_batched_tokens=budget, max_num_seqs=256, kv_cache_tokens=kv_tokens, link=link,
    )


def test_ttft_at_one_user_pays_the_fixed_request_cost():
    overhead = perf.engine_constants("vllm")["request_overhead_ms"]
    assert overhead >= 10
    for arrival in ("burst", "closed"):
        est = perf.predict(vllm_dep(), concurrency=1, prompt_tokens=1024, output_tokens=256, arrival=arrival)
        assert est.ttft_p50_ms >= overhead + est.prefill_ms * (arrival == "closed")
        assert 30 <= est.ttft_p50_ms <= 200


def test_burst_admits_by_current_kv_use_and_preempts_instead_of_queueing_whole_requests():
    # Qwen2.5-32B on one A100 80GB: 9.7 GiB of KV = 39,731 tokens, 19 requests at their full 2048;
    # a burst of 50. Admitting only 19 and queueing the rest puts the median request behind a whole
    # wave (~50 s); vLLM admits by blocks in use and measured a median TTFT of 5.7 s (row S20).
    dep = vllm_dep(model="qwen2.5-32b", kv_tokens=39_731)
    est = perf.predict(dep, concurrency=50, prompt_tokens=1024, output_tokens=1024, arrival="burst")
    assert est.batch > 39_731 // 2048  # more run together than fit at full length
    assert est.queued > 0  # ... and some are preempted as they grow
    assert est.ttft_p50_ms < 15_000
    big = perf.predict(replace(dep, kv_cache_tokens=400_000), concurrency=50, prompt_tokens=1024, output_tokens=1024,
                       arrival="burst")
    assert big.queued == 0 and big.throughput_tokens_per_s > est.throughput_tokens_per_s


def test_burst_of_prompts_nearly_as_long_as_the_cache_is_served_one_after_another():
    """A KV cache holding about 1.3 of the burst's prompts (Qwen3-32B on one H100, 32000-token prompts,
    row S61): vLLM serves them one after another. Splitting cohorts by fluid admission and preemption
    once left slivers of a request too small to admit, and the prediction gave up (no progress)."""
    dep = vllm_dep(model="qwen3-32b", gpu="H100-80GB-SXM", kv_tokens=41_120, budget=8192)
    est = perf.predict(dep, concurrency=100, prompt_tokens=32_000, output_tokens=77, arrival="burst", warm_prompts=1)
    assert 0 < est.throughput_tokens_per_s < float("inf")
    assert est.ttft_p50_ms < float("inf") and est.itl_p50_ms < float("inf")


def test_burst_throughput_grows_with_requests_until_the_kv_cache_is_full():
    dep = vllm_dep(kv_tokens=93_872)
    tput = [perf.predict(dep, concurrency=n, prompt_tokens=1024, output_tokens=1024, arrival="burst").throughput_tokens_per_s
            for n in (1, 10, 50, 100, 200)]
    assert tput[0] < tput[1] < tput[2]
    assert max(tput[2:]) <= 1.25 * min(tput[2:])  # the plateau


def test_closed_loop_admission_uses_the_kv_cache_when_known():
    with_kv = vllm_dep(kv_tokens=93_872)
    # by full length 93872 / 2048 = 45 sequences; by the mean context held (1024 + 512) = 61
    assert perf.admission_slots(with_kv, 1024, 1024) == 61
    assert perf.admission_slots(replace(with_kv, kv_cache_tokens=None), 1024, 1024) == 256


def test_tp_over_pcie_without_p2p_gains_little_under_load():
    one = vllm_dep()
    two = vllm_dep(tp=2, link="pcie_host")
    single = [perf.predict(d, concurrency=1, prompt_tokens=1024, output_tokens=1024, arrival="burst") for d in (one, two)]
    loaded = [perf.predict(d, concurrency=200, prompt_tokens=1024, output_tokens=1024, arrival="burst") for d in (one, two)]
    assert single[1].itl_mean_ms < single[0].itl_mean_ms  # half the weights per GPU: one user is faster
    ratio = loaded[1].throughput_tokens_per_s / loaded[0].throughput_tokens_per_s
    assert 0.7 <= ratio <= 1.3  # measured 0.83 at 200 users (vllm_serving_sweeps.yaml S08/S18)
    nvlink = perf.predict(vllm_dep(gpu="A100-80GB-SXM", tp=2), concurrency=200, prompt_tokens=1024,
                          output_tokens=1024, arrival="burst")
    assert nvlink.throughput_tokens_per_s > loaded[1].throughput_tokens_per_s


def test_allreduce_cost_grows_with_the_message():
    dev = CAT.gpu("A100-80GB-PCIe")
    coef = perf.allreduce_coefficients(dev, 2, 28, 3584, "pcie_host")
    assert coef[0] > 0
    # a 2048-token prompt chunk moves 2048× one token's bytes: it outweighs the fixed latency
    assert perf.allreduce_ms(coef, 2048) > 2 * coef[0]
    costs = [perf.allreduce_ms(coef, t) for t in range(0, 4096, 7)]
    assert all(b >= a for a, b in zip(costs, costs[1:]))  # never cheaper with more tokens
    assert perf.allreduce_coefficients(dev, 1, 28, 3584) == (0.0, 0.0, 0.0, 0.0)


def test_chunked_prefill_budget_trades_itl_for_ttft():
    small, large = vllm_dep(budget=512), vllm_dep(budget=8192)
    a = perf.predict(small, concurrency=64, prompt_tokens=2048, output_tokens=256)
    b = perf.predict(large, concurrency=64, prompt_tokens=2048, output_tokens=256)
    assert a.itl_p95_ms < b.itl_p95_ms
    assert a.ttft_p50_ms > b.ttft_p50_ms


def test_unknown_arrival_is_refused():
    with pytest.raises(ValueError, match="arrival"):
        perf.predict(vllm_dep(), concurrency=1, prompt_tokens=10, output_tokens=10, arrival="poisson")


def test_ollama_per_user_speed_falls_with_slots():
    a = CAT.model_by_id("llama-3.1-8b")
    speeds = []
    for slots in (1, 2, 4, 8):
        dep = perf.Deployment(arch=a, backend="ollama", device=CAT.gpu("RTX 4090"), tp=1, pp=1,
                              weight_bytes_per_gpu=weight_bytes(a, CAT.quantization("Q4_K_M")),
                              kv_bytes_per_token=kv_shape(a, dtype_bytes=2.0).bytes_per_token_full,
                              max_batch=slots, max_num_batched_tokens=2048)
        speeds.append(perf.predict(dep, concurrency=slots, prompt_tokens=512, output_tokens=256,
                                   arrival="burst").output_tokens_per_s_per_user)
    assert all(b < a for a, b in zip(speeds, speeds[1:]))


def test_constants_files_fail_with_file_and_key():
    good = perf.constants()
    bad = copy.deepcopy(good)
    bad["engines"]["vllm"]["memory_eficiency"] = 0.5
    with pytest.raises(InputError, match=r"profiles/performance.yaml: engines\.vllm\.memory_eficiency"):
        performance_constants(bad)
    bad = copy.deepcopy(good)
    bad["interconnect"]["links"]["pcie"]["bus_efficiency"] = 2
    with pytest.raises(InputError, match=r"interconnect\.links\.pcie\.bus_efficiency"):
        performance_constants(bad)
    from llmctl.estimate.memory import constants as mem_constants

    bad = copy.deepcopy(mem_constants())
    del bad["vllm"]["block_size"]
    with pytest.raises(InputError, match=r"profiles/estimation.yaml: vllm\.block_size"):
        estimation_constants(bad)


def test_profiles_are_checked_every_time_they_are_read():
    from llmctl.estimate.constants import checked

    bad = copy.deepcopy(perf.constants())
    bad["default_sla"] = "fast"
    for _ in range(2):  # no pass is remembered: the second read is checked as the first
        with pytest.raises(InputError, match=r"profiles/performance.yaml: default_sla"):
            checked("performance.yaml", bad)
    assert checked("performance.yaml", perf.constants()) is perf.constants()


def test_serving_benchmark_reproduces_its_training_rows():
    """The constants were fitted on the train rows: they must still reproduce them (a stale profile
    or a model change that breaks the fit shows here); the test rows are the benchmark's business."""
    from benchmarks import serving

    rows = serving.rows(CAT)
    serving.predict_all(rows)
    med = serving.medians([r for r in rows if r.split == "train"])
    assert med["tpot_mean"] <= 5 and med["throughput"] <= 8


def test_serving_benchmark_predicts_max_concurrency_rows_as_closed_loops():
    """A `--max-concurrency C` row is C users in a closed loop with ShareGPT lengths spread around the
    totals' means, not a burst of all N prompts (row S81: 8 users, 400 conversations, RTX 4090)."""
    from benchmarks import serving

    row = next(r for r in serving.rows(CAT) if r.id == "S81")
    assert (row.kind, row.users, row.n, row.lengths, row.gpu) == ("closed", 8, 400, "sharegpt", "RTX4090-24GB")
    serving.predict_all([row])
    closed = perf.predict(row.dep, concurrency=8, prompt_tokens=row.prompt, output_tokens=row.output, arrival="closed",
                          lengths="sharegpt")
    assert row.predicted["throughput"] == pytest.approx(closed.throughput_tokens_per_s)
    burst = perf.predict(row.dep, concurrency=400, prompt_tokens=row.prompt, output_tokens=row.output, arrival="burst")
    assert row.predicted["ttft_p50"] < burst.ttft_p50_ms / 10  # 400 at once would queue for their first token


def test_serving_benchmark_names_the_row_of_an_unknown_load_kind(monkeypatch):
    from benchmarks import serving

    bad = copy.deepcopy(next(r for r in serving.load() if r["id"] == "S81"))
    bad["load"]["kind"] = "poisson"
    monkeypatch.setattr(serving, "load", lambda: [bad])
    with pytest.raises(ValueError, match=r"S81: load.kind 'poisson' is not one of burst, closed"):
        serving.rows(CAT)


@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from(["qwen2.5-7b", "llama-3.1-8b", "qwen2.5-32b"]), tp=st.sampled_from([1, 2]),
       n=st.integers(1, 200), extra=st.integers(1, 200), prompt=st.integers(16, 4096), out=st.integers(2, 2048),
       kv=st.sampled_from([None, 60_000, 400_000]))
def test_a_bigger_burst_never_finishes_sooner_or_serves_faster(model, tp, n, extra, prompt, out, kv):
    dep = vllm_dep(model=model, tp=tp, kv_tokens=kv, link="pcie_host" if tp > 1 else None)
    small = perf.predict(dep, concurrency=n, prompt_tokens=prompt, output_tokens=out, arrival="burst")
    big = perf.predict(dep, concurrency=n + extra, prompt_tokens=prompt, output_tokens=out, arrival="burst")
    assert big.request_ms >= small.request_ms * 0.999  # the whole burst takes longer
    assert big.ttft_p95_ms >= small.ttft_p95_ms * 0.95  # the last first tokens come later
    if kv is None:  # no preemption: more sequences per step (with preemption, gaps are redistributed)
        assert big.itl_mean_ms >= small.itl_mean_ms * 0.97


def test_sharegpt_lengths_keep_the_means_and_spread_ttft():
    from llmctl.estimate.lengths import mix, second_moment_ratio

    for mean in (128, 512, 2000):
        pairs = mix("sharegpt", mean)
        assert abs(sum(v * w for v, w in pairs) - mean) <= 0.02 * mean  # rounding only
        assert min(v for v, _ in pairs) < mean / 3 < 2 * mean < max(v for v, _ in pairs)
        assert abs(second_moment_ratio("sharegpt", mean) - 2 * mean) < 0.3 * mean  # exponential: E[X²]/E[X] = 2·mean
    dep = vllm_dep(kv_tokens=60_000)
    fixed = perf.predict(dep, concurrency=64, prompt_tokens=512, output_tokens=256)
    spread = perf.predict(dep, concurrency=64, prompt_tokens=512, output_tokens=256, lengths="sharegpt")
    assert spread.ttft_p95_ms > fixed.ttft_p95_ms  # long prompts set the tail
    assert spread.ttft_p50_ms < fixed.ttft_p50_ms  # the median prompt is shorter than the mean
    assert perf.admission_slots(dep, 512, 512) <= perf.admission_slots(dep, 512, 256)  # long answers hold KV longer
    with pytest.raises(ValueError, match="lengths"):
        perf.predict(dep, concurrency=1, prompt_tokens=10, output_tokens=10, lengths="zipf")
    with pytest.raises(ValueError, match="burst"):
        perf.predict(dep, concurrency=1, prompt_tokens=10, output_tokens=10, lengths="sharegpt", arrival="burst")


def test_geforce_cards_all_reduce_through_host_memory():
    geforce, l40s = CAT.gpu("RTX 4090"), CAT.gpu("L40S")
    assert "GeForce" in geforce.name and l40s.interconnect_type == "pcie"
    assert perf.allreduce_coefficients(geforce, 2, 32, 4096) == perf.allreduce_coefficients(geforce, 2, 32, 4096, "pcie_host")
    assert perf.allreduce_coefficients(l40s, 2, 32, 4096) != perf.allreduce_coefficients(l40s, 2, 32, 4096, "pcie_host")

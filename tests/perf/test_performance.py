"""Sanity checks of the performance model that any user would make, and of --sweep / --compare.

All real code: the catalog, the planner and the performance model; nothing is mocked (the model
predicts GPUs this machine does not have, which needs no GPU)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmctl.catalog import Catalog
from llmctl.estimate import performance as perf
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.weights import weight_bytes, weight_bytes_per_gpu
from llmctl.planner import make_plan
from llmctl.spec import Spec
from llmctl.typed import convert

CAT = Catalog.load()
GPUS = [g.id for g in CAT.gpus if g.kind == "gpu"]
ALL_DEVICES = [g.id for g in CAT.gpus]
MODELS = [m.id for m in CAT.models]


def spec(**kw) -> Spec:
    data = {"name": "t", "model": "llama3.1:8b",
            "workload": {"concurrency": 1, "prompt_tokens": 512, "output_tokens": 256}}
    for k, v in kw.items():
        data[k] = v
    return convert(data, Spec)


def deployment(model: str, device: str, backend: str, slots: int = 256, tp: int = 1) -> perf.Deployment:
    a = CAT.model_by_id(model)
    dev = CAT.gpu(device)
    q = CAT.quantization("BF16" if backend == "vllm" else "Q4_K_M")
    total = weight_bytes(a, q)
    return perf.Deployment(
        arch=a, backend=backend, device=dev, tp=tp, pp=1,
        weight_bytes_per_gpu=weight_bytes_per_gpu(a, total, tp, 1) if backend == "vllm" else total,
        kv_bytes_per_token=kv_shape(a, dtype_bytes=2.0, tp=tp).bytes_per_token_full,
        max_batch=slots, max_num_batched_tokens=2048 if backend != "vllm" else 8192,
        budget_includes_decode=backend == "vllm", paged_kv=backend == "vllm",
    )


# --------------------------------------------------------------------------- engine choice


def test_cpu_only_laptop_gets_ollama_or_llamacpp():
    s = spec(hardware=[{"name": "laptop", "memory_gb": 16}], workload={"concurrency": 1, "prompt_tokens": 256,
                                                                      "output_tokens": 128})
    plan = make_plan(s)
    assert plan.feasible
    assert plan.backend in ("ollama", "llama.cpp")
    assert plan.gpu.kind == "cpu"


def test_64_chat_users_of_8b_on_a100_is_vllm_with_several_times_ollamas_throughput():
    """vLLM wins 64 chat users on one A100 by a wide margin. Ollama 0.12.6 runs Llama-family models on
    the llama.cpp runner with one KV stream per slot (no cross-slot attention), so its batched decode
    is not hopeless; what it loses is vLLM's batching of prompts and CPU work: at least 1.5× here."""
    s = spec(model="meta-llama/Llama-3.1-8B-Instruct", environment="production",
             hardware=[{"name": "a100", "gpu": "A100-80GB-SXM", "gpus": 1, "memory_gb": 256}],
             workload={"concurrency": 64, "prompt_tokens": 512, "output_tokens": 256,
                       "sla": {"itl_p95_ms": 100, "ttft_p95_ms": 2000}})
    plan = make_plan(s)
    assert plan.backend == "vllm"
    ollama = [a for a in plan.alternatives if a.backend == "ollama" and a.feasible]
    assert ollama, "an Ollama candidate must be evaluated for comparison"
    best_ollama = max(a.throughput_tokens_per_s for a in ollama)
    assert plan.performance.throughput_tokens_per_s >= 1.5 * best_ollama
    crossover = [r.detail for r in plan.rationale if r.rule == "SLA crossover"]
    assert crossover and "ollama" in crossover[0] and "You asked for 64" in crossover[0]


# --------------------------------------------------------------------------- monotonicity


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(MODELS), device=st.sampled_from(ALL_DEVICES),
       backend=st.sampled_from(["vllm", "ollama", "llama.cpp"]), slots=st.sampled_from([1, 4, 16, 256]),
       n=st.integers(1, 300), extra=st.integers(1, 300), prompt=st.integers(1, 8000), out=st.integers(1, 2000),
       rpm=st.one_of(st.none(), st.floats(1, 5000)))
def test_more_users_never_lower_latency(model, device, backend, slots, n, extra, prompt, out, rpm):
    dep = deployment(model, device, backend, slots)
    lo = perf.predict(dep, concurrency=n, prompt_tokens=prompt, output_tokens=out, requests_per_minute=rpm)
    hi = perf.predict(dep, concurrency=n + extra, prompt_tokens=prompt, output_tokens=out, requests_per_minute=rpm)
    eps = 1e-6
    for f in ("ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms"):
        assert getattr(hi, f) >= getattr(lo, f) * (1 - eps), (f, getattr(lo, f), getattr(hi, f))
    assert hi.ttft_p95_ms >= hi.ttft_p50_ms and hi.itl_p95_ms >= hi.itl_p50_ms


@settings(max_examples=100, deadline=None)
@given(model=st.sampled_from(MODELS), device=st.sampled_from(ALL_DEVICES),
       backend=st.sampled_from(["vllm", "llama.cpp"]), batch=st.integers(1, 256), ctx=st.integers(1, 32000))
def test_doubling_bandwidth_never_slows_decode(model, device, backend, batch, ctx):
    dep = deployment(model, device, backend)
    fast = replace(dep, device=replace(dep.device, bandwidth_gbs=dep.device.bandwidth_gbs * 2))
    assert perf.decode_step_ms(fast, batch, ctx) <= perf.decode_step_ms(dep, batch, ctx)


def test_moe_decode_reads_fewer_bytes_than_its_total_but_all_at_large_batch():
    dep = deployment("qwen3-30b-a3b", "H100-80GB-SXM", "vllm")
    one = perf.weights_read_per_step(dep, 1)
    assert one < 0.3 * dep.weight_bytes_per_gpu  # 3 B active of 30 B
    assert perf.weights_read_per_step(dep, 512) > 0.95 * dep.weight_bytes_per_gpu


def test_tensor_parallel_costs_more_over_pcie_than_nvlink():
    nv = deployment("llama-3.1-70b", "A100-80GB-SXM", "vllm", tp=4)
    pcie = replace(nv, device=CAT.gpu("A100-80GB-PCIe"))
    pcie = replace(pcie, device=replace(pcie.device, bandwidth_gbs=nv.device.bandwidth_gbs))  # same memory
    assert perf.decode_step_ms(pcie, 32, 1000) > perf.decode_step_ms(nv, 32, 1000)


def test_a_vllm_decode_step_reads_no_embedding_table_it_only_looks_rows_up_in():
    """Qwen2.5-7B has an LM head of its own: the token embeddings (152,064 × 3,584 at 16 bit) are looked up,
    not read whole, each step; vLLM splits them across TP ranks. A tied model's head reads them all."""
    from llmctl.estimate.weights import lookup_bytes_per_gpu

    bf16 = CAT.quantization("BF16")
    qwen, tied = CAT.model_by_id("qwen2.5-7b"), CAT.model_by_id("llama-3.2-1b")
    assert lookup_bytes_per_gpu(qwen, bf16, 1, 1) == 152064 * 3584 * 2
    assert lookup_bytes_per_gpu(qwen, bf16, 2, 1) == 152064 * 3584
    assert lookup_bytes_per_gpu(tied, bf16, 1, 1) == 0
    dep = deployment("qwen2.5-7b", "A100-80GB-PCIe", "vllm")
    looked_up = replace(dep, lookup_bytes_per_gpu=lookup_bytes_per_gpu(qwen, bf16, 1, 1))
    assert perf.decode_step_ms(looked_up, 1, 512) < perf.decode_step_ms(dep, 1, 512)
    assert perf.weights_read_per_step(looked_up, 1) == dep.weight_bytes_per_gpu - 152064 * 3584 * 2


def test_chunking_a_long_prompt_does_not_shrink_its_attention():
    """A chunk late in a prompt attends to every chunk before it: a 32k prompt costs prompt²/2 in
    attention however vLLM splits it. Splitting it into 2048-token chunks adds only per-step costs;
    counting each chunk's attention within itself made the chunked prompt 28 % faster than the whole one."""
    dep = deployment("qwen3-14b", "H100-80GB-SXM", "vllm")
    whole = replace(dep, max_num_batched_tokens=32768)
    chunked = replace(dep, max_num_batched_tokens=2048)
    assert perf.prefill_ms(chunked, 32768) >= 0.97 * perf.prefill_ms(whole, 32768)
    # the attention share grows with the square of the prompt: 4× the prompt, over 4× the time
    assert perf.prefill_ms(chunked, 32768) > 4.5 * perf.prefill_ms(chunked, 8192)
    # a cached prefix is attended to as well, though not computed
    assert perf.prefill_ms(chunked, 8192, cached=24576) > 1.5 * perf.prefill_ms(chunked, 8192)


def test_async_scheduling_hides_the_cpu_work_from_vllm_0_14():
    """vLLM 0.14 turned async scheduling on by default: the CPU prepares step n+1 while the GPU runs
    step n, so a step takes the longer of the two, not their sum (profiles/performance.yaml cites the
    releases' SchedulerConfig). Older releases, and pipeline stages, keep the sum."""
    dep = deployment("qwen2.5-7b", "RTX4090-24GB", "vllm")
    old, new, current = (replace(dep, engine_version=v) for v in ("0.13.0", "0.14.0", None))
    k = perf._coef(old)
    cpu = k.step_ms + k.seq_ms * 64
    assert cpu > 0
    gpu = perf._stage_ms(k, 64, 500)
    assert perf.decode_step_ms(old, 64, 500) == pytest.approx(gpu + cpu)
    assert perf.decode_step_ms(new, 64, 500) == pytest.approx(max(gpu, cpu))
    assert perf.decode_step_ms(current, 64, 500) == pytest.approx(max(gpu, cpu))  # llmctl deploys a newer one
    staged = replace(dep, pp=2, engine_version="0.14.0")
    assert not perf._coef(staged).cpu_overlaps


def test_fused_moe_pads_each_experts_rows_to_its_block():
    """vLLM's fused-experts kernel pads each expert's routed rows to BLOCK_SIZE_M and computes whole
    blocks: few rows per expert cost a whole block, many cost about half a block more than they hold;
    a larger step never computes fewer rows."""
    dep = replace(deployment("qwen3-235b-a22b", "A100-80GB-SXM", "vllm", tp=8), max_num_batched_tokens=2048)
    k = perf._coef(dep)
    assert (k.moe_experts, k.moe_topk) == (128, 8)
    one = perf._moe_padding(k, 1)  # 8 rows, each alone in a 16-row block
    assert one == pytest.approx(16, rel=0.05)
    lam = 8192 * 8 / 128  # 512 rows per expert, 128-row blocks: 4.5 blocks on average
    assert perf._moe_padding(k, 8192) == pytest.approx((lam / 128 + 0.5) * 128 / lam, rel=0.01)
    rows = [perf._moe_padding(k, t) * t for t in range(1, 9000, 7)]
    assert all(b >= a * 0.999 for a, b in zip(rows, rows[1:]))
    # a 2048-token prompt chunk costs more than its useful FLOPs at the dense matmul share
    plain = perf.constants()
    no_kernel = {**plain, "engines": {**plain["engines"], "vllm": {
        k2: v for k2, v in plain["engines"]["vllm"].items() if not k2.startswith("fused_moe")}}}
    with_kernel = perf._step_ms(dep, 0, 0, 2048, 1024)
    with perf.override_constants(no_kernel):
        without = perf._step_ms(replace(dep), 0, 0, 2048, 1024)
    assert with_kernel > 1.3 * without
    # a dense model is untouched
    assert perf._coef(deployment("qwen2.5-7b", "A100-80GB-SXM", "vllm")).moe_exp_ms == 0


def test_ada_takes_the_ampere_share_of_the_tensor_peak():
    """Ada's tensor cores take Ampere's mma.sync instructions; the low Hopper share comes from kernels
    that cannot use Hopper's wgmma. A 4090 prefill uses the Ampere share, not the Hopper one."""
    vllm = perf.constants()["engines"]["vllm"]["compute_efficiency"]
    assert vllm["ada"] == vllm["ampere"] > vllm["gpu"]
    dep = deployment("qwen2.5-7b", "RTX4090-24GB", "vllm")
    h100 = deployment("qwen2.5-7b", "H100-80GB-SXM", "vllm")
    per_tflop = lambda d: perf.prefill_ms(d, 2048) * d.device.bf16_tflops  # noqa: E731
    assert per_tflop(dep) < 0.6 * per_tflop(h100)  # the Hopper share would make them equal


# --------------------------------------------------------------------------- percentiles and queueing


def test_rare_prefill_stall_does_not_move_itl_p95():
    """Few users with long answers: prompt chunks land in < 5 % of steps, so p95 is the plain step."""
    dep = deployment("llama-3.1-8b", "A100-80GB-SXM", "vllm")
    est = perf.predict(dep, concurrency=2, prompt_tokens=512, output_tokens=1000)
    assert est.itl_p95_ms == pytest.approx(est.step_ms)
    busy = perf.predict(dep, concurrency=64, prompt_tokens=2000, output_tokens=64)
    assert busy.itl_p95_ms > busy.step_ms * 1.2  # frequent stalls do set the p95


def test_llamacpp_slots_queue_extra_users():
    dep = deployment("llama-3.1-8b", "RTX4090-24GB", "ollama", slots=4)
    four = perf.predict(dep, concurrency=4, prompt_tokens=512, output_tokens=256)
    twelve = perf.predict(dep, concurrency=12, prompt_tokens=512, output_tokens=256)
    assert four.queued == 0 and twelve.queued == 8
    # closed loop, Little's law: 8 waiting over 4 slots = 2 request times
    assert twelve.queue_wait_p50_ms == pytest.approx(2 * twelve.request_ms, rel=1e-6)
    assert twelve.ttft_p95_ms > four.ttft_p95_ms + twelve.request_ms


def test_erlang_c_known_value():
    # M/M/2 with a = 1: P(wait) = 1/3 (textbook value)
    assert perf.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert perf.mdc_wait_ms(2, 0.001, 3000.0, 0.95) == math.inf  # a = 3 > 2 servers: overloaded


def test_requests_per_minute_uses_mdc_and_overload_is_flagged():
    dep = deployment("llama-3.1-8b", "L4-24GB-PCIe", "ollama", slots=2)
    calm = perf.predict(dep, concurrency=20, prompt_tokens=256, output_tokens=128, requests_per_minute=2)
    assert calm.queue_model.startswith("M/D/c") and not calm.overloaded
    jam = perf.predict(dep, concurrency=20, prompt_tokens=256, output_tokens=128, requests_per_minute=10_000)
    assert jam.overloaded and jam.ttft_p95_ms > calm.ttft_p95_ms


def test_fitted_constants_reproduce_the_calibration_rows():
    from benchmarks import performance as bench

    points = bench.evaluate(bench.build_cases(CAT))
    assert bench.mape(points, "decode") <= 15
    assert bench.mape(points, "serving") <= 25
    assert {p.row for p in points} >= {"B01", "B03", "B07", "B10", "B13", "B15", "B18", "B20", "B24", "B38", "B44"}


# --------------------------------------------------------------------------- CLI: --sweep, --compare


SPEC = """\
name: sweep-test
model: meta-llama/Llama-3.1-8B-Instruct
workload:
  concurrency: 16
  prompt_tokens: 512
  output_tokens: 256
  sla: {itl_p95_ms: 150, ttft_p95_ms: 2000}
hardware:
  - name: n1
    gpu: L4
    gpus: 1
    memory_gb: 64
"""


@pytest.fixture()
def spec_file(tmp_path):
    p = tmp_path / "llmctl.yaml"
    p.write_text(SPEC)
    return p


def _cli(*args):
    from click.testing import CliRunner

    from llmctl.cli import main

    import io
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def test_sweep_json_latency_rises_with_load_and_chart_is_svg(spec_file, tmp_path):
    chart = tmp_path / "curve.svg"
    rc, out, err = _cli("plan", str(spec_file), "--sweep", "concurrency=1,4,16,64", "--chart", str(chart), "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["sweep"] == "concurrency" and "re-predict" in data["method"]
    itl = [p["itl_p95_ms"] for p in data["points"]]
    assert itl == sorted(itl) and itl[-1] > itl[0]
    svg = chart.read_text()
    assert svg.startswith("<svg") and "polyline" in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    import xml.dom.minidom

    xml.dom.minidom.parseString(svg)  # well-formed


def test_sweep_refuses_a_foreign_chart_file_and_bad_variables(spec_file, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    rc, out, err = _cli("plan", str(spec_file), "--sweep", "concurrency=1,2", "--chart", str(mine))
    assert rc == 2 and "--chart" in err and mine.read_text() == "<html>my notes</html>"
    rc, out, err = _cli("plan", str(spec_file), "--sweep", "concurrenzy=1,2")
    assert rc == 2 and "--sweep" in err and "concurrency" in err and "Traceback" not in err
    rc, out, err = _cli("plan", str(spec_file), "--sweep", "concurrency=1,x")
    assert rc == 2 and "whole numbers" in err


def test_compare_json_lists_the_chosen_plan_first(spec_file):
    rc, out, err = _cli("plan", str(spec_file), "--compare", "-o", "json")
    assert rc == 0, err
    rows = json.loads(out)["candidates"]
    assert rows[0]["chosen"] and len(rows) >= 2
    for key in ("backend", "quantization", "tensor_parallel", "replicas", "memory_per_gpu_gib", "ttft_p95_ms",
                "itl_p95_ms", "throughput_tokens_per_s", "usd_per_hour", "sla_met"):
        assert key in rows[0]

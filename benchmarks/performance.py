"""Predicted vs measured throughput and latency for every row of
benchmarks/calibration/measured_throughput.yaml, with the fitted constants and an over-fitting check.

    python -m benchmarks.performance            # the table, the median errors, the constants
    python -m benchmarks.performance --fit      # also re-fit the llama.cpp constants on all rows
                                                # and print them (what profiles/performance.yaml holds)

Every hardware name is mapped to a catalog profile with `Catalog.load().gpu(name)` after dropping
the parenthesised core count and the memory size ("Apple M1 (7-core GPU, 8GB)" → "Apple M1",
"RTX 3090 24GB" → "RTX 3090"). The Ryzen AI 5 340 laptop (B44) maps to the cpu-lpddr5x-128bit
profile (LPDDR5X-7500 on a 128-bit bus = 120 GB/s).
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.descent import coordinate_descent
from llmctl.catalog import Catalog, GpuProfile, ModelArch
from llmctl.estimate import performance as perf
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.weights import weight_bytes

HERE = Path(__file__).resolve().parent
DATA = HERE / "calibration" / "measured_throughput.yaml"

# Llama 2 7B is not in the catalog (B24 measures it): its config.json
# (https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json).
LLAMA2_7B = dict(architecture="LlamaForCausalLM", num_hidden_layers=32, hidden_size=4096, intermediate_size=11008,
                 num_attention_heads=32, num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)


@dataclass
class Point:
    row: str
    hardware: str
    profile: str
    what: str  # decode | prefill | serving
    metric: str
    measured: float
    predicted: float = 0.0

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


@dataclass
class Case:
    """One measured number and how to predict it."""

    row: str
    hardware: str
    device: GpuProfile
    what: str
    metric: str
    measured: float
    dep: perf.Deployment
    kind: str  # tg | pp | ttft_mean | tpot_mean | tpot_median
    n: int = 0  # tokens generated (tg) or processed (pp)
    workload: dict | None = None

    def predict(self) -> float:
        if self.kind == "tg":
            return 1000 / perf.decode_step_ms(self.dep, 1, self.n / 2)  # tgN starts from an empty context
        if self.kind == "pp":
            return self.n / perf.prefill_ms(self.dep, self.n) * 1000
        est = perf.predict(self.dep, **(self.workload or {}))
        return {"ttft_mean": est.ttft_mean_ms, "tpot_mean": est.itl_mean_ms, "tpot_median": est.itl_p50_ms}[self.kind]


def load_rows() -> list[dict]:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(DATA.read_text(encoding="utf-8"))["throughput"]


def map_hardware(cat: Catalog, name: str) -> tuple[GpuProfile, str]:
    """A catalog profile for a row's hardware, and how it was found."""
    if "Ryzen AI 5 340" in name:
        return cat.gpu("Ryzen AI 5 340"), "cpu-lpddr5x-128bit (LPDDR5X-7500, 128-bit: 120 GB/s)"
    dev = None
    for attempt in (name, re.sub(r"\(.*?\)", "", name).strip()):
        dev = dev or cat.find_gpu(attempt)
    if dev is None:  # "Apple M1 (7-core GPU, 8GB)" → "Apple M1"
        dev = cat.gpu(re.sub(r"\b\d+\s*GB\b", "", re.sub(r"\(.*?\)", "", name)).strip())
    note = dev.id
    if "7-core" in name and dev.id == "Apple-M1":
        note += " (8-core profile; same bandwidth)"
    return dev, note


def _llamacpp_dep(arch: ModelArch, wbytes: float, dev: GpuProfile, backend: str = "llama.cpp") -> perf.Deployment:
    kv = kv_shape(arch, dtype_bytes=2.0).bytes_per_token_full  # llama.cpp default f16 KV cache
    return perf.Deployment(arch=arch, backend=backend, device=dev, tp=1, pp=1, weight_bytes_per_gpu=wbytes,
                           kv_bytes_per_token=kv, max_batch=1, max_num_batched_tokens=2048)


def build_cases(cat: Catalog) -> list[Case]:
    llama3 = cat.model_by_id("llama-3.1-8b")  # Llama 3 8B and 3.1 8B share every size in config.json
    llama2 = ModelArch.from_mapping(LLAMA2_7B, id="llama-2-7b")
    cases: list[Case] = []
    for row in load_rows():
        hw = row.get("gpu") or row.get("hardware")
        dev, _ = map_hardware(cat, hw)
        rid = row["id"]
        if "decode_tok_s_tg512" in row:  # llama-bench, Llama 3 8B Q4_K_M
            dep = _llamacpp_dep(llama3, weight_bytes(llama3, cat.quantization("Q4_K_M")), dev)
            for key, val in row.items():
                m = re.fullmatch(r"decode_tok_s_tg(\d+)", key)
                if m and isinstance(val, (int, float)):
                    cases.append(Case(rid, hw, dev, "decode", key, float(val), dep, "tg", int(m.group(1))))
            if isinstance(row.get("prefill_tok_s_pp512"), (int, float)):
                cases.append(Case(rid, hw, dev, "prefill", "prefill_tok_s_pp512", float(row["prefill_tok_s_pp512"]),
                                  dep, "pp", 512))
        elif rid == "B24":  # Llama 2 7B, Q4_0 and F16, average eval rate
            for key, q in (("decode_tok_s", "Q4_0"), ("decode_tok_s_f16_same_table", "F16")):
                dep = _llamacpp_dep(llama2, weight_bytes(llama2, cat.quantization(q)), dev)
                cases.append(Case(rid, hw, dev, "decode", f"{key} ({q})", float(row[key]), dep, "tg", 256))
        elif rid == "B44":  # Ollama on the CPU, llama3.1:8b (Q4_K_M), `ollama run --verbose` eval rate
            dep = _llamacpp_dep(llama3, weight_bytes(llama3, cat.quantization("Q4_K_M")), dev, "ollama")
            cases.append(Case(rid, hw, dev, "decode", "decode_tok_s", float(row["decode_tok_s"]), dep, "tg", 512))
        elif "mean_tpot_ms" in row:  # vLLM serving benchmark (B38)
            fp8 = cat.quantization("FP8")
            dep = perf.Deployment(
                arch=llama3, backend="vllm", device=dev, tp=1, pp=1, weight_bytes_per_gpu=weight_bytes(llama3, fp8),
                kv_bytes_per_token=kv_shape(llama3, dtype_bytes=2.0).bytes_per_token_full,
                max_batch=256, max_num_batched_tokens=8192,  # v0.5: no chunked prefill, a prompt runs whole
                budget_includes_decode=True, paged_kv=True, fp8_compute=True, engine_version="0.5",
            )
            # ShareGPT run of PR #6384: 200 requests, 42659 input and 41049 output tokens in total,
            # Poisson arrivals at 1 request/s (benchmark_serving.py --request-rate 1)
            wl = dict(concurrency=200, prompt_tokens=round(42659 / 200), output_tokens=round(41049 / 200),
                      requests_per_minute=60.0)
            for key, kind in (("mean_ttft_ms", "ttft_mean"), ("mean_tpot_ms", "tpot_mean"),
                              ("median_tpot_ms", "tpot_median")):
                cases.append(Case(rid, hw, dev, "serving", key, float(row[key]), dep, kind, workload=wl))
        else:
            print(f"warning: row {rid} has no metric this benchmark knows; skipped", file=sys.stderr)
    return cases


# --------------------------------------------------------------------------- fitting

# The constants the fit may move: (engine, key, device kind). Apple shares the GPU's efficiencies
# (same kind of kernels, Metal instead of CUDA) but has its own per-layer overhead.
FREE = [
    ("llama.cpp", "memory_efficiency", ("gpu", "apple")),
    ("llama.cpp", "layer_overhead_ms", ("gpu",)),
    ("llama.cpp", "layer_overhead_ms", ("apple",)),
    ("llama.cpp", "kv_efficiency", ("gpu", "apple")),
    ("llama.cpp", "compute_efficiency", ("gpu", "apple")),
    ("llama.cpp", "prefill_token_layer_us", ("gpu", "apple")),
    ("llama.cpp", "memory_efficiency", ("cpu",)),
]
START = [0.7, 0.1, 0.1, 0.5, 0.5, 1.0, 0.5]  # neutral starting values, not the profile's
# memory efficiency ≤ 0.9: no GPU kernel sustains more than ~90 % of peak DRAM bandwidth (STREAM-like copies)
BOUNDS = [(0.2, 0.9), (0.0, 1.0), (0.0, 2.0), (0.05, 1.0), (0.05, 1.0), (0.0, 50.0), (0.1, 1.0)]


def _apply(base: dict, values: list[float]) -> dict:
    c = copy.deepcopy(base)
    for (engine, key, kinds), v in zip(FREE, values):
        table = c["engines"][engine].setdefault(key, {})
        for k in kinds:
            table[k] = v
    return c


def _identifiable(cases: list[Case]) -> list[bool]:
    kinds = {(c.device.kind, c.what) for c in cases if c.dep.backend != "vllm"}
    out = []
    for engine, key, dev_kinds in FREE:
        if key in ("compute_efficiency", "prefill_token_layer_us"):
            out.append(any((k, "prefill") in kinds for k in dev_kinds))
        else:
            out.append(any((k, "decode") in kinds for k in dev_kinds))
    return out


def _loss(cases: list[Case]) -> float:
    errs = []
    for c in cases:
        p = c.predict()
        errs.append(abs(math.log(max(p, 1e-9) / c.measured)))
    return sum(errs) / max(len(errs), 1)


def fit(cases: list[Case], base: dict) -> list[float]:
    """Coordinate descent on the free constants minimising mean |log(predicted / measured)|;
    constants the cases say nothing about keep their neutral start."""
    train = [c for c in cases if c.dep.backend != "vllm"]
    free = _identifiable(train)

    def loss_at(vals: list[float]) -> float:
        with perf.override_constants(_apply(base, vals)):
            return _loss(train)

    return coordinate_descent(START, loss_at, BOUNDS, step=0.3, rounds=60, tol=1e-3,
                              zero_step=lambda lo, hi: 0.1, free=free)


# --------------------------------------------------------------------------- report


def evaluate(cases: list[Case], consts: dict | None = None) -> list[Point]:
    ctx = perf.override_constants(consts) if consts is not None else _nullcontext()
    out = []
    with ctx:
        for c in cases:
            out.append(Point(c.row, c.hardware, c.device.id, c.what, c.metric, c.measured, c.predict()))
    return out


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def mape(points: list[Point], what: str) -> float:
    errs = [abs(p.error) for p in points if p.what == what]
    return statistics.median(errs) * 100 if errs else float("nan")


def print_table(points: list[Point], notes: dict[str, str]) -> None:
    print(f"{'row':4}  {'hardware':38}  {'profile':40}  {'metric':32}  {'measured':>9}  {'predicted':>9}  {'error':>7}")
    for p in points:
        print(f"{p.row:4}  {p.hardware[:38]:38}  {notes.get(p.hardware, p.profile)[:40]:40}  {p.metric[:32]:32}  "
              f"{p.measured:9.2f}  {p.predicted:9.2f}  {p.error * 100:+6.1f}%")


def print_constants(consts: dict) -> None:
    print("constants used (profiles/performance.yaml):")
    for engine, table in consts["engines"].items():
        if "inherit" in table:
            print(f"  {engine}: as {table['inherit']}")
            continue
        for key, val in table.items():
            print(f"  {engine}.{key}: {val}")
    print(f"  interconnect: {consts['interconnect']}")


def split_halves(cases: list[Case]) -> tuple[list[Case], list[Case]]:
    """Half the rows each (alternating by row id), so each half holds datacenter, consumer and Apple rows."""
    rows = sorted({c.row for c in cases})
    a = set(rows[0::2])
    return [c for c in cases if c.row in a], [c for c in cases if c.row not in a]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="re-fit the llama.cpp constants on all rows and print them")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    cases = build_cases(cat)
    notes = {}
    for c in cases:
        notes[c.hardware] = map_hardware(cat, c.hardware)[1]
    base = perf.constants()
    points = evaluate(cases)
    print(f"predicted vs measured, {len(points)} numbers from {len({p.row for p in points})} rows of {DATA.relative_to(HERE.parent)}\n")
    print_table(points, notes)
    dec, pre, srv = mape(points, "decode"), mape(points, "prefill"), mape(points, "serving")
    print()
    print(f"median absolute error: single-stream decode {dec:.1f}% (target ≤ 15%), "
          f"prompt processing {pre:.1f}%, serving TTFT/ITL {srv:.1f}% (target ≤ 25%)")
    print()
    print_constants(base)
    if args.fit:
        x = fit(cases, base)
        print("\nre-fitted on all rows:")
        for (engine, key, kinds), v in zip(FREE, x):
            print(f"  {engine}.{key}[{'/'.join(kinds)}] = {v:.3f}")
    # Over-fitting check: fit on half the rows, test on the other half, both ways.
    print("\nover-fitting check (fit the llama.cpp constants from neutral starts on half the rows, test on the other):")
    halves = split_halves(cases)
    for name, (train, test) in (("A→B", halves), ("B→A", halves[::-1])):
        x = fit(train, base)
        consts = _apply(base, x)
        tr, te = evaluate(train, consts), evaluate(test, consts)
        ident = _identifiable([c for c in train if c.dep.backend != "vllm"])
        unfit = [f"{k}[{'/'.join(d)}]" for (e, k, d), ok in zip(FREE, ident) if not ok]
        print(f"  {name}: train rows {sorted({c.row for c in train})}, test rows {sorted({c.row for c in test})}")
        print(f"        decode median error train {mape(tr, 'decode'):.1f}% → test {mape(te, 'decode'):.1f}%; "
              f"prefill train {mape(tr, 'prefill'):.1f}% → test {mape(te, 'prefill'):.1f}%"
              + (f"; serving test {mape(te, 'serving'):.1f}%" if any(p.what == 'serving' for p in te) else ""))
        if unfit:
            print(f"        not identifiable from the training half (kept at the neutral start): {', '.join(unfit)}")
    ok = dec <= 15 and srv <= 25
    print("\n" + ("PASS" if ok else "FAIL") + ": decode ≤ 15 % and serving ≤ 25 % median error")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
